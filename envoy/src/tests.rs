//! The filter's Envoy-side logic on a fake host: configuration, OAuth POSTs held at their
//! headers, the refusal where Envoy cannot hand over bodies, the watchdog, guarded and public
//! paths, the JWKS refetch with its lease, and the request held while it runs; MCP POSTs under
//! `tool_rules` held and forwarded with their body, and `tools/list` answers filtered.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use mcpgate_filter::host::jwks::Trigger;
use mcpgate_filter::store::MemoryStore;
use mcpgate_filter::{Reply, StoreOp};
use proxy_wasm::traits::RootContext;
use proxy_wasm::types::Action;
use serde_json::{json, Value};

use crate::body_mode::{Mode, Why, GRACE_MS};
use crate::drive::Exchange;
use crate::header_map::HeaderMap;
use crate::hostcalls::{Host, MetricKind, SharedError};
use crate::root::Root;
use crate::vm::Vm;

type Headers = Vec<(String, String)>;
/// An answer sent: status, headers, body.
type Sent = (u16, Headers, Vec<u8>);

/// One request as the fake host holds it.
#[derive(Default)]
struct FakeRequest {
    /// The request headers, with the filter's changes applied.
    headers: Headers,
    body: Vec<u8>,
    total_size: Option<u64>,
    sent: Option<Sent>,
    removed: Vec<String>,
    set: Headers,
    response_set: Headers,
    resumed: bool,
    /// The origin's answer as the filter sees it (headers with `:status`, buffered body).
    response: Headers,
    response_body: Vec<u8>,
}

/// A host that records what the filter does.
#[derive(Default)]
struct Fake {
    now_ms: Cell<u64>,
    /// The current context and its request.
    effective: Cell<u32>,
    requests: RefCell<BTreeMap<u32, FakeRequest>>,
    properties: RefCell<BTreeMap<String, Vec<u8>>>,
    /// (cluster, headers) of every dispatched call.
    calls: RefCell<Vec<(String, Headers)>>,
    /// The answer to the call being completed.
    call_answer: RefCell<(Headers, Vec<u8>)>,
    shared: RefCell<BTreeMap<String, (Vec<u8>, u32)>>,
    store: RefCell<MemoryStore>,
    /// Revocations replicated from a fleet store: entry id → expiry.
    replica: RefCell<BTreeMap<String, u64>>,
    /// The VM environment.
    env: RefCell<BTreeMap<String, String>>,
    /// Bodies of the dispatched calls, in order.
    call_bodies: RefCell<Vec<Vec<u8>>>,
    metric_names: RefCell<Vec<String>>,
    metric_values: RefCell<BTreeMap<String, i64>>,
    config: RefCell<Vec<u8>>,
    tick: Cell<Option<Duration>>,
    /// The host calls made on the request path, in order (what crosses the proxy-wasm ABI).
    crossings: RefCell<Vec<&'static str>>,
}

impl Fake {
    fn with_config(config: &Value) -> Rc<Self> {
        let fake = Rc::new(Self::default());
        fake.now_ms.set(1_800_000_000_000);
        *fake.store.borrow_mut() = MemoryStore::new(10_000);
        *fake.config.borrow_mut() = config.to_string().into_bytes();
        fake.version(1, 40);
        fake
    }

    fn version(&self, major: u64, minor: u64) {
        let mut p = self.properties.borrow_mut();
        for (name, v) in [("major_number", major), ("minor_number", minor)] {
            p.insert(
                format!("xds.node.user_agent_build_version.version.{name}"),
                v.to_le_bytes().to_vec(),
            );
        }
    }

