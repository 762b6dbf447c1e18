//! `scripts/run-local.sh` with a FastMCP deployment's environment
//! (`FASTMCP_SERVER_AUTH_AWS_COGNITO_*`): the script decides on the IdP from those names, asks
//! the pool's discovery document for the endpoints (FastMCP has no domain setting), and hands
//! the names to Envoy's VM. Its `--dry-run` writes the configuration without starting anything;
//! the tests start Envoy from it with nothing but that environment and sign a user in.

use std::path::{Path, PathBuf};
use std::process::Command;

use mcpgate_e2e::cognito::CognitoEmulator;
use mcpgate_e2e::envoy_setup::{filter_wasm, CLIENT_SECRET, ENVOY_STARTUP, JWT_SIGNING_KEY};
use mcpgate_e2e::harness::{free_port, log_dir, repo_root, unique_name, EnvoyProcess};
use mcpgate_e2e::journey::{whoami, Journey};
use mcpgate_e2e::origin::{Origin, OriginKind};
use serde_json::{json, Value};

const FASTMCP: &str = "FASTMCP_SERVER_AUTH_AWS_COGNITO_";

/// Runs `run-local.sh --dry-run` with exactly `env` (plus `PATH` and `HOME`); its output and
/// the generated Envoy configuration.
fn dry_run(env: &[(String, String)], dir: &Path) -> (String, Value) {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts").join("run-local.sh"))
        .arg("--dry-run")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "run-local.sh --dry-run failed:\n{text}"
    );
    let yaml = std::fs::read_to_string(dir.join("envoy.yaml")).unwrap();
    (text, serde_json::from_str(&yaml).unwrap())
}

fn vm_environment(config: &Value) -> &Value {
    config
        .pointer(
            "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters/0\
             /typed_config/config/vm_config/environment_variables",
        )
        .unwrap()
}

