//! What the origin learns besides the identity headers (issue 16): the IdP's token of the
//! user (`forward_upstream_token`), carried sealed in the proxy's access token and renewed by
//! the guard when it ends; and the identity assertion (`identity_assertion`), signed with a
//! key published in the proxy's JWKS and cached per verified token. Also the sizes these add
//! to the proxy's tokens.

extern crate std;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::Cell;
use serde_json::{json, Value};

use super::security::{token_response, IdpFn};
use super::{body_json, Final, World};
use crate::encoding::b64url_decode;
use crate::http::{Env, Forward, HttpRequest, HttpResponse, Outcome, Reply, Request};
use crate::jwt::tests::vectors::{self, NOW};
use crate::jwt::{Algorithm, KeySet};

const UPSTREAM: &str = "x-mcpgate-upstream-token";
const ASSERTION: &str = "x-mcpgate-assertion";
/// A Cognito refresh token is a JWE of about 1,800 characters.
fn cognito_refresh() -> String {
    "eyJjdHkiOiJKV1QiLCJlbmMiOiJBMjU2R0NNIiwiYWxnIjoiUlNBLU9BRVAifQ"
        .chars()
        .cycle()
        .take(1780)
        .collect()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&b64url_decode(payload).unwrap()).unwrap()
}

fn header_of(jwt: &str) -> Value {
    serde_json::from_slice(&b64url_decode(jwt.split('.').next().unwrap()).unwrap()).unwrap()
}

/// The headers the origin receives when the client sent `sent` (removals, then sets).
fn at_origin(f: &Forward, sent: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = sent
        .iter()
        .filter(|(k, _)| !f.remove_headers.iter().any(|r| r.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.to_ascii_lowercase(), String::from(*v)))
        .collect();
    for (k, v) in f.headers_to_set() {
        out.insert(k.clone(), v.clone());
    }
    out
}

fn set<'f>(f: &'f Forward, name: &str) -> Option<&'f str> {
    f.headers_to_set()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// An IdP whose access and ID tokens live `life` seconds from the world's clock (`now`),
/// numbered by `issued` (their `jti`), for `sub`; a refresh token at the code exchange.
fn short_lived<'a>(
    now: &'a Cell<u64>,
    issued: &'a Cell<u32>,
    life: u64,
) -> impl Fn(&HttpRequest) -> HttpResponse + 'a {
    move |req: &HttpRequest| {
        issued.set(issued.get() + 1);
        let n = issued.get();
        let mut access = vectors::cognito_access_claims();
        access["exp"] = json!(now.get() + life);
        access["iat"] = json!(now.get());
        access["jti"] = json!(format!("access-{n}"));
        let mut id = vectors::cognito_id_claims();
        id["exp"] = json!(now.get() + life);
        id["jti"] = json!(format!("id-{n}"));
        let code_exchange = String::from_utf8_lossy(&req.body).contains("authorization_code");
        let refresh = if code_exchange {
            json!(cognito_refresh())
        } else {
            Value::Null
        };
        token_response(
            &access,
            Some(&id),
            json!({"expires_in": life, "refresh_token": refresh}),
        )
    }
}

/// Signs in through `idp` and redeems the code: the client id and the token response.
fn sign_in(w: &mut World, idp: IdpFn) -> (String, Value) {
    let client = w.register();
    let code = w.login_with(idp, &client, &[]).unwrap();
    let r = w.redeem_with(idp, &client, &code);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    (client, body_json(&r))
}

fn mcp_with(w: &mut World, idp: IdpFn, token: &str) -> Final {
    let auth = format!("Bearer {token}");
    w.send_with(
        idp,
        "192.0.2.7",
        "POST",
        "/mcp",
        &[("authorization", &auth)],
        "{}",
    )
}

fn refreshes(w: &World) -> usize {
    w.fetches
        .iter()
        .filter(|f| String::from_utf8_lossy(&f.body).contains("grant_type=refresh_token"))
        .count()
}

// ---- forward_upstream_token ----