    /// Makes `id` the current request, with these headers.
    fn request(&self, id: u32, method: &str, path: &str, headers: &[(&str, &str)]) {
        let mut all = vec![
            (":method".to_string(), method.to_string()),
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), "127.0.0.1:10000".to_string()),
        ];
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.requests.borrow_mut().insert(
            id,
            FakeRequest {
                headers: all,
                total_size: Some(100),
                ..FakeRequest::default()
            },
        );
        self.effective.set(id);
    }

    /// A request header as the origin would get it now.
    fn header(&self, name: &str) -> Option<String> {
        self.with_request(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    fn with_request<R>(&self, f: impl FnOnce(&mut FakeRequest) -> R) -> R {
        let id = self.effective.get();
        let mut all = self.requests.borrow_mut();
        f(all.entry(id).or_default())
    }

    fn sent(&self, id: u32) -> Option<(u16, Value)> {
        let all = self.requests.borrow();
        let (status, _, body) = all.get(&id)?.sent.clone()?;
        Some((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    fn metric(&self, name: &str) -> i64 {
        self.metric_values
            .borrow()
            .get(name)
            .copied()
            .unwrap_or_default()
    }
}

fn map_of(headers: &Headers) -> HeaderMap {
    HeaderMap::from_pairs(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

impl Fake {
    /// Records a host call; the fake's own work until the guard drops is not the filter's
    /// (not counted by [`allocations`]).
    fn cross(&self, name: &'static str) -> allocations::Uncounted {
        let guard = allocations::Uncounted::new();
        self.crossings.borrow_mut().push(name);
        guard
    }
}

impl Host for Fake {
    fn now_ms(&self) -> u64 {
        let _host = self.cross("now_ms");
        self.now_ms.get()
    }
    fn request_headers(&self) -> HeaderMap {
        // Envoy serializes the map into a buffer of the VM's; the filter reads it.
        let buf = {
            let _host = self.cross("request_headers");
            self.with_request(|r| map_of(&r.headers)).serialized()
        };
        HeaderMap::parse(buf).unwrap()
    }
    fn request_header(&self, name: &str) -> Option<String> {
        let _host = self.cross("request_header");
        self.with_request(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }
    fn request_body(&self, max: usize) -> Vec<u8> {
        let _host = self.cross("request_body");
        self.with_request(|r| r.body.iter().take(max).copied().collect())
    }
    fn remove_request_header(&self, name: &str) {
        let _host = self.cross("remove_request_header");
        self.with_request(|r| {
            r.removed.push(name.to_string());
            r.headers.retain(|(k, _)| k != name);
        });
    }
    fn set_request_header(&self, name: &str, value: &str) {
        let _host = self.cross("set_request_header");
        self.with_request(|r| {
            r.set.push((name.to_string(), value.to_string()));
            r.headers.retain(|(k, _)| k != name);
            r.headers.push((name.to_string(), value.to_string()));
        });
    }
    fn set_response_header(&self, name: &str, value: &str) {
        let _host = self.cross("set_response_header");
        self.with_request(|r| {
            r.response_set.push((name.to_string(), value.to_string()));
            r.response.retain(|(k, _)| k != name);
            r.response.push((name.to_string(), value.to_string()));
        });
    }
    fn response_headers(&self) -> HeaderMap {
        let _host = self.cross("response_headers");
        self.with_request(|r| map_of(&r.response))
    }
    fn remove_response_header(&self, name: &str) {
        let _host = self.cross("remove_response_header");
        self.with_request(|r| r.response.retain(|(k, _)| k != name));
    }
    fn response_body(&self, max: usize) -> Vec<u8> {
        let _host = self.cross("response_body");
        self.with_request(|r| r.response_body.iter().take(max).copied().collect())
    }
    fn set_response_body(&self, size: usize, body: &[u8]) {
        let _host = self.cross("set_response_body");
        self.with_request(|r| {
            let size = size.min(r.response_body.len());
            r.response_body.splice(..size, body.iter().copied());
        });
    }
    fn send_response(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let _host = self.cross("send_response");
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.with_request(|r| {
            assert!(r.sent.is_none(), "a second answer to one request");
            r.sent = Some((status, headers, body.to_vec()));
        });
    }
    fn resume_request(&self) {
        let _host = self.cross("resume_request");
        self.with_request(|r| r.resumed = true);
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let _host = self.cross("property");
        if path == ["request", "total_size"] {
            return self
                .with_request(|r| r.total_size)
                .map(|n| n.to_le_bytes().to_vec());
        }
        self.properties.borrow().get(&path.join(".")).cloned()
    }
    fn set_effective_context(&self, context_id: u32) -> bool {
        self.effective.set(context_id);
        true
    }
    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        _timeout: Duration,
    ) -> Result<u32, String> {
        let _host = self.cross("dispatch");
        self.call_bodies
            .borrow_mut()
            .push(body.unwrap_or_default().to_vec());
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut calls = self.calls.borrow_mut();
        calls.push((cluster.to_string(), headers));
        Ok(u32::try_from(calls.len()).unwrap_or(u32::MAX))
    }
    fn call_response_headers(&self) -> HeaderMap {
        map_of(&self.call_answer.borrow().0)
    }
    fn call_response_body(&self, size: usize) -> Vec<u8> {
        self.call_answer
            .borrow()
            .1
            .iter()
            .take(size)
            .copied()
            .collect()
    }
    fn shared_get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        let _host = self.cross("shared_get");
        match self.shared.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        }
    }
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError> {
        let _host = self.cross("shared_set");
        let mut shared = self.shared.borrow_mut();
        let next = match (shared.get(key), cas) {
            (Some((_, now)), Some(c)) if *now != c => return Err(SharedError::CasMismatch),
            (Some((_, now)), _) => now + 1,
            (None, _) => 1,
        };
        shared.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }
    fn init_store(&self) {}
    fn store(&self, op: &StoreOp, now: u64) -> Reply {
        let _host = self.cross("store");
        if let StoreOp::IsRevoked { key } = op {
            let id = crate::store::entry_id(key);
            if self.replica.borrow().get(&id).is_some_and(|exp| *exp > now) {
                return Reply::Store(true);
            }
        }
        mcpgate_filter::store::perform(&mut *self.store.borrow_mut(), op, now)
    }
    fn store_revoked(&self, id: &str, expires_at: u64, _now: u64) -> Option<bool> {
        Some(
            self.replica
                .borrow_mut()
                .insert(id.to_string(), expires_at)
                .is_none(),
        )
    }
    fn define_metric(&self, _kind: MetricKind, name: &str) -> Option<u32> {
        let mut names = self.metric_names.borrow_mut();
        names.push(name.to_string());
        u32::try_from(names.len() - 1).ok()
    }
    fn increment_metric(&self, id: u32, delta: i64) -> bool {
        let _host = self.cross("increment_metric");
        let name = self.metric_names.borrow()[id as usize].clone();
        *self.metric_values.borrow_mut().entry(name).or_default() += delta;
        true
    }
    fn plugin_configuration(&self) -> Result<Vec<u8>, String> {
        Ok(self.config.borrow().clone())
    }
    fn set_tick_period(&self, period: Duration) -> bool {
        self.tick.set(Some(period));
        true
    }
    fn env_var(&self, name: &str) -> Option<String> {
        self.env.borrow().get(name).cloned()
    }
    fn verify_signature(&self, _args: &[u8]) -> Result<Option<Vec<u8>>, bool> {
        Err(true)
    }
}

const BASE: &str = "http://127.0.0.1:10000";

fn config(extra: Value) -> Value {
    let mut c = json!({
        "user_pool_id": "us-east-1_Test",
        "aws_region": "us-east-1",
        "client_id": "web",
        "client_secret": "web-secret",
        "jwt_signing_key": "a-test-signing-key-of-at-least-32-characters",
        "base_url": BASE,
        "upstream": {
            "issuer": "http://idp.test/us-east-1_Test",
            "authorization_endpoint": "http://idp.test/oauth2/authorize",
            "token_endpoint": "http://idp.test/oauth2/token",
            "jwks_uri": "http://idp.test/us-east-1_Test/.well-known/jwks.json"
        },
        "clusters": {"idp.test": "idp"},
        "allow_on_headers_stop_iteration": true,
        "rate_limit_per_address": 0,
        "rate_limit_per_client": 0
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        c[k] = v.clone();
    }
    c
}

/// A configured root context on a fake host.
fn configured(extra: Value) -> (Rc<Fake>, Root) {
    let fake = Fake::with_config(&config(extra));
    let mut root = Root::with_host(1, fake.clone());
    assert!(root.on_configure(0), "the configuration was refused");
    (fake, root)
}

fn exchange(fake: &Rc<Fake>, root: &Root, id: u32) -> Exchange {
    Exchange::new(id, fake.clone(), root.vm().cloned())
}

#[test]
fn a_bad_configuration_is_refused_and_a_good_one_sets_up_the_vm() {
    let fake = Fake::with_config(&config(json!({"bogus": 1})));
    let mut root = Root::with_host(1, fake.clone());
    assert!(!root.on_configure(0));
    assert!(root.vm().is_none());

    let (fake, root) = configured(json!({}));
    let vm = root.vm().unwrap();
    assert_eq!(vm.body_mode.get(), Mode::Pause);
    assert!(fake.shared.borrow().contains_key("mcpgate.jwks.lease"));
    assert_eq!(fake.tick.get(), Some(Duration::from_millis(100)));
}

#[test]
fn an_oauth_post_is_held_at_its_headers_and_answered_from_its_body() {
    let (fake, root) = configured(json!({}));
    let mut ex = exchange(&fake, &root, 7);
    fake.request(
        7,
        "POST",
        "/register",
        &[("content-type", "application/json")],
    );
    assert_eq!(ex.on_request_headers(false), Action::Pause);
    assert!(fake.sent(7).is_none(), "nothing answered before the body");
    assert!(!root.vm().unwrap().held.borrow().is_empty());
    // The body comes later, in two parts.
    let body = json!({"redirect_uris": ["http://127.0.0.1:3000/cb"]}).to_string();
    fake.with_request(|r| r.body = body.as_bytes()[..10].to_vec());
    assert_eq!(ex.on_request_body(10, false), Action::Pause);
    fake.with_request(|r| r.body = body.as_bytes().to_vec());
    assert_eq!(ex.on_request_body(body.len(), true), Action::Pause);
    let (status, doc) = fake.sent(7).unwrap();
    assert_eq!(status, 201, "{doc}");
    assert!(doc["client_id"].is_string());
    assert!(root.vm().unwrap().held.borrow().is_empty());
    assert!(!fake.with_request(|r| r.resumed), "never sent upstream");
}

#[test]
fn oauth_posts_are_refused_where_envoy_cannot_hand_over_bodies() {
    for (extra, version) in [
        (json!({"allow_on_headers_stop_iteration": false}), (1, 40)),
        (json!({}), (1, 34)),
    ] {
        let fake = Fake::with_config(&config(extra));
        fake.version(version.0, version.1);
        let mut root = Root::with_host(1, fake.clone());
        assert!(root.on_configure(0));
        assert!(matches!(
            root.vm().unwrap().body_mode.get(),
            Mode::Refuse(_)
        ));
        assert_eq!(fake.metric("mcpgate.oauth_body_unsupported"), 1);
        let mut ex = exchange(&fake, &root, 3);
        fake.request(3, "POST", "/token", &[]);
        assert_eq!(ex.on_request_headers(false), Action::Pause);
        let (status, doc) = fake.sent(3).unwrap();
        assert_eq!(status, 503);
        assert_eq!(doc["error"], "temporarily_unavailable");
        assert_eq!(
            fake.metric("mcpgate.requests_denied.oauth_body_unsupported"),
            1
        );
    }
}

#[test]
fn the_watchdog_answers_held_requests_whose_body_envoy_keeps_back() {
    let (fake, mut root) = configured(json!({}));
    let mut ex = exchange(&fake, &root, 9);
    fake.request(9, "POST", "/consent", &[("accept", "text/html")]);
    assert_eq!(ex.on_request_headers(false), Action::Pause);
    // Envoy received body bytes but does not hand them over.
    fake.with_request(|r| r.total_size = Some(180));
    root.on_tick();
    assert!(fake.sent(9).is_none(), "within the grace period");
    fake.now_ms.set(fake.now_ms.get() + GRACE_MS);
    root.on_tick();
    let all = fake.requests.borrow();
    let (status, headers, _) = all.get(&9).unwrap().sent.clone().unwrap();
    assert_eq!(status, 503);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("text/html")));
    assert_eq!(
        root.vm().unwrap().body_mode.get(),
        Mode::Refuse(Why::NotDelivered)
    );
    assert_eq!(fake.effective.get(), 1, "back on the root context");
}

#[test]
fn a_body_over_the_limit_is_refused_with_413() {
    let (fake, root) = configured(json!({"max_body_bytes": 1024}));
    let mut ex = exchange(&fake, &root, 4);
    fake.request(4, "POST", "/token", &[]);
    assert_eq!(ex.on_request_headers(false), Action::Pause);
    assert_eq!(ex.on_request_body(2048, false), Action::Pause);
    assert_eq!(fake.sent(4).unwrap().0, 413);
}

#[test]
fn guarded_paths_need_a_token_and_public_ones_go_on_canonical() {
    let (fake, mut root) = configured(json!({"public_paths": ["/healthz"]}));
    let mut ex = exchange(&fake, &root, 5);
    fake.request(5, "GET", "/admin", &[]);
    assert_eq!(ex.on_request_headers(true), Action::Pause);
    assert_eq!(fake.sent(5).unwrap().0, 401);

    let mut ex = exchange(&fake, &root, 6);
    fake.request(6, "GET", "/health%7A", &[("x-mcpgate-sub", "admin")]);
    assert_eq!(ex.on_request_headers(true), Action::Continue);
    fake.with_request(|r| assert!(r.sent.is_none()));
    assert_eq!(fake.header("x-mcpgate-sub"), None);
    assert_eq!(fake.header(":path").as_deref(), Some("/healthz"));
    assert_eq!(
        fake.metric("mcpgate.requests_allowed"),
        0,
        "counted in the VM until its tick"
    );
    root.on_tick();
    assert_eq!(fake.metric("mcpgate.requests_allowed"), 1);
    root.on_tick();
    assert_eq!(
        fake.metric("mcpgate.requests_allowed"),
        1,
        "handed over once"
    );
}

/// A token in the IdP's shape naming a key nobody has.
fn unknown_kid_token() -> String {
    let b64 = |v: Value| mcpgate_filter::encoding::b64url_encode(v.to_string().as_bytes());
    format!(
        "{}.{}.c2ln",
        b64(json!({"alg": "RS256", "kid": "rotated"})),
        b64(json!({"sub": "m2m", "client_id": "m2m", "token_use": "access"}))
    )
}

#[test]
fn an_unknown_kid_refetches_the_jwks_once_while_the_request_and_its_body_wait() {
    let (fake, root) = configured(json!({
        "accepted_client_ids": ["m2m"],
        "accepted_client_scopes": [],
        "jwks_min_refetch_seconds": 0
    }));
    let auth = format!("Bearer {}", unknown_kid_token());
    let mut first = exchange(&fake, &root, 11);
    fake.request(11, "POST", "/mcp", &[("authorization", &auth)]);
    assert_eq!(first.on_request_headers(false), Action::Pause);
    {
        let calls = fake.calls.borrow();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].0, "idp");
        assert!(calls[0].1.contains(&(
            ":path".into(),
            "/us-east-1_Test/.well-known/jwks.json".into()
        )));
    }
    // Its body arrives while the fetch runs: held, not sent upstream undecided.
    assert_eq!(first.on_request_body(20, true), Action::Pause);
    // A second request with the same token meanwhile: the lease is taken, no second fetch.
    let mut second = exchange(&fake, &root, 12);
    fake.request(12, "POST", "/mcp", &[("authorization", &auth)]);
    second.on_request_headers(true);
    assert_eq!(fake.calls.borrow().len(), 1, "single flight");
    // The IdP answers without that key: the waiting request is refused, never forwarded.
    *fake.call_answer.borrow_mut() = (
        vec![(":status".into(), "200".into())],
        br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"other","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#.to_vec(),
    );
    fake.effective.set(11);
    first.on_call_response(1, fake.call_answer.borrow().1.len());
    let (status, _) = fake.sent(11).unwrap();
    assert_eq!(status, 401);
    assert!(!fake.with_request(|r| r.resumed));
    assert_eq!(fake.metric("mcpgate.jwks_fetch_ok"), 1);
    assert!(fake.shared.borrow().contains_key("mcpgate.jwks"));
}

#[test]
fn the_jwks_lease_lets_one_vm_fetch_and_every_vm_load_the_result() {
    let (fake, root) = configured(json!({"jwks_min_refetch_seconds": 0}));
    let vm = root.vm().unwrap();
    let other = Vm::new(
        fake.clone(),
        mcpgate_filter::Gate::new(vm.gate.config().clone()).unwrap(),
        vm.config.clone(),
    );
    assert!(vm.start_jwks_fetch(Trigger::Periodic).is_some());
    assert!(
        other.start_jwks_fetch(Trigger::Periodic).is_none(),
        "lease held"
    );
    *fake.call_answer.borrow_mut() = (
        vec![(":status".into(), "200".into())],
        br#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#.to_vec(),
    );
    vm.complete_jwks_fetch(fake.call_answer.borrow().1.len());
    assert!(vm.jwks.borrow().copy.is_loaded());
    assert!(
        other.jwks.borrow_mut().sync(&*fake),
        "the other VM loads it"
    );
    assert!(other.jwks.borrow().copy.is_loaded());
    // Fresh now: no periodic refetch until the refresh period has passed.
    assert!(other.start_jwks_fetch(Trigger::Periodic).is_none());
}

#[test]
fn a_failed_jwks_fetch_keeps_serving_nothing_new_and_releases_the_lease() {
    let (fake, root) = configured(json!({"jwks_min_refetch_seconds": 30}));
    let vm = root.vm().unwrap();
    assert!(vm.start_jwks_fetch(Trigger::UnknownKid).is_some());
    *fake.call_answer.borrow_mut() = (vec![(":status".into(), "503".into())], Vec::new());
    vm.complete_jwks_fetch(0);
    assert!(!vm.jwks.borrow().copy.is_loaded());
    assert_eq!(fake.metric("mcpgate.jwks_fetch_failed"), 1);
    // Released: without keys the empty-set retry pace (2 s) applies.
    assert!(vm.start_jwks_fetch(Trigger::UnknownKid).is_none());
    fake.now_ms.set(fake.now_ms.get() + 2000);
    assert!(vm.start_jwks_fetch(Trigger::UnknownKid).is_some());
}

// ---- MCP POSTs under tool_rules ----

struct Counter(u8);

impl mcpgate_filter::Random for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

/// An access token of the proxy's own for `scope`, minted by the VM's core.
fn own_token(fake: &Fake, root: &Root, scope: &str) -> String {
    let vm = root.vm().unwrap();
    let subject = mcpgate_filter::access_token::Subject {
        client_id: "client".into(),
        sub: "user-1".into(),
        scope: scope.into(),
        username: Some("alice".into()),
        groups: vec!["admins".into()],
        ..Default::default()
    };
    let mut rng = Counter(0);
    let mut env = mcpgate_filter::Env {
        now: fake.now_ms.get() / 1000,
        random: &mut rng,
        upstream_keys: None,
        store: false,
        native_rsa: None,
        cache: None,
    };
    mcpgate_filter::access_token::mint(&vm.gate, &subject, 3600, &mut env).unwrap()
}

fn tool_rules() -> Value {
    json!({
        "tool_rules": [{"name": "echo", "scopes": ["profile"]}],
        "filter_tools_list": true,
        "store": "none",
    })
}

fn call(id: u32, tool: &str) -> Vec<u8> {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool}})
        .to_string()
        .into_bytes()
}

