use super::*;
use alloc::string::ToString;
use alloc::vec;
use serde_json::json;

fn no_env(_: &str) -> Option<String> {
    None
}

fn minimal() -> serde_json::Value {
    json!({
        "user_pool_id": "eu-central-1_AbC123",
        "client_id": "app",
        "client_secret": "app-secret",
        "base_url": "https://mcp.example.com/",
        "cognito_domain": "myapp",
        "jwt_signing_key": "0123456789abcdef0123456789abcdef"
    })
}

fn parse(v: serde_json::Value) -> Result<Config, ConfigError> {
    parse_json(v.to_string().as_bytes(), &[], &no_env).map(|p| p.config)
}

fn err(v: serde_json::Value) -> ConfigError {
    parse(v).unwrap_err()
}

#[test]
fn minimal_cognito_config_derives_everything() {
    let c = parse(minimal()).unwrap();
    assert_eq!(c.provider, Provider::Cognito);
    assert_eq!(c.aws_region, "eu-central-1");
    assert_eq!(c.base_url, "https://mcp.example.com");
    assert_eq!(c.issuer_url, "https://mcp.example.com");
    assert_eq!(c.redirect_path, "/auth/callback");
    assert_eq!(c.mcp_path, "/mcp");
    assert_eq!(c.resource_url(), "https://mcp.example.com/mcp");
    assert_eq!(c.callback_url(), "https://mcp.example.com/auth/callback");
    assert_eq!(c.required_scopes, ["openid"]);
    assert_eq!(c.consent, ConsentMode::Always);
    assert_eq!(c.leeway_seconds, 30);
    assert_eq!(c.max_token_bytes, 16384);
    assert_eq!(
        c.upstream.issuer,
        "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_AbC123"
    );
    assert_eq!(
        c.upstream.jwks_uri,
        "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_AbC123/.well-known/jwks.json"
    );
    assert_eq!(
        c.upstream.authorization_endpoint,
        "https://myapp.auth.eu-central-1.amazoncognito.com/oauth2/authorize"
    );
    assert_eq!(
        c.upstream.revocation_endpoint.as_deref(),
        Some("https://myapp.auth.eu-central-1.amazoncognito.com/oauth2/revoke")
    );
    assert_eq!(
        c.token_endpoint_auth_method,
        ClientAuthMethod::ClientSecretBasic
    );
}

#[test]
fn upstream_overrides_win() {
    let mut v = minimal();
    v["upstream"] = json!({
        "issuer": "http://127.0.0.1:9000/eu-central-1_AbC123",
        "authorization_endpoint": "http://127.0.0.1:9000/oauth2/authorize",
        "token_endpoint": "http://127.0.0.1:9000/oauth2/token",
        "jwks_uri": "http://127.0.0.1:9000/eu-central-1_AbC123/.well-known/jwks.json"
    });
    v.as_object_mut().unwrap().remove("cognito_domain");
    let c = parse(v).unwrap();
    assert_eq!(
        c.upstream.issuer,
        "http://127.0.0.1:9000/eu-central-1_AbC123"
    );
    assert_eq!(
        c.upstream.token_endpoint,
        "http://127.0.0.1:9000/oauth2/token"
    );
    assert_eq!(c.upstream.revocation_endpoint, None);
}

#[test]
fn unknown_keys_are_named() {
    let mut v = minimal();
    v["client_secrte"] = json!("typo");
    let e = err(v);
    assert_eq!(e.key, "client_secrte");
    assert_eq!(e.to_string(), "config key `client_secrte`: unknown key");
    let mut v = minimal();
    v["upstream"] = json!({"token_url": "https://x"});
    assert_eq!(err(v).key, "upstream.token_url");
}

#[test]
fn host_keys_are_passed_through() {
    let mut v = minimal();
    v["clusters"] = json!({"idp": "cognito"});
    let p = parse_json(v.to_string().as_bytes(), &["clusters"], &no_env).unwrap();
    assert_eq!(p.host["clusters"], json!({"idp": "cognito"}));
}