#[test]
fn the_idps_access_token_reaches_the_origin_and_the_client_sees_it_sealed_only() {
    let mut w = World::new(json!({"forward_upstream_token": "access"}));
    let idp = |r: &HttpRequest| {
        let code = String::from_utf8_lossy(&r.body).contains("authorization_code");
        let extra = if code {
            json!({"refresh_token": cognito_refresh()})
        } else {
            json!({"refresh_token": null})
        };
        token_response(
            &vectors::cognito_access_claims(),
            Some(&vectors::cognito_id_claims()),
            extra,
        )
    };
    let (client, t) = sign_in(&mut w, &idp);
    let upstream = vectors::rs256(&vectors::cognito_access_claims());
    let access = t["access_token"].as_str().unwrap().to_string();
    // The client's answer holds the IdP's token only sealed: not in clear, not in the
    // access token's readable claims, and not its refresh token.
    let body = serde_json::to_string(&t).unwrap();
    let payload = claims(&access).to_string();
    for secret in [upstream.as_str(), cognito_refresh().as_str()] {
        assert!(!body.contains(secret));
        assert!(!payload.contains(secret));
    }
    assert!(claims(&access)["upt"].is_string(), "{payload}");
    // The proxy's token ends a margin (30 s) and the leeway (30 s) before the IdP's: the
    // client's own refresh renews it, so the guard has no refresh token to carry.
    assert_eq!(t["expires_in"], json!(3600 - 60));
    let carried = crate::upstream_token::from_access_token(&w.gate, &access, NOW).unwrap();
    assert_eq!(carried.refresh, None);
    assert!(
        !format!("{carried:?}").contains(&upstream),
        "Debug hides it"
    );

    let f = mcp_with(&mut w, &idp, &access).forward();
    assert_eq!(set(&f, UPSTREAM), Some(upstream.as_str()));
    assert!(f.remove_headers.iter().any(|h| h == "authorization"));
    assert_eq!(refreshes(&w), 0);

    // After the client's refresh, the IdP's new token; the refresh token never carries one.
    let refresh = t["refresh_token"].as_str().unwrap();
    let r = w.refresh_with(&idp, &client, refresh);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let t2 = body_json(&r);
    let sealed_refresh: crate::records::Grant = crate::seal::unseal(
        &w.gate.ring,
        crate::seal::Kind::RefreshToken,
        t2["refresh_token"].as_str().unwrap(),
        NOW,
    )
    .unwrap();
    assert_eq!(sealed_refresh.upstream, None);
    let f = mcp_with(&mut w, &idp, t2["access_token"].as_str().unwrap()).forward();
    assert_eq!(set(&f, UPSTREAM), Some(upstream.as_str()));
}

#[test]
fn id_mode_forwards_the_id_token() {
    let mut w = World::new(json!({"forward_upstream_token": "id"}));
    let (_, t) = w.tokens();
    let f = w.mcp(t["access_token"].as_str().unwrap()).forward();
    let id = set(&f, UPSTREAM).unwrap();
    assert_eq!(id, vectors::rs256(&vectors::cognito_id_claims()));
    assert_eq!(claims(id)["token_use"], "id");
}

#[test]
fn none_sends_nothing_and_a_clients_own_copies_never_reach_the_origin() {
    let mut w = World::new(json!({"public_paths": ["/healthz"]}));
    let (_, t) = w.tokens();
    let auth = format!("Bearer {}", t["access_token"].as_str().unwrap());
    let sent = [
        ("authorization", auth.as_str()),
        (UPSTREAM, "forged"),
        (ASSERTION, "forged"),
    ];
    let f = w.send("POST", "/mcp", &sent, "{}").forward();
    let origin = at_origin(&f, &sent);
    assert!(!origin.contains_key(UPSTREAM), "{origin:?}");
    assert!(!origin.contains_key(ASSERTION), "{origin:?}");
    assert!(origin.contains_key("x-mcpgate-sub"));

    // Renamed headers are taken out too, on guarded and public paths, on or off.
    for on in [false, true] {
        let mut w = World::new(json!({
            "public_paths": ["/healthz"],
            "upstream_token_header": "X-Upstream-Auth",
            "identity_assertion_header": "x-id-assertion",
            "forward_upstream_token": if on { "access" } else { "none" },
            "identity_assertion": on,
        }));
        let (_, t) = w.tokens();
        let auth = format!("Bearer {}", t["access_token"].as_str().unwrap());
        for path in ["/mcp", "/healthz"] {
            let sent = [
                ("authorization", auth.as_str()),
                ("x-upstream-auth", "forged"),
                ("X_Id_Assertion", "forged"),
            ];
            let f = w.send("POST", path, &sent, "{}").forward();
            let origin = at_origin(&f, &sent);
            for name in ["x-upstream-auth", "x_id_assertion"] {
                let got = origin.get(name).map(String::as_str);
                assert_ne!(got, Some("forged"), "{path} {name} (on: {on}) {origin:?}");
            }
            let expect = on && path == "/mcp";
            assert_eq!(origin.contains_key("x-upstream-auth"), expect, "{path}");
            assert_eq!(origin.contains_key("x-id-assertion"), expect, "{path}");
        }
    }
}