#[test]
fn an_mcp_post_under_tool_rules_is_held_and_goes_upstream_with_its_body() {
    let (fake, root) = configured(tool_rules());
    let auth = format!("Bearer {}", own_token(&fake, &root, "openid"));
    let mut ex = exchange(&fake, &root, 21);
    fake.request(21, "POST", "/mcp", &[("authorization", &auth)]);
    assert_eq!(
        ex.on_request_headers(false),
        Action::Pause,
        "held at its headers"
    );
    let body = call(1, "whoami");
    fake.with_request(|r| r.body = body[..10].to_vec());
    assert_eq!(ex.on_request_body(10, false), Action::Pause, "buffered");
    fake.with_request(|r| r.body = body.clone());
    assert_eq!(
        ex.on_request_body(body.len(), true),
        Action::Continue,
        "decided: the buffered body goes on"
    );
    fake.with_request(|r| {
        assert!(r.sent.is_none());
        assert_eq!(r.body, body, "the body is left as it came");
    });
    assert_eq!(fake.header("authorization"), None);
    assert_eq!(fake.header("x-mcpgate-sub").as_deref(), Some("user-1"));
    assert!(root.vm().unwrap().held.borrow().is_empty());

    // A call the rules refuse is answered from the body: 403 with the scopes to ask for.
    let mut ex = exchange(&fake, &root, 22);
    fake.request(22, "POST", "/mcp", &[("authorization", &auth)]);
    assert_eq!(ex.on_request_headers(false), Action::Pause);
    let body = call(2, "echo");
    fake.with_request(|r| r.body = body.clone());
    assert_eq!(ex.on_request_body(body.len(), true), Action::Pause);
    let all = fake.requests.borrow();
    let (status, headers, sent) = all.get(&22).unwrap().sent.clone().unwrap();
    assert_eq!(status, 403);
    let www = &headers
        .iter()
        .find(|(k, _)| k == "www-authenticate")
        .unwrap()
        .1;
    assert!(www.contains("scope=\"openid profile\""), "{www}");
    let sent: Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(sent["id"], 2);
    assert!(!all.get(&22).unwrap().resumed, "never sent upstream");
    drop(all);
    assert_eq!(fake.metric("mcpgate.requests_denied.tool_scope"), 1);
}

