//! Rows F and F0 of bench-envoy: FastMCP, the reference proxy, in the same run.
//!
//! * F: FastMCP (bench/fastmcp/server.py, fastmcp pinned, in the bench's own virtualenv
//!   target/bench-fastmcp-venv from scripts/ensure-bench-fastmcp.sh) with its OIDC proxy against
//!   the Cognito emulator; the bench signs in the way an MCP client does (dynamic registration,
//!   `/authorize`, the emulator's hosted UI, the callback, `/token`) and repeats FastMCP's own
//!   access token on an MCP POST `tools/call whoami`, the request of row 9.
//! * F0: the same server without authentication: what the MCP server itself costs per call.
//!
//! Each is one uvicorn process pinned to Envoy's CPU, loaded by the same wrk as the Envoy rows
//! within each interleaved round; CPU is user+system of that process from /proc.
//!
//! FastMCP verifies the token and runs the MCP call in one process; mcpgate's Envoy only
//! verifies and forwards (rows 4 and 9 answer with `direct_response`, no origin). So the
//! comparison is F against Envoy's row + F0 (mcpgate in front of the same MCP server without
//! auth: both processes' CPU per request), and F − F0 (FastMCP's auth layer alone) against
//! Envoy's row.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use mcpgate_e2e::cognito::{hosted_ui_login, pkce_pair, EmulatorHandle};
use mcpgate_e2e::harness::{
    free_port, http_client, repo_root, target_dir, wait_for_http, ChildProcess,
};
use mcpgate_e2e::journey::{location, query, register_client, REDIRECT_URI};
use serde_json::Value;

use super::{clk_tck, cpu_ticks, median, pin, run_wrk, Load, ENVOY_CPU};

/// The Cognito app client FastMCP's OIDC proxy signs in with (the emulator's fixture).
const CLIENT_ID: &str = "mcpgate-web";
const CLIENT_SECRET: &str = "mcpgate-web-secret";

/// The JSON-RPC body of row 9 (`tools/call whoami`).
const CALL_BODY: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;

/// One FastMCP server.
struct Server {
    process: ChildProcess,
    port: u16,
}

/// The FastMCP rows: the servers, the token, and each round's samples (CPU µs/req, req/s).
pub struct Peers {
    with_auth: Server,
    without_auth: Server,
    token: String,
    samples: Vec<(Vec<f64>, Vec<f64>)>,
}

fn python() -> PathBuf {
    target_dir()
        .join("bench-fastmcp-venv")
        .join("bin")
        .join("python")
}

async fn start_server(args: &[String], name: &str) -> anyhow::Result<Server> {
    start_on(free_port()?, args, name).await
}

/// Signs in at FastMCP as an MCP client does; FastMCP's access token.
async fn sign_in(base: &str) -> anyhow::Result<String> {
    let http = http_client();
    let client_id = register_client(&http, base, REDIRECT_URI, "bench client").await?;
    let pkce = pkce_pair();
    let resource = format!("{base}/mcp");
    let resp = http
        .get(format!("{base}/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", "bench-state"),
            ("scope", "openid"),
            ("resource", &resource),
        ])
        .send()
        .await?;
    if resp.status() != 302 {
        bail!(
            "FastMCP /authorize answered {}: {}",
            resp.status(),
            resp.text().await?
        );
    }
    let idp_url = location(&resp)?;
    let callback = hosted_ui_login(&http, &idp_url, "alice", "alice-password").await?;
    let resp = http.get(callback.to_string()).send().await?;
    if resp.status() != 302 {
        bail!(
            "FastMCP's callback answered {}: {}",
            resp.status(),
            resp.text().await?
        );
    }
    let redirect = location(&resp)?;
    let code = query(&redirect)?
        .get("code")
        .cloned()
        .with_context(|| format!("no code in {redirect}"))?;
    let resp = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", &client_id),
            ("code_verifier", &pkce.verifier),
            ("resource", &resource),
        ])
        .send()
        .await?;
    let status = resp.status();
    let body: Value = serde_json::from_str(&resp.text().await?).unwrap_or(Value::Null);
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("FastMCP /token answered {status}: {body}"))
}

