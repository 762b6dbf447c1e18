//! Rows F, F0 and FG of bench-envoy: FastMCP, the reference proxy, in the same run.
//!
//! * F: FastMCP (bench/fastmcp/server.py, fastmcp pinned, in the bench's own virtualenv
//!   target/bench-fastmcp-venv from scripts/ensure-bench-fastmcp.sh) with its OIDC proxy against
//!   the Cognito emulator; the bench signs in the way an MCP client does (dynamic registration,
//!   `/authorize`, the emulator's hosted UI, the callback, `/token`) and repeats FastMCP's own
//!   access token on an MCP POST `tools/call whoami`, the request of row 9.
//! * F0: the same server without authentication: what the MCP server itself costs per call.
//! * FG: mcpgate (the same filter and plugin as row 4, in Envoy) in front of F0's server, the
//!   proxy's own token: the deployment mcpgate stands for, measured as the CPU of both
//!   processes (Envoy + uvicorn) per request.
//!
//! Each server process is pinned to Envoy's CPU (in FG both share it), loaded by the same wrk
//! as the Envoy rows within each interleaved round; CPU is user+system from /proc.
//!
//! FastMCP verifies the token and runs the MCP call in one process; mcpgate's Envoy only
//! verifies and forwards (rows 4 and 9 answer with `direct_response`, no origin). So the fair
//! comparison is F against FG (auth + MCP, both ways, one core), and F − F0 (FastMCP's auth
//! layer alone) against Envoy's share of FG and against rows 4 / 9.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use mcpgate_e2e::cognito::{hosted_ui_login, pkce_pair, EmulatorHandle};
use mcpgate_e2e::harness::{
    free_port, http_client, repo_root, target_dir, wait_for_http, ChildProcess, EnvoyProcess,
};
use mcpgate_e2e::journey::{location, query, register_client, REDIRECT_URI};
use serde_json::{json, Value};

use super::{clk_tck, cpu_ticks, envoy_yaml, mcpgate, median, pin, run_wrk, Load, ENVOY_CPU};

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

/// One round's numbers.
#[derive(Clone, Copy)]
struct Round {
    /// F: CPU µs/req, req/s.
    f: (f64, f64),
    /// F0: CPU µs/req, req/s.
    f0: (f64, f64),
    /// FG: Envoy CPU µs/req, uvicorn CPU µs/req, req/s.
    fg: (f64, f64, f64),
}

/// The FastMCP rows: the servers, the tokens, and each round's samples.
pub struct Peers {
    with_auth: Server,
    without_auth: Server,
    /// mcpgate in front of `without_auth`, and its port.
    gate: (EnvoyProcess, u16),
    token: String,
    own_token: String,
    rounds: Vec<Round>,
}

/// bench-envoy's Envoy with mcpgate (`plugin`), routing to the MCP server on `origin_port`.
fn gate_yaml(
    wasm: &Path,
    plugin: &Value,
    idp_port: u16,
    origin_port: u16,
) -> anyhow::Result<String> {
    let mut cfg: Value = serde_json::from_str(&envoy_yaml(vec![mcpgate(wasm, plugin)], idp_port))?;
    let hcm = cfg
        .pointer_mut("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config")
        .context("the listener's connection manager")?;
    hcm["route_config"] = json!({"virtual_hosts": [{"name": "all", "domains": ["*"],
        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "origin"}}]}]});
    if let Some(Value::Array(clusters)) = cfg.pointer_mut("/static_resources/clusters") {
        clusters.push(json!({
            "name": "origin", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "origin", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": origin_port}}}}]}]}
        }));
    }
    Ok(serde_json::to_string_pretty(&cfg)?)
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

