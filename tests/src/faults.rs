//! IdP faults at the token endpoint, shared by every host: the IdP down, slower than
//! `idp_timeout_ms`, answering 503 or 500 while the proxy exchanges a code at its callback,
//! refreshes, or revokes. The client gets an OAuth error (with `Retry-After` where a retry
//! helps), no request waits past the timeout, and everything works again once the IdP is back,
//! without a restart. The JWKS faults are in [`crate::scenarios`]; these scenarios are listed in
//! [`shared_scenario_tests!`](crate::shared_scenario_tests) like the others (re-exported there).

use std::time::Duration;

use serde_json::json;

use crate::cognito::{EndpointGroup, FaultMode};
use crate::journey::{whoami, Answer, Journey};
use crate::scenarios::{sign_in, Host, HostOptions};

/// The IdP faults a scenario goes through: down, slower than `idp_timeout_ms` (1000 ms in
/// [`idp_fault_options`] and [`fault_options`](crate::scenarios::fault_options)), answering
/// 503 and 500.
pub const IDP_FAULTS: [FaultMode; 4] = [
    FaultMode::Down,
    FaultMode::Slow { delay_ms: 4000 },
    FaultMode::Error5xx { status: 503 },
    FaultMode::Error5xx { status: 500 },
];

/// Upper bound of a request that waits on an IdP call timing out after 1000 ms.
pub const TIMEOUT_BOUND: Duration = Duration::from_millis(3500);

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
