//! PKCE and the other authorization-request checks at `/authorize` and `/token`.

use super::super::*;

pub(crate) fn pkce_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Pkce as P;
    let mut v = Vec::new();
    let auth = |name: &str, changes: &[(&str, &str)], expect: Expect| {
        Case::new(
            P,
            format!("authorize {name}"),
            Req::get(&ctx.authorize_target(&ctx.client_id, changes)),
            expect,
        )
    };
    let good = pkce_pair().challenge;
    let c42 = &good[..42];
    let c44 = format!("{good}A");
    let c128 = "A".repeat(128);
    let plus = format!("{}+/", &good[..41]);
    let padded = format!("{}=", &good[..42]);
    let spaced = format!("{} {}", &good[..21], &good[22..]);
    for (name, changes) in [
        ("without code_challenge", vec![("code_challenge", "")]),
        (
            "without code_challenge_method",
            vec![("code_challenge_method", "")],
        ),
        (
            "with method plain",
            vec![("code_challenge_method", "plain")],
        ),
        (
            "with method s256 (case)",
            vec![("code_challenge_method", "s256")],
        ),
        (
            "with method plain and a verifier as challenge",
            vec![
                ("code_challenge_method", "plain"),
                (
                    "code_challenge",
                    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                ),
            ],
        ),
        (
            "with a 42-character challenge",
            vec![("code_challenge", c42)],
        ),
        (
            "with a 44-character challenge",
            vec![("code_challenge", &c44)],
        ),
        (
            "with a 128-character challenge",
            vec![("code_challenge", &c128)],
        ),
        (
            "with + and / in the challenge",
            vec![("code_challenge", &plus)],
        ),
        ("with a padded challenge", vec![("code_challenge", &padded)]),
        (
            "with a space in the challenge",
            vec![("code_challenge", &spaced)],
        ),
    ] {
        v.push(auth(name, &changes, link_back("invalid_request")));
    }
    v.push(auth(
        "with response_type token",
        &[("response_type", "token")],
        link_back("unsupported_response_type"),
    ));
    v.push(auth(
        "without response_type",
        &[("response_type", "")],
        link_back("unsupported_response_type"),
    ));
    v.push(auth(
        "with another resource",
        &[("resource", "https://evil.example/mcp")],
        link_back("invalid_target"),
    ));
    let sub_resource = format!("{}/mcp/../admin", ctx.base_url);
    v.push(auth(
        "with a resource path trick",
        &[("resource", &sub_resource)],
        link_back("invalid_target"),
    ));
    v.push(auth(
        "with a quote in the scope",
        &[("scope", "openid \"admin")],
        link_back("invalid_scope"),
    ));
    let crlf = "x\r\nSet-Cookie: pwned=1\r\nLocation: https://evil.example/";
    v.push(auth(
        "with CRLF and headers in the state (reflected on an error)",
        &[("state", crlf), ("code_challenge_method", "plain")],
        Expect::LinkBack {
            error: "invalid_request",
            state: crlf.to_owned(),
        },
    ));
    // Client ID Metadata Document URLs that must not be fetched or must fail closed.
    for (name, url, desc) in [
        (
            "without a path",
            "https://evil.example/",
            "must be https with a path",
        ),
        (
            "with userinfo",
            "https://user@evil.example/meta.json",
            "not a valid https URL",
        ),
        (
            "with a fragment",
            "https://evil.example/meta.json#x",
            "not a valid https URL",
        ),
        (
            "with dot segments",
            "https://evil.example/a/../meta.json",
            "not a valid https URL",
        ),
        (
            "to the cloud metadata address (refused before any fetch)",
            "https://169.254.169.254/latest/meta-data/iam",
            "not fetched from private or loopback hosts",
        ),
        (
            "to the proxy itself (refused before any fetch)",
            "https://127.0.0.1/register",
            "not fetched from private or loopback hosts",
        ),
        (
            "to a decimal loopback address",
            "https://2130706433/meta.json",
            "not fetched from private or loopback hosts",
        ),
        (
            "to localhost",
            "https://localhost:8443/meta.json",
            "not fetched from private or loopback hosts",
        ),
        (
            "over plain http",
            "http://client.example/meta.json",
            "unknown client_id",
        ),
    ] {
        v.push(Case::new(
            P,
            format!("authorize with a metadata-document client_id {name}"),
            Req::get(&ctx.authorize_target(url, &[])),
            page_d(400, "invalid_client", desc),
        ));
    }
    let long_state = "s".repeat(2000);
    v.push(auth(
        "with a 2000-character state",
        &[("state", &long_state)],
        page_d(400, "invalid_request", "state too long"),
    ));

    // /token: PKCE on the code (the code stays unredeemed: these fail before the store).
    let tok = |name: &str, changes: &[(&str, &str)], expect: Expect| {
        Case::new(P, format!("token {name}"), ctx.code_form(changes), expect)
    };
    let mismatch = "code_verifier does not match the code_challenge";
    let wrong = pkce_pair().verifier;
    let v42 = &ctx.verifier[..42];
    let v129 = "a".repeat(129);
    let v_alpha = format!("{}+", &ctx.verifier[..42]);
    let v_space = format!("{} ", &ctx.verifier[..42]);
    let challenge_of_verifier = {
        let d = Sha256::digest(ctx.verifier.as_bytes());
        b64(&d)
    };
    v.push(tok(
        "without code_verifier",
        &[("code_verifier", "")],
        oauth_d(400, "invalid_request", "code_verifier is required"),
    ));
    for (name, verifier) in [
        ("with a wrong verifier", wrong.as_str()),
        ("with a 42-character verifier", v42),
        ("with a 129-character verifier", &v129),
        ("with + in the verifier", &v_alpha),
        ("with a space in the verifier", &v_space),
        ("with the challenge as verifier", &challenge_of_verifier),
        ("with the verifier of the spent code", &ctx.spent_verifier),
    ] {
        v.push(tok(
            name,
            &[("code_verifier", verifier)],
            oauth_d(400, "invalid_grant", mismatch),
        ));
    }
    v.push(Case::new(
        P,
        "token with an empty verifier",
        Req::form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &ctx.code),
                ("client_id", &ctx.client_id),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", ""),
            ],
        ),
        // An empty parameter counts as absent.
        oauth_d(400, "invalid_request", "code_verifier is required"),
    ));
    v.push(tok(
        "with another redirect_uri",
        &[("redirect_uri", "http://127.0.0.1:33333/other")],
        oauth_d(400, "invalid_grant", "redirect_uri does not match"),
    ));
    v.push(tok(
        "without redirect_uri",
        &[("redirect_uri", "")],
        oauth_d(400, "invalid_grant", "redirect_uri does not match"),
    ));
    v.push(tok(
        "with another resource",
        &[("resource", "https://evil.example/mcp")],
        oauth(400, "invalid_target"),
    ));
    v.push(tok(
        "for another client",
        &[("client_id", &ctx.other_client_id)],
        oauth_d(400, "invalid_grant", "issued to another client"),
    ));
    v.push(
        tok(
            "without client_id",
            &[("client_id", "")],
            oauth_d(401, "invalid_client", "client_id is required"),
        )
        .with_header("www-authenticate", "Basic realm=\"mcpgate\""),
    );
    let basic_other = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:", ctx.other_client_id))
    );
    v.push(Case::new(
        P,
        "token with Basic naming another client than the form",
        ctx.code_form(&[]).header("authorization", &basic_other),
        oauth_d(401, "invalid_client", "client_id differs"),
    ));
    v.push(Case::new(
        P,
        "token with malformed Basic credentials",
        ctx.code_form(&[])
            .header("authorization", "Basic !!!notbase64"),
        oauth_d(401, "invalid_client", "malformed Basic credentials"),
    ));
    v.push(Case::new(
        P,
        "token with two Authorization headers",
        ctx.code_form(&[])
            .header("authorization", "Basic eDo=")
            .header("authorization", "Basic eTo="),
        // Joined by Envoy into one value, which is no Basic credential.
        Expect::OneOf(vec![
            oauth_d(400, "invalid_request", "duplicate authorization header"),
            oauth_d(401, "invalid_client", "malformed Basic credentials"),
        ]),
    ));
    // client_credentials is for the IdP's confidential app clients, never a registered one.
    v.push(tok(
        "with grant_type client_credentials from a registered public client",
        &[("grant_type", "client_credentials")],
        oauth_d(401, "invalid_client", "needs the client's id and secret"),
    ));
    for grant in [
        "password",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
    ] {
        v.push(tok(
            &format!("with grant_type {grant}"),
            &[("grant_type", grant)],
            oauth(400, "unsupported_grant_type"),
        ));
    }
    v.push(tok(
        "without grant_type",
        &[("grant_type", "")],
        oauth_d(400, "invalid_request", "grant_type is required"),
    ));
    v.push(Case::new(
        P,
        "refresh widening the scope",
        Req::form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &ctx.refresh_token),
                ("client_id", &ctx.client_id),
                ("scope", "openid email admin"),
            ],
        ),
        oauth(400, "invalid_scope"),
    ));
    v
}
