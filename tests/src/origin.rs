//! The origin MCP server behind the proxy in end-to-end tests, one of two with the same tools:
//!
//! * [`OriginKind::Demo`] — the rmcp demo server (`demo_mcp`, axum, in this process), which
//!   routes on the raw path;
//! * [`OriginKind::Python`] — an MCP server written with the official Python SDK
//!   (`tests/python/mcp_origin.py`: `MCPServer` on uvicorn, a child process), which routes on
//!   the percent-decoded path like most Python servers, answers with SSE, and is installed
//!   into `.venv` by `scripts/ensure-python-origin.sh`.
//!
//! Both record every request they receive ([`Origin::requests`]): what reached the origin,
//! and whether it carried the verified identity, is what a test of the guard asserts on.
//!
//! Both also have two tools that use what the proxy forwards besides the identity headers
//! (issue 16): `upstream_userinfo` calls the IdP's `userInfo` as the user with the IdP token
//! the proxy forwarded, and `verify_assertion` verifies the proxy's identity assertion against
//! its JWKS. What they need (the emulator's `userInfo` URL, the proxy's JWKS, issuer and
//! audience, the header names) is given by the stack once the proxy's URL is known
//! ([`Origin::configure`]).

use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::demo_mcp::{DemoMcp, DemoMcpHandle};
use crate::harness::{free_port, repo_root, retry_if_port_taken, wait_until, ChildProcess};

/// Which origin a stack starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OriginKind {
    #[default]
    Demo,
    Python,
}

/// One request as the origin saw it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct OriginRequest {
    pub method: String,
    /// Path and query: as received by the demo server, as routed (percent-decoded) by the
    /// Python origin.
    pub path: String,
    /// Whether it carried `x-mcpgate-sub` (an identity the proxy set after verifying a token).
    pub identified: bool,
    /// Whether a cookie of the proxy's own (`mcpgate-*`, `__Host-mcpgate-*`) reached it.
    #[serde(default)]
    pub proxy_cookie: bool,
}

/// What the origin's identity tools need to know (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginSettings {
    /// The IdP's `userInfo` endpoint (the Cognito emulator's).
    pub userinfo_url: String,
    /// The proxy's JWKS, issuer and the assertion's expected audience.
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    /// Where the proxy puts the IdP's token and the assertion.
    pub upstream_token_header: String,
    pub assertion_header: String,
}

impl OriginSettings {
    /// The defaults for a proxy at `base_url` (MCP at `/mcp`) and the IdP's `userInfo`.
    pub fn for_proxy(base_url: &str, userinfo_url: &str) -> Self {
        Self {
            userinfo_url: userinfo_url.to_owned(),
            jwks_url: format!("{base_url}/.well-known/jwks.json"),
            issuer: base_url.to_owned(),
            audience: format!("{base_url}/mcp"),
            upstream_token_header: "x-mcpgate-upstream-token".into(),
            assertion_header: "x-mcpgate-assertion".into(),
        }
    }
}

/// Whether a `Cookie` header value holds one of the proxy's own cookies (however the
/// platform joined the fields: `; ` or `, `).
pub fn has_proxy_cookie(value: &str) -> bool {
    value.split([';', ',']).any(|pair| {
        let name = pair.split('=').next().unwrap_or("").trim();
        name.starts_with("mcpgate-") || name.starts_with("__Host-mcpgate-")
    })
}

/// A running origin; dropping it stops the server.
pub enum Origin {
    Demo(DemoMcpHandle),
    Python(PythonOrigin),
}

impl Origin {
    pub async fn start(kind: OriginKind) -> anyhow::Result<Self> {
        Ok(match kind {
            OriginKind::Demo => Self::Demo(DemoMcp::start().await?),
            OriginKind::Python => Self::Python(PythonOrigin::start().await?),
        })
    }

