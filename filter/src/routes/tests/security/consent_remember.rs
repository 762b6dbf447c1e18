//! `consent: remember` keeps every approved client: going back to a remembered client once
//! rewrote the approvals cookie with that client alone, forgetting all the others.

use serde_json::json;

use super::super::World;

#[test]
fn a_remembered_client_does_not_forget_the_others() {
    let mut w = World::new(json!({"consent": "remember"}));
    let (first, _) = w.through_consent();
    let (second, _) = w.through_consent();
    let status = |w: &mut World, client: &str| {
        w.get(&World::authorize_query(client, &[]))
            .response()
            .status
    };
    assert_eq!(status(&mut w, &second), 302, "second remembered");
    // Straight to the IdP for the first client: the cookie is written again…
    assert_eq!(status(&mut w, &first), 302, "first remembered");
    // …and still holds the second one.
    assert_eq!(status(&mut w, &second), 302, "second still remembered");
    assert_eq!(status(&mut w, &first), 302, "first still remembered");
}