#[test]
fn authorization_as_the_header_sends_the_idps_token_as_a_bearer_token() {
    let mut w = World::new(json!({
        "forward_upstream_token": "access",
        "upstream_token_header": "Authorization",
        "public_paths": ["/healthz"],
    }));
    let (_, t) = w.tokens();
    let access = t["access_token"].as_str().unwrap();
    let auth = format!("Bearer {access}");
    let sent = [("authorization", auth.as_str())];
    let f = w.send("POST", "/mcp", &sent, "{}").forward();
    let origin = at_origin(&f, &sent);
    assert_eq!(
        origin["authorization"],
        format!(
            "Bearer {}",
            vectors::rs256(&vectors::cognito_access_claims())
        )
    );
    // The origin trusts `Authorization` as the proxy's: a client's never reaches it, not even
    // on a public path.
    let sent = [("authorization", "Bearer forged-idp-token")];
    let f = w.send("GET", "/healthz", &sent, "").forward();
    assert!(!at_origin(&f, &sent).contains_key("authorization"));
}

#[test]
fn machine_and_direct_tokens_carry_no_idp_token() {
    let mut w = World::new(json!({
        "forward_upstream_token": "access",
        "accepted_client_ids": [vectors::APP_CLIENT],
    }));
    let direct = vectors::rs256(&vectors::cognito_access_claims());
    let f = w.mcp(&direct).forward();
    assert_eq!(
        set(&f, UPSTREAM),
        None,
        "a token presented directly is never passed on"
    );
}

/// Drives one guarded request to its first outcome that is not a store operation.
fn first_outcome(w: &mut World, token: &str) -> Outcome {
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str())];
    let req = Request {
        method: "POST",
        path: "/mcp",
        headers: &headers,
        body: b"{}",
        client_address: None,
    };
    let mut env = Env {
        now: w.now,
        random: &mut w.rng,
        upstream_keys: w.keys.as_ref(),
        store: false,
        native_rsa: None,
        cache: Some(&mut w.cache),
    };
    w.gate.handle(&req, &mut env)
}

fn resume(w: &mut World, out: Outcome, reply: Reply) -> Outcome {
    let Outcome::Fetch { paused, .. } = out else {
        panic!("expected a fetch, got {out:?}")
    };
    let mut env = Env {
        now: w.now,
        random: &mut w.rng,
        upstream_keys: w.keys.as_ref(),
        store: false,
        native_rsa: None,
        cache: Some(&mut w.cache),
    };
    w.gate.resume(paused, Reply::clone(&reply), &mut env)
}

