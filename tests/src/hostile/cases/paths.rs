//! Spellings of guarded, restricted and public paths (canonicalisation, deny by default),
//! and what the origin must have received afterwards.

use super::super::*;
use super::TapTarget as _;

/// Every spelling of a path that an origin may route as the MCP path, a group-rule prefix or
/// a public path: each is refused (400) or guarded (401 without a token, the verified
/// identity with one, 403 under a group rule), never forwarded unauthenticated. The stacks
/// run with `group_rules` `/mcp/ops` → group `ops` (alice is not in it) and `public_paths`
/// `/healthz` ([`hostile_path_config`]).
pub(crate) fn path_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Paths as P;
    let worker = ctx.platform == Platform::Worker;
    let mut v = Vec::new();
    let ambiguous = oauth_d(400, "invalid_request", "ambiguous request path");
    let as_alice = Expect::Upstream(vec![("x-mcpgate-sub", Some(ctx.alice_sub.clone()))]);
    let group = Expect::Bearer {
        status: 403,
        error: Some("insufficient_scope"),
        desc: Some("group membership required"),
    };
    let bearer = format!("Bearer {}", ctx.access_token);
    let anonymous = |target: &str| mcp_req(None).tap_target(target);
    let alice = |target: &str| mcp_req(Some(bearer.as_bytes())).tap_target(target);

    // The MCP path with letters encoded (each one, upper and lower hex, all of them): the
    // same path to a decoding origin, so guarded, and forwarded as `/mcp`, which both
    // origins serve.
    for p in percent_spellings("/mcp") {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            anonymous(&p),
            no_token(),
        ));
        v.push(Case::new(
            P,
            format!("{p} with a token"),
            alice(&p),
            as_alice.clone(),
        ));
    }
    // Other cases: the MCP path to an origin that ignores case. Forwarded as spelled, which
    // a case-sensitive origin does not serve (its own 404, or Starlette's 307 to `/mcp`).
    let case_sensitive_origin = Expect::OneOf(vec![
        as_alice.clone(),
        Expect::Status(404),
        Expect::Status(307),
    ]);
    for p in ["/MCP", "/Mcp", "/mCP", "/MCP/", "/%6D%43%50", "/Mcp/x"] {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            anonymous(p),
            no_token(),
        ));
        v.push(Case::new(
            P,
            format!("{p} with a token"),
            alice(p),
            case_sensitive_origin.clone(),
        ));
    }
    // Spellings origins read differently from each other: refused on every host.
    for p in [
        "/mc%2570",
        "/%256Dcp",
        "/mcp%252F",
        "/mcp;x=1",
        "/mcp;",
        "/;x/mcp",
        "/mcp;jsessionid=1/x",
        "/mcp%3Bx",
        "/mcp%2F",
        "/%2Fmcp",
        "/%2fmcp",
        "/mcp%2fadmin",
        "/mcp%00",
        "/mcp%20",
        "/%20/mcp",
        "/mcp%09",
        "/mcp%0A",
        "/mcp%5C",
        "/mcp%5cadmin",
        "/%C0%AE%C0%AE/mcp",
        "/%C0%AF/mcp",
        "/mcp%C0%AF",
        "/%E0%80%AE%E0%80%AE/mcp",
        "/%C1%9C/mcp",
        "/mcp%C3",
        "/mcp.",
        "/mcp%2E",
        "/mc%70.",
        "/mcp%",
        "/mcp%G0",
    ] {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            anonymous(p),
            ambiguous.clone(),
        ));
        v.push(Case::new(
            P,
            format!("{p} with a token"),
            alice(p),
            ambiguous.clone(),
        ));
    }
    // Backslashes and dot segments: WHATWG URL parsing in workerd reads `\` as `/` and
    // resolves `.` segments before the Worker runs; what it routes is then guarded.
    for (p, resolved_anonymous, resolved_alice) in [
        ("/mcp\\admin", no_token(), case_sensitive_origin.clone()),
        ("/mcp/.", no_token(), case_sensitive_origin.clone()),
        ("/mcp/%2e", no_token(), case_sensitive_origin.clone()),
        ("/x/..\\mcp", no_token(), as_alice.clone()),
        ("/healthz/.", no_token(), case_sensitive_origin.clone()),
    ] {
        let envoy_expect = Expect::OneOf(vec![ambiguous.clone(), Expect::Status(400)]);
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            anonymous(p),
            if worker {
                resolved_anonymous
            } else {
                envoy_expect.clone()
            },
        ));
        v.push(Case::new(
            P,
            format!("{p} with a token"),
            alice(p),
            if worker { resolved_alice } else { envoy_expect },
        ));
    }
    // The group rule `/mcp/ops`: every spelling is the restricted path (403), or refused.
    let mut restricted = percent_spellings("/mcp/ops");
    restricted.extend(
        [
            "/MCP/ops",
            "/mcp/OPS",
            "/Mcp/Ops/x",
            "/mcp/ops/",
            "/mcp/ops/x/y",
            "/m%63p/%6Fps",
        ]
        .map(String::from),
    );
    for p in &restricted {
        v.push(Case::new(
            P,
            format!("{p} as alice (not in ops)"),
            alice(p),
            group.clone(),
        ));
    }
    for p in [
        "/mcp/ops;x=1",
        "/mcp/ops.",
        "/mcp/ops%2F",
        "/mcp/o%2570s",
        "/mcp/ops%00",
    ] {
        v.push(Case::new(
            P,
            format!("{p} as alice"),
            alice(p),
            ambiguous.clone(),
        ));
    }
    for (p, resolved) in [
        ("/mcp/ops/.", group.clone()),
        ("/mcp/x/../ops", group.clone()),
    ] {
        v.push(Case::new(
            P,
            format!("{p} as alice"),
            alice(p),
            if worker { resolved } else { ambiguous.clone() },
        ));
    }
    // Whole segments: a longer name is another path (guarded, not restricted).
    v.push(Case::new(
        P,
        "/mcp/opsx as alice",
        alice("/mcp/opsx"),
        case_sensitive_origin.clone(),
    ));
    v.push(Case::new(
        P,
        "/mcp/opsx without a token",
        anonymous("/mcp/opsx"),
        no_token(),
    ));
    // The public path opens exactly itself; other spellings are guarded or refused.
    v.push(Case::new(
        P,
        "public /healthz",
        Req::get("/healthz"),
        Expect::Status(200),
    ));
    v.push(Case::new(
        P,
        "public /health%7A (the same path)",
        Req::get("/health%7A"),
        Expect::Status(200),
    ));
    for p in [
        "/HEALTHZ",
        "/Healthz",
        "/healthz/x",
        "/healthz/",
        "/healthzz",
        "/",
    ] {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            Req::get(p),
            no_token(),
        ));
    }
    for p in ["/healthz;x", "/healthz.", "/healthz%2F", "/healthz%00"] {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            Req::get(p),
            ambiguous.clone(),
        ));
    }
    // Deny by default: paths the origin may serve besides MCP need a token too.
    for p in [
        "/admin",
        "/favicon.ico",
        "/api/v1/x",
        "/.well-known/other",
        "/mcpx",
    ] {
        v.push(Case::new(
            P,
            format!("{p} without a token"),
            Req::get(p),
            no_token(),
        ));
    }
    v
}