#[test]
fn bad_values_are_named() {
    let cases: &[(&str, serde_json::Value, &str)] = &[
        ("client_id", json!(5), "client_id"),
        ("base_url", json!("ftp://x"), "base_url"),
        ("base_url", json!("https://u@x"), "base_url"),
        ("base_url", json!("https://x/?a=b"), "base_url"),
        ("aws_region", json!("EU Central"), "aws_region"),
        ("user_pool_id", json!("no-underscore"), "user_pool_id"),
        ("consent", json!("sometimes"), "consent"),
        ("provider", json!("okta"), "provider"),
        ("mcp_path", json!("mcp"), "mcp_path"),
        ("mcp_path", json!("/a/../b"), "mcp_path"),
        ("redirect_path", json!("/cb/"), "redirect_path"),
        ("required_scopes", json!([1]), "required_scopes"),
        ("leeway_seconds", json!(-1), "leeway_seconds"),
        ("leeway_seconds", json!(601), "leeway_seconds"),
        ("max_token_bytes", json!("big"), "max_token_bytes"),
        ("jwt_signing_key", json!("short"), "jwt_signing_key"),
        ("signing_algorithm", json!("RS256"), "signing_algorithm"),
        (
            "token_endpoint_auth_method",
            json!("private_key_jwt"),
            "token_endpoint_auth_method",
        ),
        (
            "identity_headers",
            json!({"sub": "authorization"}),
            "identity_headers.sub",
        ),
        (
            "identity_headers",
            json!({"nick": "x-nick"}),
            "identity_headers.nick",
        ),
        (
            "identity_headers",
            json!({"groups": false}),
            "identity_headers.groups",
        ),
        (
            "claim_headers",
            json!({"custom:tenant": "bad header"}),
            "claim_headers.custom:tenant",
        ),
        // Headers the request itself needs: the user's name must not become its Host.
        (
            "identity_headers",
            json!({"username": "Host"}),
            "identity_headers.username",
        ),
        (
            "identity_headers",
            json!({"sub": "content-length"}),
            "identity_headers.sub",
        ),
        (
            "claim_headers",
            json!({"custom:tenant": "Cookie"}),
            "claim_headers.custom:tenant",
        ),
        (
            "claim_headers",
            json!({"custom:tenant": "mcp-name"}),
            "claim_headers.custom:tenant",
        ),
        // One source per header: a claim must not overwrite the verified groups.
        (
            "claim_headers",
            json!({"custom:role": "X-Mcpgate-Groups"}),
            "claim_headers.custom:role",
        ),
        (
            "identity_headers",
            json!({"email": "x-mcpgate-sub"}),
            "identity_headers.email",
        ),
        (
            "upstream_token_header",
            json!("x-mcpgate-scope"),
            "upstream_token_header",
        ),
        (
            "group_rules",
            json!([{"path_prefix": "admin", "groups": ["a"]}]),
            "group_rules[0].path_prefix",
        ),
        (
            "group_rules",
            json!([{"path_prefix": "/admin", "groups": []}]),
            "group_rules[0].groups",
        ),
        ("cognito_domain", json!("a.b/c"), "cognito_domain"),
    ];
    for (key, value, named) in cases {
        let mut v = minimal();
        v[*key] = value.clone();
        assert_eq!(err(v).key, *named, "{key} = {value}");
    }
}

#[test]
fn required_keys_are_named() {
    for key in ["client_id", "base_url", "user_pool_id"] {
        let mut v = minimal();
        v.as_object_mut().unwrap().remove(key);
        let e = err(v);
        assert_eq!(e.key, key);
        assert_eq!(e.problem, "is required");
    }
    let mut v = minimal();
    v.as_object_mut().unwrap().remove("cognito_domain");
    assert_eq!(err(v).key, "cognito_domain");
}

