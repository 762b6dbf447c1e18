//! Run the Cognito emulator: `cognito-emulator [--port N] [--config FILE]`
//! (env: `COGNITO_EMULATOR_PORT`, `COGNITO_EMULATOR_CONFIG`). Port 0 (default) lets the OS
//! choose. Prints `base_url=...`, `issuer=...`, `jwks_uri=...` then serves until Ctrl-C.

use mcpgate_e2e::cognito::{CognitoConfig, CognitoEmulator};

fn arg_or_env(args: &[String], flag: &str, env: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| {
            let prefix = format!("{flag}=");
            args.iter()
                .find_map(|a| a.strip_prefix(&prefix).map(str::to_owned))
        })
        .or_else(|| std::env::var(env).ok())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: cognito-emulator [--port N] [--config FILE]");
        return Ok(());
    }
    let port: u16 = arg_or_env(&args, "--port", "COGNITO_EMULATOR_PORT")
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);
    let config = match arg_or_env(&args, "--config", "COGNITO_EMULATOR_CONFIG") {
        Some(path) => CognitoConfig::from_file(path)?,
        None => CognitoConfig::default(),
    };
    let idp = CognitoEmulator::start_on(([127, 0, 0, 1], port).into(), config).await?;
    println!("base_url={}", idp.base_url());
    println!("issuer={}", idp.issuer());
    println!("jwks_uri={}", idp.jwks_uri());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