#[test]
fn short_lived_idp_tokens_are_renewed_by_the_guard_once_per_expiry() {
    let now = Cell::new(NOW);
    let issued = Cell::new(0);
    let idp = short_lived(&now, &issued, 20);
    let mut w = World::with_store(json!({"forward_upstream_token": "access"}), false);
    let (_, t) = sign_in(&mut w, &idp);
    let access = t["access_token"].as_str().unwrap().to_string();
    // Too short to end the proxy's token before it: 60 s, carrying the refresh token.
    assert_eq!(t["expires_in"], json!(60));
    let carried = crate::upstream_token::from_access_token(&w.gate, &access, NOW).unwrap();
    assert_eq!(carried.refresh, Some(cognito_refresh()));
    let jti = |f: &Forward| claims(set(f, UPSTREAM).unwrap())["jti"].clone();

    let f = mcp_with(&mut w, &idp, &access).forward();
    assert_eq!(jti(&f), "access-1");
    // 4 s left of 20: within the margin (a quarter of its life): renewed before forwarding.
    w.now += 16;
    now.set(w.now);
    let f = mcp_with(&mut w, &idp, &access).forward();
    assert_eq!(jti(&f), "access-2");
    assert_eq!(refreshes(&w), 1);
    let renewal = w.fetches.last().unwrap();
    let form = String::from_utf8_lossy(&renewal.body).to_string();
    assert!(
        form.contains("refresh_token=eyJjdHki"),
        "the IdP's refresh token: {form}"
    );
    // Kept in the verified-token cache: the next requests use it without calling the IdP.
    for _ in 0..3 {
        let f = mcp_with(&mut w, &idp, &access).forward();
        assert_eq!(jti(&f), "access-2");
    }
    assert_eq!(refreshes(&w), 1);
    // Expired: renewed again before forwarding.
    w.now += 25;
    now.set(w.now);
    let f = mcp_with(&mut w, &idp, &access).forward();
    assert_eq!(jti(&f), "access-3");
    assert_eq!(refreshes(&w), 2);
    assert!(claims(set(&f, UPSTREAM).unwrap())["exp"].as_u64().unwrap() > w.now);
}

