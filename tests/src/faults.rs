//! IdP faults, shared by every host: the IdP down, slower than `idp_timeout_ms`, answering 503
//! or 500 while the proxy refreshes or refetches its key set, exchanges a code at its
//! callback, refreshes a grant, or revokes. The client gets an OAuth error (with `Retry-After`
//! where a retry helps), no request waits past the timeout, and everything works again once
//! the IdP is back, without a restart. Listed in
//! [`shared_scenario_tests!`](crate::shared_scenario_tests) with the other shared scenarios.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cognito::{EndpointGroup, FaultMode};
use crate::harness::wait_until;
use crate::journey::{whoami, Answer, Journey};
use crate::scenarios::{
    assert_invalid_token, call_whoami, jwks_fetches, m2m_jwks_options, m2m_token, sign_in,
    wait_accepted, Host, HostOptions, DEADLINE,
};

/// The IdP faults a scenario goes through: down, slower than `idp_timeout_ms` (1000 ms in
/// [`idp_fault_options`] and [`jwks_fault_options`]), answering 503 and 500.
pub const IDP_FAULTS: [FaultMode; 4] = [
    FaultMode::Down,
    FaultMode::Slow { delay_ms: 4000 },
    FaultMode::Error5xx { status: 503 },
    FaultMode::Error5xx { status: 500 },
];

/// Upper bound of a request that waits on an IdP call timing out after 1000 ms.
pub const TIMEOUT_BOUND: Duration = Duration::from_millis(3500);

/// [`m2m_jwks_options`] with IdP calls timing out after 1000 ms.
pub fn jwks_fault_options<O: HostOptions>(refresh: u64, min_refetch: u64) -> O {
    m2m_jwks_options::<O>(refresh, min_refetch).config("idp_timeout_ms", json!(1000))
}

