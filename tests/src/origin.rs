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

use std::process::Command;
use std::time::Duration;

use serde::Deserialize;

use crate::demo_mcp::{DemoMcp, DemoMcpHandle};
use crate::harness::{free_port, repo_root, wait_for_http_status, ChildProcess};

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
        let port = free_port()?;
        let mut cmd = Command::new(&python);
        cmd.arg(&script).args(["--port", &port.to_string()]);
        let mut child = ChildProcess::spawn("python-origin", cmd)?;
        let ready = format!("http://127.0.0.1:{port}/_origin/ready");
        if let Err(e) = wait_for_http_status(&ready, 200, PYTHON_STARTUP).await {
            let exited = child.try_exit_status();
            anyhow::bail!(
                "the Python MCP origin did not start ({e}; exited: {exited:?}); is the SDK \
                 installed (scripts/ensure-python-origin.sh)? log {}:\n{}",
                child.log_path().display(),
                child.log_tail(30)
            );
        }
        Ok(Self { child, port })
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
