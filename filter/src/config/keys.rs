//! The one table of the core's configuration keys: each key's name, how its value is written
//! in an environment variable, and whether the reference's (FastMCP's) variable name is
//! accepted for it. Every key list (known keys, list keys, …) derives from it.

/// How a key's value is written in an environment variable (in JSON it is always JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// A list: `a,b c`, or a JSON array.
    List,
    /// An object or list of objects, as JSON.
    Json,
    /// A whole number.
    Int,
    /// `true` or `false`.
    Bool,
    /// The `upstream` object: one variable per member (`MCPGATE_UPSTREAM_<MEMBER>`).
    Upstream,
}

/// One configuration key.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    /// Also read from `FASTMCP_SERVER_AUTH_AWS_COGNITO_<NAME>` (the reference's names).
    pub fastmcp: bool,
}

const fn key(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        fastmcp: false,
    }
}

const fn fastmcp(name: &'static str, kind: Kind) -> Key {
    Key {
        name,
        kind,
        fastmcp: true,
    }
}

use Kind::{Bool, Int, Json, List, Text, Upstream};

/// Every key the core understands.
pub const SCHEMA: &[Key] = &[
    // The IdP and the proxy's own identity.
    key("provider", Text),
    fastmcp("user_pool_id", Text),
    fastmcp("aws_region", Text),
    key("cognito_domain", Text),
    fastmcp("client_id", Text),
    fastmcp("client_secret", Text),
    fastmcp("base_url", Text),
    fastmcp("issuer_url", Text),
    fastmcp("redirect_path", Text),
    key("mcp_path", Text),
    key("upstream", Upstream),
    key("token_endpoint_auth_method", Text),
    // Tokens.
    fastmcp("required_scopes", List),
    fastmcp("jwt_signing_key", Text),
    key("previous_jwt_signing_keys", List),
    key("signing_algorithm", Text),
    key("leeway_seconds", Int),
    key("max_token_bytes", Int),
    key("access_token_max_lifetime", Int),
    key("refresh_token_lifetime", Int),
    key("accepted_client_ids", List),
    key("accepted_client_scopes", List),
    // Clients and consent.
    fastmcp("allowed_client_redirect_uris", List),
    key("consent", Text),
    key("cimd", List),
    key("cimd_allow_private", Bool),
    key("cimd_denied_hosts", List),
    key("cors", Text),
    key("cors_origins", List),
    // What reaches the origin.
    key("identity_headers", Json),
    key("claim_headers", Json),
    key("group_rules", Json),
    key("protect", Text),
    key("public_paths", List),
    // Per-tool authorization.
    key("tool_rules", Json),
    key("tool_rules_default", Text),
    key("filter_tools_list", Bool),
    // Limits.
    key("max_body_bytes", Int),
    key("max_header_bytes", Int),
    key("max_headers", Int),
    key("max_mcp_body_bytes", Int),
    key("token_cache_size", Int),
    key("rate_limit_per_address", Int),
    key("rate_limit_per_client", Int),
    // What the origin learns besides the identity headers.
    key("forward_upstream_token", Text),
    key("upstream_token_header", Text),
    key("identity_assertion", Bool),
    key("identity_assertion_header", Text),
    key("identity_assertion_audience", Text),
];

/// The members of the `upstream` object.
pub const UPSTREAM_KEYS: &[&str] = &[
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "revocation_endpoint",
    "userinfo_endpoint",
];

/// The key named `name`, if the core knows it.
pub fn find(name: &str) -> Option<&'static Key> {
    SCHEMA.iter().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        for (i, k) in SCHEMA.iter().enumerate() {
            assert!(
                SCHEMA.iter().skip(i + 1).all(|o| o.name != k.name),
                "{} twice",
                k.name
            );
        }
    }
}
