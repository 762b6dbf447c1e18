//! Two real Envoy processes sharing the fleet store (`store: "dynamodb"`) on moto, which
//! checks every SigV4 signature and IAM policy (see `mcpgate_e2e::fleet`): one-time use,
//! refresh-token reuse detection, revocation and rate limits hold across the processes, and
//! while the store is unreachable one-time use fails closed (503, then the retry works) and
//! the MCP path keeps serving.

use std::time::{Duration, Instant};

use mcpgate_e2e::fleet::{Fleet, POD_IDENTITY_TOKEN};
use mcpgate_e2e::harness::{http_client, wait_until};
use mcpgate_e2e::journey::{whoami, Journey, Tokens, REDIRECT_URI};
use serde_json::{json, Map, Value};

/// The staleness bound of replicated revocations that the README states.
const REVOCATION_BOUND: Duration = Duration::from_secs(5);
/// Token requests per client id and address per minute in this test (shared by the fleet).
const PER_CLIENT: u32 = 10;

/// POSTs a form to `url`: status, `Retry-After`, JSON body.
async fn post(url: &str, form: &[(&str, &str)]) -> (u16, Option<String>, Value) {
    let r = http_client().post(url).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

/// Redeems a code at process `at` (the resource is the fleet's public one).
async fn redeem_at(
    at: &str,
    j: &Journey,
    code: &str,
    verifier: &str,
) -> (u16, Option<String>, Value) {
    let resource = j.resource();
    post(
        &format!("{at}/token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", &j.client_id),
            ("code_verifier", verifier),
            ("resource", &resource),
        ],
    )
    .await
}

async fn refresh_at(at: &str, j: &Journey, refresh: &str) -> (u16, Value) {
    let (s, _, v) = post(
        &format!("{at}/token"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &j.client_id),
        ],
    )
    .await;
    (s, v)
}