#[test]
fn oidc_needs_explicit_endpoints() {
    let mut v = minimal();
    v["provider"] = json!("oidc");
    v.as_object_mut().unwrap().remove("user_pool_id");
    assert_eq!(err(v.clone()).key, "upstream.issuer");
    v["upstream"] = json!({"issuer": "https://idp.example.com"});
    assert_eq!(err(v).key, "upstream.jwks_uri");
}

#[test]
fn scopes_accept_list_or_separated_string() {
    let mut v = minimal();
    v["required_scopes"] = json!("openid, email profile");
    assert_eq!(
        parse(v).unwrap().required_scopes,
        ["openid", "email", "profile"]
    );
    let mut v = minimal();
    v["required_scopes"] = json!(["openid", "email"]);
    assert_eq!(parse(v).unwrap().required_scopes, ["openid", "email"]);
}

#[test]
fn secrets_come_from_env_and_never_show_in_debug() {
    let env = |name: &str| (name == "SECRET_VAR").then(|| "from-env-secret-value".to_string());
    let mut v = minimal();
    v["client_secret"] = json!({"env": "SECRET_VAR"});
    let c = parse_json(v.to_string().as_bytes(), &[], &env)
        .unwrap()
        .config;
    assert_eq!(
        c.client_secret.as_ref().unwrap().expose(),
        "from-env-secret-value"
    );
    let debug = alloc::format!("{c:?}");
    assert!(!debug.contains("from-env-secret-value"));
    assert!(!debug.contains("0123456789abcdef"));
    assert!(debug.contains("<redacted>"));
    let mut v = minimal();
    v["client_secret"] = json!({"env": "MISSING"});
    let e = parse_json(v.to_string().as_bytes(), &[], &env).unwrap_err();
    assert_eq!(e.key, "client_secret");
    assert!(e.problem.contains("MISSING"));
}

#[test]
fn signing_key_falls_back_to_client_secret_and_rotation_keeps_previous() {
    let mut v = minimal();
    v.as_object_mut().unwrap().remove("jwt_signing_key");
    let c = parse(v.clone()).unwrap();
    assert_eq!(c.jwt_signing_keys.len(), 1);
    v.as_object_mut().unwrap().remove("client_secret");
    assert_eq!(err(v).key, "jwt_signing_key");
    let mut v = minimal();
    v["previous_jwt_signing_keys"] = json!(["an-older-key-of-at-least-32-chars!!"]);
    assert_eq!(parse(v).unwrap().jwt_signing_keys.len(), 2);
}

#[test]
fn documents_that_are_not_objects_are_refused() {
    assert_eq!(
        parse_json(b"[]", &[], &no_env).unwrap_err().key,
        "(document)"
    );
    assert_eq!(
        parse_json(b"{", &[], &no_env).unwrap_err().key,
        "(document)"
    );
}

#[test]
fn group_rules_and_claim_headers_parse() {
    let mut v = minimal();
    v["group_rules"] = json!([{"path_prefix": "/mcp/admin", "groups": ["admins"]}]);
    v["claim_headers"] = json!({"custom:tenant": "X-Tenant"});
    v["accepted_client_ids"] = json!(["m2m"]);
    let c = parse(v).unwrap();
    assert_eq!(
        c.group_rules,
        vec![GroupRule {
            path_prefix: "/mcp/admin".into(),
            groups: vec!["admins".into()]
        }]
    );
    assert_eq!(
        c.claim_headers,
        vec![("custom:tenant".to_string(), "x-tenant".to_string())]
    );
    assert_eq!(c.accepted_client_ids, ["m2m"]);
}

