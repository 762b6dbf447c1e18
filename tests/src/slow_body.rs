//! OAuth POSTs whose body comes after the headers, host-generic: on every OAuth POST route
//! (`/register`, `POST /authorize`, `/consent`, `/token`, `/revoke`) a valid request is sent
//! with its body [`DELAYS`] after its headers, over HTTP/1.1 (a raw client writing the head,
//! waiting, then writing the body) or HTTP/2 without TLS (h2c, prior knowledge, the body a
//! stream whose data comes late). Each must get its real answer (201, 200 with the consent
//! page, 302 to the IdP, 200 with tokens, 200) within [`ANSWER_BOUND`] of its body, and the MCP
//! server behind the proxy must see none of them.
//!
//! Envoy runs it in `tests/tests/slow_body_envoy.rs` (both transports), the Worker in
//! `tests/tests/slow_body_worker.rs` (HTTP/1.1: `wrangler dev` serves no h2c).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt as _;

use crate::cognito::{pkce_pair, EndpointGroup, FaultMode};
use crate::hostile::{self, form_encode, Answer, Req};
use crate::journey::{form_value, Journey, REDIRECT_URI};
use crate::scenarios::{
    assert_origin_saw_only_mcp, m2m_options, m2m_token, wait_accepted, Host, HostOptions,
};

/// How long after the headers each body is sent.
pub const DELAYS: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(300),
];

/// A correct answer must be complete this soon after the body was sent.
pub const ANSWER_BOUND: Duration = Duration::from_secs(1);

/// Longest wait for an answer before the attempt counts as a hang.
const HANG: Duration = Duration::from_secs(10);

/// How the request reaches the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/1.1 on a raw TCP connection: the head in one write, the body in a later one.
    Http1,
    /// HTTP/2 with prior knowledge, no TLS: HEADERS first, DATA later.
    H2c,
}

/// The OAuth POST routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Register,
    Authorize,
    Consent,
    Token,
    Revoke,
}

pub const ROUTES: [Route; 5] = [
    Route::Register,
    Route::Authorize,
    Route::Consent,
    Route::Token,
    Route::Revoke,
];

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Route::Register => "POST /register",
            Route::Authorize => "POST /authorize",
            Route::Consent => "POST /consent",
            Route::Token => "POST /token",
            Route::Revoke => "POST /revoke",
        })
    }
}

/// A valid OAuth POST, ready to send.
#[derive(Clone, Debug)]
pub struct Post {
    pub route: Route,
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub cookie: Option<String>,
}

impl Post {
    fn form(route: Route, path: &'static str, pairs: &[(&str, &str)]) -> Self {
        Self {
            route,
            path,
            content_type: "application/x-www-form-urlencoded",
            body: form_encode(pairs).into_bytes(),
            cookie: None,
        }
    }

    /// The same request as raw HTTP/1.1.
    pub fn req(&self) -> Req {
        let mut r = Req::new("POST", self.path)
            .header("content-type", self.content_type)
            .body(self.body.clone());
        if let Some(c) = &self.cookie {
            r = r.header("cookie", c);
        }
        r
    }
}

/// The `/authorize` parameters of a client redirecting to [`REDIRECT_URI`], for a PKCE
/// challenge and the protected `resource`.
pub fn authorize_params(
    client_id: &str,
    resource: &str,
    challenge: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client_id.into()),
        ("redirect_uri", REDIRECT_URI.into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
        ("state", "client-state".into()),
        ("scope", "openid email".into()),
        ("resource", resource.into()),
    ]
}

fn pairs<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

impl Route {
    pub fn path(self) -> &'static str {
        match self {
            Route::Register => "/register",
            Route::Authorize => "/authorize",
            Route::Consent => "/consent",
            Route::Token => "/token",
            Route::Revoke => "/revoke",
        }
    }
}

/// A well-formed request for `route` with made-up values, for a proxy expected to refuse it
/// before reading its body.
pub fn placeholder(route: Route) -> Post {
    match route {
        Route::Register => Post {
            route,
            path: route.path(),
            content_type: "application/json",
            body: json!({"redirect_uris": [REDIRECT_URI]})
                .to_string()
                .into_bytes(),
            cookie: None,
        },
        _ => Post::form(route, route.path(), &[("client_id", "placeholder")]),
    }
}

