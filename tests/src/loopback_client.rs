//! The MCP client's side of a sign-in in the browser: it registers at the proxy (RFC 7591) with
//! a loopback redirect URI served by a tiny app of the test, builds the authorization request
//! (PKCE S256, `state`, `resource`) and receives the browser at its redirect URI.

use std::collections::BTreeMap;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::cognito::pkce_pair;
use crate::harness::{http_client, unique_name};
use crate::scenarios::{Host, DEADLINE};

/// The client's name, as it registers.
pub const CLIENT_NAME: &str = "Browser Test Client";

/// The client's loopback redirect URI: a tiny web app of the test on a free port that records
/// every query it receives and shows a page, so the browser really lands somewhere.
pub struct LoopbackApp {
    pub redirect_uri: String,
    received: mpsc::UnboundedReceiver<BTreeMap<String, String>>,
    task: tokio::task::JoinHandle<()>,
}

/// What the loopback app shows once it has the answer.
pub const APP_PAGE_TEXT: &str = "The test client received the answer.";

impl LoopbackApp {
    pub async fn start() -> anyhow::Result<Self> {
        use axum::extract::RawQuery;
        use axum::response::Html;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let redirect_uri = format!("http://{}/cb", listener.local_addr()?);
        let (tx, received) = mpsc::unbounded_channel();
        let router = axum::Router::new().route(
            "/cb",
            axum::routing::get(move |RawQuery(q): RawQuery| {
                let q: BTreeMap<String, String> =
                    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                        .into_owned()
                        .collect();
                let _ = tx.send(q);
                async {
                    Html(format!(
                        "<!doctype html><html lang=\"en\"><head><title>Test client</title>\
                         <link rel=\"icon\" href=\"data:,\"></head><body><p>{APP_PAGE_TEXT}</p>\
                         </body></html>"
                    ))
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            redirect_uri,
            received,
            task,
        })
    }

    /// The query of the next request the browser made to the redirect URI.
    pub async fn answer(&mut self) -> anyhow::Result<BTreeMap<String, String>> {
        tokio::time::timeout(DEADLINE, self.received.recv())
            .await
            .context("timed out waiting for the browser at the redirect URI")?
            .context("the loopback app stopped")
    }

    /// Nothing more arrived at the redirect URI so far.
    pub fn nothing_more(&mut self) -> bool {
        self.received.try_recv().is_err()
    }
}

impl Drop for LoopbackApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client registered at the proxy (RFC 7591) with the loopback app's redirect URI.
pub async fn register(h: &impl Host, redirect_uri: &str) -> anyhow::Result<String> {
    crate::journey::register_client(&http_client(), h.base_url(), redirect_uri, CLIENT_NAME).await
}

/// One authorization as the client starts it: its URL, `state` and PKCE verifier.
pub struct Request {
    pub url: String,
    pub state: String,
    pub verifier: String,
}

/// `/authorize?…` with PKCE S256, `state`, `scope` and `resource`, as an MCP client builds it.
pub fn authorization(h: &impl Host, client_id: &str, redirect_uri: &str) -> Request {
    let pkce = pkce_pair();
    let state = unique_name("state");
    let mcp = h.mcp_url();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", &state),
            ("scope", "openid email"),
            ("resource", &mcp),
        ])
        .finish();
    Request {
        url: format!("{}/authorize?{query}", h.base_url()),
        state,
        verifier: pkce.verifier,
    }
}
