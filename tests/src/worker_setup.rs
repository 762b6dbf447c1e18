//! The Cloudflare Worker (`edge-worker/`, built by `scripts/build-worker.sh`) running in real
//! workerd through `wrangler dev --local`, in front of the demo MCP server, with the Cognito
//! emulator as the IdP. One [`WorkerStack`] per test, every port chosen by the OS, Durable
//! Object and cache state under a fresh `--persist-to` directory.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mcpgate_e2e::worker_setup::{WorkerOptions, WorkerStack};
//! let stack = WorkerStack::start(WorkerOptions::default()).await?;
//! println!("MCP at {}", stack.mcp_url());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::cognito::{CognitoConfig, CognitoEmulator, EmulatorHandle};
use crate::harness::{
    free_port, log_dir, repo_root, retry_if_port_taken, unique_name, wait_until, ChildProcess,
    PORT_TAKEN,
};
use crate::origin::{Origin, OriginKind, OriginSettings};

/// Startup deadline for `wrangler dev` (node + workerd start, the module is compiled once).
pub const WORKER_STARTUP: Duration = Duration::from_secs(90);

/// Secrets given to the Worker through the generated `.dev.vars`: the same as Envoy's.
pub use crate::envoy_setup::{CLIENT_SECRET, JWT_SIGNING_KEY};

/// Runs `scripts/build-worker.sh` once per test process; returns the `shim.mjs` path.
pub fn worker_bundle() -> anyhow::Result<PathBuf> {
    static SHIM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    SHIM.get_or_init(|| crate::harness::build_artifact("build-worker.sh", "shim.mjs"))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// `edge-worker/node_modules/.bin/wrangler` (installed by the build script).
pub fn wrangler_bin() -> PathBuf {
    repo_root()
        .join("edge-worker")
        .join("node_modules")
        .join(".bin")
        .join("wrangler")
}

/// How to start a [`WorkerStack`].
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Variables laid over [`default_vars`] (an empty value removes one).
    pub vars: BTreeMap<String, String>,
    /// Bind the `McpgateStore` Durable Object (the one-time-use store).
    pub store: bool,
    pub cognito: CognitoConfig,
    /// The MCP server behind the Worker.
    pub origin: OriginKind,
    /// Name the settings FastMCP has (pool, region, client, secrets, base URL) the way a
    /// FastMCP deployment does: `FASTMCP_SERVER_AUTH_AWS_COGNITO_*`.
    pub fastmcp_names: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            vars: BTreeMap::new(),
            store: true,
            cognito: CognitoConfig::default(),
            origin: OriginKind::default(),
            fastmcp_names: false,
        }
    }
}

impl WorkerOptions {
    /// Set (or with `""`, remove) one variable, e.g. `MCPGATE_JWKS_REFRESH_SECONDS`.
    pub fn var(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }
    pub fn store(mut self, on: bool) -> Self {
        self.store = on;
        self
    }
    pub fn origin(mut self, kind: OriginKind) -> Self {
        self.origin = kind;
        self
    }
    /// See [`WorkerOptions::fastmcp_names`].
    pub fn fastmcp_names(mut self) -> Self {
        self.fastmcp_names = true;
        self
    }
}

/// FastMCP's prefix for its Cognito provider's settings.
pub const FASTMCP_PREFIX: &str = "FASTMCP_SERVER_AUTH_AWS_COGNITO_";

/// The variable for a setting FastMCP has, under FastMCP's name when `fastmcp`.
fn named(setting: &str, fastmcp: bool) -> String {
    if fastmcp {
        format!("{FASTMCP_PREFIX}{setting}")
    } else {
        format!("MCPGATE_{setting}")
    }
}

