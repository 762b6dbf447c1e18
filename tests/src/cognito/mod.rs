//! An AWS Cognito user-pool emulator: the hosted-UI OAuth endpoints (`/oauth2/authorize`,
//! `/oauth2/token`, `/oauth2/revoke`, `/oauth2/userInfo`), OIDC discovery and JWKS under
//! `/{pool_id}/.well-known/`, Cognito-shaped RS256 tokens, and test controls under
//! `/__control/` (fault injection, key rotation, minting, request counters).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mcpgate_e2e::cognito::{CognitoConfig, CognitoEmulator};
//! let idp = CognitoEmulator::start(CognitoConfig::default()).await?;
//! println!("issuer {}", idp.issuer());
//! # Ok(()) }
//! ```

pub mod config;
pub mod control;
mod handlers;
mod login;
pub mod state;
pub mod tokens;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt as _;

pub use config::{ClientConfig, CognitoConfig, ResourceServerConfig, UserConfig};
pub use control::{
    AddRedirectUriRequest, IssueTokensRequest, KeysInfo, MintRequest, RotateKeysRequest,
    SetModeRequest,
};
pub use login::{hosted_ui_login, pkce_pair, PkcePair};
pub use state::{EndpointGroup, FaultMode, KeyRing, Stats};
pub use tokens::{TokenResponse, TokenTemplate};

use state::{Shared, SharedState};

/// Entry point: `CognitoEmulator::start(config)`.
pub struct CognitoEmulator;

impl CognitoEmulator {
    /// Bind 127.0.0.1 on a port chosen by the OS and serve inside the current tokio runtime.
    pub async fn start(config: CognitoConfig) -> anyhow::Result<EmulatorHandle> {
        Self::start_on("127.0.0.1:0".parse()?, config).await
    }

    /// Bind a given address (port 0: chosen by the OS).
    pub async fn start_on(
        addr: SocketAddr,
        config: CognitoConfig,
    ) -> anyhow::Result<EmulatorHandle> {
        config.validate()?;
        let keys = KeyRing::from_pems(&config.signing_keys_pem()?)?;
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let base_url = format!("http://{local}");
        let shared = Shared::new(base_url, config, keys);
        let router = router(shared.clone());
        let task = tokio::spawn(serve(listener, router, shared.clone()));
        Ok(EmulatorHandle {
            shared,
            addr: local,
            task,
        })
    }
}

fn router(shared: SharedState) -> Router {
    Router::new()
        .route(
            "/{pool_id}/.well-known/openid-configuration",
            get(handlers::openid_configuration),
        )
        .route("/{pool_id}/.well-known/jwks.json", get(handlers::jwks))
        .route("/oauth2/authorize", get(handlers::authorize))
        .route("/login", post(handlers::login))
        .route("/error", get(handlers::error_page))
        .route("/oauth2/token", post(handlers::token))
        .route("/oauth2/revoke", post(handlers::revoke))
        .route(
            "/oauth2/userInfo",
            get(handlers::userinfo).post(handlers::userinfo),
        )
        .route("/__control/mode", post(control::http_set_mode))
        .route("/__control/reset", post(control::http_reset))
        .route("/__control/rotate-keys", post(control::http_rotate))
        .route("/__control/keys", get(control::http_keys))
        .route("/__control/stats", get(control::http_stats))
        .route("/__control/mint", post(control::http_mint))
        .route(
            "/__control/redirect-uris",
            post(control::http_add_redirect_uri),
        )
        .route("/__control/tokens", post(control::http_issue_tokens))
        .with_state(shared)
}

/// Map a path to its counter name and fault group (`None`: control endpoints, never faulted).
fn classify(path: &str, pool_id: &str) -> Option<(&'static str, EndpointGroup)> {
    if path.starts_with("/__control/") {
        return None;
    }
    let well_known = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(pool_id))
        .and_then(|p| p.strip_prefix("/.well-known/"));
    Some(match (well_known, path) {
        (Some("openid-configuration"), _) => ("discovery", EndpointGroup::Discovery),
        (Some("jwks.json"), _) => ("jwks", EndpointGroup::Jwks),
        (_, "/oauth2/authorize") => ("authorize", EndpointGroup::Authorize),
        (_, "/login") => ("login", EndpointGroup::Authorize),
        (_, "/error") => ("error", EndpointGroup::Authorize),
        (_, "/oauth2/token") => ("token", EndpointGroup::Token),
        (_, "/oauth2/revoke") => ("revoke", EndpointGroup::Token),
        (_, "/oauth2/userInfo") => ("userinfo", EndpointGroup::Userinfo),
        _ => ("other", EndpointGroup::All),
    })
}

/// Error returned to hyper to drop a connection without answering.
#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for Dropped {}