    pub fn kind(&self) -> OriginKind {
        match self {
            Self::Demo(_) => OriginKind::Demo,
            Self::Python(_) => OriginKind::Python,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Self::Demo(d) => d.port(),
            Self::Python(p) => p.port,
        }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// Every request the origin received so far, in order.
    pub async fn requests(&self) -> anyhow::Result<Vec<OriginRequest>> {
        match self {
            Self::Demo(d) => Ok(d.requests()),
            Self::Python(p) => p.requests().await,
        }
    }

    /// Tells the origin's identity tools where the IdP and the proxy are.
    pub async fn configure(&self, settings: &OriginSettings) -> anyhow::Result<()> {
        match self {
            Self::Demo(d) => {
                d.configure(settings.clone());
                Ok(())
            }
            Self::Python(p) => {
                let url = format!("http://127.0.0.1:{}/_origin/settings", p.port);
                crate::harness::http_client()
                    .post(url)
                    .json(settings)
                    .send()
                    .await?
                    .error_for_status()?;
                Ok(())
            }
        }
    }

    /// The requests that reached the origin without a verified identity.
    pub async fn unauthenticated(&self) -> anyhow::Result<Vec<OriginRequest>> {
        Ok(self
            .requests()
            .await?
            .into_iter()
            .filter(|r| !r.identified)
            .collect())
    }
}

/// The Python SDK's server as a child process on a free port.
pub struct PythonOrigin {
    pub child: ChildProcess,
    pub port: u16,
}

/// Startup deadline of the Python origin (the interpreter imports pydantic and the SDK).
pub const PYTHON_STARTUP: Duration = Duration::from_secs(60);

impl PythonOrigin {
    pub async fn start() -> anyhow::Result<Self> {
        let python = repo_root().join(".venv").join("bin").join("python");
        let script = repo_root()
            .join("tests")
            .join("python")
            .join("mcp_origin.py");
        if !python.is_file() {
            anyhow::bail!(
                "{} not found: run scripts/ensure-python-origin.sh",
                python.display()
            );
        }
        // A port chosen free may be taken before the server binds it: another port.
        let (child, port) = retry_if_port_taken(|| Self::spawn(&python, &script)).await?;
        Ok(Self { child, port })
    }

    /// One start on a port chosen free, once the server answers as itself.
    async fn spawn(
        python: &std::path::Path,
        script: &std::path::Path,
    ) -> anyhow::Result<(ChildProcess, u16)> {
        let port = free_port()?;
        let mut cmd = Command::new(python);
        cmd.arg(script).args(["--port", &port.to_string()]);
        let mut child = ChildProcess::spawn("python-origin", cmd)?;
        // Answered with the process id: a server of another test process that took the port
        // after it was picked free is not taken for this one.
        let ready = format!("http://127.0.0.1:{port}/_origin/ready");
        let ours = format!("ready {}", child.pid());
        let answered = wait_until(PYTHON_STARTUP, "the Python MCP origin to answer", || {
            let exited = child.try_exit_status();
            let (ready, ours) = (ready.clone(), ours.clone());
            async move {
                if let Some(status) = exited {
                    return Some(Err(status));
                }
                let r = crate::harness::http_client()
                    .get(&ready)
                    .send()
                    .await
                    .ok()?;
                (r.text().await.ok()? == ours).then_some(Ok(()))
            }
        })
        .await;
        match answered {
            Ok(Ok(())) => Ok((child, port)),
            Ok(Err(status)) => anyhow::bail!(
                "the Python MCP origin exited with {status}; is the SDK installed \
                 (scripts/ensure-python-origin.sh)? log {}:\n{}",
                child.log_path().display(),
                child.log_tail(30)
            ),
            Err(e) => anyhow::bail!(
                "the Python MCP origin did not start ({e}); log {}:\n{}",
                child.log_path().display(),
                child.log_tail(30)
            ),
        }
    }

    async fn requests(&self) -> anyhow::Result<Vec<OriginRequest>> {
        let url = format!("http://127.0.0.1:{}/_origin/requests", self.port);
        Ok(crate::harness::http_client()
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}
