//! A demo MCP server (the official Rust SDK `rmcp`, streamable HTTP at `/mcp`, stateless),
//! used as the upstream behind mcpgate in end-to-end tests.
//!
//! Tools:
//! * `whoami` — the `x-mcpgate-*` and `Cookie` request headers it received and whether an
//!   `Authorization` header reached it (`{"headers": {...}, "authorization_present": bool}`);
//! * `echo {text}` — returns `text`;
//! * `count {n, interval_ms?}` — sends `n` progress notifications `interval_ms` (default 100)
//!   apart, then answers `counted n`; the answer is an SSE stream whose events arrive over time;
//! * `upstream_userinfo` — calls the IdP's `userInfo` as the user with the IdP token the proxy
//!   forwarded; `verify_assertion {tamper?}` — verifies the proxy's identity assertion against
//!   its JWKS (see [`crate::demo_identity`]; where they are: [`DemoMcpHandle::configure`]).
//!
//! Stateless mode with JSON responses: each POST is served on its own (no `Mcp-Session-Id`), simple
//! tool calls answer `application/json`, and a call that emits notifications answers
//! `text/event-stream`. Any `Host` header is accepted (it sits behind a proxy).
//!
//! Every request it receives is logged ([`DemoMcpHandle::requests`]: method, path, whether it
//! carried `x-mcpgate-sub`), so tests can assert what reached the protected upstream.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, NumberOrString, ProgressNotificationParam,
    ProgressToken, RequestMetaObject, ServerCapabilities, ServerConfig,
};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{tool, tool_handler, tool_router, ErrorData, Peer, RoleServer, ServerHandler};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use crate::origin::OriginRequest;
use crate::origin::OriginSettings;

/// The identity tools' settings, shared by every request's server instance.
type Settings = Arc<RwLock<OriginSettings>>;

/// Arguments of `echo`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// The text to return.
    pub text: String,
}

/// Arguments of `count`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CountArgs {
    /// How many progress notifications to send (at most 1000).
    pub n: u32,
    /// Milliseconds between notifications (default 100, at most 10000).
    #[serde(default)]
    pub interval_ms: Option<u64>,
}

/// Arguments of `verify_assertion`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct VerifyArgs {
    /// Change one character of the assertion first (it must then fail).
    #[serde(default)]
    pub tamper: bool,
}

/// The MCP server behind the demo endpoint.
#[derive(Debug, Clone)]
pub struct DemoMcpServer {
    tool_router: ToolRouter<Self>,
    settings: Settings,
}

impl Default for DemoMcpServer {
    fn default() -> Self {
        Self::new()
    }
}

impl DemoMcpServer {
    fn settings(&self) -> OriginSettings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[tool_router]
impl DemoMcpServer {
    pub fn new() -> Self {
        Self::with_settings(Settings::default())
    }

    fn with_settings(settings: Settings) -> Self {
        Self {
            tool_router: Self::tool_router(),
            settings,
        }
    }

    #[tool(
        description = "Call the identity provider's userInfo as the signed-in user, with the IdP token the proxy forwarded"
    )]
    async fn upstream_userinfo(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let s = self.settings();
        let token = crate::demo_identity::credential(&parts.headers, &s.upstream_token_header);
        Ok(CallToolResult::structured(
            crate::demo_identity::upstream_userinfo(&s, token).await,
        ))
    }

    #[tool(description = "Verify the identity assertion the proxy sent against the proxy's JWKS")]
    async fn verify_assertion(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
        Parameters(args): Parameters<VerifyArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let s = self.settings();
        let assertion = crate::demo_identity::credential(&parts.headers, &s.assertion_header);
        Ok(CallToolResult::structured(
            crate::demo_identity::verify_assertion(&s, assertion, args.tamper).await,
        ))
    }

    #[tool(
        description = "Report the x-mcpgate-* and Cookie request headers this server received and whether an Authorization header reached it"
    )]
    async fn whoami(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut headers: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for name in parts.headers.keys() {
            let lower = name.as_str().to_ascii_lowercase();
            if !lower.starts_with("x-mcpgate-") && lower != "cookie" {
                continue;
            }
            let values: Vec<String> = parts
                .headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            let value = if values.len() == 1 {
                json!(values[0])
            } else {
                json!(values)
            };
            headers.insert(lower, value);
        }
        let authorization_present = parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION);
        Ok(CallToolResult::structured(json!({
            "headers": headers,
            "authorization_present": authorization_present,
        })))
    }

    #[tool(description = "Return the given text")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.text
    }

    #[tool(
        description = "Send n progress notifications interval_ms apart (default 100), then answer"
    )]
    async fn count(
        &self,
        Parameters(args): Parameters<CountArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if args.n > 1000 {
            return Err(ErrorData::invalid_params("n must be at most 1000", None));
        }
        let interval = Duration::from_millis(args.interval_ms.unwrap_or(100).min(10_000));
        // Without a client-supplied progress token, still stream: use a fixed one.
        let token = meta
            .get_progress_token()
            .unwrap_or_else(|| ProgressToken(NumberOrString::String("count".into())));
        for i in 1..=args.n {
            if i > 1 {
                tokio::time::sleep(interval).await;
            }
            peer.notify_progress(
                ProgressNotificationParam::new(token.clone(), f64::from(i))
                    .with_total(f64::from(args.n))
                    .with_message(format!("tick {i}")),
            )
            .await
            .map_err(|e| ErrorData::internal_error(format!("notify: {e}"), None))?;
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(format!(
            "counted {}",
            args.n
        ))]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DemoMcpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mcpgate-demo-mcp",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions("Demo upstream for mcpgate end-to-end tests")
    }
}

