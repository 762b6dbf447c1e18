//! A small web server standing in for the hosts of real Client ID Metadata Documents
//! (`claude.ai`, `chatgpt.com`, `vscode.dev`, `goose-docs.ai`) and their key sets: it serves
//! JSON at the same paths, on 127.0.0.1 with an OS-chosen port, reached as
//! `http://localhost:{port}` (a host name other than the proxy's own `127.0.0.1`, so the
//! proxy's "not from my own host" rule does not apply). The proxy must run with
//! `cimd_allow_private` to fetch from it. Every request is counted per path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

#[derive(Default)]
struct Inner {
    documents: BTreeMap<String, Value>,
    hits: BTreeMap<String, usize>,
}

type Shared = Arc<Mutex<Inner>>;

/// The running server; dropping it stops it.
pub struct CimdServer {
    port: u16,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

async fn serve(State(state): State<Shared>, Path(path): Path<String>) -> Response {
    let path = format!("/{path}");
    let mut inner = state.lock().unwrap_or_else(|e| e.into_inner());
    *inner.hits.entry(path.clone()).or_default() += 1;
    match inner.documents.get(&path) {
        Some(doc) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "max-age=300"),
            ],
            doc.to_string(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

impl CimdServer {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state: Shared = Arc::default();
        let router = axum::Router::new()
            .route("/{*path}", axum::routing::get(serve))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { port, state, task })
    }

    /// `http://localhost:{port}{path}`: the URL a document at `path` has.
    pub fn url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.port)
    }

    /// Serves `doc` at `path` from now on.
    pub fn put(&self, path: &str, doc: Value) {
        let mut inner = self.state.lock().unwrap_or_else(|e| e.into_inner());
        inner.documents.insert(path.to_owned(), doc);
    }

    /// How many times `path` was fetched.
    pub fn hits(&self, path: &str) -> usize {
        let inner = self.state.lock().unwrap_or_else(|e| e.into_inner());
        inner.hits.get(path).copied().unwrap_or(0)
    }
}

impl Drop for CimdServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