#[test]
fn without_tool_rules_mcp_posts_stream_through() {
    let (fake, root) = configured(json!({"store": "none"}));
    let auth = format!("Bearer {}", own_token(&fake, &root, "openid"));
    let mut ex = exchange(&fake, &root, 23);
    fake.request(23, "POST", "/mcp", &[("authorization", &auth)]);
    assert_eq!(ex.on_request_headers(false), Action::Continue);
    assert_eq!(ex.on_request_body(5, true), Action::Continue);
}

#[test]
fn an_mcp_body_over_its_limit_is_413_in_json_rpc() {
    let mut extra = tool_rules();
    extra["max_mcp_body_bytes"] = json!(1024);
    let (fake, root) = configured(extra);
    let mut ex = exchange(&fake, &root, 24);
    fake.request(24, "POST", "/mcp", &[("authorization", "Bearer x")]);
    assert_eq!(ex.on_request_headers(false), Action::Pause);
    assert_eq!(ex.on_request_body(2048, false), Action::Pause);
    let (status, body) = fake.sent(24).unwrap();
    assert_eq!(status, 413);
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["error"]["code"], -32600);
}

#[test]
fn mcp_posts_under_tool_rules_are_refused_where_envoy_cannot_hold_them() {
    let mut extra = tool_rules();
    extra["allow_on_headers_stop_iteration"] = json!(false);
    let (fake, root) = configured(extra);
    let mut ex = exchange(&fake, &root, 25);
    fake.request(25, "POST", "/mcp", &[("authorization", "Bearer x")]);
    assert_eq!(ex.on_request_headers(false), Action::Pause);
    let (status, body) = fake.sent(25).unwrap();
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], -32603, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("MCP request bodies"));
    // GETs (the SSE stream) are not held.
    let mut ex = exchange(&fake, &root, 26);
    fake.request(26, "GET", "/mcp", &[]);
    assert_eq!(ex.on_request_headers(true), Action::Pause);
    assert_eq!(fake.sent(26).unwrap().0, 401);
}

