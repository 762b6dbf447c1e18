//! OAuth route latency with each store, side by side in one run (`bench-envoy --oauth N`):
//! N complete flows through an Envoy with `store: shared_data` and through process A of a
//! two-process fleet with `store: dynamodb` on the local moto server (signatures and IAM
//! policies checked, loopback: this measures the filter's round trips, not AWS's network),
//! interleaved flow by flow. Each flow registers a client, signs in (consent, the emulator,
//! the callback), redeems the code, refreshes and revokes; every store-backed request is
//! timed as the client sees it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mcpgate_e2e::envoy_setup::{GateOptions, GateStack};
use mcpgate_e2e::fleet::Fleet;
use mcpgate_e2e::journey::Journey;
use serde_json::Map;

/// The routes timed, and the store round trips each makes with DynamoDB (rate-limit buckets
/// per address and per client, then the operation).
const ROUTES: &[(&str, &str)] = &[
    ("POST /register", "1 (address bucket)"),
    ("POST /token (code)", "3 (2 buckets, code once)"),
    (
        "POST /token (refresh)",
        "3 (2 buckets, family advance; revocation check local)",
    ),
    ("POST /revoke", "1 (revocation + feed item)"),
];

type Times = BTreeMap<(&'static str, &'static str), Vec<Duration>>;

async fn flow(setup: &'static str, base: &str, times: &mut Times) -> anyhow::Result<()> {
    let mut push = |route: &'static str, d: Duration| {
        times.entry((setup, route)).or_default().push(d);
    };
    let t0 = Instant::now();
    let mut j = Journey::register(base).await?;
    push("POST /register", t0.elapsed());
    let (code, verifier) = j.authorize("alice", "alice-password").await?;
    let resource = j.resource();
    let a = j
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", mcpgate_e2e::journey::REDIRECT_URI),
                ("client_id", &j.client_id),
                ("code_verifier", &verifier),
                ("resource", &resource),
            ],
        )
        .await?;
    anyhow::ensure!(a.status == 200, "token: {}", a.status);
    push("POST /token (code)", a.took);
    let refresh = a.body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let r = j.refresh_answer(&refresh).await?;
    anyhow::ensure!(r.status == 200, "refresh: {}", r.status);
    push("POST /token (refresh)", r.took);
    let rotated = r.body["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let v = j.revoke_answer(&rotated).await?;
    anyhow::ensure!(v.status == 200, "revoke: {}", v.status);
    push("POST /revoke", v.took);
    Ok(())
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Runs `flows` flows per store; the Markdown table.
pub async fn run(flows: usize) -> anyhow::Result<String> {
    let shared = GateStack::start(GateOptions::default()).await?;
    let fleet = Fleet::start(Map::new()).await?;
    let mut times = Times::new();
    for _ in 0..flows {
        flow("shared_data", &shared.base_url, &mut times).await?;
        flow("dynamodb", &fleet.base_url, &mut times).await?;
    }
    let mut out = String::new();
    out.push_str(
        "| route | DynamoDB round trips | shared_data p50 ms | dynamodb p50 ms | shared_data p90 ms | dynamodb p90 ms | dynamodb max ms |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: |\n"
    );
    for (route, trips) in ROUTES {
        let mut s = times.remove(&("shared_data", *route)).unwrap_or_default();
        let mut d = times.remove(&("dynamodb", *route)).unwrap_or_default();
        out.push_str(&format!(
            "| {route} | {trips} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            pct(&mut s, 0.5),
            pct(&mut d, 0.5),
            pct(&mut s, 0.9),
            pct(&mut d, 0.9),
            pct(&mut d, 1.0),
        ));
    }
    out.push_str(&format!(
        "\n{flows} flows per store, interleaved; DynamoDB: moto {} on loopback (local, not AWS).\n",
        "5.2.5"
    ));
    Ok(out)
}