/// The guard's answer to an MCP request with `token` at process `at` (401 once revoked).
async fn mcp_status(at: &str, token: &str) -> u16 {
    http_client()
        .post(format!("{at}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "fleet-e2e", "version": "0"}}}),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn login(fleet: &Fleet) -> (Journey, Tokens) {
    let mut j = Journey::register(&fleet.base_url).await.unwrap();
    let t = j.login("alice", "alice-password").await.unwrap();
    (j, t)
}

#[tokio::test]
async fn two_processes_share_one_time_use_reuse_detection_revocation_and_limits() {
    let mut config = Map::new();
    config.insert("rate_limit_per_client".into(), json!(PER_CLIENT));
    let fleet = Fleet::start(config).await.unwrap();
    let (a, b) = (fleet.url_a.clone(), fleet.url_b.clone());

    // Both processes sign their calls (A with STS credentials for the IRSA role, B with the
    // IAM user's keys from the Pod Identity agent, which saw B's token) and moto accepts
    // them: a login through A writes to the store.
    let (_, first) = login(&fleet).await;
    let who = whoami(&format!("{b}/mcp"), &first.access).await.unwrap();
    assert!(
        who["headers"]["x-mcpgate-sub"].is_string(),
        "a token issued at A works at B: {who}"
    );
    let seen = fleet.agent.seen();
    assert!(
        !seen.is_empty() && seen.iter().all(|a| a == POD_IDENTITY_TOKEN),
        "B asked the agent with its token file's content: {seen:?}"
    );

    // 1. A code redeemed at one process is refused at the other, both ways.
    let mut j = Journey::register(&fleet.base_url).await.unwrap();
    for (first_at, second_at) in [(&a, &b), (&b, &a)] {
        let (code, verifier) = j.authorize("alice", "alice-password").await.unwrap();
        let (s, _, body) = redeem_at(first_at, &j, &code, &verifier).await;
        assert_eq!(s, 200, "{}", brief(&body));
        let (s, _, body) = redeem_at(second_at, &j, &code, &verifier).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "replayed at the other process: {}",
            brief(&body)
        );
    }

    // 2. Refresh-token reuse is detected across the processes and revokes the family.
    // (A client per step: its token requests stay within this test's per-client limit.)
    let mut j = Journey::register(&fleet.base_url).await.unwrap();
    let t = j.login("alice", "alice-password").await.unwrap();
    let r1 = t.refresh.clone().unwrap();
    let (s, rotated) = refresh_at(&a, &j, &r1).await;
    assert_eq!(s, 200, "{}", brief(&rotated));
    let r2 = rotated["refresh_token"].as_str().unwrap().to_owned();
    let (s, body) = refresh_at(&b, &j, &r1).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{}",
        brief(&body)
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("reuse"),
        "{}",
        brief(&body)
    );
    let (s, body) = refresh_at(&a, &j, &r2).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "the family is revoked: {}",
        brief(&body)
    );

    // 3. A revocation at A is enforced at B within the bound; measured.
    let mut j = Journey::register(&fleet.base_url).await.unwrap();
    let mut delays = Vec::new();
    for _ in 0..3 {
        let t = j.login("alice", "alice-password").await.unwrap();
        assert_ne!(
            mcp_status(&b, &t.access).await,
            401,
            "valid at B before the revocation"
        );
        let (s, _, _) = post(
            &format!("{a}/revoke"),
            &[
                ("token", t.refresh.as_deref().unwrap()),
                ("client_id", &j.client_id),
            ],
        )
        .await;
        assert_eq!(s, 200);
        let revoked = Instant::now();
        assert_eq!(
            mcp_status(&a, &t.access).await,
            401,
            "at once at the revoking process"
        );
        wait_until(
            REVOCATION_BOUND,
            "the revocation to reach process B",
            || async { (mcp_status(&b, &t.access).await == 401).then_some(()) },
        )
        .await
        .unwrap();
        delays.push(revoked.elapsed());
    }
    delays.sort();
    eprintln!(
        "revocation at A enforced at B after {:?} (3 runs: {delays:?}; bound {REVOCATION_BOUND:?})",
        delays[1]
    );
    assert!(Fleet::counter(&fleet.b, "mcpgate.revocations_replicated").await >= 3);

    // 4. Rate limits are shared: PER_CLIENT token requests of one client from one address
    // per minute across both processes, not per process.
    let jr = Journey::register(&fleet.base_url).await.unwrap();
    let mut answers = Vec::new();
    for i in 0..(PER_CLIENT + 4) {
        let at = if i % 2 == 0 { &a } else { &b };
        let (s, _, _) = post(
            &format!("{at}/token"),
            &[
                ("grant_type", "authorization_code"),
                ("code", "bogus"),
                ("client_id", &jr.client_id),
            ],
        )
        .await;
        answers.push(s);
    }
    let limited = answers.iter().filter(|s| **s == 429).count();
    assert_eq!(
        answers.iter().filter(|s| **s != 429).count(),
        PER_CLIENT as usize,
        "{answers:?}"
    );
    assert_eq!(limited, 4, "{answers:?}");
    assert_eq!(answers[PER_CLIENT as usize], 429, "{answers:?}");

    // 5. The store unreachable: one-time use fails closed (503, nothing spent), the MCP path
    // keeps serving valid tokens; once it is back the same code is redeemed.
    let mut j = Journey::register(&fleet.base_url).await.unwrap();
    let (code, verifier) = j.authorize("alice", "alice-password").await.unwrap();
    let live = j.login("alice", "alice-password").await.unwrap();
    fleet.relay.down().await;
    let t0 = Instant::now();
    let (s, retry, body) = redeem_at(&a, &j, &code, &verifier).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (503, Some("temporarily_unavailable")),
        "{}",
        brief(&body)
    );
    assert!(retry.is_some(), "Retry-After");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "no wait past the store timeout"
    );
    let (s, _) = refresh_at(&b, &j, live.refresh.as_deref().unwrap()).await;
    assert_eq!(s, 503, "a refresh rotation fails closed too");
    for at in [&a, &b] {
        let who = whoami(&format!("{at}/mcp"), &live.access).await.unwrap();
        assert!(
            who["headers"]["x-mcpgate-sub"].is_string(),
            "the MCP path serves while the store is down: {who}"
        );
    }
    assert!(Fleet::counter(&fleet.a, "mcpgate.store_calls_failed").await >= 1);
    fleet.relay.up().await.unwrap();
    let (s, _, body) = redeem_at(&b, &j, &code, &verifier).await;
    assert_eq!(
        s,
        200,
        "the retry works once the store is back: {}",
        brief(&body)
    );
    let (s, _, _) = redeem_at(&a, &j, &code, &verifier).await;
    assert_eq!(s, 400, "and the code is spent for the whole fleet");
}

/// What an answer says, without its tokens (for assertion messages).
fn brief(body: &Value) -> String {
    format!(
        "{} {}",
        body["error"].as_str().unwrap_or("(no error)"),
        body["error_description"].as_str().unwrap_or_default()
    )
}