fn run_dir() -> PathBuf {
    let dir = log_dir().unwrap().join(unique_name("run-local"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pairs(list: &[(&str, String)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A FastMCP deployment's variables, pointed at the emulator (its issuer stands in for
/// `cognito-idp.<region>.amazonaws.com/<pool>`), through run-local's configuration into real
/// Envoy: the filter reads them, and a user signs in and calls a tool.
#[tokio::test]
async fn a_fastmcp_environment_runs_through_run_local_in_envoy() {
    let wasm = filter_wasm().unwrap();
    let idp = CognitoEmulator::start(Default::default()).await.unwrap();
    let origin = Origin::start(OriginKind::Demo).await.unwrap();
    let listen = free_port().unwrap();
    let base = format!("http://127.0.0.1:{listen}");
    let dir = run_dir();
    let env = pairs(&[
        (
            "FASTMCP_SERVER_AUTH_AWS_COGNITO_USER_POOL_ID",
            idp.pool_id(),
        ),
        (
            "FASTMCP_SERVER_AUTH_AWS_COGNITO_AWS_REGION",
            "us-east-1".into(),
        ),
        (
            "FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_ID",
            "mcpgate-web".into(),
        ),
        (
            "FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_SECRET",
            CLIENT_SECRET.into(),
        ),
        ("FASTMCP_SERVER_AUTH_AWS_COGNITO_BASE_URL", base.clone()),
        (
            "FASTMCP_SERVER_AUTH_AWS_COGNITO_JWT_SIGNING_KEY",
            JWT_SIGNING_KEY.into(),
        ),
        (
            "FASTMCP_SERVER_AUTH_AWS_COGNITO_REQUIRED_SCOPES",
            "openid,email".into(),
        ),
        // Where the pool is: the emulator instead of AWS.
        ("MCPGATE_UPSTREAM_ISSUER", idp.issuer()),
        // The script's own settings.
        ("MCPGATE_LISTEN_PORT", listen.to_string()),
        ("MCPGATE_ADMIN_PORT", free_port().unwrap().to_string()),
        ("MCPGATE_ORIGIN_URL", origin.base_url()),
        ("MCPGATE_RUN_DIR", dir.display().to_string()),
        ("MCPGATE_FILTER_WASM", wasm.display().to_string()),
    ]);
    // Blocking: off the runtime, which serves the emulator the script asks.
    let (output, config) = {
        let (env, dir) = (env.clone(), dir.clone());
        tokio::task::spawn_blocking(move || dry_run(&env, &dir))
            .await
            .unwrap()
    };
    assert!(output.contains("IdP from the environment"), "{output}");
    assert!(
        !dir.join("cognito-emulator.log").exists(),
        "no emulator of its own"
    );
    let vm = vm_environment(&config);
    let passed: Vec<&str> = vm["host_env_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for (name, _) in env.iter().filter(|(k, _)| k.starts_with(FASTMCP)) {
        assert!(
            passed.contains(&name.as_str()),
            "{name} reaches the VM: {passed:?}"
        );
    }
    // The endpoints came from the pool's discovery document, into the file (not secret).
    assert_eq!(
        vm["key_values"]["MCPGATE_UPSTREAM_AUTHORIZATION_ENDPOINT"],
        json!(idp.authorization_endpoint())
    );
    assert_eq!(
        vm["key_values"]["MCPGATE_UPSTREAM_TOKEN_ENDPOINT"],
        json!(idp.token_endpoint())
    );
    let text = config.to_string();
    assert!(
        !text.contains(CLIENT_SECRET),
        "secrets stay out of the file"
    );
    assert!(
        !text.contains(JWT_SIGNING_KEY),
        "secrets stay out of the file"
    );

    idp.add_redirect_uri("mcpgate-web", &format!("{base}/auth/callback"))
        .unwrap();
    let envoy = EnvoyProcess::start_with_env(
        "envoy-run-local",
        &config.to_string(),
        &[],
        Some(&env),
        ENVOY_STARTUP,
    )
    .await
    .unwrap();
    // As GateStack does: the first JWKS fetch runs from a tick right after start; until it
    // has landed the IdP's tokens at the callback are answered "keys unavailable".
    mcpgate_e2e::harness::wait_until(ENVOY_STARTUP, "the filter's first JWKS fetch", || async {
        let ok = envoy
            .stat("wasmcustom.mcpgate.jwks_fetch_ok")
            .await
            .ok()
            .flatten()
            .unwrap_or(0);
        (ok >= 1).then_some(())
    })
    .await
    .unwrap();
    let mut j = Journey::register(&base).await.unwrap();
    let tokens = j.login("alice", "alice-password").await.unwrap();
    assert_eq!(
        tokens.body["scope"],
        json!("openid email"),
        "required_scopes"
    );
    let out = whoami(&format!("{base}/mcp"), &tokens.access)
        .await
        .unwrap();
    assert_eq!(
        out["headers"]["x-mcpgate-username"],
        json!("alice"),
        "{out}"
    );
    assert_eq!(out["authorization_present"], json!(false), "{out}");
    drop(envoy);
}

/// A real pool, named the FastMCP way, plus the domain: clusters for Cognito's two hosts (TLS,
/// SNI), and the secret passed by name only.
#[test]
fn a_real_pool_with_fastmcp_names_gets_clusters_for_cognito() {
    let dir = run_dir();
    let env = pairs(&[
        (
            "FASTMCP_SERVER_AUTH_AWS_COGNITO_USER_POOL_ID",
            "eu-west-1_AbC123".into(),
        ),
        (
            "FASTMCP_SERVER_AUTH_AWS_COGNITO_AWS_REGION",
            "eu-west-1".into(),
        ),
        ("FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_ID", "app".into()),
        (
            "FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_SECRET",
            "a-real-looking-secret".into(),
        ),
        ("MCPGATE_COGNITO_DOMAIN", "myapp".into()),
        ("MCPGATE_RUN_DIR", dir.display().to_string()),
        (
            "MCPGATE_FILTER_WASM",
            "/nonexistent/mcpgate_envoy.wasm".into(),
        ),
    ]);
    let (output, config) = dry_run(&env, &dir);
    assert!(output.contains("IdP from the environment"), "{output}");
    let vm = vm_environment(&config);
    let clusters: Value =
        serde_json::from_str(vm["key_values"]["MCPGATE_CLUSTERS"].as_str().unwrap()).unwrap();
    for host in [
        "myapp.auth.eu-west-1.amazoncognito.com",
        "cognito-idp.eu-west-1.amazonaws.com",
    ] {
        let name = clusters[host]
            .as_str()
            .unwrap_or_else(|| panic!("{host}: {clusters}"));
        let cluster = config["static_resources"]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap();
        assert_eq!(
            cluster["transport_socket"]["typed_config"]["sni"],
            json!(host)
        );
    }
    assert!(config
        .to_string()
        .contains("envoy.clusters.dynamic_forward_proxy"));
    assert_eq!(vm["key_values"]["MCPGATE_CIMD_CLUSTER"], json!("cimd"));
    assert!(!config.to_string().contains("a-real-looking-secret"));
    assert!(vm["host_env_keys"]
        .as_array()
        .unwrap()
        .contains(&json!("FASTMCP_SERVER_AUTH_AWS_COGNITO_CLIENT_SECRET")));
}