/// Make the kernel send RST instead of FIN when `fd` is closed.
fn set_linger_zero(fd: std::os::fd::RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `fd` is the live socket of the connection being served (the connection task owns
    // it and is still running while its service is called); `linger` is a valid, correctly
    // sized option value for SO_LINGER.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

async fn serve(listener: TcpListener, router: Router, shared: SharedState) {
    // Connection tasks live in this set: aborting the server task aborts them all.
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let fd = stream.as_raw_fd();
        let router = router.clone();
        let shared = shared.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let router = router.clone();
            let shared = shared.clone();
            async move {
                let pool_id = shared.lock().config.pool_id.clone();
                if let Some((endpoint, group)) = classify(req.uri().path(), &pool_id) {
                    shared.count(endpoint);
                    match shared.mode_for(Some(group)) {
                        FaultMode::Normal => {}
                        FaultMode::Down => return Err(Dropped),
                        FaultMode::Reset => {
                            set_linger_zero(fd);
                            return Err(Dropped);
                        }
                        FaultMode::Slow { delay_ms } => {
                            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                        }
                        FaultMode::Error5xx { status } => {
                            let status = axum::http::StatusCode::from_u16(status)
                                .unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                            return Ok(handlers::json_response(
                                status,
                                serde_json::json!({"error": "server_error"}),
                            ));
                        }
                    }
                }
                let resp = router
                    .oneshot(req.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|e: Infallible| match e {});
                Ok::<_, Dropped>(resp)
            }
        });
        conns.spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// A running emulator. Dropping it stops the server and closes its connections.
pub struct EmulatorHandle {
    shared: SharedState,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("base_url", &self.shared.base_url)
            .finish()
    }
}

impl EmulatorHandle {
    /// `http://127.0.0.1:{port}` (the hosted-UI "domain").
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }
    /// `{base_url}/{pool_id}` — the `iss` of every token.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }
    pub fn jwks_uri(&self) -> String {
        format!("{}/.well-known/jwks.json", self.shared.issuer)
    }
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.shared.issuer)
    }
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/oauth2/authorize", self.shared.base_url)
    }
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth2/token", self.shared.base_url)
    }
    pub fn revocation_endpoint(&self) -> String {
        format!("{}/oauth2/revoke", self.shared.base_url)
    }
    pub fn userinfo_endpoint(&self) -> String {
        format!("{}/oauth2/userInfo", self.shared.base_url)
    }
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn pool_id(&self) -> String {
        self.shared.lock().config.pool_id.clone()
    }
    /// The current configuration (including redirect URIs added at run time).
    pub fn config(&self) -> CognitoConfig {
        self.shared.lock().config.clone()
    }

    /// Switch signing to the next key; the new key is published, the old ones are removed from
    /// the JWKS when `retire_old`. Returns the key state afterwards.
    pub fn rotate_keys(&self, retire_old: bool) -> KeysInfo {
        let mut inner = self.shared.lock();
        inner.keys.rotate(retire_old);
        control::keys_info(&inner)
    }
    pub fn keys(&self) -> KeysInfo {
        control::keys_info(&self.shared.lock())
    }
    /// The JWKS document currently served.
    pub fn jwks(&self) -> serde_json::Value {
        self.shared.lock().keys.jwks()
    }
    /// Set the fault mode of an endpoint group (a specific group beats `All`).
    pub fn set_mode(&self, group: EndpointGroup, mode: FaultMode) {
        self.shared.lock().modes.insert(group, mode);
    }
    /// All groups back to normal and counters to zero.
    pub fn reset(&self) {
        let mut inner = self.shared.lock();
        inner.modes.clear();
        inner.stats = Stats::default();
    }
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }
    /// Mint a token (see [`MintRequest`]).
    pub fn mint(&self, req: &MintRequest) -> anyhow::Result<String> {
        control::mint(&self.shared.lock(), &self.shared.issuer, req).map_err(anyhow::Error::msg)
    }
    /// Register one more redirect URI for a client (exact match, like Cognito's callback URLs).
    pub fn add_redirect_uri(&self, client_id: &str, redirect_uri: &str) -> anyhow::Result<()> {
        control::add_redirect_uri(
            &mut self.shared.lock(),
            &AddRedirectUriRequest {
                client_id: client_id.into(),
                redirect_uri: redirect_uri.into(),
            },
        )
        .map_err(anyhow::Error::msg)
    }
    /// Tokens as if `username` had signed in at `client_id` (the refresh token is live).
    pub fn issue_tokens(
        &self,
        client_id: &str,
        username: &str,
        scope: Option<&str>,
    ) -> anyhow::Result<TokenResponse> {
        control::issue_tokens(
            &mut self.shared.lock(),
            &self.shared.issuer,
            &IssueTokensRequest {
                client_id: client_id.into(),
                username: username.into(),
                scope: scope.map(str::to_owned),
            },
        )
        .map_err(anyhow::Error::msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_paths() {
        let p = "us-east-1_X";
        assert_eq!(
            classify("/us-east-1_X/.well-known/jwks.json", p),
            Some(("jwks", EndpointGroup::Jwks))
        );
        assert_eq!(
            classify("/us-east-1_X/.well-known/openid-configuration", p),
            Some(("discovery", EndpointGroup::Discovery))
        );
        assert_eq!(
            classify("/oauth2/token", p),
            Some(("token", EndpointGroup::Token))
        );
        assert_eq!(
            classify("/other/.well-known/jwks.json", p),
            Some(("other", EndpointGroup::All))
        );
        assert_eq!(classify("/__control/stats", p), None);
    }
}