/// A forwarded `tools/list` (id 5) through an exchange; returns the exchange.
fn tools_list(fake: &Rc<Fake>, root: &Root, id: u32) -> Exchange {
    let auth = format!("Bearer {}", own_token(fake, root, "openid"));
    let mut ex = exchange(fake, root, id);
    fake.request(
        id,
        "POST",
        "/mcp",
        &[("authorization", &auth), ("accept-encoding", "gzip")],
    );
    assert_eq!(ex.on_request_headers(false), Action::Pause);
    let body = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}).to_string();
    fake.with_request(|r| r.body = body.as_bytes().to_vec());
    assert_eq!(ex.on_request_body(body.len(), true), Action::Continue);
    assert_eq!(fake.header("accept-encoding"), None);
    ex
}

fn tools_answer() -> String {
    json!({"jsonrpc": "2.0", "id": 5, "result": {"tools": [
        {"name": "whoami"}, {"name": "echo"}, {"name": "count"}
    ]}})
    .to_string()
}

fn tool_names(json_text: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(json_text).unwrap();
    v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_json_tools_list_answer_is_buffered_and_filtered() {
    let (fake, root) = configured(tool_rules());
    let mut ex = tools_list(&fake, &root, 27);
    let answer = tools_answer();
    fake.with_request(|r| {
        r.response = vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "application/json".into()),
            ("content-length".into(), answer.len().to_string()),
        ]
    });
    assert_eq!(ex.on_response_headers(), Action::Continue);
    fake.with_request(|r| assert!(!r.response.iter().any(|(k, _)| k == "content-length")));
    fake.with_request(|r| r.response_body = answer.as_bytes()[..20].to_vec());
    assert_eq!(ex.on_response_body(20, false), Action::Pause, "buffered");
    fake.with_request(|r| r.response_body = answer.as_bytes().to_vec());
    assert_eq!(ex.on_response_body(answer.len(), true), Action::Continue);
    let out = fake.with_request(|r| String::from_utf8(r.response_body.clone()).unwrap());
    assert_eq!(tool_names(&out), ["whoami", "count"], "echo needs profile");
}

#[test]
fn an_sse_tools_list_answer_is_rewritten_as_it_streams() {
    let (fake, root) = configured(tool_rules());
    let mut ex = tools_list(&fake, &root, 28);
    fake.with_request(|r| {
        r.response = vec![
            (":status".into(), "200".into()),
            ("content-type".into(), "text/event-stream".into()),
        ]
    });
    assert_eq!(ex.on_response_headers(), Action::Continue);
    let stream = format!(
        "event: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}}\n\nevent: message\ndata: {}\n\n",
        tools_answer()
    );
    let mut sent = Vec::new();
    for (i, chunk) in stream.as_bytes().chunks(25).enumerate() {
        let last = (i + 1) * 25 >= stream.len();
        fake.with_request(|r| r.response_body = chunk.to_vec());
        assert_eq!(
            ex.on_response_body(chunk.len(), last),
            Action::Continue,
            "never buffered by Envoy"
        );
        sent.extend(fake.with_request(|r| r.response_body.clone()));
    }
    let sent = String::from_utf8(sent).unwrap();
    assert!(sent.starts_with(
        "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\"}\n\n"
    ));
    let data = sent.rsplit("data: ").next().unwrap().trim_end();
    assert_eq!(tool_names(data), ["whoami", "count"]);
}

#[test]
fn other_answers_are_not_touched() {
    let (fake, root) = configured(tool_rules());
    let mut ex = tools_list(&fake, &root, 29);
    fake.with_request(|r| {
        r.response = vec![
            (":status".into(), "500".into()),
            ("content-type".into(), "application/json".into()),
            ("content-length".into(), "2".into()),
        ]
    });
    assert_eq!(ex.on_response_headers(), Action::Continue);
    fake.with_request(|r| r.response_body = b"{}".to_vec());
    assert_eq!(ex.on_response_body(2, true), Action::Continue);
    fake.with_request(|r| {
        assert!(r.response.iter().any(|(k, _)| k == "content-length"));
        assert_eq!(r.response_body, b"{}");
    });
}

#[test]
fn once_a_body_was_delivered_held_requests_are_not_watched() {
    let (fake, root) = configured(json!({}));
    let vm = root.vm().unwrap();
    let mut first = exchange(&fake, &root, 31);
    fake.request(31, "POST", "/revoke", &[]);
    assert_eq!(first.on_request_headers(false), Action::Pause);
    assert!(!vm.held.borrow().is_empty(), "watched until proven");
    fake.with_request(|r| r.body = b"token=x".to_vec());
    first.on_request_body(7, true);
    assert!(vm.bodies_delivered.get());
    let mut second = exchange(&fake, &root, 32);
    fake.request(32, "POST", "/revoke", &[]);
    assert_eq!(second.on_request_headers(false), Action::Pause);
    assert!(vm.held.borrow().is_empty(), "no longer watched");
}