#[test]
fn from_vars_reads_mcpgate_and_fastmcp_names() {
    let vars = [
        ("MCPGATE_USER_POOL_ID", "eu-central-1_AbC123"),
        ("FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_ID", "from-fastmcp"),
        ("MCPGATE_CLIENT_SECRET", "secret"),
        (
            "FASTMCP_SERVER_AUTH_AWS_COGNITO_BASE_URL",
            "https://ignored.example",
        ),
        ("MCPGATE_BASE_URL", "https://mcp.example.com"),
        ("MCPGATE_COGNITO_DOMAIN", "myapp"),
        ("MCPGATE_REQUIRED_SCOPES", "openid, email"),
        ("MCPGATE_LEEWAY_SECONDS", "10"),
        ("MCPGATE_UPSTREAM_ISSUER", "http://127.0.0.1:9/pool"),
        (
            "MCPGATE_GROUP_RULES",
            r#"[{"path_prefix":"/mcp/a","groups":["g"]}]"#,
        ),
        ("MCPGATE_ORIGIN_URL", "http://127.0.0.1:8000"),
    ];
    let get = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let p = from_vars(&get, &["origin_url"]).unwrap();
    assert_eq!(p.config.client_id, "from-fastmcp");
    assert_eq!(
        p.config.base_url, "https://mcp.example.com",
        "MCPGATE_ wins"
    );
    assert_eq!(p.config.required_scopes, ["openid", "email"]);
    assert_eq!(p.config.leeway_seconds, 10);
    assert_eq!(p.config.upstream.issuer, "http://127.0.0.1:9/pool");
    assert_eq!(p.config.group_rules.len(), 1);
    assert_eq!(p.host["origin_url"], json!("http://127.0.0.1:8000"));
}

#[test]
fn from_vars_errors_name_the_variable() {
    let run = |vars: &[(&str, &str)]| {
        let owned: alloc::vec::Vec<(String, String)> = vars
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let get = move |name: &str| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        from_vars(&get, &[]).unwrap_err()
    };
    let base = [
        ("MCPGATE_USER_POOL_ID", "eu-central-1_AbC123"),
        ("MCPGATE_CLIENT_ID", "c"),
        ("MCPGATE_CLIENT_SECRET", "s"),
        ("MCPGATE_BASE_URL", "https://x.example"),
        ("MCPGATE_COGNITO_DOMAIN", "d"),
    ];
    let mut v = base.to_vec();
    v.push(("MCPGATE_LEEWAY_SECONDS", "soon"));
    assert_eq!(run(&v).key, "MCPGATE_LEEWAY_SECONDS");
    let mut v = base.to_vec();
    v.push(("MCPGATE_AWS_REGION", "Nowhere 1"));
    assert_eq!(run(&v).key, "MCPGATE_AWS_REGION");
    let mut v = base.to_vec();
    v.push(("MCPGATE_UPSTREAM_TOKEN_ENDPOINT", "ftp://x"));
    assert_eq!(run(&v).key, "MCPGATE_UPSTREAM_TOKEN_ENDPOINT");
    let mut v = base.to_vec();
    v.push((
        "MCPGATE_GROUP_RULES",
        r#"[{"path_prefix":"x","groups":["g"]}]"#,
    ));
    assert_eq!(
        run(&v).key,
        "MCPGATE_GROUP_RULES (group_rules[0].path_prefix)"
    );
    assert_eq!(run(&base[1..]).key, "MCPGATE_USER_POOL_ID");
}

mod fastmcp;
mod tools;

#[test]
fn an_empty_key_is_named_visibly() {
    let e = parse_json(br#"{"":{"[":"{"}}"#, &[], &no_env).unwrap_err();
    assert_eq!(e.to_string(), "config key `\"\"`: unknown key");
}

#[test]
fn an_identity_header_set_to_null_is_not_passed_and_frees_its_name() {
    let mut v = minimal();
    v["identity_headers"] = json!({"groups": null, "sub": "x-user"});
    v["claim_headers"] = json!({"custom:role": "x-mcpgate-groups"});
    let c = parse(v).unwrap();
    assert_eq!(c.identity_headers.groups, None);
    assert_eq!(c.identity_headers.sub.as_deref(), Some("x-user"));
    assert_eq!(
        c.identity_headers.username.as_deref(),
        Some("x-mcpgate-username")
    );
}
