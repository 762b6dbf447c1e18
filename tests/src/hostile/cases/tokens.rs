//! Tokens on the MCP endpoint: forged, malformed, expired, foreign, confused.

use super::super::*;
use super::TapTarget as _;

pub(crate) fn token_cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    use Category::Tokens as T;
    let mut v = Vec::new();
    let claims = ctx.claims_with(&[]);
    let kid = ctx.signer.kid.clone();
    let tok = |name: &str, token: &str, expect: Expect| {
        Case::new(T, name, whoami_req(token, &[]), expect)
    };
    let signed = |header: Value| {
        ctx.signer
            .rs256(header.to_string().as_bytes(), claims.as_bytes())
    };

    // alg: none, several spellings; with and without a signature.
    let unsigned = "unsigned tokens are not accepted";
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = b64(json!({"alg": alg, "kid": kid}).to_string().as_bytes());
        let t = format!("{h}.{}.", b64(claims.as_bytes()));
        v.push(tok(
            &format!("alg {alg:?}, empty signature"),
            &t,
            invalid_token(unsigned),
        ));
    }
    let real_sig = ctx.m2m_token.rsplit('.').next().unwrap_or("").to_owned();
    let h = b64(br#"{"alg":"none"}"#);
    v.push(tok(
        "alg none with the signature of a real token",
        &format!("{h}.{}.{real_sig}", b64(claims.as_bytes())),
        invalid_token(unsigned),
    ));
    v.push(tok(
        "alg missing from the header",
        &signed(json!({"kid": kid})),
        invalid_token("required claim missing"),
    ));
    v.push(tok(
        "alg empty",
        &signed(json!({"alg": "", "kid": kid})),
        invalid_token("unsupported signing algorithm"),
    ));
    v.push(tok(
        "alg as an array",
        &signed(json!({"alg": ["RS256"], "kid": kid})),
        invalid_token("token header or claims are not valid JSON"),
    ));

    // Algorithm confusion: HS256 with the IdP's public key as the secret.
    let hs_header = json!({"alg": "HS256", "kid": kid}).to_string();
    let jwk_text = ctx.signer.jwk.to_string();
    let n = ctx.signer.jwk["n"].as_str().unwrap_or("").to_owned();
    let n_bytes = URL_SAFE_NO_PAD.decode(&n).unwrap_or_default();
    for (what, secret) in [
        (
            "the public key PEM",
            ctx.signer.public_pem.as_bytes().to_vec(),
        ),
        ("the JWK JSON", jwk_text.as_bytes().to_vec()),
        ("the modulus n (base64url)", n.as_bytes().to_vec()),
        ("the modulus bytes", n_bytes),
    ] {
        v.push(tok(
            &format!("HS256 signed with {what}"),
            &hs256(&hs_header, &claims, &secret),
            invalid_token("signing algorithm not allowed"),
        ));
    }
    for alg in ["RS512", "PS256", "ES256", "EdDSA"] {
        v.push(tok(
            &format!("alg {alg} (not allowed for Cognito) over an RS256 signature"),
            &signed(json!({"alg": alg, "kid": kid})),
            invalid_token("signing algorithm not allowed"),
        ));
    }
    v.push(tok(
        "alg HS384 (unknown)",
        &signed(json!({"alg": "HS384", "kid": kid})),
        invalid_token("unsupported signing algorithm"),
    ));

    // kid games: path traversal, SQL-ish, odd types, unknown.
    let unknown_key = "unknown signing key";
    for (what, bad) in [
        ("path traversal", "../../../../../../etc/passwd"),
        ("absolute path", "/dev/null"),
        ("SQL-ish", "' OR '1'='1' --"),
        ("SQL-ish drop", "x'; DROP TABLE keys; --"),
        ("NUL byte", "kid\u{0}"),
        ("empty", ""),
        ("unknown", "not-a-kid-of-this-idp"),
    ] {
        v.push(tok(
            &format!("kid {what}"),
            &signed(json!({"alg": "RS256", "kid": bad})),
            invalid_token(unknown_key),
        ));
    }
    v.push(tok(
        "kid 4 KiB long",
        &signed(json!({"alg": "RS256", "kid": "k".repeat(4096)})),
        invalid_token(unknown_key),
    ));
    for (what, bad) in [("a number", json!(7)), ("an object", json!({"$ne": ""}))] {
        v.push(tok(
            &format!("kid as {what}"),
            &signed(json!({"alg": "RS256", "kid": bad})),
            invalid_token("token header or claims are not valid JSON"),
        ));
    }

    // crit headers (validly signed: crit alone must refuse).
    for crit in [json!(["exp"]), json!([]), json!(["b64"])] {
        let t = signed(json!({"alg": "RS256", "kid": kid, "crit": crit, "b64": false}));
        v.push(tok(
            &format!("crit {crit}"),
            &t,
            invalid_token("unsupported critical header"),
        ));
    }

    // Duplicate JSON keys (validly signed).
    let bad_json = "token header or claims are not valid JSON";
    let inner = claims.trim_start_matches('{');
    for (what, dup) in [
        ("sub", r#""sub":"admin","#),
        ("client_id", r#""client_id":"other-client","#),
        ("token_use", r#""token_use":"id","#),
        ("exp", r#""exp":99999999999,"#),
    ] {
        let raw = format!("{{{dup}{inner}");
        v.push(tok(
            &format!("duplicate claim {what}"),
            &ctx.signer.rs256_claims(&raw),
            invalid_token(bad_json),
        ));
    }
    let raw_header = format!(r#"{{"alg":"none","kid":"{kid}","alg":"RS256"}}"#);
    v.push(tok(
        "duplicate alg in the header",
        &ctx.signer.rs256(raw_header.as_bytes(), claims.as_bytes()),
        invalid_token(bad_json),
    ));

    // Deep nesting.
    let too_deep = "token JSON nested too deeply";
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    v.push(tok(
        "claims nested 64 deep",
        &ctx.signer
            .rs256_claims(&format!(r#"{{"x":{},{inner}"#, deep(64))),
        invalid_token(too_deep),
    ));
    v.push(tok(
        "claims nested 5000 deep",
        &ctx.signer
            .rs256_claims(&format!(r#"{{"x":{},{inner}"#, deep(5000))),
        invalid_token(too_deep),
    ));
    let deep_header = format!(r#"{{"alg":"RS256","kid":"{kid}","x":{}}}"#, deep(64));
    v.push(tok(
        "header nested 64 deep",
        &ctx.signer.rs256(deep_header.as_bytes(), claims.as_bytes()),
        invalid_token(too_deep),
    ));

    // Not UTF-8.
    let mut latin1_claims = claims.as_bytes().to_vec();
    latin1_claims.splice(1..1, b"\"n\xe4me\":\"\xff\xfe\",".iter().copied());
    let header_std = json!({"alg": "RS256", "kid": kid}).to_string();
    v.push(tok(
        "claims not UTF-8 (validly signed)",
        &ctx.signer.rs256(header_std.as_bytes(), &latin1_claims),
        invalid_token(bad_json),
    ));
    v.push(tok(
        "header not UTF-8",
        &format!(
            "{}.{}.{real_sig}",
            b64(b"{\"alg\":\"RS\xff256\"}"),
            b64(claims.as_bytes())
        ),
        invalid_token(bad_json),
    ));
    v.push(Case::new(
        T,
        "raw non-UTF-8 bytes in the Authorization header",
        mcp_req(Some(b"Bearer \xff\xfe\xfd.\xc3\x28.\x80")),
        invalid_token_any(),
    ));

    // Bad base64url and padding.
    let bad_b64 = "token is not valid base64url";
    let parts: Vec<&str> = ctx.m2m_token.split('.').collect();
    let (h0, p0, s0) = (parts[0], parts[1], parts.get(2).copied().unwrap_or(""));
    let std_sig = STANDARD.encode(URL_SAFE_NO_PAD.decode(s0).unwrap_or_default());
    let padded = |seg: &str| URL_SAFE.encode(URL_SAFE_NO_PAD.decode(seg).unwrap_or_default());
    for (what, t, expect) in [
        (
            "signature in standard base64 (+ /)",
            format!("{h0}.{p0}.{}", std_sig.replace('=', "")),
            invalid_token_any(),
        ),
        (
            "padded signature",
            format!("{h0}.{p0}.{}==", s0),
            invalid_token(bad_b64),
        ),
        (
            "padded header",
            format!("{}.{p0}.{s0}", padded(h0)),
            invalid_token_any(),
        ),
        (
            "space inside the payload",
            format!("{h0}.{} {}.{s0}", &p0[..10], &p0[10..]),
            invalid_token_any(),
        ),
        (
            "header segment '*'",
            format!("*.{p0}.{s0}"),
            invalid_token(bad_b64),
        ),
        (
            "empty payload",
            format!("{h0}..{s0}"),
            invalid_token(bad_b64),
        ),
        (
            "two segments",
            format!("{h0}.{p0}"),
            invalid_token("token is not a compact JWS"),
        ),
        (
            "four segments",
            format!("{h0}.{p0}.{s0}.{s0}"),
            invalid_token("token is not a compact JWS"),
        ),
        (
            "five segments (JWE shape)",
            format!("{h0}.{p0}.{s0}.{s0}.{s0}"),
            invalid_token("token is not a compact JWS"),
        ),
        ("just dots", "..".to_owned(), invalid_token_any()),
        (
            "not a JWT at all",
            "hello-world".to_owned(),
            invalid_token("token is not a compact JWS"),
        ),
    ] {
        v.push(tok(&format!("base64: {what}"), &t, expect));
    }
    v.push(tok(
        "payload swapped under a valid signature",
        &format!(
            "{h0}.{}.{s0}",
            b64(ctx.claims_with(&[("sub", json!("admin"))]).as_bytes())
        ),
        invalid_token("signature verification failed"),
    ));

    // exp, nbf, iat typing.
    let invalid_claim = "claim has an invalid value";
    for (what, exp) in [
        ("a string", json!("9999999999")),
        ("a float", json!(9_999_999_999.5)),
        ("negative", json!(-1)),
        ("huge (u64 max)", json!(u64::MAX)),
        ("after year 9999", json!(253_402_300_800u64)),
        ("1e30", json!(1e30)),
        ("true", json!(true)),
        ("an array", json!([9_999_999_999u64])),
    ] {
        v.push(tok(
            &format!("exp {what}"),
            &ctx.m2m_with(&[("exp", exp)]),
            invalid_token(invalid_claim),
        ));
    }
    v.push(tok(
        "exp 2^64 (overflows u64)",
        &ctx.signer
            .rs256_claims(&format!(r#"{{"exp":18446744073709551616,{inner}"#)),
        // Parsed as a float, or refused as a duplicate of the real exp: both are refusals.
        Expect::OneOf(vec![invalid_token(invalid_claim), invalid_token(bad_json)]),
    ));
    v.push(tok(
        "exp 0",
        &ctx.m2m_with(&[("exp", json!(0))]),
        invalid_token("token expired"),
    ));
    let now = crate::scenarios::now();
    v.push(tok(
        "expired an hour ago",
        &ctx.m2m_with(&[
            ("exp", json!(now - 3600)),
            ("iat", json!(now - 7200)),
            ("auth_time", json!(now - 7200)),
        ]),
        invalid_token("token expired"),
    ));
    v.push(tok(
        "nbf in a day",
        &ctx.m2m_with(&[("nbf", json!(now + 86_400))]),
        invalid_token("token not yet valid"),
    ));
    v.push(tok(
        "iat as a string",
        &ctx.m2m_with(&[("iat", json!("yesterday"))]),
        invalid_token(invalid_claim),
    ));

    // Missing and wrong claims.
    for claim in ["exp", "iss", "sub", "client_id", "token_use"] {
        v.push(tok(
            &format!("claim {claim} missing"),
            &ctx.m2m_with(&[(claim, Value::Null)]),
            invalid_token("required claim missing"),
        ));
    }
    v.push(tok(
        "sub empty",
        &ctx.m2m_with(&[("sub", json!(""))]),
        invalid_token(invalid_claim),
    ));
    v.push(tok(
        "sub a number",
        &ctx.m2m_with(&[("sub", json!(42))]),
        invalid_token(bad_json),
    ));
    let issuer = ctx.idp.issuer();
    for (what, iss) in [
        ("another pool", format!("{}x", issuer)),
        ("trailing slash", format!("{issuer}/")),
        ("the proxy itself", ctx.base_url.clone()),
    ] {
        v.push(tok(
            &format!("iss {what}"),
            &ctx.m2m_with(&[("iss", json!(iss))]),
            invalid_token("token issued by another issuer"),
        ));
    }
    v.push(tok(
        "token_use id on an access token",
        &ctx.m2m_with(&[("token_use", json!("id"))]),
        invalid_token("wrong kind of token"),
    ));
    v.push(tok(
        "token_use ACCESS (case)",
        &ctx.m2m_with(&[("token_use", json!("ACCESS"))]),
        invalid_token("wrong kind of token"),
    ));

    // Sizes.
    let mut long = ctx.m2m_claims.clone();
    long.insert("pad".into(), json!("p".repeat(17 * 1024)));
    v.push(tok(
        "17 KiB token (over max_token_bytes)",
        &ctx.signer.rs256_claims(&Value::Object(long).to_string()),
        invalid_token("token too long"),
    ));
    let mut huge = ctx.m2m_claims.clone();
    huge.insert("pad".into(), json!("p".repeat(64 * 1024)));
    v.push(tok(
        "64 KiB token",
        &ctx.signer.rs256_claims(&Value::Object(huge).to_string()),
        // Envoy's own header limit (60 KiB) answers first; a host without one reaches the core.
        Expect::OneOf(vec![Expect::Status(431), invalid_token("token too long")]),
    ));

    // Where the token travels.
    let query_token = "tokens are accepted only in the Authorization header";
    v.push(Case::new(
        T,
        "valid token in ?access_token=",
        Req::get(&format!("/mcp?access_token={}", ctx.access_token)),
        oauth_d(400, "invalid_request", query_token),
    ));
    v.push(Case::new(
        T,
        "valid token in ?x=1&access_token= with a valid header too",
        whoami_req(&ctx.access_token, &[])
            .tap_target(&format!("/mcp?x=1&access_token={}", ctx.access_token)),
        oauth_d(400, "invalid_request", query_token),
    ));
    v.push(Case::new(
        T,
        "valid token in ?access%5Ftoken= (encoded name)",
        Req::get(&format!("/mcp?access%5Ftoken={}", ctx.access_token)),
        no_token(),
    ));
    v.push(Case::new(
        T,
        "valid token in a form body (RFC 6750 §2.2)",
        Req::form("/mcp", &[("access_token", &ctx.access_token)]),
        no_token(),
    ));
    v.push(Case::new(
        T,
        "Basic with the valid token as credentials",
        mcp_req(Some(
            format!(
                "Basic {}",
                STANDARD.encode(format!("{}:", ctx.access_token))
            )
            .as_bytes(),
        )),
        no_token(),
    ));
    v.push(Case::new(
        T,
        "Basic <token>",
        mcp_req(Some(format!("Basic {}", ctx.access_token).as_bytes())),
        no_token(),
    ));
    v.push(Case::new(
        T,
        "scheme only (Bearer)",
        mcp_req(Some(b"Bearer")),
        no_token(),
    ));
    v.push(Case::new(
        T,
        "token without a scheme",
        mcp_req(Some(ctx.access_token.as_bytes())),
        no_token(),
    ));
    // Envoy's HTTP/1 codec joins repeated headers into one value ("a,b") before the filter
    // sees them (then the joined value is no token); a host passing both gets the core's 400.
    let two_auth = || {
        Expect::OneOf(vec![
            oauth_d(400, "invalid_request", "more than one authorization header"),
            invalid_token("token is not a compact JWS"),
        ])
    };
    v.push(Case::new(
        T,
        "two Authorization headers (invalid first, valid second)",
        mcp_req(Some(b"Bearer x.y.z")).bearer(&ctx.access_token),
        two_auth(),
    ));
    v.push(Case::new(
        T,
        "two Authorization headers (valid first, other case second)",
        whoami_req(&ctx.access_token, &[("AUTHORIZATION", "Bearer x.y.z")]),
        two_auth(),
    ));

    // Tokens that are real but not for this resource or client.
    let id_token = ctx
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Id,
            "alice",
            "m2m-client",
        ))
        .unwrap_or_default();
    v.push(tok(
        "an ID token",
        &id_token,
        invalid_token("wrong kind of token"),
    ));
    let web_id = ctx
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Id,
            "alice",
            "mcpgate-web",
        ))
        .unwrap_or_default();
    v.push(tok(
        "an ID token of the proxy's own app client",
        &web_id,
        invalid_token("wrong kind of token"),
    ));
    let other = ctx
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Machine,
            "",
            "other-client",
        ))
        .unwrap_or_default();
    v.push(tok(
        "another client's m2m token",
        &other,
        invalid_token("token issued for another audience"),
    ));
    let web_access = ctx
        .idp
        .mint(&MintRequest::template(
            TokenTemplate::Access,
            "alice",
            "mcpgate-web",
        ))
        .unwrap_or_default();
    v.push(tok(
        "alice's IdP access token of the proxy's app client (not accepted directly)",
        &web_access,
        invalid_token("token issued for another audience"),
    ));
    let key2 = ctx
        .idp
        .mint(&MintRequest::template(TokenTemplate::Machine, "", "m2m-client").key(2))
        .unwrap_or_default();
    v.push(tok(
        "signed by a key not in the JWKS",
        &key2,
        invalid_token(unknown_key),
    ));
    let key2_kid1 = ctx
        .idp
        .mint(
            &MintRequest::template(TokenTemplate::Machine, "", "m2m-client")
                .key(2)
                .kid(&kid),
        )
        .unwrap_or_default();
    v.push(tok(
        "signed by another key under the published kid",
        &key2_kid1,
        invalid_token("signature verification failed"),
    ));

    // The proxy's own access token, tampered.
    let own: Vec<&str> = ctx.access_token.split('.').collect();
    let (oh, op, os) = (own[0], own[1], own.get(2).copied().unwrap_or(""));
    let own_claims: Value = URL_SAFE_NO_PAD
        .decode(op)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let mut admin = own_claims.clone();
    admin["sub"] = json!("admin");
    admin["groups"] = json!(["admins", "root"]);
    let bad_sig = "signature verification failed";
    v.push(tok(
        "own token with claims changed (sub admin), original signature",
        &format!("{oh}.{}.{os}", b64(admin.to_string().as_bytes())),
        invalid_token(bad_sig),
    ));
    let header_text =
        String::from_utf8(URL_SAFE_NO_PAD.decode(oh).unwrap_or_default()).unwrap_or_default();
    v.push(tok(
        "own token re-signed HS256 with a guessed key",
        &hs256(&header_text, &admin.to_string(), b"secret"),
        invalid_token(bad_sig),
    ));
    v.push(tok(
        "own token re-signed with the client_id as the key",
        &hs256(
            &header_text,
            &own_claims.to_string(),
            ctx.client_id.as_bytes(),
        ),
        invalid_token(bad_sig),
    ));
    v.push(tok(
        "own token with alg none",
        &format!(
            "{}.{op}.",
            b64(header_text.replace("HS256", "none").as_bytes())
        ),
        invalid_token(unsigned),
    ));
    v.push(tok(
        "own token without its signature",
        &format!("{oh}.{op}."),
        invalid_token(bad_sig),
    ));
    v.push(tok(
        "own token with a flipped signature bit",
        &flip_at(&ctx.access_token, -2),
        invalid_token(bad_sig),
    ));
    v.push(tok(
        "own token with a trailing dot",
        &format!("{}.", ctx.access_token),
        invalid_token("token is not a compact JWS"),
    ));
    v
}
