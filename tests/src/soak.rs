//! Soak: complete OAuth flows one after the other through a proxy, host-generic — register →
//! authorize → consent → sign-in at the IdP → callback → token → refresh → MCP call — with
//! every request timed. A run passes with no failed flow, no request slower than
//! [`REQUEST_BOUND`], and an MCP server that received exactly one identified MCP call per flow
//! and nothing else.
//!
//! Envoy: `tests/tests/soak_envoy.rs` (1000 flows, ignored; `scripts/soak.sh` runs it); the
//! Worker: `tests/tests/soak_worker.rs` (100 flows).

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::cognito::{hosted_ui_login, pkce_pair};
use crate::harness::http_client;
use crate::journey::{form_value, location, query, Jar, REDIRECT_URI};
use crate::scenarios::{assert_origin_saw_only_mcp, Host};
use crate::slow_body::authorize_params;

/// No request of a flow may take longer.
pub const REQUEST_BOUND: Duration = Duration::from_secs(1);

/// How many flows a soak runs: `MCPGATE_SOAK_FLOWS`, else `default`.
pub fn flows_from_env(default: usize) -> usize {
    std::env::var("MCPGATE_SOAK_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The outcome of a soak.
#[derive(Debug, Default)]
pub struct Report {
    pub flows: usize,
    /// `flow n, step: what went wrong`.
    pub failures: Vec<String>,
    /// Every timed request: step name and duration.
    pub requests: Vec<(&'static str, Duration)>,
    pub elapsed: Duration,
}

impl Report {
    fn sorted(&self) -> Vec<Duration> {
        let mut d: Vec<Duration> = self.requests.iter().map(|(_, d)| *d).collect();
        d.sort();
        d
    }

    /// The slowest request and its step.
    pub fn max(&self) -> (&'static str, Duration) {
        self.requests
            .iter()
            .copied()
            .max_by_key(|(_, d)| *d)
            .unwrap_or(("none", Duration::ZERO))
    }

    /// The 99th percentile of request durations.
    pub fn p99(&self) -> Duration {
        let d = self.sorted();
        if d.is_empty() {
            return Duration::ZERO;
        }
        let i = ((d.len() as f64) * 0.99).ceil() as usize;
        d[i.saturating_sub(1).min(d.len() - 1)]
    }

    pub fn median(&self) -> Duration {
        let d = self.sorted();
        d.get(d.len() / 2).copied().unwrap_or_default()
    }

    /// Requests slower than [`REQUEST_BOUND`].
    pub fn slow(&self) -> Vec<(&'static str, Duration)> {
        self.requests
            .iter()
            .copied()
            .filter(|(_, d)| *d > REQUEST_BOUND)
            .collect()
    }

    /// Asserts the soak passed: no failure, nothing slower than [`REQUEST_BOUND`].
    pub fn assert_passed(&self) {
        assert!(
            self.failures.is_empty(),
            "{self}\nfailures:\n{}",
            self.failures.join("\n")
        );
        let slow = self.slow();
        assert!(slow.is_empty(), "{self}\nslower than 1 s: {slow:?}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (step, max) = self.max();
        write!(
            f,
            "soak: {} flows, {} failed, {} requests in {:.1} s; median {:.1} ms, p99 {:.1} ms, \
             max {:.1} ms ({step})",
            self.flows,
            self.failures.len(),
            self.requests.len(),
            self.elapsed.as_secs_f64(),
            self.median().as_secs_f64() * 1e3,
            self.p99().as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
        )
    }
}

/// One flow's browser, client and clock.
struct Flow<'r> {
    http: reqwest::Client,
    base: String,
    jar: Jar,
    report: &'r mut Report,
}

impl Flow<'_> {
    /// Sends `req`, timing it as `step`.
    async fn timed(
        &mut self,
        step: &'static str,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let t0 = Instant::now();
        let resp = req.send().await.with_context(|| step.to_owned())?;
        self.report.requests.push((step, t0.elapsed()));
        Ok(resp)
    }

    async fn expect(
        &mut self,
        step: &'static str,
        req: reqwest::RequestBuilder,
        status: u16,
    ) -> anyhow::Result<reqwest::Response> {
        let resp = self.timed(step, req).await?;
        if resp.status() != status {
            let got = resp.status();
            let text: String = resp
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            bail!("{step}: answered {got}: {text}");
        }
        self.jar.take(&resp);
        Ok(resp)
    }

    async fn json(
        &mut self,
        step: &'static str,
        req: reqwest::RequestBuilder,
        status: u16,
    ) -> anyhow::Result<Value> {
        let resp = self.expect(step, req, status).await?;
        resp.json()
            .await
            .with_context(|| format!("{step}: not JSON"))
    }

    /// The whole flow for `user`.
    async fn run(&mut self, user: &str, password: &str) -> anyhow::Result<()> {
        let base = self.base.clone();
        let reg = self
            .json(
                "register",
                self.http.post(format!("{base}/register")).json(&json!({
                    "redirect_uris": [REDIRECT_URI], "client_name": "soak client",
                    "token_endpoint_auth_method": "none"})),
                201,
            )
            .await?;
        let client_id = reg["client_id"].as_str().context("client_id")?.to_owned();
        let resource = format!("{base}/mcp");
        let pkce = pkce_pair();
        let params = authorize_params(&client_id, &resource, &pkce.challenge);
        let page = self
            .expect(
                "authorize",
                self.http.get(format!("{base}/authorize")).query(&params),
                200,
            )
            .await?
            .text()
            .await?;
        let consent = self
            .expect(
                "consent",
                self.http
                    .post(format!("{base}/consent"))
                    .header("cookie", self.jar.header())
                    .form(&[
                        ("txn", form_value(&page, "txn")?),
                        ("csrf", form_value(&page, "csrf")?),
                        ("action", "approve".into()),
                    ]),
                302,
            )
            .await?;
        let idp_url = location(&consent)?;
        let t0 = Instant::now();
        let callback = hosted_ui_login(&self.http, &idp_url, user, password)
            .await
            .context("sign-in at the IdP")?;
        self.report
            .requests
            .push(("sign-in at the IdP", t0.elapsed()));
        let back = self
            .expect(
                "callback",
                self.http
                    .get(callback.as_str())
                    .header("cookie", self.jar.header()),
                302,
            )
            .await?;
        let redirect = location(&back)?;
        let code = query(&redirect)?
            .get("code")
            .cloned()
            .with_context(|| format!("callback: no code in {redirect}"))?;
        let tokens = self
            .json(
                "token",
                self.http.post(format!("{base}/token")).form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", &client_id),
                    ("code_verifier", &pkce.verifier),
                    ("resource", &resource),
                ]),
                200,
            )
            .await?;
        let refresh = tokens["refresh_token"]
            .as_str()
            .context("token: no refresh_token")?;
        let refreshed = self
            .json(
                "refresh",
                self.http.post(format!("{base}/token")).form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh),
                    ("client_id", &client_id),
                ]),
                200,
            )
            .await?;
        let access = refreshed["access_token"]
            .as_str()
            .context("refresh: no access_token")?;
        let answer = self
            .json(
                "MCP tools/call",
                self.http
                    .post(format!("{base}/mcp"))
                    .bearer_auth(access)
                    .header("accept", "application/json, text/event-stream")
                    .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                  "params": {"name": "whoami", "arguments": {}}})),
                200,
            )
            .await?;
        let seen = &answer["result"]["structuredContent"]["headers"]["x-mcpgate-username"];
        if seen != user {
            bail!("MCP tools/call: the MCP server saw user {seen}, not {user}: {answer}");
        }
        Ok(())
    }
}

/// Runs `flows` complete flows one after the other (alice and bob in turn) and returns the
/// report, after checking what the MCP server received: exactly one identified MCP call per
/// successful flow, nothing else.
pub async fn run(h: &impl Host, flows: usize) -> Report {
    let mut report = Report {
        flows,
        ..Report::default()
    };
    let origin_before = h.origin_requests().await.len();
    let started = Instant::now();
    let mut succeeded = 0;
    for i in 0..flows {
        let (user, password) = if i % 2 == 0 {
            ("alice", "alice-password")
        } else {
            ("bob", "bob-password")
        };
        let mut flow = Flow {
            http: http_client(),
            base: h.base_url().to_owned(),
            jar: Jar::default(),
            report: &mut report,
        };
        match flow.run(user, password).await {
            Ok(()) => succeeded += 1,
            Err(e) => report.failures.push(format!("flow {i}: {e:#}")),
        }
    }
    report.elapsed = started.elapsed();
    assert_origin_saw_only_mcp(h).await;
    let calls = h.origin_requests().await.len() - origin_before;
    assert_eq!(
        calls, succeeded,
        "the MCP server received {calls} requests for {succeeded} successful flows"
    );
    report
}
