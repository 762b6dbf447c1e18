//! A local AWS for the fleet-store tests: moto in server mode (DynamoDB, STS, IAM in one
//! process; installed by `scripts/ensure-aws-local.sh`), prepared by
//! `tests/python/aws_setup.py` (the table with its TTL attribute, an IAM user with the minimal
//! policy and an access key, a role for web identity), after which moto checks every call's
//! SigV4 signature and IAM policy. In front of it a TCP relay the test can switch off and on
//! ([`Relay`]): "the store is unreachable" without losing moto's in-memory state.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::harness::{
    free_port, http_client, retry_if_port_taken, target_dir, wait_until, ChildProcess,
};

/// Calls `aws_setup.py` makes before moto starts enforcing authentication.
pub const SETUP_CALLS: u32 = 7;

/// The access key and role `aws_setup.py` created.
#[derive(Debug, Clone)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub role_arn: String,
}

/// A running moto server.
pub struct Moto {
    pub process: ChildProcess,
    pub port: u16,
    pub keys: AwsKeys,
    pub table: String,
}

fn venv_bin(name: &str) -> anyhow::Result<PathBuf> {
    let bin = target_dir().join("aws-local/venv/bin").join(name);
    if bin.is_file() {
        Ok(bin)
    } else {
        bail!(
            "{} not found: run scripts/ensure-aws-local.sh (installs moto into target/aws-local)",
            bin.display()
        )
    }
}

impl Moto {
    /// One moto on a port chosen free, once it serves there as itself.
    async fn spawn(unauthenticated: u32) -> anyhow::Result<(ChildProcess, u16)> {
        let port = free_port()?;
        let mut cmd = Command::new(venv_bin("moto_server")?);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env(
                "INITIAL_NO_AUTH_ACTION_COUNT",
                (SETUP_CALLS + unauthenticated).to_string(),
            )
            .env("MOTO_ALLOW_NONEXISTENT_REGION", "true");
        let mut process = ChildProcess::spawn("moto", cmd)?;
        let endpoint = format!("http://127.0.0.1:{port}");
        // Until moto says it runs on the port, an answer there may come from another test
        // process's moto that took the port after it was picked free.
        let listening = format!("Running on {endpoint}");
        let api = format!("{endpoint}/moto-api/");
        let client = http_client();
        wait_until(Duration::from_secs(30), "moto to serve", || {
            let exited = process.try_exit_status();
            let ours = process.log().contains(&listening);
            let (client, api) = (client.clone(), api.clone());
            async move {
                if let Some(status) = exited {
                    return Some(Err(status));
                }
                if !ours {
                    return None;
                }
                let r = client.get(&api).send().await.ok()?;
                r.status().is_success().then_some(Ok(()))
            }
        })
        .await?
        .map_err(|status| anyhow::anyhow!("moto exited with {status}: {}", process.log_tail(20)))?;
        Ok((process, port))
    }

    /// Starts moto, creates table `table` and the credentials; moto then checks signatures
    /// and policies on every call but the next `unauthenticated` ones (an STS web-identity
    /// exchange carries no signature, and moto needs one of its free calls for it).
    pub async fn start(table: &str, unauthenticated: u32) -> anyhow::Result<Self> {
        // A port chosen free may be taken before moto binds it: another port.
        let (process, port) = retry_if_port_taken(|| Self::spawn(unauthenticated)).await?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let script = crate::harness::repo_root().join("tests/python/aws_setup.py");
        let out = tokio::process::Command::new(venv_bin("python")?)
            .arg(&script)
            .arg(&endpoint)
            .arg(table)
            .output()
            .await?;
        if !out.status.success() {
            bail!(
                "aws_setup.py failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("aws_setup.py output")?;
        let text = |k: &str| v[k].as_str().map(str::to_owned).context(k.to_owned());
        Ok(Self {
            process,
            port,
            keys: AwsKeys {
                access_key_id: text("access_key_id")?,
                secret_access_key: text("secret_access_key")?,
                role_arn: text("role_arn")?,
            },
            table: table.to_owned(),
        })
    }
}

/// A TCP relay on a fixed local port to `upstream`, switched off (connections refused,
/// open ones cut) and on again at will.
pub struct Relay {
    pub port: u16,
    upstream: SocketAddr,
    task: Mutex<Option<JoinHandle<()>>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    pub async fn start(upstream_port: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let relay = Self {
            port,
            upstream: SocketAddr::from(([127, 0, 0, 1], upstream_port)),
            task: Mutex::new(None),
            conns: Arc::default(),
        };
        relay.serve(listener).await;
        Ok(relay)
    }

    async fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let conns = self.conns.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                conns.lock().await.push(conn);
            }
        });
        *self.task.lock().await = Some(task);
    }

    /// Stops listening and cuts every relayed connection: the server is unreachable.
    pub async fn down(&self) {
        if let Some(t) = self.task.lock().await.take() {
            t.abort();
            let _ = t.await;
        }
        for c in self.conns.lock().await.drain(..) {
            c.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await?;
        self.serve(listener).await;
        Ok(())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(mut t) = self.task.try_lock() {
            if let Some(t) = t.take() {
                t.abort();
            }
        }
    }
}

/// A stand-in for the EKS Pod Identity agent (the container credentials endpoint at
/// `http://169.254.170.23/v1/credentials`): answers `GET /v1/credentials` with `keys`, as
/// the agent's JSON, when the `Authorization` header is the pod's token; 401 otherwise.
/// Every request's `Authorization` is recorded.
pub struct PodIdentityAgent {
    pub port: u16,
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl PodIdentityAgent {
    pub async fn start(keys: AwsKeys, token: &str) -> anyhow::Result<Self> {
        use axum::http::{HeaderMap, StatusCode};
        use axum::response::IntoResponse;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let (token, record) = (token.to_owned(), seen.clone());
        let handler = move |headers: HeaderMap| {
            let (token, record, keys) = (token.clone(), record.clone(), keys.clone());
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                record
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(auth.clone());
                if auth != token {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                axum::Json(serde_json::json!({
                    "AccessKeyId": keys.access_key_id,
                    "SecretAccessKey": keys.secret_access_key,
                    "AccountId": "123456789012",
                    "Expiration": "2099-01-01T00:00:00Z",
                }))
                .into_response()
            }
        };
        let router = axum::Router::new().route("/v1/credentials", axum::routing::get(handler));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { port, seen, task })
    }

    /// The `Authorization` headers received so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for PodIdentityAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}