/// For each of [`IDP_FAULTS`] on the JWKS endpoint, refreshes fail and the cached keys keep
/// serving; once it is back, refreshes reach it again. Needs [`jwks_fault_options`]`(1, 1)`.
pub async fn cached_keys_survive_jwks_outage(h: &impl Host) {
    let token = m2m_token(h).await;
    wait_accepted(h, &token).await;

    for mode in IDP_FAULTS {
        h.idp().set_mode(EndpointGroup::Jwks, mode);
        let before = jwks_fetches(h);
        let failed_before = h.counter("mcpgate.jwks_fetch_failed").await;
        // Requests keep coming (a Worker refreshes when a request finds its keys old).
        wait_until(DEADLINE, "two failed JWKS refreshes", || async {
            let t0 = Instant::now();
            let (status, _, body) = call_whoami(h, Some(&token)).await;
            assert_eq!(
                status, 200,
                "{mode:?}: refused while the JWKS fails: {body}"
            );
            assert!(
                t0.elapsed() < TIMEOUT_BOUND,
                "{mode:?}: a request waited {:?} on the failing JWKS",
                t0.elapsed()
            );
            let reached = jwks_fetches(h) >= before + 2;
            let counted = match failed_before {
                Some(f) => h.counter("mcpgate.jwks_fetch_failed").await.unwrap_or(0) >= f + 2,
                None => true,
            };
            (reached && counted).then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));

        // Back up: refreshes reach the IdP again (and succeed, where the host counts them).
        let ok_before = h.counter("mcpgate.jwks_fetch_ok").await;
        h.idp().set_mode(EndpointGroup::Jwks, FaultMode::Normal);
        let down_count = jwks_fetches(h);
        wait_until(DEADLINE, "a JWKS refresh after the outage", || async {
            let (status, _, body) = call_whoami(h, Some(&token)).await;
            assert_eq!(status, 200, "{body}");
            let reached = jwks_fetches(h) > down_count;
            let counted = match ok_before {
                Some(before) => h.counter("mcpgate.jwks_fetch_ok").await.unwrap_or(0) > before,
                None => true,
            };
            (reached && counted).then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{mode:?}, recovering: {e}"));
    }
    let (status, _, body) = call_whoami(h, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["headers"]["x-mcpgate-client-id"],
        json!("m2m-client")
    );
}

/// A token of a newly published key while the JWKS endpoint fails: the refetch it triggers
/// fails within the timeout and the token is refused as `invalid_token` (the keys the proxy
/// has cannot vouch for it) without waiting on the IdP any longer; once the endpoint is back,
/// the same token is accepted. Needs [`jwks_fault_options`]`(600, 0)`.
pub async fn unknown_kid_during_jwks_fault_answers_in_time(h: &impl Host) {
    let token = m2m_token(h).await;
    wait_accepted(h, &token).await;
    h.idp().rotate_keys(false);
    let rotated = m2m_token(h).await;
    for mode in IDP_FAULTS {
        h.idp().set_mode(EndpointGroup::Jwks, mode);
        let fetches = jwks_fetches(h);
        let t0 = Instant::now();
        let (status, www, body) = call_whoami(h, Some(&rotated)).await;
        let waited = t0.elapsed();
        assert!(
            waited < TIMEOUT_BOUND,
            "{mode:?}: answered after {waited:?}"
        );
        assert_invalid_token(&format!("{mode:?}: {body}"), status, www.as_deref());
        assert!(
            jwks_fetches(h) > fetches,
            "{mode:?}: the unknown kid made the proxy try the IdP"
        );
        // The cached key set still serves the old key's tokens.
        let (status, _, _) = call_whoami(h, Some(&token)).await;
        assert_eq!(status, 200, "{mode:?}: old key");
    }
    h.idp().set_mode(EndpointGroup::Jwks, FaultMode::Normal);
    wait_accepted(h, &rotated).await;
}

/// IdP calls time out after 1000 ms; the store on or off.
pub fn idp_fault_options<O: HostOptions>(store: bool) -> O {
    O::default()
        .config("idp_timeout_ms", json!(1000))
        .with_store(store)
}

/// For each of [`IDP_FAULTS`] on the IdP's token endpoint while the proxy exchanges the IdP's
/// code at its callback: the browser goes back to the client with
/// `error=temporarily_unavailable`, the client's `state` and `iss`, and no code, within the
/// timeout. Once the IdP is back, a new sign-in works end to end. Needs
/// [`idp_fault_options`].
pub async fn code_exchange_faults_send_the_client_back_in_time(h: &impl Host) {
    let base = h.base_url();
    let mut j = Journey::register(base).await.unwrap();
    for mode in IDP_FAULTS {
        h.idp().set_mode(EndpointGroup::Token, mode);
        let a = j
            .authorization_answer("alice", "alice-password")
            .await
            .unwrap();
        assert!(
            a.callback_took < TIMEOUT_BOUND,
            "{mode:?}: the callback took {:?}",
            a.callback_took
        );
        let q = &a.redirect_query;
        assert!(a.code.is_empty(), "{mode:?}: a code in {}", a.redirect);
        assert_eq!(
            q.get("error").map(String::as_str),
            Some("temporarily_unavailable"),
            "{mode:?}: {}",
            a.redirect
        );
        assert_eq!(q.get("state").map(String::as_str), Some("client-state"));
        assert_eq!(q.get("iss").map(String::as_str), Some(base), "RFC 9207 iss");
    }
    h.idp().set_mode(EndpointGroup::Token, FaultMode::Normal);
    let tokens = j.login("alice", "alice-password").await.unwrap();
    let body = whoami(&h.mcp_url(), &tokens.access).await.unwrap();
    assert_eq!(
        body["headers"]["x-mcpgate-username"],
        json!("alice"),
        "{body}"
    );
}

/// For each of [`IDP_FAULTS`] on the IdP's token endpoint during a refresh: 503
/// `temporarily_unavailable` with `Retry-After`, within the timeout. Once the IdP is back the
/// same refresh token refreshes (the failures did not spend it, nor count as reuse) and the
/// new access token works. Needs [`idp_fault_options`] (with the store: reuse detection on).
pub async fn refresh_faults_answer_503_and_keep_the_token(h: &impl Host) {
    let (j, tokens) = sign_in(h, "alice", "alice-password").await;
    let refresh = tokens.refresh.expect("a refresh token");
    for mode in IDP_FAULTS {
        h.idp().set_mode(EndpointGroup::Token, mode);
        let a = j.refresh_answer(&refresh).await.unwrap();
        assert_retry_later(&format!("refresh, {mode:?}"), &a);
    }
    h.idp().set_mode(EndpointGroup::Token, FaultMode::Normal);
    let a = j.refresh_answer(&refresh).await.unwrap();
    assert_eq!(a.status, 200, "{}", a.body);
    let access = a.body["access_token"].as_str().unwrap();
    let body = whoami(&h.mcp_url(), access).await.unwrap();
    assert_eq!(
        body["headers"]["x-mcpgate-username"],
        json!("alice"),
        "{body}"
    );
}

/// Revocation of a refresh token while the IdP's revocation endpoint fails. With a store the
/// proxy revokes the token itself: 200, and the token no longer refreshes even once the IdP
/// is back. Without one only the IdP could revoke it: 503 `temporarily_unavailable` with
/// `Retry-After`, the token still works, and the same revocation succeeds once the IdP is
/// back. Needs [`idp_fault_options`].
pub async fn revocation_faults(h: &impl Host, store: bool) {
    for mode in IDP_FAULTS {
        h.idp().set_mode(EndpointGroup::Token, FaultMode::Normal);
        let (j, tokens) = sign_in(h, "alice", "alice-password").await;
        let refresh = tokens.refresh.expect("a refresh token");
        h.idp().set_mode(EndpointGroup::Token, mode);
        let a = j.revoke_answer(&refresh).await.unwrap();
        h.idp().set_mode(EndpointGroup::Token, FaultMode::Normal);
        if store {
            assert_eq!(a.status, 200, "{mode:?}: {}", a.body);
            assert!(a.took < TIMEOUT_BOUND, "{mode:?}: took {:?}", a.took);
        } else {
            assert_retry_later(&format!("revoke, {mode:?}"), &a);
            let (status, body) = j.refresh(&refresh).await.unwrap();
            assert_eq!(
                status, 200,
                "{mode:?}: not revoked, still refreshes: {body}"
            );
            assert_eq!(j.revoke(&refresh).await.unwrap(), 200, "{mode:?}: retried");
        }
        let (status, body) = j.refresh(&refresh).await.unwrap();
        assert_eq!(status, 400, "{mode:?}: refreshed after revocation: {body}");
        assert_eq!(body["error"], json!("invalid_grant"));
    }
}

pub async fn revocation_faults_with_store(h: &impl Host) {
    revocation_faults(h, true).await;
}

pub async fn revocation_faults_without_store(h: &impl Host) {
    revocation_faults(h, false).await;
}

/// A 503 `temporarily_unavailable` with a positive `Retry-After`, answered within the timeout.
pub fn assert_retry_later(what: &str, a: &Answer) {
    assert_eq!(a.status, 503, "{what}: {}", a.body);
    assert_eq!(a.body["error"], json!("temporarily_unavailable"), "{what}");
    let retry = a.retry_after.as_deref().and_then(|v| v.parse::<u64>().ok());
    assert!(
        retry.is_some_and(|s| s > 0),
        "{what}: Retry-After {:?}",
        a.retry_after
    );
    assert!(a.took < TIMEOUT_BOUND, "{what}: took {:?}", a.took);
}