/// Prepares a valid request for `route` through the real flow of `j`'s client (fresh codes,
/// transactions and tokens for the single-use ones).
pub async fn prepare(route: Route, j: &mut Journey) -> anyhow::Result<Post> {
    Ok(match route {
        Route::Register => Post {
            route,
            path: "/register",
            content_type: "application/json",
            body: json!({"redirect_uris": [REDIRECT_URI], "client_name": "slow body client",
                         "token_endpoint_auth_method": "none"})
            .to_string()
            .into_bytes(),
            cookie: None,
        },
        Route::Authorize => {
            let params = authorize_params(&j.client_id, &j.resource(), &pkce_pair().challenge);
            Post::form(route, "/authorize", &pairs(&params))
        }
        Route::Consent => {
            let params = authorize_params(&j.client_id, &j.resource(), &pkce_pair().challenge);
            let resp = j
                .http
                .get(format!("{}/authorize", j.base))
                .query(&params)
                .send()
                .await?;
            anyhow::ensure!(resp.status() == 200, "authorize answered {}", resp.status());
            j.jar.take(&resp);
            let page = resp.text().await?;
            let mut post = Post::form(
                route,
                "/consent",
                &[
                    ("txn", &form_value(&page, "txn")?),
                    ("csrf", &form_value(&page, "csrf")?),
                    ("action", "approve"),
                ],
            );
            post.cookie = Some(j.jar.header());
            post
        }
        Route::Token => {
            let (code, verifier) = j.authorize("alice", "alice-password").await?;
            let resource = j.resource();
            Post::form(
                route,
                "/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("client_id", &j.client_id),
                    ("code_verifier", &verifier),
                    ("resource", &resource),
                ],
            )
        }
        Route::Revoke => {
            let tokens = j.login("bob", "bob-password").await?;
            let refresh = tokens.refresh.context("no refresh token")?;
            Post::form(
                route,
                "/revoke",
                &[("token", &refresh), ("client_id", &j.client_id)],
            )
        }
    })
}

/// Whether `answer` is the real answer to a valid `route` request; `None` when it is.
pub fn mismatch(route: Route, answer: &Answer, idp_authorize: &str) -> Option<String> {
    let json = answer.json().unwrap_or(Value::Null);
    let ok = match route {
        Route::Register => answer.status == 201 && json["client_id"].is_string(),
        Route::Authorize => answer.status == 200 && answer.text().contains("name=\"csrf\""),
        Route::Consent => {
            answer.status == 302
                && answer
                    .header("location")
                    .is_some_and(|l| l.starts_with(idp_authorize))
        }
        Route::Token => answer.status == 200 && json["access_token"].is_string(),
        Route::Revoke => answer.status == 200,
    };
    (!ok).then(|| {
        let text = answer.text();
        let shown: String = text.chars().take(300).collect();
        format!(
            "answered {} (location {:?}): {shown}",
            answer.status,
            answer.header("location")
        )
    })
}

/// Sends `req` to `authority` over HTTP/1.1: the head in one write, the body `delay` later in
/// another. Returns the answer and how long after the body was written it was complete (zero
/// when it came before).
pub async fn send_http1(
    authority: &str,
    req: &Req,
    delay: Duration,
) -> anyhow::Result<(Answer, Duration)> {
    let bytes = req.to_bytes(authority);
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of head")?
        + 4;
    let (head, body) = bytes.split_at(split);
    let (head, body) = (head.to_vec(), body.to_vec());
    let stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    wr.write_all(&head).await?;
    wr.flush().await?;
    let body_sent: Arc<Mutex<Option<Instant>>> = Arc::default();
    let sent = body_sent.clone();
    let write = async move {
        tokio::time::sleep(delay).await;
        // The proxy may have answered and closed already: the read side decides.
        let _ = wr.write_all(&body).await;
        let _ = wr.flush().await;
        *sent.lock().unwrap() = Some(Instant::now());
        wr
    };
    let read = async move {
        let buf = hostile::read_answer(rd).await?;
        std::io::Result::Ok((buf, Instant::now()))
    };
    let io = async { tokio::join!(write, read) };
    let (_wr, read) = tokio::time::timeout(HANG, io)
        .await
        .map_err(|_| anyhow::anyhow!("no complete answer within {HANG:?} (hang)"))?;
    let (buf, done) = read?;
    let after = body_sent
        .lock()
        .unwrap()
        .map_or(Duration::ZERO, |t| done.saturating_duration_since(t));
    Ok((hostile::parse_answer(&buf)?, after))
}