/// A `tools/call whoami` answered "ok" by `port` with `token` (none: no Authorization).
async fn check_call(port: u16, token: Option<&str>) -> anyhow::Result<()> {
    let mut req = http_client()
        .post(format!("http://127.0.0.1:{port}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(CALL_BODY);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status != 200 || v["result"]["structuredContent"]["result"] != "ok" {
        bail!("FastMCP tools/call answered {status}: {text}");
    }
    Ok(())
}

/// The load of rows F / F0: row 9's MCP POST (without Authorization when `token` is empty).
fn load(token: &str) -> Load {
    Load::Post {
        token: token.to_owned(),
        body: CALL_BODY.into(),
        headers: vec![("Mcp-Method", "tools/call"), ("Mcp-Name", "whoami")],
    }
}

/// CPU µs per request of `pid` and requests/s over one wrk run (an error on any non-2xx
/// answer: the setup would be wrong).
fn sample(
    pid: u32,
    port: u16,
    load: &Load,
    seconds: u64,
    dir: &Path,
) -> anyhow::Result<(f64, f64)> {
    let cpu0 = cpu_ticks(pid)?;
    let (requests, _, _, non2xx, _) = run_wrk(port, load, seconds, dir)?;
    let cpu = cpu_ticks(pid)? - cpu0;
    if non2xx > 0 {
        bail!("FastMCP answered {non2xx} requests with non-2xx: the setup is wrong");
    }
    Ok((
        cpu as f64 / clk_tck() * 1e6 / requests.max(1) as f64,
        requests as f64 / seconds as f64,
    ))
}

impl Peers {
    /// Starts both FastMCP servers against `idp` and signs in; `None` (with the reason on
    /// stderr) when FastMCP is not installed.
    pub async fn start(idp: &EmulatorHandle) -> anyhow::Result<Option<Self>> {
        if !python().is_file() {
            eprintln!(
                "rows F/F0 skipped: FastMCP is not installed (scripts/ensure-bench-fastmcp.sh)"
            );
            return Ok(None);
        }
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        idp.add_redirect_uri(CLIENT_ID, &format!("{base}/auth/callback"))?;
        let args: Vec<String> = [
            "--auth",
            "oidc",
            "--discovery-url",
            &idp.discovery_url(),
            "--base-url",
            &base,
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
            "--signing-key",
            "bench-fastmcp-signing-key-of-at-least-32-characters",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let with_auth = start_on(port, &args, "fastmcp-oidc").await?;
        let without_auth = start_server(&["--auth".into(), "none".into()], "fastmcp-none").await?;
        let token = sign_in(&base).await?;
        check_call(with_auth.port, Some(&token)).await?;
        check_call(without_auth.port, None).await?;
        // FastMCP refuses a call without its token: row F measures an authenticated path.
        if check_call(with_auth.port, None).await.is_ok() {
            bail!("FastMCP with its OIDC proxy answered a call without a token");
        }
        Ok(Some(Self {
            with_auth,
            without_auth,
            token,
            samples: Vec::new(),
        }))
    }

    /// One round: F then F0, `seconds` each.
    pub fn measure_round(&mut self, seconds: u64, dir: &Path) -> anyhow::Result<()> {
        let f = sample(
            self.with_auth.process.pid(),
            self.with_auth.port,
            &load(&self.token),
            seconds,
            dir,
        )?;
        let f0 = sample(
            self.without_auth.process.pid(),
            self.without_auth.port,
            &load(""),
            seconds,
            dir,
        )?;
        eprintln!(
            "          row   F: {:>9.0} req/s {:>7.1} µs/req\n          row  F0: {:>9.0} req/s {:>7.1} µs/req",
            f.1, f.0, f0.1, f0.0
        );
        self.samples.push((vec![f.0, f.1], vec![f0.0, f0.1]));
        Ok(())
    }

    /// Rows F and F0 and their ratios to mcpgate's rows 4 and 9 (Envoy CPU µs/req, NaN when
    /// not measured), as Markdown.
    pub fn report(&self, row4: f64, row9: f64) -> String {
        let med =
            |f: fn(&(Vec<f64>, Vec<f64>)) -> f64| median(self.samples.iter().map(f).collect());
        let (f, f_rps) = (med(|s| s.0[0]), med(|s| s.0[1]));
        let (f0, f0_rps) = (med(|s| s.1[0]), med(|s| s.1[1]));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n## FastMCP in the same run (rows F, F0)\n\n\
             | row | setup | req/s | CPU µs/req (uvicorn) |\n| --- | --- | ---: | ---: |\n\
             | F | FastMCP {} + OIDC proxy (Cognito emulator), MCP POST tools/call, its own token repeated | {f_rps:.0} | {f:.1} |\n\
             | F0 | the same FastMCP server without auth (the origin's own cost) | {f0_rps:.0} | {f0:.1} |\n",
            self.version()
        );
        let _ = writeln!(
            out,
            "| comparison | value |\n| --- | ---: |\n\
             | F ÷ (row 9 + F0): FastMCP against mcpgate in front of the same server | {:.2} |\n\
             | F ÷ (row 4 + F0) | {:.2} |\n\
             | (F − F0) ÷ row 9: FastMCP's auth layer against mcpgate's Envoy | {:.2} |\n\
             | (F − F0) ÷ row 4 | {:.2} |",
            f / (row9 + f0),
            f / (row4 + f0),
            (f - f0) / row9,
            (f - f0) / row4,
        );
        out
    }

    fn version(&self) -> String {
        std::fs::read_to_string(repo_root().join("bench/fastmcp/requirements.txt"))
            .ok()
            .and_then(|r| {
                r.lines()
                    .find_map(|l| l.trim().strip_prefix("fastmcp==").map(str::to_owned))
            })
            .unwrap_or_default()
    }
}

/// [`start_server`] on a given port (FastMCP's base URL must be known before it starts).
async fn start_on(port: u16, args: &[String], name: &str) -> anyhow::Result<Server> {
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("bench/fastmcp/server.py"))
        .args(["--port", &port.to_string()])
        .args(args);
    let mut process = ChildProcess::spawn(name, cmd)?;
    if let Err(e) = wait_for_http(
        &format!("http://127.0.0.1:{port}/mcp"),
        Duration::from_secs(60),
    )
    .await
    {
        let status = process.try_exit_status();
        bail!(
            "{name} did not answer ({e}; exit {status:?}); log {}:\n{}",
            process.log_path().display(),
            process.log_tail(30)
        );
    }
    pin(process.pid(), ENVOY_CPU)?;
    Ok(Server { process, port })
}