/// The Worker's variables for an emulator `idp`, a proxy at `base_url` and the demo server at
/// `origin`: client `mcpgate-web`, every IdP endpoint pointing at the emulator.
pub fn default_vars(
    idp: &EmulatorHandle,
    base_url: &str,
    origin: &str,
) -> BTreeMap<String, String> {
    [
        ("MCPGATE_USER_POOL_ID", idp.pool_id()),
        ("MCPGATE_AWS_REGION", "us-east-1".to_owned()),
        ("MCPGATE_CLIENT_ID", "mcpgate-web".to_owned()),
        ("MCPGATE_BASE_URL", base_url.to_owned()),
        ("MCPGATE_ORIGIN_URL", origin.to_owned()),
        ("MCPGATE_UPSTREAM_ISSUER", idp.issuer()),
        (
            "MCPGATE_UPSTREAM_AUTHORIZATION_ENDPOINT",
            idp.authorization_endpoint(),
        ),
        ("MCPGATE_UPSTREAM_TOKEN_ENDPOINT", idp.token_endpoint()),
        ("MCPGATE_UPSTREAM_JWKS_URI", idp.jwks_uri()),
        (
            "MCPGATE_UPSTREAM_REVOCATION_ENDPOINT",
            idp.revocation_endpoint(),
        ),
        (
            "MCPGATE_UPSTREAM_USERINFO_ENDPOINT",
            idp.userinfo_endpoint(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Emulator + demo MCP server + `wrangler dev --local`. Dropping it stops all three (the
/// whole wrangler process group, workerd included).
pub struct WorkerStack {
    pub idp: EmulatorHandle,
    pub origin: Origin,
    pub wrangler: ChildProcess,
    /// `http://127.0.0.1:{port}` (the Worker's `MCPGATE_BASE_URL`).
    pub base_url: String,
    /// The variables the Worker was given (secrets excluded).
    pub vars: BTreeMap<String, String>,
    /// Generated wrangler.toml, .dev.vars and the persisted state.
    pub dir: PathBuf,
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Writes `wrangler.toml` + `.dev.vars` into `dir` for the bundle `shim` (the secrets under
/// FastMCP's names when `fastmcp`).
pub fn write_config(
    dir: &std::path::Path,
    shim: &std::path::Path,
    vars: &BTreeMap<String, String>,
    store: bool,
    fastmcp: bool,
) -> anyhow::Result<PathBuf> {
    let mut toml = format!(
        "name = \"mcpgate-e2e\"\nmain = {}\ncompatibility_date = \"2026-04-01\"\nsend_metrics = false\n",
        toml_string(&shim.display().to_string())
    );
    if store {
        toml.push_str(
            "\n[[durable_objects.bindings]]\nname = \"MCPGATE_STORE\"\nclass_name = \"McpgateStore\"\n\n\
             [[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"McpgateStore\"]\n",
        );
    }
    toml.push_str("\n[vars]\n");
    for (k, v) in vars {
        toml.push_str(&format!("{k} = {}\n", toml_string(v)));
    }
    let config = dir.join("wrangler.toml");
    std::fs::write(&config, toml)?;
    std::fs::write(
        dir.join(".dev.vars"),
        format!(
            "{}={CLIENT_SECRET}\n{}={JWT_SIGNING_KEY}\n",
            named("CLIENT_SECRET", fastmcp),
            named("JWT_SIGNING_KEY", fastmcp)
        ),
    )?;
    Ok(config)
}

/// What `wrangler dev` logs once it listens on `port` (only then is an answer there its own).
fn listening_line(port: u16) -> String {
    format!("Ready on http://127.0.0.1:{port}")
}

/// Waits until `wrangler`, started on `port`, answers `url` with 200; `Ok(Err(status))` when
/// it exited first. Until our wrangler says it listens, an answer on the port may come from
/// another test process's server that took the port after it was picked free (ours then
/// fails to bind and exits): such answers are not taken for the Worker's.
pub async fn wait_serving(
    wrangler: &mut ChildProcess,
    port: u16,
    url: &str,
) -> anyhow::Result<Result<(), std::process::ExitStatus>> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    let listening = listening_line(port);
    wait_until(WORKER_STARTUP, "wrangler dev to serve the Worker", || {
        let exited = wrangler.try_exit_status();
        let ours = wrangler.log().contains(&listening);
        let client = client.clone();
        async move {
            if let Some(status) = exited {
                return Some(Err(status));
            }
            if !ours {
                return None;
            }
            let r = client.get(url).send().await.ok()?;
            (r.status().as_u16() == 200).then_some(Ok(()))
        }
    })
    .await
}

/// Starts `wrangler dev --local` for `config` on `port` (in its own process group).
pub fn spawn_wrangler(
    name: &str,
    config: &std::path::Path,
    port: u16,
    persist: &std::path::Path,
) -> anyhow::Result<ChildProcess> {
    let mut cmd = Command::new(wrangler_bin());
    cmd.arg("dev")
        .arg("--local")
        .arg("--config")
        .arg(config)
        .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--inspector-port", &free_port()?.to_string()])
        .arg("--persist-to")
        .arg(persist)
        .args([
            "--show-interactive-dev-session=false",
            "--log-level",
            "info",
        ])
        .current_dir(config.parent().unwrap_or(&repo_root()))
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("WRANGLER_HIDE_BANNER", "true")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("NO_UPDATE_NOTIFIER", "1")
        .env("CI", "true");
    ChildProcess::spawn(name, cmd)
}

impl WorkerStack {
    /// Starts the emulator and the demo MCP server in this runtime, then the Worker; waits
    /// until the Worker answers its protected-resource metadata.
    pub async fn start(opts: WorkerOptions) -> anyhow::Result<Self> {
        let shim = worker_bundle()?;
        let idp = CognitoEmulator::start(opts.cognito.clone()).await?;
        let origin = Origin::start(opts.origin).await?;
        // A port chosen free may be taken before wrangler listens on it: another port.
        let (wrangler, base_url, vars, dir) =
            retry_if_port_taken(|| Self::start_wrangler(&opts, &shim, &idp, &origin)).await?;
        origin
            .configure(&OriginSettings::for_proxy(
                &base_url,
                &idp.userinfo_endpoint(),
            ))
            .await?;
        Ok(Self {
            idp,
            origin,
            wrangler,
            base_url,
            vars,
            dir,
        })
    }

    /// One `wrangler dev` for the stack on a fresh port: the process, its base URL, its
    /// variables and its directory, once the Worker answers its protected-resource metadata.
    async fn start_wrangler(
        opts: &WorkerOptions,
        shim: &std::path::Path,
        idp: &EmulatorHandle,
        origin: &Origin,
    ) -> anyhow::Result<(ChildProcess, String, BTreeMap<String, String>, PathBuf)> {
        let port = free_port()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let mut vars = default_vars(idp, &base_url, &origin.base_url());
        if opts.fastmcp_names {
            for setting in ["USER_POOL_ID", "AWS_REGION", "CLIENT_ID", "BASE_URL"] {
                if let Some(v) = vars.remove(&named(setting, false)) {
                    vars.insert(named(setting, true), v);
                }
            }
        }
        for (k, v) in &opts.vars {
            if v.is_empty() {
                vars.remove(k);
            } else {
                vars.insert(k.clone(), v.clone());
            }
        }
        let dir = log_dir()?.join(unique_name("worker"));
        std::fs::create_dir_all(&dir)?;
        let config = write_config(&dir, shim, &vars, opts.store, opts.fastmcp_names)?;
        let mut wrangler = spawn_wrangler("wrangler-mcpgate", &config, port, &dir.join("state"))?;
        idp.add_redirect_uri("mcpgate-web", &format!("{base_url}/auth/callback"))?;
        let probe = format!("{base_url}/.well-known/oauth-protected-resource/mcp");
        let ready = wait_serving(&mut wrangler, port, &probe).await;
        match ready {
            Ok(Ok(())) => Ok((wrangler, base_url, vars, dir)),
            Ok(Err(status)) => {
                // Said first in the log, maybe before the last 40 lines: named in the error.
                let log = wrangler.log();
                let taken = PORT_TAKEN.iter().find(|m| log.contains(*m));
                anyhow::bail!(
                    "wrangler exited with {status}{}; log {}:\n{}",
                    taken.map(|m| format!(" ({m})")).unwrap_or_default(),
                    wrangler.log_path().display(),
                    wrangler.log_tail(40)
                )
            }
            Err(e) => anyhow::bail!(
                "{e}; log {}:\n{}",
                wrangler.log_path().display(),
                wrangler.log_tail(40)
            ),
        }
    }

    /// `{base_url}/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url)
    }
}

/// Starts the Worker with `vars` only (no emulator needed) and returns the first answer's
/// status and body plus the wrangler log once the configuration error was logged.
pub async fn misconfigured(
    vars: &BTreeMap<String, String>,
) -> anyhow::Result<(u16, String, String)> {
    let shim = worker_bundle()?;
    let port = free_port()?;
    let dir = log_dir()?.join(unique_name("worker-bad"));
    std::fs::create_dir_all(&dir)?;
    let config = write_config(&dir, &shim, vars, false, false)?;
    let wrangler = spawn_wrangler("wrangler-bad-config", &config, port, &dir.join("state"))?;
    let client = crate::harness::http_client();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let listening = listening_line(port);
    let (status, body) = wait_until(WORKER_STARTUP, "the misconfigured Worker to answer", || {
        let ours = wrangler.log().contains(&listening);
        let client = client.clone();
        let url = url.clone();
        async move {
            if !ours {
                return None;
            }
            let r = client.get(&url).send().await.ok()?;
            let status = r.status().as_u16();
            Some((status, r.text().await.unwrap_or_default()))
        }
    })
    .await?;
    let log = wait_until(
        Duration::from_secs(10),
        "the configuration error in the log",
        || {
            let log = wrangler.log();
            async move { log.contains("refusing the configuration").then_some(log) }
        },
    )
    .await
    .unwrap_or_else(|_| wrangler.log());
    Ok((status, body, log))
}