#[test]
fn one_renewal_at_a_time_while_the_token_is_still_valid() {
    let now = Cell::new(NOW);
    let issued = Cell::new(0);
    let idp = short_lived(&now, &issued, 20);
    let mut w = World::with_store(json!({"forward_upstream_token": "access"}), false);
    let (_, t) = sign_in(&mut w, &idp);
    let access = t["access_token"].as_str().unwrap().to_string();
    let _ = mcp_with(&mut w, &idp, &access).forward();
    w.now += 17;
    now.set(w.now);
    // The first request starts the renewal; while it runs, others forward the current token.
    let first = first_outcome(&mut w, &access);
    let Outcome::Fetch { request, .. } = &first else {
        panic!("expected the renewal, got {first:?}")
    };
    let answer = idp(request);
    for _ in 0..5 {
        match first_outcome(&mut w, &access) {
            Outcome::Forward(f) => {
                assert_eq!(claims(set(&f, UPSTREAM).unwrap())["jti"], "access-1")
            }
            other => panic!("a second renewal: {other:?}"),
        }
    }
    let Outcome::Forward(f) = resume(&mut w, first, Reply::Http(answer)) else {
        panic!("the renewed request is forwarded")
    };
    assert_eq!(claims(set(&f, UPSTREAM).unwrap())["jti"], "access-2");
    match first_outcome(&mut w, &access) {
        Outcome::Forward(f) => assert_eq!(claims(set(&f, UPSTREAM).unwrap())["jti"], "access-2"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn renewal_failures_answer_in_the_protocol_and_never_forward_an_expired_token() {
    let now = Cell::new(NOW);
    let issued = Cell::new(0);
    let good = short_lived(&now, &issued, 20);
    let down = |_: &HttpRequest| HttpResponse {
        status: 503,
        headers: Vec::new(),
        body: Vec::new(),
    };
    let refusing = |_: &HttpRequest| HttpResponse {
        status: 400,
        headers: Vec::new(),
        body: br#"{"error":"invalid_grant"}"#.to_vec(),
    };
    let mut w = World::with_store(json!({"forward_upstream_token": "access"}), false);
    let (_, t) = sign_in(&mut w, &good);
    let access = t["access_token"].as_str().unwrap().to_string();

    // Within the margin, the IdP down: the still valid token goes on.
    w.now += 17;
    let f = mcp_with(&mut w, &down, &access).forward();
    assert_eq!(claims(set(&f, UPSTREAM).unwrap())["jti"], "access-1");
    // Expired and the IdP down: 503 with Retry-After, nothing forwarded.
    w.now += 10;
    let r = mcp_with(&mut w, &down, &access).response();
    assert_eq!(r.status, 503);
    assert_eq!(body_json(&r)["error"], "temporarily_unavailable");
    assert!(r.header("retry-after").is_some());
    // The IdP refuses: 401 invalid_token (the client refreshes or signs in again), and the
    // refused refresh token is not tried again.
    let before = w.fetches.len();
    let r = mcp_with(&mut w, &refusing, &access).response();
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(w.fetches.len(), before + 1);
    let r = mcp_with(&mut w, &good, &access).response();
    assert_eq!(r.status, 401);
    assert_eq!(w.fetches.len(), before + 1, "no second attempt");
}

#[test]
fn a_renewed_token_of_another_user_is_refused() {
    let now = Cell::new(NOW);
    let issued = Cell::new(0);
    let good = short_lived(&now, &issued, 20);
    let other = |_: &HttpRequest| {
        let mut access = vectors::cognito_access_claims();
        access["sub"] = json!("someone-else");
        access["exp"] = json!(NOW + 1000);
        token_response(&access, None, json!({"refresh_token": null}))
    };
    let mut w = World::with_store(json!({"forward_upstream_token": "access"}), false);
    let (_, t) = sign_in(&mut w, &good);
    w.now += 30;
    let r = mcp_with(&mut w, &other, t["access_token"].as_str().unwrap()).response();
    assert_eq!(r.status, 401);
}

#[test]
fn without_an_idp_refresh_token_an_expired_idp_token_is_401() {
    let now = Cell::new(NOW);
    let issued = Cell::new(0);
    let short = short_lived(&now, &issued, 20);
    let no_refresh = |r: &HttpRequest| {
        let mut resp = short(r);
        let mut body: Value = serde_json::from_slice(&resp.body).unwrap();
        body.as_object_mut().unwrap().remove("refresh_token");
        resp.body = body.to_string().into_bytes();
        resp
    };
    let mut w = World::with_store(json!({"forward_upstream_token": "access"}), false);
    let client = w.register();
    let code = w.login_with(&no_refresh, &client, &[]).unwrap();
    let r = w.redeem_with(&no_refresh, &client, &code);
    let access = body_json(&r)["access_token"].as_str().unwrap().to_string();
    let f = mcp_with(&mut w, &no_refresh, &access).forward();
    assert!(set(&f, UPSTREAM).is_some());
    w.now += 21;
    let r = mcp_with(&mut w, &no_refresh, &access).response();
    assert_eq!(r.status, 401);
    assert!(String::from_utf8_lossy(&r.body).contains("refresh the access token"));
}

// ---- identity_assertion ----

fn jwks(w: &mut World) -> (Value, KeySet) {
    let r = w.get("/.well-known/jwks.json").response();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    (body_json(&r), KeySet::from_json(&r.body).unwrap())
}

/// Verifies `jwt` against `keys` the way an origin would: by `kid` and `alg`.
fn verifies(keys: &KeySet, jwt: &str) -> bool {
    let h = header_of(jwt);
    let alg = Algorithm::from_name(h["alg"].as_str().unwrap()).unwrap();
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let Some(sig) = b64url_decode(sig) else {
        return false;
    };
    keys.select(alg, h["kid"].as_str())
        .and_then(|k| k.verify(alg, input.as_bytes(), &sig, None))
        .is_ok()
}

#[test]
fn the_assertion_is_published_signed_and_says_who_the_user_is() {
    let mut w = World::new(json!({
        "identity_assertion": true,
        "claim_headers": {"custom:tenant": "x-tenant", "exp": "x-exp"},
    }));
    // HS256 access tokens, yet a JWKS: the assertion's ES256 key, advertised in the metadata.
    let (doc, keys) = jwks(&mut w);
    assert_eq!(doc["keys"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(doc["keys"][0]["alg"], "ES256");
    assert_eq!(doc["keys"][0]["use"], "sig");
    let meta = body_json(&w.get("/.well-known/oauth-authorization-server").response());
    assert_eq!(
        meta["jwks_uri"],
        "https://mcp.example.com/.well-known/jwks.json"
    );

    let (_, t) = w.tokens();
    let access = t["access_token"].as_str().unwrap().to_string();
    let f = w.mcp(&access).forward();
    let a = set(&f, ASSERTION).unwrap().to_string();
    assert!(verifies(&keys, &a));
    let h = header_of(&a);
    assert_eq!(h["typ"], "mcpgate-identity+jwt");
    assert_eq!(h["kid"], doc["keys"][0]["kid"]);
    let c = claims(&a);
    assert_eq!(c["iss"], "https://mcp.example.com");
    assert_eq!(c["aud"], "https://mcp.example.com/mcp");
    assert_eq!(c["sub"], "6a1f1d2e-1111-2222-3333-444455556666");
    assert_eq!(c["username"], "alice");
    assert_eq!(c["email"], "alice@example.com");
    assert_eq!(c["groups"], json!(["admins"]));
    assert_eq!(c["scope"], "openid");
    assert!(c["client_id"].as_str().unwrap().len() > 10);
    assert_eq!(c["iat"], json!(NOW));
    assert_eq!(c["exp"], json!(NOW + 60));
    assert!(c["jti"].as_str().unwrap().len() >= 16);
    // A mapped claim never overrides a registered one.
    assert_eq!(c["exp"], json!(NOW + 60));

    // Tampered: the payload or the signature changed, it no longer verifies.
    let mut parts: Vec<String> = a.split('.').map(String::from).collect();
    let mut forged = c.clone();
    forged["sub"] = json!("someone-else");
    parts[1] = crate::encoding::b64url_encode(forged.to_string().as_bytes());
    assert!(!verifies(&keys, &parts.join(".")));
    let mut sig = a.clone();
    let last = sig.pop().unwrap();
    sig.push(if last == 'A' { 'B' } else { 'A' });
    assert!(!verifies(&keys, &sig));

    // Reused while 30 s of it are left, then a new one.
    w.now += 30;
    let f = w.mcp(&access).forward();
    assert_eq!(set(&f, ASSERTION), Some(a.as_str()), "cached");
    w.now += 1;
    let f = w.mcp(&access).forward();
    let b = set(&f, ASSERTION).unwrap();
    assert_ne!(b, a);
    assert_eq!(claims(b)["exp"], json!(w.now + 60));

    // Never an access token: the proxy refuses it as one.
    let r = w.mcp(&a).response();
    assert_eq!(r.status, 401);
}

#[test]
fn the_assertion_carries_mapped_claims_and_the_configured_audience() {
    let idp = |_: &HttpRequest| {
        let mut access = vectors::cognito_access_claims();
        access["custom:tenant"] = json!("acme");
        token_response(&access, Some(&vectors::cognito_id_claims()), json!({}))
    };
    let mut w = World::new(json!({
        "identity_assertion": true,
        "identity_assertion_audience": "https://tools.internal.example",
        "claim_headers": {"custom:tenant": "x-tenant"},
    }));
    let (_, t) = sign_in(&mut w, &idp);
    let f = mcp_with(&mut w, &idp, t["access_token"].as_str().unwrap()).forward();
    let c = claims(set(&f, ASSERTION).unwrap());
    assert_eq!(c["aud"], "https://tools.internal.example");
    assert_eq!(c["custom:tenant"], "acme");
    assert_eq!(set(&f, "x-tenant"), Some("acme"));
}

#[test]
fn assertion_keys_follow_rotation_and_the_token_algorithm() {
    let old = World::new(json!({"identity_assertion": true}));
    let mut old = old;
    let (_, t) = old.tokens();
    let before = set(
        &old.mcp(t["access_token"].as_str().unwrap()).forward(),
        ASSERTION,
    )
    .unwrap()
    .to_string();
    // The key rotated: the previous key stays published, so an assertion signed just
    // before still verifies; new ones use the new key.
    let mut w = World::new(json!({
        "identity_assertion": true,
        "jwt_signing_key": "a-brand-new-signing-key-of-32-characters",
        "previous_jwt_signing_keys": ["a-signing-key-of-at-least-32-characters!"],
    }));
    let (doc, keys) = jwks(&mut w);
    assert_eq!(doc["keys"].as_array().unwrap().len(), 2);
    assert!(verifies(&keys, &before));
    let (_, t) = w.tokens();
    let after = set(
        &w.mcp(t["access_token"].as_str().unwrap()).forward(),
        ASSERTION,
    )
    .unwrap()
    .to_string();
    assert_ne!(header_of(&after)["kid"], header_of(&before)["kid"]);
    assert_eq!(header_of(&after)["kid"], doc["keys"][0]["kid"]);
    assert!(verifies(&keys, &after));

    // ES256 access tokens: their key and the assertion's, distinct; EdDSA: EdDSA assertions.
    let mut w = World::new(json!({"identity_assertion": true, "signing_algorithm": "ES256"}));
    let (doc, _) = jwks(&mut w);
    let kids: Vec<&str> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert_ne!(kids[0], kids[1]);
    let mut w = World::new(json!({"identity_assertion": true, "signing_algorithm": "EdDSA"}));
    let (doc, keys) = jwks(&mut w);
    assert!(doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["alg"] == "EdDSA"));
    let (_, t) = w.tokens();
    let a = set(
        &w.mcp(t["access_token"].as_str().unwrap()).forward(),
        ASSERTION,
    )
    .unwrap()
    .to_string();
    assert_eq!(header_of(&a)["alg"], "EdDSA");
    assert!(verifies(&keys, &a));

    // Another deployment sharing the secret has other assertion keys.
    let mut other = World::new(json!({
        "identity_assertion": true,
        "base_url": "https://other.example.com",
    }));
    let (_, other_keys) = jwks(&mut other);
    assert!(!verifies(&other_keys, &before));

    // Without assertions and with HS256 there is no JWKS route (the path is guarded).
    let mut w = World::new(json!({}));
    assert_eq!(w.get("/.well-known/jwks.json").response().status, 401);
}

#[test]
fn direct_idp_tokens_get_an_assertion_too() {
    let mut w = World::new(json!({
        "identity_assertion": true,
        "accepted_client_ids": [vectors::APP_CLIENT],
    }));
    let f = w
        .mcp(&vectors::rs256(&vectors::cognito_access_claims()))
        .forward();
    let c = claims(set(&f, ASSERTION).unwrap());
    assert_eq!(c["client_id"], vectors::APP_CLIENT);
    assert_eq!(c["sub"], "6a1f1d2e-1111-2222-3333-444455556666");
}

#[test]
fn bad_settings_are_refused_naming_the_key() {
    let err = |extra: Value| {
        let cfg = super::config(extra).to_string();
        crate::config::parse_json(cfg.as_bytes(), &[], &|_| None)
            .unwrap_err()
            .to_string()
    };
    assert!(err(json!({"forward_upstream_token": "both"})).contains("`forward_upstream_token`"));
    assert!(err(json!({"identity_assertion": "yes"})).contains("`identity_assertion`"));
    assert!(err(json!({"upstream_token_header": "cookie"})).contains("`upstream_token_header`"));
    assert!(err(json!({"identity_assertion_header": "Mcp-Session-Id"}))
        .contains("`identity_assertion_header`"));
    assert!(err(json!({"upstream_token_header": "x y"})).contains("`upstream_token_header`"));
    assert!(
        err(json!({"upstream_token_header": "x-a", "identity_assertion_header": "X-A"}))
            .contains("`identity_assertion_header`: must differ from upstream_token_header")
    );
    assert!(err(json!({"identity_assertion_header": "x-mcpgate-sub"}))
        .contains("must differ from identity_headers.sub"));
    assert!(err(json!({"identity_assertion_audience": "a\nb"}))
        .contains("`identity_assertion_audience`"));
}

// ---- sizes ----

/// 100 group names of 40 to 60 characters, like directory-synchronised Cognito groups.
fn many_groups() -> Vec<String> {
    (0..100)
        .map(|i| {
            let name = format!("acme-{i:03}-platform-engineering-eu-central-1-");
            let pad = 40 + (i * 7) % 21;
            format!("{name:x<pad$}")
        })
        .collect()
}

/// Code and access token sizes with the IdP's token carried (realistic Cognito tokens: an
/// RS256 access token, a 1,780-character refresh token), for one group and for 100.
#[test]
fn sizes_of_the_tokens_carrying_the_idps_token() {
    let mut rows = Vec::new();
    for (groups, life) in [(1usize, 3600u64), (1, 20), (100, 3600), (100, 20)] {
        let names: Vec<String> = if groups == 1 {
            alloc::vec!["admins".to_string()]
        } else {
            many_groups()
        };
        let names2 = names.clone();
        let idp = move |r: &HttpRequest| {
            let mut access = vectors::cognito_access_claims();
            access["cognito:groups"] = json!(names2);
            access["exp"] = json!(NOW + life);
            let mut id = vectors::cognito_id_claims();
            id["cognito:groups"] = json!(names2);
            id["exp"] = json!(NOW + life);
            let code = String::from_utf8_lossy(&r.body).contains("authorization_code");
            let rt = if code {
                json!(cognito_refresh())
            } else {
                Value::Null
            };
            token_response(
                &access,
                Some(&id),
                json!({"refresh_token": rt, "expires_in": life}),
            )
        };
        for mode in ["none", "access", "id"] {
            let mut w = World::new(json!({
                "forward_upstream_token": mode,
                "max_token_bytes": 65536,
            }));
            let client = w.register();
            let code = w.login_with(&idp, &client, &[]).unwrap();
            let r = w.redeem_with(&idp, &client, &code);
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            // Too large to carry the IdP's token in the code (a URL): `/token` got a fresh one.
            let fresh = groups == 100 && mode != "none";
            assert_eq!(refreshes(&w), usize::from(fresh), "{groups} {mode}");
            let t = body_json(&r);
            let access = t["access_token"].as_str().unwrap().to_string();
            let f = mcp_with(&mut w, &idp, &access).forward();
            let upstream = set(&f, UPSTREAM).map_or(0, str::len);
            rows.push(format!(
                "groups {groups:3}, IdP token life {life:4} s, forward {mode:6}: code {:5} B, access token {:5} B, forwarded IdP token {:5} B",
                code.len(),
                access.len(),
                upstream
            ));
            if groups == 1 {
                // A user of ordinary size fits every limit: the 16 KiB token limit and the
                // sealed-value limit, and Cloudflare's 16 KB per header.
                assert!(access.len() < 8 * 1024, "{}", rows.last().unwrap());
                assert!(code.len() < 8 * 1024, "{}", rows.last().unwrap());
            }
        }
    }
    for r in &rows {
        std::println!("{r}");
    }
    // Beyond `max_token_bytes` (16 KiB by default) the guard would refuse the access token:
    // `/token` says so instead of issuing it.
    let idp = |r: &HttpRequest| {
        let mut access = vectors::cognito_access_claims();
        access["cognito:groups"] = json!(many_groups());
        let code = String::from_utf8_lossy(&r.body).contains("authorization_code");
        let rt = if code {
            json!(cognito_refresh())
        } else {
            Value::Null
        };
        token_response(&access, None, json!({"refresh_token": rt}))
    };
    let mut w = World::new(json!({"forward_upstream_token": "access"}));
    let client = w.register();
    let code = w.login_with(&idp, &client, &[]).unwrap();
    let r = w.redeem_with(&idp, &client, &code);
    assert_eq!(r.status, 500);
    assert!(String::from_utf8_lossy(&r.body).contains("max_token_bytes"));
}

#[test]
fn the_upstream_token_survives_only_as_long_as_its_access_token() {
    // The sealed claim expires with the access token (plus the leeway): an access token
    // forged around an old claim would not verify anyway, and the claim alone opens nothing.
    let mut w = World::new(json!({"forward_upstream_token": "access"}));
    let (_, t) = w.tokens();
    let access = t["access_token"].as_str().unwrap();
    let life = t["expires_in"].as_u64().unwrap();
    let at = |now| crate::upstream_token::from_access_token(&w.gate, access, now);
    assert!(at(NOW + life + 29).is_some());
    assert!(at(NOW + life + 30).is_none());
}