/// CPU µs per request of each of `pids` and requests/s over one wrk run (an error on any non-2xx
/// answer: the setup would be wrong).
fn sample(
    pids: &[u32],
    port: u16,
    load: &Load,
    seconds: u64,
    dir: &Path,
) -> anyhow::Result<(Vec<f64>, f64)> {
    let cpu0 = pids
        .iter()
        .map(|p| cpu_ticks(*p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (requests, _, _, non2xx, _) = run_wrk(port, load, seconds, dir)?;
    if non2xx > 0 {
        bail!("{non2xx} requests answered non-2xx in a FastMCP row: the setup is wrong");
    }
    let mut cpu = Vec::new();
    for (p, c0) in pids.iter().zip(cpu0) {
        cpu.push((cpu_ticks(*p)? - c0) as f64 / clk_tck() * 1e6 / requests.max(1) as f64);
    }
    Ok((cpu, requests as f64 / seconds as f64))
}

impl Peers {
    /// Starts both FastMCP servers against `idp`, signs in, and starts mcpgate (`wasm`,
    /// `plugin`: row 4's filter; `own_token` one of its tokens) in front of the one without
    /// auth; `None` (with the reason on stderr) when FastMCP is not installed.
    pub async fn start(
        idp: &EmulatorHandle,
        wasm: &Path,
        plugin: &Value,
        own_token: &str,
    ) -> anyhow::Result<Option<Self>> {
        if !python().is_file() {
            eprintln!(
                "rows F/F0/FG skipped: FastMCP is not installed (scripts/ensure-bench-fastmcp.sh)"
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
        let envoy = EnvoyProcess::start(
            "bench-fastmcp-gate",
            &gate_yaml(wasm, plugin, idp.port(), without_auth.port)?,
            &[],
            Duration::from_secs(60),
        )
        .await?;
        pin(envoy.child.pid(), ENVOY_CPU)?;
        let gate_port = envoy.listener_port("main").await?;
        check_call(gate_port, Some(own_token)).await?;
        if check_call(gate_port, None).await.is_ok() {
            bail!("mcpgate in front of FastMCP answered a call without a token");
        }
        Ok(Some(Self {
            with_auth,
            without_auth,
            gate: (envoy, gate_port),
            token,
            own_token: own_token.to_owned(),
            rounds: Vec::new(),
        }))
    }

    /// One round: F, F0, FG, `seconds` each.
    pub fn measure_round(&mut self, seconds: u64, dir: &Path) -> anyhow::Result<()> {
        let f = sample(
            &[self.with_auth.process.pid()],
            self.with_auth.port,
            &load(&self.token),
            seconds,
            dir,
        )?;
        let f0 = sample(
            &[self.without_auth.process.pid()],
            self.without_auth.port,
            &load(""),
            seconds,
            dir,
        )?;
        let fg = sample(
            &[self.gate.0.child.pid(), self.without_auth.process.pid()],
            self.gate.1,
            &load(&self.own_token),
            seconds,
            dir,
        )?;
        eprintln!(
            "          row   F: {:>9.0} req/s {:>7.1} µs/req\n          row  F0: {:>9.0} req/s {:>7.1} µs/req\n          row  FG: {:>9.0} req/s {:>7.1} µs/req (Envoy {:.1} + FastMCP {:.1})",
            f.1, f.0[0], f0.1, f0.0[0], fg.1, fg.0[0] + fg.0[1], fg.0[0], fg.0[1]
        );
        self.rounds.push(Round {
            f: (f.0[0], f.1),
            f0: (f0.0[0], f0.1),
            fg: (fg.0[0], fg.0[1], fg.1),
        });
        Ok(())
    }

    /// Rows F, F0, FG and their ratios to mcpgate (rows 4 and 9: Envoy CPU µs/req, NaN when
    /// not measured), as Markdown.
    pub fn report(&self, row4: f64, row9: f64) -> String {
        let med = |f: fn(&Round) -> f64| median(self.rounds.iter().map(f).collect());
        let (f, f_rps) = (med(|r| r.f.0), med(|r| r.f.1));
        let (f0, f0_rps) = (med(|r| r.f0.0), med(|r| r.f0.1));
        let (g_envoy, g_origin, g_rps) = (med(|r| r.fg.0), med(|r| r.fg.1), med(|r| r.fg.2));
        let g = med(|r| r.fg.0 + r.fg.1);
        let n = self.rounds.len();
        let spread = |f: fn(&Round) -> f64| {
            let each = self.rounds.iter().map(f);
            let lo = each.clone().fold(f64::INFINITY, f64::min);
            format!("{lo:.0}–{:.0}", each.fold(0.0, f64::max))
        };
        let (sf, sf0, sg) = (
            spread(|r| r.f.0),
            spread(|r| r.f0.0),
            spread(|r| r.fg.0 + r.fg.1),
        );
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n## FastMCP in the same run (rows F, F0, FG; {n} rounds, medians)\n\n\
             | row | setup | req/s | CPU µs/req (median) | rounds min–max |\n| --- | --- | ---: | ---: | ---: |\n\
             | F | FastMCP {v} + its OIDC proxy (Cognito emulator), MCP POST tools/call, its own token repeated | {f_rps:.0} | {f:.1} (uvicorn) | {sf} |\n\
             | F0 | the same FastMCP server without auth (the origin's own cost) | {f0_rps:.0} | {f0:.1} (uvicorn) | {sf0} |\n\
             | FG | mcpgate (Envoy, row 4's filter) in front of F0's server, own token repeated | {g_rps:.0} | {g:.1} (Envoy {g_envoy:.1} + uvicorn {g_origin:.1}) | {sg} |\n",
            v = self.version()
        );
        let _ = writeln!(
            out,
            "| comparison | value |\n| --- | ---: |\n\
             | F ÷ FG: FastMCP against mcpgate in front of the same server, both whole | {:.2} |\n\
             | (F − F0) ÷ FG's Envoy: FastMCP's auth layer against mcpgate's Envoy | {:.2} |\n\
             | (F − F0) ÷ row 9 (Envoy, MCP POST, direct_response) | {:.2} |\n\
             | (F − F0) ÷ row 4 (Envoy, GET, direct_response) | {:.2} |",
            f / g,
            (f - f0) / g_envoy,
            (f - f0) / row9,
            (f - f0) / row4,
        );
        let _ = writeln!(
            out,
            "\nFastMCP verifies and runs the MCP call in one process, mcpgate's Envoy only verifies and\n\
             forwards: F is compared with FG (mcpgate in front of the same server without auth, both\n\
             processes' CPU, one core), FastMCP's auth layer (F − F0) with FG's Envoy share at the\n\
             same request rate and with rows 4/9 at Envoy's own rate (bench/src/fastmcp.rs)."
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