/// The axum router serving the demo server at `/mcp` (plus `GET /healthz` → `ok`).
pub fn router() -> axum::Router {
    router_with(Settings::default())
}

fn router_with(settings: Settings) -> axum::Router {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts();
    let service: StreamableHttpService<DemoMcpServer, NeverSessionManager> =
        StreamableHttpService::new(
            move || Ok(DemoMcpServer::with_settings(settings.clone())),
            Arc::new(NeverSessionManager::default()),
            config,
        );
    axum::Router::new()
        .nest_service("/mcp", service)
        .route("/healthz", axum::routing::get(|| async { "ok" }))
}

/// At most this many requests are kept (a long-running demo server must not grow without end);
/// the count goes on.
const LOG_LIMIT: usize = 100_000;

/// The requests a demo server received (the first [`LOG_LIMIT`]) and how many in all.
#[derive(Debug, Default)]
struct RequestLog {
    kept: Vec<OriginRequest>,
    total: u64,
}

/// Entry point: `DemoMcp::start()`.
pub struct DemoMcp;

impl DemoMcp {
    /// Serve on 127.0.0.1 with a port chosen by the OS, inside the current tokio runtime.
    pub async fn start() -> anyhow::Result<DemoMcpHandle> {
        Self::start_on("127.0.0.1:0".parse()?).await
    }

    /// Serve on a given address (port 0: chosen by the OS).
    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<DemoMcpHandle> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(RequestLog::default()));
        let settings = Settings::default();
        let task = tokio::spawn(serve(listener, router_with(settings.clone()), log.clone()));
        Ok(DemoMcpHandle {
            addr,
            task,
            log,
            settings,
        })
    }
}

/// Accept loop owning its connections: aborting it (on drop of the handle) closes them all, so
/// a test can make the upstream disappear, open connections included.
async fn serve(listener: TcpListener, router: axum::Router, log: Arc<Mutex<RequestLog>>) {
    use tower::ServiceExt as _;
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok((stream, _)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let log = log.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            record(&log, &req);
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        conns.spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn record<B>(log: &Mutex<RequestLog>, req: &hyper::Request<B>) {
    let proxy_cookie = req
        .headers()
        .get_all(hyper::header::COOKIE)
        .iter()
        .any(|v| crate::origin::has_proxy_cookie(&String::from_utf8_lossy(v.as_bytes())));
    let entry = OriginRequest {
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned()),
        identified: req.headers().contains_key("x-mcpgate-sub"),
        proxy_cookie,
    };
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.total += 1;
    if log.kept.len() < LOG_LIMIT {
        log.kept.push(entry);
    }
}

/// A running demo server; dropping it stops the server and closes its connections.
#[derive(Debug)]
pub struct DemoMcpHandle {
    addr: SocketAddr,
    task: JoinHandle<()>,
    log: Arc<Mutex<RequestLog>>,
    settings: Settings,
}

impl Drop for DemoMcpHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DemoMcpHandle {
    /// `http://127.0.0.1:{port}`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// `http://127.0.0.1:{port}/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Every request received so far, in order (the first 100 000).
    pub fn requests(&self) -> Vec<OriginRequest> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .kept
            .clone()
    }
    /// Where the identity tools find the IdP and the proxy.
    pub fn configure(&self, settings: OriginSettings) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = settings;
    }

    /// How many requests it received in all.
    pub fn request_count(&self) -> u64 {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}
