//! Discovery documents: RFC 9728 protected-resource metadata, RFC 8414 authorization-server
//! metadata (also served as OpenID configuration) and the proxy's public JWKS.

use serde_json::json;

use crate::gate::Gate;
use crate::http::Response;
use crate::respond;

pub(super) fn protected_resource(gate: &Gate) -> Response {
    let c = &gate.cfg;
    // The scopes `tool_rules` ask for too: clients may step up to them.
    let mut scopes: alloc::vec::Vec<&str> = c.required_scopes.iter().map(|s| s.as_str()).collect();
    for s in c.tool_rules.iter().flat_map(|r| r.scopes.iter()) {
        if !scopes.contains(&s.as_str()) {
            scopes.push(s);
        }
    }
    cacheable(respond::json(
        200,
        &json!({
            "resource": c.resource_url(),
            "authorization_servers": [c.issuer_url],
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
        }),
    ))
}

pub(super) fn authorization_server(gate: &Gate) -> Response {
    let c = &gate.cfg;
    let b = &c.base_url;
    // Machine clients (client_credentials) are the IdP's app clients with their secrets;
    // metadata documents may authenticate with RFC 7523 assertions.
    let machines = gate.direct.is_some();
    let mut grants = alloc::vec!["authorization_code", "refresh_token"];
    let mut auth_methods = alloc::vec!["none"];
    if c.cimd.enabled() {
        auth_methods.push("private_key_jwt");
    }
    if machines {
        grants.push("client_credentials");
        auth_methods.extend(["client_secret_basic", "client_secret_post"]);
    }
    let mut doc = json!({
        "issuer": c.issuer_url,
        "authorization_endpoint": alloc::format!("{b}/authorize"),
        "token_endpoint": alloc::format!("{b}/token"),
        "registration_endpoint": alloc::format!("{b}/register"),
        "revocation_endpoint": alloc::format!("{b}/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grants,
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": c.required_scopes,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": c.cimd.enabled(),
    });
    if c.cimd.enabled() {
        let algs: alloc::vec::Vec<&str> = crate::client_auth::ALGORITHMS
            .iter()
            .map(|a| a.name())
            .collect();
        respond::insert(
            &mut doc,
            "token_endpoint_auth_signing_alg_values_supported",
            json!(algs),
        );
    }
    if gate.public_jwks().is_some() {
        respond::insert(
            &mut doc,
            "jwks_uri",
            json!(alloc::format!("{b}/.well-known/jwks.json")),
        );
    }
    cacheable(respond::json(200, &doc))
}

pub(super) fn jwks(gate: &Gate) -> Response {
    let doc = gate.public_jwks().unwrap_or_else(|| json!({ "keys": [] }));
    cacheable(respond::json(200, &doc))
}

/// Metadata may be cached briefly by clients and CDNs.
fn cacheable(mut r: Response) -> Response {
    for (k, v) in r.headers.iter_mut() {
        if k == "cache-control" {
            *v = "public, max-age=300".into();
        }
    }
    r.headers.retain(|(k, _)| k != "pragma");
    r
}