/// Sends `post` to `authority` over HTTP/2 with prior knowledge (a connection of its own):
/// HEADERS at once, the body as a stream whose only DATA frame comes `delay` later.
pub async fn send_h2c(
    authority: &str,
    post: &Post,
    delay: Duration,
) -> anyhow::Result<(Answer, Duration)> {
    use http_body_util::BodyExt as _;

    let body_sent: Arc<Mutex<Option<Instant>>> = Arc::default();
    let sent = body_sent.clone();
    let data = bytes::Bytes::from(post.body.clone());
    let frames = Box::pin(futures::stream::once(async move {
        tokio::time::sleep(delay).await;
        *sent.lock().unwrap() = Some(Instant::now());
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(data))
    }));
    let mut req = hyper::Request::post(format!("http://{authority}{}", post.path))
        .header("content-type", post.content_type)
        .header("content-length", post.body.len().to_string());
    if let Some(c) = &post.cookie {
        req = req.header("cookie", c);
    }
    let req = req.body(http_body_util::StreamBody::new(frames))?;
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(authority).await?;
        tcp.set_nodelay(true)?;
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await?;
        let connection = tokio::spawn(conn);
        let resp = sender.send_request(req).await?;
        anyhow::ensure!(
            resp.version() == hyper::Version::HTTP_2,
            "answered over {:?}, not HTTP/2",
            resp.version()
        );
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = resp.into_body().collect().await?.to_bytes().to_vec();
        let done = Instant::now();
        connection.abort();
        anyhow::Ok((
            Answer {
                status,
                headers,
                body,
            },
            done,
        ))
    };
    let (answer, done) = tokio::time::timeout(HANG, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("no complete answer within {HANG:?} (hang)"))??;
    let after = body_sent
        .lock()
        .unwrap()
        .map_or(Duration::ZERO, |t| done.saturating_duration_since(t));
    Ok((answer, after))
}

/// One attempt's outcome.
#[derive(Debug)]
pub struct Attempt {
    pub route: Route,
    pub delay: Duration,
    pub status: u16,
    /// Time from the body to the complete answer.
    pub after_body: Duration,
    /// What was wrong, if anything.
    pub problem: Option<String>,
}

/// Every OAuth POST route, every delay of [`DELAYS`], over `transport`: each answered
/// correctly within [`ANSWER_BOUND`] of its body; the MCP server saw none of them.
pub async fn oauth_posts_answered_whatever_the_body_timing(h: &impl Host, transport: Transport) {
    let base = h.base_url().to_owned();
    let authority = hostile::authority(&base);
    let idp_authorize = h.idp().authorization_endpoint();
    let mut j = Journey::register(&base).await.unwrap();
    let mut attempts = Vec::new();
    for route in ROUTES {
        for delay in DELAYS {
            let post = prepare(route, &mut j)
                .await
                .unwrap_or_else(|e| panic!("preparing {route}: {e:#}"));
            let sent = match transport {
                Transport::Http1 => send_http1(&authority, &post.req(), delay).await,
                Transport::H2c => send_h2c(&authority, &post, delay).await,
            };
            let attempt = match sent {
                Ok((answer, after_body)) => {
                    let mut problem = mismatch(route, &answer, &idp_authorize);
                    if problem.is_none() && after_body > ANSWER_BOUND {
                        problem = Some(format!("answered {after_body:?} after the body"));
                    }
                    Attempt {
                        route,
                        delay,
                        status: answer.status,
                        after_body,
                        problem,
                    }
                }
                Err(e) => Attempt {
                    route,
                    delay,
                    status: 0,
                    after_body: Duration::ZERO,
                    problem: Some(format!("{e:#}")),
                },
            };
            attempts.push(attempt);
        }
    }
    for a in &attempts {
        println!(
            "{transport:?} {} body after {:?}: {} in {:?} after the body{}",
            a.route,
            a.delay,
            a.status,
            a.after_body,
            a.problem
                .as_deref()
                .map(|p| format!(" — {p}"))
                .unwrap_or_default()
        );
    }
    let failed: Vec<String> = attempts
        .iter()
        .filter_map(|a| {
            a.problem
                .as_ref()
                .map(|p| format!("{} body after {:?}: {p}", a.route, a.delay))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{transport:?}: {} of {} OAuth POSTs failed:\n{}",
        failed.len(),
        attempts.len(),
        failed.join("\n")
    );
    let origin = h.origin_requests().await;
    assert!(
        origin.is_empty(),
        "OAuth POSTs reached the MCP server: {origin:?}"
    );
    if let Some(refusing) = h.counter("mcpgate.oauth_body_unsupported").await {
        assert_eq!(refusing, 0, "a VM refuses OAuth bodies");
    }
}

/// An MCP request held at its headers while the proxy refetches the IdP's keys (its token
/// names a key published after the last fetch, the JWKS endpoint answers 600 ms late), its
/// body arriving during the hold: it reaches the MCP server only once decided, with the
/// identity and without the token. Needs `m2m_jwks_options(600, 0)`.
pub async fn mcp_request_held_for_a_key_refetch_keeps_its_body(h: &impl Host) {
    let token = m2m_token(h).await;
    wait_accepted(h, &token).await;
    h.idp().rotate_keys(false);
    let rotated = m2m_token(h).await;
    h.idp()
        .set_mode(EndpointGroup::Jwks, FaultMode::Slow { delay_ms: 600 });
    let req = Req::json(
        "/mcp",
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "whoami", "arguments": {}}}),
    )
    .bearer(&rotated)
    .header("accept", "application/json, text/event-stream");
    let (answer, _) = send_http1(
        &hostile::authority(h.base_url()),
        &req,
        Duration::from_millis(200),
    )
    .await
    .unwrap();
    h.idp().set_mode(EndpointGroup::Jwks, FaultMode::Normal);
    assert_eq!(answer.status, 200, "{answer}");
    let seen = &answer.json().unwrap_or_default()["result"]["structuredContent"];
    assert_eq!(seen["authorization_present"], json!(false), "{answer}");
    assert_eq!(
        seen["headers"]["x-mcpgate-client-id"],
        json!("m2m-client"),
        "{answer}"
    );
    assert_origin_saw_only_mcp(h).await;
}

