//! A FastMCP deployment's environment (`FASTMCP_SERVER_AUTH_AWS_COGNITO_*`, and the
//! `…_COGNITO_DCR_*` names FastMCP 2.13+ reads first) configures mcpgate; the one setting
//! FastMCP finds by discovery, the Cognito domain, is asked for by name. New boolean keys
//! read `true` / `false` from variables.

use super::*;
use alloc::vec::Vec;

fn vars(list: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let owned: Vec<(String, String)> = list
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    move |name: &str| {
        owned
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

const FASTMCP_ENV: &[(&str, &str)] = &[
    (
        "FASTMCP_SERVER_AUTH_AWS_COGNITO_USER_POOL_ID",
        "eu-central-1_AbC123",
    ),
    ("FASTMCP_SERVER_AUTH_AWS_COGNITO_AWS_REGION", "eu-central-1"),
    (
        "FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_ID",
        "fastmcp-client",
    ),
    (
        "FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_SECRET",
        "fastmcp-secret",
    ),
    (
        "FASTMCP_SERVER_AUTH_AWS_COGNITO_BASE_URL",
        "https://mcp.example.com",
    ),
    (
        "FASTMCP_SERVER_AUTH_AWS_COGNITO_REDIRECT_PATH",
        "/custom/callback",
    ),
    (
        "FASTMCP_SERVER_AUTH_AWS_COGNITO_REQUIRED_SCOPES",
        "openid,email",
    ),
    (
        "FASTMCP_SERVER_AUTH_AWS_COGNITO_JWT_SIGNING_KEY",
        "a-fastmcp-signing-key-of-32-characters!",
    ),
];

#[test]
fn a_fastmcp_environment_plus_the_domain_configures_everything() {
    let mut env = FASTMCP_ENV.to_vec();
    let e = from_vars(&vars(&env), &[]).unwrap_err();
    assert_eq!(e.key, "MCPGATE_COGNITO_DOMAIN", "{e}");
    assert!(e.problem.contains("is required"), "{e}");
    env.push(("MCPGATE_COGNITO_DOMAIN", "myapp"));
    let c = from_vars(&vars(&env), &[]).unwrap().config;
    assert_eq!(c.client_id, "fastmcp-client");
    assert_eq!(
        c.client_secret.as_ref().map(Secret::expose),
        Some("fastmcp-secret")
    );
    assert_eq!(c.callback_url(), "https://mcp.example.com/custom/callback");
    assert_eq!(c.required_scopes, ["openid", "email"]);
    assert_eq!(
        c.upstream.token_endpoint,
        "https://myapp.auth.eu-central-1.amazoncognito.com/oauth2/token"
    );
}

#[test]
fn the_dcr_names_come_first() {
    let mut env = FASTMCP_ENV.to_vec();
    env.push((
        "FASTMCP_SERVER_AUTH_AWS_COGNITO_DCR_CLIENT_ID",
        "dcr-client",
    ));
    env.push(("MCPGATE_COGNITO_DOMAIN", "myapp"));
    let c = from_vars(&vars(&env), &[]).unwrap().config;
    assert_eq!(c.client_id, "dcr-client");
    env.push(("MCPGATE_CLIENT_ID", "mcpgate-client"));
    let c = from_vars(&vars(&env), &[]).unwrap().config;
    assert_eq!(c.client_id, "mcpgate-client", "MCPGATE_ wins");
}

#[test]
fn boolean_and_list_keys_from_variables() {
    let mut env = FASTMCP_ENV.to_vec();
    env.push(("MCPGATE_COGNITO_DOMAIN", "myapp"));
    env.push(("MCPGATE_CIMD_ALLOW_PRIVATE", "true"));
    env.push(("MCPGATE_CIMD", "claude.ai, chatgpt.com"));
    env.push(("MCPGATE_CORS_ORIGINS", "http://localhost:6274"));
    let c = from_vars(&vars(&env), &[]).unwrap().config;
    assert!(c.cimd_allow_private);
    assert_eq!(
        c.cimd,
        Cimd::Hosts(alloc::vec!["claude.ai".into(), "chatgpt.com".into()])
    );
    assert_eq!(
        c.cors_origins,
        CorsOrigins::List(alloc::vec!["http://localhost:6274".into()])
    );
    env.push(("MCPGATE_CIMD", "off"));
    env.retain(|(k, v)| *k != "MCPGATE_CIMD" || *v == "off");
    assert_eq!(from_vars(&vars(&env), &[]).unwrap().config.cimd, Cimd::Off);
    env.push(("MCPGATE_CIMD_ALLOW_PRIVATE", "yes"));
    env.retain(|(k, v)| *k != "MCPGATE_CIMD_ALLOW_PRIVATE" || *v == "yes");
    assert_eq!(
        from_vars(&vars(&env), &[]).unwrap_err().key,
        "MCPGATE_CIMD_ALLOW_PRIVATE"
    );
}