/// `path` with each non-`/` character percent-encoded in turn (upper- and lower-case hex),
/// then with all of them encoded.
pub fn percent_spellings(path: &str) -> Vec<String> {
    let chars: Vec<char> = path.chars().collect();
    let mut out = Vec::new();
    for (i, c) in chars.iter().enumerate() {
        if *c == '/' {
            continue;
        }
        for enc in [format!("%{:02X}", *c as u32), format!("%{:02x}", *c as u32)] {
            let mut s: String = chars[..i].iter().collect();
            s.push_str(&enc);
            s.extend(&chars[i + 1..]);
            out.push(s);
        }
    }
    out.push(
        chars
            .iter()
            .map(|c| {
                if *c == '/' {
                    "/".to_owned()
                } else {
                    format!("%{:02X}", *c as u32)
                }
            })
            .collect(),
    );
    out.sort();
    out.dedup();
    out
}

/// After the suite: the origin received no request without a verified identity, except
/// those to the public path `/healthz` (which it must have received, canonical: the
/// `/health%7A` case arrives as `/healthz`).
pub async fn assert_origin_saw_only_verified(origin: &crate::origin::Origin) {
    let all = origin.requests().await.unwrap();
    let with_cookie: Vec<_> = all.iter().filter(|r| r.proxy_cookie).collect();
    assert!(
        with_cookie.is_empty(),
        "the {:?} origin received the proxy's own cookies: {with_cookie:?}",
        origin.kind()
    );
    let spoofed: Vec<_> = all
        .iter()
        .filter(|r| r.path == "/healthz" && r.identified)
        .collect();
    assert!(
        spoofed.is_empty(),
        "the {:?} origin received an identity header on the public path: {spoofed:?}",
        origin.kind()
    );
    let unauthenticated = origin.unauthenticated().await.unwrap();
    let (public, leaked): (Vec<_>, Vec<_>) = unauthenticated
        .into_iter()
        .partition(|r| r.path == "/healthz");
    assert!(
        leaked.is_empty(),
        "the {:?} origin received requests without a verified identity: {leaked:?}",
        origin.kind()
    );
    assert!(
        public.len() >= 2,
        "the public path's requests did not reach the origin: {public:?}"
    );
}

/// The path settings the hostile stacks run with (see [`path_cases`]).
pub fn hostile_path_config() -> Vec<(&'static str, Value)> {
    vec![
        (
            "group_rules",
            json!([{"path_prefix": "/mcp/ops", "groups": ["ops"]}]),
        ),
        ("public_paths", json!(["/healthz"])),
    ]
}