// ---- the fleet store (store: "dynamodb") ----

use crate::dynamodb::requests::FEED_PK;
use crate::vm::StoreStep;
use proxy_wasm::traits::Context as _;

fn dynamodb_config(extra: Value) -> Value {
    let mut c = json!({
        "store": "dynamodb",
        "dynamodb": {"table": "mcpgate", "region": "eu-central-1",
                     "endpoint": "http://ddb.test", "sts_endpoint": "http://sts.test",
                     "files_cluster": "files"},
        "clusters": {"idp.test": "idp", "ddb.test": "dynamodb", "sts.test": "sts"},
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        c[k] = v.clone();
    }
    c
}

/// A root context with the fleet store and this VM environment.
fn fleet_configured(extra: Value, env: &[(&str, &str)]) -> (Rc<Fake>, Root, bool) {
    let fake = Fake::with_config(&config(dynamodb_config(extra)));
    for (k, v) in env {
        fake.env.borrow_mut().insert(k.to_string(), v.to_string());
    }
    let mut root = Root::with_host(1, fake.clone());
    let ok = root.on_configure(0);
    (fake, root, ok)
}

const STATIC_KEYS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
    ("AWS_SECRET_ACCESS_KEY", "secret"),
];

fn header_of(headers: &Headers, name: &str) -> String {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn answer(fake: &Fake, status: u16, body: &str) -> usize {
    *fake.call_answer.borrow_mut() = (
        vec![(":status".into(), status.to_string())],
        body.as_bytes().to_vec(),
    );
    body.len()
}

#[test]
fn the_fleet_store_is_refused_without_credentials_or_clusters() {
    let (_, _, ok) = fleet_configured(json!({}), &[]);
    assert!(!ok, "no AWS credentials in the VM environment");
    let (_, _, ok) = fleet_configured(json!({"clusters": {"idp.test": "idp"}}), STATIC_KEYS);
    assert!(!ok, "no cluster for the DynamoDB endpoint");
    let irsa = [
        ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/token"),
    ];
    let no_files = json!({"dynamodb": {"table": "mcpgate", "region": "eu-central-1",
        "endpoint": "http://ddb.test", "sts_endpoint": "http://sts.test"}});
    let (_, _, ok) = fleet_configured(no_files, &irsa);
    assert!(!ok, "a token file needs the files cluster");
    let (_, _, ok) = fleet_configured(json!({}), &irsa);
    assert!(ok);
    let (_, _, ok) = fleet_configured(json!({"dynamodb": {"table": "x"}}), STATIC_KEYS);
    assert!(!ok, "region required");
    let (_, _, ok) = fleet_configured(json!({"store": "shared_data"}), STATIC_KEYS);
    assert!(!ok, "the dynamodb key without that store");
}

#[test]
fn a_store_call_holds_the_request_until_dynamodb_answers() {
    let (fake, root, ok) = fleet_configured(json!({"rate_limit_per_address": 1}), STATIC_KEYS);
    assert!(ok);
    fake.properties
        .borrow_mut()
        .insert("source.address".into(), b"10.0.0.7:5555".to_vec());
    let body = json!({"redirect_uris": ["http://127.0.0.1:3000/cb"]}).to_string();
    let register = |id: u32| {
        let mut ex = exchange(&fake, &root, id);
        fake.request(
            id,
            "POST",
            "/register",
            &[("content-type", "application/json")],
        );
        assert_eq!(ex.on_request_headers(false), Action::Pause);
        fake.with_request(|r| r.body = body.as_bytes().to_vec());
        assert_eq!(ex.on_request_body(body.len(), true), Action::Pause);
        ex
    };
    let mut first = register(21);
    assert!(fake.sent(21).is_none(), "held while the store answers");
    {
        let calls = fake.calls.borrow();
        let (cluster, headers) = calls.last().unwrap();
        assert_eq!(cluster, "dynamodb");
        assert_eq!(header_of(headers, ":authority"), "ddb.test");
        assert_eq!(
            header_of(headers, "x-amz-target"),
            "DynamoDB_20120810.UpdateItem"
        );
        let auth = header_of(headers, "authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(
            auth.contains("/eu-central-1/dynamodb/aws4_request"),
            "{auth}"
        );
        assert!(!auth.contains("secret"));
    }
    let window = 1_800_000_000 / 60;
    let n = answer(
        &fake,
        200,
        &format!(r#"{{"Attributes":{{"w{window}":{{"N":"1"}}}}}}"#),
    );
    fake.effective.set(21);
    first.on_call_response(1, n);
    assert_eq!(fake.sent(21).unwrap().0, 201, "allowed, answered");
    assert_eq!(fake.metric("mcpgate.store_calls_ok"), 1);

    // Over the limit: 429, and the count taken back without waiting.
    let mut second = register(22);
    let calls_before = fake.calls.borrow().len();
    let n = answer(
        &fake,
        200,
        &format!(r#"{{"Attributes":{{"w{window}":{{"N":"2"}}}}}}"#),
    );
    fake.effective.set(22);
    second.on_call_response(u32::try_from(calls_before).unwrap(), n);
    assert_eq!(fake.sent(22).unwrap().0, 429);
    let refund = fake.call_bodies.borrow().last().cloned().unwrap();
    assert!(String::from_utf8_lossy(&refund).contains(r#""N":"-1""#));
    assert_eq!(fake.calls.borrow().len(), calls_before + 1);

    // No answer (timeout, connection refused): the limiter fails open.
    let mut third = register(23);
    let n = answer(&fake, 0, "");
    fake.effective.set(23);
    third.on_call_response(u32::try_from(fake.calls.borrow().len()).unwrap(), n);
    assert_eq!(fake.sent(23).unwrap().0, 201);
    assert_eq!(fake.metric("mcpgate.store_calls_failed"), 1);
}

#[test]
fn the_revocation_check_reads_the_replica_and_never_calls_out() {
    let (fake, root, ok) = fleet_configured(json!({}), STATIC_KEYS);
    assert!(ok);
    let vm = root.vm().unwrap();
    let check = StoreOp::IsRevoked {
        key: "mcpgate:family:f1".into(),
    };
    assert!(matches!(
        vm.store(&check),
        StoreStep::Done(Reply::Store(false))
    ));
    let id = crate::store::entry_id("mcpgate:family:f1");
    fake.store_revoked(&id, 1_800_000_100, 1_800_000_000);
    assert!(matches!(
        vm.store(&check),
        StoreStep::Done(Reply::Store(true))
    ));
    assert!(fake.calls.borrow().is_empty(), "no network on the hot path");
    // Everything else goes to DynamoDB.
    let put = StoreOp::PutIfAbsent {
        key: "mcpgate:code:c".into(),
        ttl: 300,
    };
    assert!(matches!(vm.store(&put), StoreStep::Sent { .. }));
}

#[test]
fn the_feed_is_polled_from_a_tick_into_the_replica() {
    let (fake, mut root, ok) = fleet_configured(json!({}), STATIC_KEYS);
    assert!(ok);
    root.on_tick();
    let (cluster, headers) = fake.calls.borrow().last().cloned().unwrap();
    assert_eq!(cluster, "dynamodb");
    assert_eq!(
        header_of(&headers, "x-amz-target"),
        "DynamoDB_20120810.Query"
    );
    let token = u32::try_from(fake.calls.borrow().len()).unwrap();
    // Another VM's tick meanwhile: the poll is leased, no second query.
    let vm = root.vm().unwrap();
    let mut other = crate::dynamodb::Background::default();
    let client = vm.dynamodb.as_ref().unwrap();
    other.tick(&crate::dynamodb::Ctx {
        host: &*fake,
        routes: &vm.config,
        client,
        metrics: &vm.metrics,
    });
    assert_eq!(u32::try_from(fake.calls.borrow().len()).unwrap(), token);
    let id = crate::store::entry_id("mcpgate:family:gone");
    let page = format!(
        r#"{{"Items":[{{"pk":{{"S":"{FEED_PK}"}},"sk":{{"S":"0001800000000000#{id}"}},"exp":{{"N":"1800009999"}}}}]}}"#
    );
    let n = answer(&fake, 200, &page);
    root.on_http_call_response(token, 0, n, 0);
    assert_eq!(fake.replica.borrow().get(&id), Some(&1_800_009_999));
    assert_eq!(fake.metric("mcpgate.revocations_replicated"), 1);
    // Not due again before revocation_poll_ms.
    let calls = fake.calls.borrow().len();
    root.on_tick();
    assert_eq!(fake.calls.borrow().len(), calls);
    fake.now_ms.set(fake.now_ms.get() + 1000);
    root.on_tick();
    assert_eq!(fake.calls.borrow().len(), calls + 1, "polled again");
    let body = String::from_utf8(fake.call_bodies.borrow().last().cloned().unwrap()).unwrap();
    assert!(
        body.contains(&format!("{:016}", 1_800_000_001_000u64 - 60_000)),
        "incremental polls look back a minute: {body}"
    );
}

#[test]
fn web_identity_credentials_come_from_sts_and_are_refreshed_before_expiry() {
    let irsa = [
        ("AWS_ROLE_ARN", "arn:aws:iam::1:role/mcpgate"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks/token"),
    ];
    let (fake, mut root, ok) = fleet_configured(json!({}), &irsa);
    assert!(ok);
    let vm = root.vm().cloned().unwrap();
    let put = StoreOp::PutIfAbsent {
        key: "mcpgate:code:c".into(),
        ttl: 300,
    };
    assert!(
        matches!(vm.store(&put), StoreStep::Done(Reply::StoreFailed)),
        "no credentials yet: fail (the core fails closed)"
    );
    let sts_answer = |expires: &str| {
        format!(
            "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
             <AccessKeyId>ASIATEMP</AccessKeyId><SecretAccessKey>s</SecretAccessKey>\
             <SessionToken>session</SessionToken><Expiration>{expires}</Expiration>\
             </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
        )
    };
    let fetch = |fake: &Rc<Fake>, root: &mut Root, expires: &str| {
        let before = fake.calls.borrow().len();
        root.on_tick();
        let calls = fake.calls.borrow().clone();
        let file = (before..calls.len())
            .find(|i| calls[*i].0 == "files")
            .expect("a token file read");
        assert_eq!(
            header_of(&calls[file].1, ":path"),
            "/var/run/secrets/eks/token"
        );
        let n = answer(fake, 200, "projected.jwt.token\n");
        root.on_http_call_response(u32::try_from(file + 1).unwrap(), 0, n, 0);
        let sts_call = fake.calls.borrow().len();
        assert_eq!(fake.calls.borrow()[sts_call - 1].0, "sts");
        let sts = String::from_utf8(fake.call_bodies.borrow()[sts_call - 1].clone()).unwrap();
        assert!(sts.contains("Action=AssumeRoleWithWebIdentity"), "{sts}");
        assert!(
            sts.ends_with("WebIdentityToken=projected.jwt.token"),
            "{sts}"
        );
        let n = answer(fake, 200, &sts_answer(expires));
        root.on_http_call_response(u32::try_from(sts_call).unwrap(), 0, n, 0);
    };
    // 1_800_000_000 = 2027-01-15T08:00:00Z; these expire an hour later.
    fetch(&fake, &mut root, "2027-01-15T09:00:00Z");
    let StoreStep::Sent { .. } = vm.store(&put) else {
        panic!("signed with the STS credentials");
    };
    let (_, headers) = fake.calls.borrow().last().cloned().unwrap();
    assert!(header_of(&headers, "authorization").contains("Credential=ASIATEMP/"));
    assert_eq!(header_of(&headers, "x-amz-security-token"), "session");
    // Fresh: ticks fetch nothing (the feed poll aside).
    let creds_calls = |fake: &Fake| {
        fake.calls
            .borrow()
            .iter()
            .filter(|(c, _)| c == "files")
            .count()
    };
    root.on_tick();
    assert_eq!(creds_calls(&fake), 1);
    // Five minutes before expiry the token file is read again and exchanged again.
    fake.now_ms.set(fake.now_ms.get() + (3600 - 300) * 1000);
    fetch(&fake, &mut root, "2027-01-15T10:00:00Z");
    assert_eq!(creds_calls(&fake), 2);
}

/// The guard's forward on the MCP path: the request as the origin gets it, one host call per
/// change.
#[test]
fn the_forward_removes_the_token_and_spoofs_and_sets_the_identity_and_path() {
    let (fake, root) = configured(json!({}));
    let auth = format!("Bearer {}", own_token(&fake, &root, "openid"));
    let mut ex = exchange(&fake, &root, 31);
    fake.request(
        31,
        "GET",
        "/mcp/%78",
        &[
            ("authorization", &auth),
            ("x-mcpgate-sub", "spoofed"),
            ("x-mcpgate-groups", "spoofed-group"),
            ("accept", "text/event-stream"),
            ("accept", "application/json"),
        ],
    );
    assert_eq!(ex.on_request_headers(true), Action::Continue);
    let (headers, removed) = fake.with_request(|r| (r.headers.clone(), r.removed.clone()));
    let get = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert!(get("authorization").is_empty(), "no token passthrough");
    assert_eq!(
        get("x-mcpgate-sub"),
        ["user-1"],
        "the spoofed value is gone"
    );
    assert_eq!(get("x-mcpgate-groups"), ["admins"]);
    assert_eq!(get(":path"), ["/mcp/x"], "the canonical path");
    assert_eq!(get("accept").len(), 2, "repeated headers stay");
    assert_eq!(
        removed,
        ["x-mcpgate-sub", "x-mcpgate-groups", "authorization"],
        "only headers the request has are removed"
    );
}

/// One request, from its headers to its end: the host calls it made, in order, and the
/// allocations the filter made in its callbacks (the fake's own work not counted; the SDK's
/// box for the request's context, made before them, is the SDK's).
fn trace(
    fake: &Rc<Fake>,
    root: &Root,
    id: u32,
    method: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (Vec<&'static str>, usize) {
    let mut ex = exchange(fake, root, id);
    fake.request(id, method, "/mcp", headers);
    if let Some(b) = body {
        fake.with_request(|r| r.body = b.to_vec());
    }
    fake.with_request(|r| r.response = vec![(":status".into(), "200".into())]);
    fake.crossings.borrow_mut().clear();
    let (allocations, ()) = allocations::count(|| {
        match body {
            None => assert_eq!(ex.on_request_headers(true), Action::Continue),
            Some(b) => {
                ex.on_request_headers(false);
                assert_eq!(ex.on_request_body(b.len(), true), Action::Continue);
            }
        }
        assert_eq!(ex.on_response_headers(), Action::Continue);
        drop(ex);
    });
    (fake.crossings.borrow().clone(), allocations)
}

/// What crosses the proxy-wasm ABI per request. A crossing costs Envoy 1k (the clock, a
/// counter) to 3.3k instructions (a header written) and the body's read ≈ 9.6k
/// (bench/RESULTS.md, `--instructions`), so a new host call on the hot path must show up
/// here, not as noise in a benchmark. A cached token: read the header map, read the clock,
/// remove the token, set each identity header (one call each: writing the whole map back
/// costs Envoy more); the request is counted in the VM (handed to Envoy on the tick).
/// `tool_rules` add one read of the body.
#[test]
fn a_cached_request_crosses_the_abi_once_per_header_it_changes() {
    let hot = [
        "request_headers",
        "now_ms",
        "remove_request_header",
        // sub, username, groups, scope, client id
        "set_request_header",
        "set_request_header",
        "set_request_header",
        "set_request_header",
        "set_request_header",
    ];
    let (fake, root) = configured(json!({"store": "none"}));
    let auth = format!("Bearer {}", own_token(&fake, &root, "openid"));
    let h = [("authorization", auth.as_str())];
    let first = trace(&fake, &root, 31, "GET", &h, None).0;
    assert!(
        first.len() > hot.len(),
        "the first sight of a token does more: {first:?}"
    );
    assert_eq!(trace(&fake, &root, 32, "GET", &h, None).0, hot);
    let body = call(1, "whoami");
    assert_eq!(
        trace(&fake, &root, 33, "POST", &h, Some(&body)).0,
        hot,
        "without rules the body is not read"
    );

    let (fake, root) = configured(tool_rules());
    let auth = format!("Bearer {}", own_token(&fake, &root, "openid"));
    let h = [("authorization", auth.as_str())];
    trace(&fake, &root, 34, "POST", &h, Some(&body));
    let mut with_body = hot.to_vec();
    with_body.insert(1, "request_body");
    assert_eq!(
        trace(&fake, &root, 35, "POST", &h, Some(&body)).0,
        with_body
    );
}

/// Counts the allocations the filter makes on this thread (the test binary's allocator).
mod allocations {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static COUNTING: Cell<bool> = const { Cell::new(false) };
        static COUNT: Cell<usize> = const { Cell::new(0) };
    }

    struct Counting;

    // SAFETY: every call is passed to the system allocator unchanged; counting touches only
    // two thread-local cells that never allocate.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if COUNTING.try_with(Cell::get).unwrap_or(false) {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            }
            // SAFETY: the caller's contract, passed on.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's contract, passed on.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static COUNTING_ALLOCATOR: Counting = Counting;

    /// The allocations `f` makes on this thread, and its result.
    pub fn count<R>(f: impl FnOnce() -> R) -> (usize, R) {
        let before = COUNT.with(Cell::get);
        COUNTING.with(|c| c.set(true));
        let r = f();
        COUNTING.with(|c| c.set(false));
        (COUNT.with(Cell::get) - before, r)
    }

    /// While it lives, allocations are not counted (the fake host's own work).
    pub struct Uncounted(bool);

    impl Uncounted {
        pub fn new() -> Self {
            Self(COUNTING.with(|c| c.replace(false)))
        }
    }

    impl Drop for Uncounted {
        fn drop(&mut self) {
            COUNTING.with(|c| c.set(self.0));
        }
    }
}

/// Issue 20: a token seen before costs no allocation in the filter. The identity and its
/// header list are shared with the token cache, the header map is read in the buffer Envoy
/// filled (the fake's serializing it is not counted: Envoy does that), the core gets the
/// headers from the stack and the token's removal from a constant.
#[test]
fn a_cached_request_allocates_nothing_in_the_filter() {
    let (fake, root) = configured(json!({"store": "none"}));
    let auth = format!("Bearer {}", own_token(&fake, &root, "openid"));
    let h = [("authorization", auth.as_str())];
    let first = trace(&fake, &root, 41, "GET", &h, None).1;
    assert!(first > 10, "the first sight verifies and caches: {first}");
    assert_eq!(trace(&fake, &root, 42, "GET", &h, None).1, 0);
    let body = call(1, "whoami");
    assert_eq!(
        trace(&fake, &root, 43, "POST", &h, Some(&body)).1,
        0,
        "an MCP POST without tool_rules streams through"
    );
    let forged = [("authorization", auth.as_str()), ("x-mcpgate-sub", "admin")];
    assert!(
        trace(&fake, &root, 44, "GET", &forged, None).1 > 0,
        "a forged identity header is listed for removal (the counter counts)"
    );
}