/// Machine tokens accepted, and a tool rule the machine client's scopes never meet.
pub fn tool_rules_options<O: HostOptions>() -> O {
    m2m_options::<O>().config(
        "tool_rules",
        json!([{"name": "echo", "scopes": ["mcpgate-e2e/never-granted"]}]),
    )
}

/// Under `tool_rules` an MCP POST is decided from its body (held at its headers in Envoy,
/// read whole by the Worker): with the body written [`DELAYS`] after the head, an allowed
/// call reaches the tool with the identity within [`ANSWER_BOUND`] of its body, and a refused
/// one gets 403 `insufficient_scope` without reaching the MCP server. Needs
/// [`tool_rules_options`].
pub async fn mcp_posts_under_tool_rules_decided_whatever_the_body_timing(h: &impl Host) {
    let token = m2m_token(h).await;
    wait_accepted(h, &token).await;
    let authority = hostile::authority(h.base_url());
    let call = |tool: &str| {
        Req::json(
            "/mcp",
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": tool, "arguments": {"text": "hi"}}}),
        )
        .bearer(&token)
        .header("accept", "application/json, text/event-stream")
    };
    for delay in DELAYS {
        let (answer, after) = send_http1(&authority, &call("whoami"), delay)
            .await
            .unwrap();
        assert_eq!(answer.status, 200, "whoami, body {delay:?} late: {answer}");
        let seen = &answer.json().unwrap_or_default()["result"]["structuredContent"];
        assert_eq!(
            seen["headers"]["x-mcpgate-client-id"],
            json!("m2m-client"),
            "whoami, body {delay:?} late: {answer}"
        );
        assert!(
            after <= ANSWER_BOUND,
            "whoami, body {delay:?} late: answered {after:?} after it"
        );

        let (answer, _) = send_http1(&authority, &call("echo"), delay).await.unwrap();
        assert_eq!(answer.status, 403, "echo, body {delay:?} late: {answer}");
        let challenge = answer.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("insufficient_scope")
                && challenge.contains("mcpgate-e2e/never-granted"),
            "echo, body {delay:?} late: {challenge}"
        );
    }
    assert_origin_saw_only_mcp(h).await;
}

/// What the refusal of an OAuth POST looks like when the proxy cannot read its body.
pub fn assert_refusal(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 503, "{what}: {answer}");
    let body = answer
        .json()
        .unwrap_or_else(|| panic!("{what}: not JSON: {answer}"));
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(
        description.contains("allow_on_headers_stop_iteration"),
        "{what}: the description tells the operator what to set: {description}"
    );
}
