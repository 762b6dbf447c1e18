//! The configuration schema shared by every host. Parsed from JSON (Envoy plugin
//! configuration) or from a map of strings (Worker vars), validated key by key: unknown keys
//! and bad values fail with an error naming the key, never with a silent default.
//!
//! * [`keys`] — the one table of keys (names, how each is written in a variable);
//! * `idp` — provider, app client and the IdP's endpoints;
//! * `tokens` — the proxy's signing keys and algorithm;
//! * `rules` — what reaches the origin: identity headers, group rules, protected paths;
//! * `clients` — how clients reach the proxy: metadata documents, CORS;
//! * `tools` — per-tool authorization (`tool_rules`) and `tools/list` filtering;
//! * [`forwarding`] — the IdP's token and a signed identity assertion for the origin;
//! * [`vars`] — the same configuration from environment-style variables;
//! * `reader` — typed accessors and value checks.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

use crate::jwt::compact::DEFAULT_MAX_TOKEN_BYTES;
use crate::jwt::policy::DEFAULT_LEEWAY_SECONDS;

mod clients;
pub mod forwarding;
mod idp;
pub mod keys;
mod reader;
mod rules;
mod tokens;
pub mod tools;
pub mod vars;

pub use clients::{Cimd, CorsMode, CorsOrigins};
pub use forwarding::{Forwarding, UpstreamToken};
pub(crate) use rules::origin_headers;
pub use tools::{ToolDefault, ToolRule};
pub use vars::{env_name, from_vars};

use reader::{missing, trim_slash, Reader};

/// A configuration value that must not be logged. `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A configuration error: which key, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: &str, problem: impl Into<String>) -> Self {
        // An empty key (`{"": …}`) is still named, visibly (found by fuzzing).
        let key = if key.is_empty() { "\"\"" } else { key };
        Self {
            key: key.to_string(),
            problem: problem.into(),
        }
    }
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "config key `{}`: {}", self.key, self.problem)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// AWS Cognito user pool: issuer and JWKS derived from region and pool id, RS256 only,
    /// access tokens checked by `client_id` and `token_use`.
    Cognito,
    /// Any OpenID Connect provider; endpoints must be given under `upstream`.
    Oidc,
}

/// When the proxy asks the user to approve a dynamically registered client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentMode {
    /// Every authorization shows the consent page (the default).
    Always,
    /// Approved clients are remembered in a signed, size-bounded cookie.
    Remember,
    /// No consent page. Only safe when every client is trusted.
    Off,
}

/// How the proxy authenticates to the IdP's token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
}

/// Which algorithm signs mcpgate's own access tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningAlgorithm {
    Hs256,
    Es256,
    EdDsa,
}

/// The IdP's endpoints, after defaults were derived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
}

/// Header names used to pass the identity to the MCP server; `None`: not passed (the
/// configuration's `null`: each header the origin does not read is one host call less per
/// request in Envoy, ≈ 3.3k instructions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub sub: Option<String>,
    pub username: Option<String>,
    pub groups: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub email: Option<String>,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        let name = |n: &str| Some(String::from(n));
        Self {
            sub: name("x-mcpgate-sub"),
            username: name("x-mcpgate-username"),
            groups: name("x-mcpgate-groups"),
            scope: name("x-mcpgate-scope"),
            client_id: name("x-mcpgate-client-id"),
            email: name("x-mcpgate-email"),
        }
    }
}

/// Which request paths need a valid token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protect {
    /// Every path except the proxy's own routes and `public_paths` (the default).
    All,
    /// Only the MCP path and below; every other path reaches the origin without a token.
    /// Safe only when the origin serves nothing else of value.
    McpPath,
}

/// Access to a path prefix of the MCP server restricted to members of some groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRule {
    pub path_prefix: String,
    pub groups: Vec<String>,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub provider: Provider,
    pub user_pool_id: Option<String>,
    pub aws_region: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// Public URL of the proxy, without a trailing slash.
    pub base_url: String,
    /// The proxy's own issuer identifier (defaults to `base_url`).
    pub issuer_url: String,
    pub redirect_path: String,
    pub mcp_path: String,
    pub required_scopes: Vec<String>,
    pub allowed_client_redirect_uris: Option<Vec<String>>,
    /// Current key first, then retired keys still accepted.
    pub jwt_signing_keys: Vec<Secret>,
    pub signing_algorithm: SigningAlgorithm,
    pub consent: ConsentMode,
    pub upstream: Upstream,
    pub token_endpoint_auth_method: ClientAuthMethod,
    pub leeway_seconds: u64,
    pub max_token_bytes: usize,
    pub access_token_max_lifetime: u64,
    pub refresh_token_lifetime: u64,
    /// Cognito app clients whose own access tokens (e.g. machine-to-machine) are accepted on
    /// the MCP endpoint directly.
    pub accepted_client_ids: Vec<String>,
    /// Scopes those directly presented tokens must carry.
    pub accepted_client_scopes: Vec<String>,
    pub identity_headers: IdentityHeaders,
    /// Extra claims copied to headers: claim name → header name.
    pub claim_headers: Vec<(String, String)>,
    /// The IdP's token of the user and a signed identity assertion for the origin.
    pub forwarding: Forwarding,
    pub group_rules: Vec<GroupRule>,
    /// Which paths need a token.
    pub protect: Protect,
    /// Paths the origin serves without a token (`protect: all`): exact canonical paths, or
    /// subtrees given as `/prefix/*` and kept here as `/prefix/`.
    pub public_paths: Vec<String>,
    pub max_body_bytes: usize,
    /// Request-header limit on every route: names and values, pseudo-headers excluded (431).
    pub max_header_bytes: usize,
    /// Most request headers on every route, pseudo-headers excluded (431).
    pub max_headers: usize,
    /// Verified tokens remembered per VM / isolate (0 disables the cache).
    pub token_cache_size: usize,
    /// Requests per minute to /register, /authorize and /token per client address (0: off).
    pub rate_limit_per_address: u32,
    /// Requests per minute to /authorize and /token per client id and client address (0: off).
    pub rate_limit_per_client: u32,
    /// Which Client ID Metadata Documents are accepted. A host that cannot fetch them sets
    /// this to [`Cimd::Off`] before building the gate (Envoy without a cluster to reach them).
    pub cimd: Cimd,
    /// Documents may come from loopback and private addresses (and over plain http from
    /// loopback): development and tests only.
    pub cimd_allow_private: bool,
    /// Hosts (lower case, no port) a Client ID Metadata Document URL may not name, besides
    /// the proxy's own: the origin's and other internal hosts the proxy could reach. The
    /// Worker adds its origin's host itself.
    pub cimd_denied_hosts: Vec<String>,
    /// Who answers CORS on the guarded paths.
    pub cors: CorsMode,
    /// Browser origins allowed on the guarded paths.
    pub cors_origins: CorsOrigins,
    /// Per-tool rules on MCP requests, in order (the first that matches decides).
    pub tool_rules: Vec<ToolRule>,
    /// What an MCP request no rule matches gets.
    pub tool_rules_default: ToolDefault,
    /// `tools/list` answers list only the tools the caller may call.
    pub filter_tools_list: bool,
    /// Largest MCP POST body read when tool rules are in force (413 beyond).
    pub max_mcp_body_bytes: usize,
}

impl Config {
    /// The MCP resource URL: `base_url + mcp_path`, the audience of mcpgate's tokens.
    pub fn resource_url(&self) -> String {
        format!("{}{}", self.base_url, self.mcp_path)
    }

    /// Whether MCP requests are authorized per method and tool (`tool_rules` given, or a
    /// `deny` default): the proxy then reads MCP POST bodies.
    pub fn tool_rules_active(&self) -> bool {
        !self.tool_rules.is_empty() || self.tool_rules_default == ToolDefault::Deny
    }

    /// The IdP callback: `base_url + redirect_path`.
    pub fn callback_url(&self) -> String {
        format!("{}{}", self.base_url, self.redirect_path)
    }
}

/// Reads secrets named by `{"env": "NAME"}` values; hosts pass their environment lookup.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A parsed configuration plus the keys reserved for the host, left for it to read.
#[derive(Debug)]
pub struct Parsed {
    pub config: Config,
    pub host: BTreeMap<String, Value>,
}

/// Parses the JSON configuration. Keys in `host_keys` are returned untouched in
/// [`Parsed::host`]; any other unknown key is an error.
pub fn parse_json(json: &[u8], host_keys: &[&str], env: EnvLookup) -> Result<Parsed, ConfigError> {
    let value: Value = serde_json::from_slice(json)
        .map_err(|e| ConfigError::new("(document)", format!("not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ConfigError::new("(document)", "must be a JSON object"));
    };
    parse_map(map, host_keys, env)
}

/// Parses an already decoded configuration object.
pub fn parse_map(
    mut map: Map<String, Value>,
    host_keys: &[&str],
    env: EnvLookup,
) -> Result<Parsed, ConfigError> {
    let mut host = BTreeMap::new();
    for key in map.keys() {
        if keys::find(key).is_none() && !host_keys.contains(&key.as_str()) {
            return Err(ConfigError::new(key, "unknown key"));
        }
    }
    for key in host_keys {
        if let Some(v) = map.remove(*key) {
            host.insert((*key).to_string(), v);
        }
    }
    let r = Reader { map: &map, env };

    let idp = idp::read(&r)?;
    let base_url = trim_slash(r.url("base_url")?.ok_or_else(|| missing("base_url"))?);
    let issuer_url = match r.url("issuer_url")? {
        Some(u) => trim_slash(u),
        None => base_url.clone(),
    };
    let redirect_path = r.path("redirect_path", "/auth/callback")?;
    let mcp_path = r.path("mcp_path", "/mcp")?;
    let required_scopes = r
        .scopes("required_scopes")?
        .unwrap_or_else(|| alloc::vec!["openid".into()]);
    let allowed_client_redirect_uris = r.str_list("allowed_client_redirect_uris")?;
    let jwt_signing_keys = tokens::signing_keys(&r, idp.client_secret.as_ref())?;
    let signing_algorithm = tokens::algorithm(&r)?;
    let identity_headers = rules::identity_headers(&r)?;
    let claim_headers = rules::claim_headers(&r)?;
    let forwarding = forwarding::read(&r)?;
    rules::one_source_per_header(&identity_headers, &claim_headers, &forwarding)?;
    let consent = match r.opt_str("consent")?.as_deref() {
        None | Some("always") => ConsentMode::Always,
        Some("remember") => ConsentMode::Remember,
        Some("off") => ConsentMode::Off,
        Some(_) => {
            return Err(ConfigError::new(
                "consent",
                "must be always, remember or off",
            ))
        }
    };

    Ok(Parsed {
        config: Config {
            provider: idp.provider,
            user_pool_id: idp.user_pool_id,
            aws_region: idp.aws_region,
            client_id: idp.client_id,
            client_secret: idp.client_secret,
            base_url,
            issuer_url,
            redirect_path,
            public_paths: rules::public_paths(&r, &mcp_path)?,
            mcp_path,
            required_scopes,
            allowed_client_redirect_uris,
            jwt_signing_keys,
            signing_algorithm,
            consent,
            upstream: idp.upstream,
            token_endpoint_auth_method: idp.token_endpoint_auth_method,
            leeway_seconds: r.uint("leeway_seconds", DEFAULT_LEEWAY_SECONDS, 0, 600)?,
            max_token_bytes: r.uint(
                "max_token_bytes",
                DEFAULT_MAX_TOKEN_BYTES as u64,
                1024,
                65536,
            )? as usize,
            access_token_max_lifetime: r.uint("access_token_max_lifetime", 3600, 60, 86_400)?,
            refresh_token_lifetime: r.uint(
                "refresh_token_lifetime",
                30 * 86_400,
                300,
                3650 * 86_400,
            )?,
            accepted_client_ids: r.str_list("accepted_client_ids")?.unwrap_or_default(),
            accepted_client_scopes: r.scopes("accepted_client_scopes")?.unwrap_or_default(),
            claim_headers,
            forwarding,
            identity_headers,
            group_rules: rules::group_rules(&r)?,
            protect: rules::protect(&r)?,
            max_body_bytes: r.uint("max_body_bytes", 64 * 1024, 1024, 1024 * 1024)? as usize,
            max_header_bytes: r.uint("max_header_bytes", 32 * 1024, 4096, 1024 * 1024)? as usize,
            max_headers: r.uint("max_headers", 100, 16, 1000)? as usize,
            token_cache_size: r.uint("token_cache_size", 256, 0, 65_536)? as usize,
            rate_limit_per_address: r.uint("rate_limit_per_address", 120, 0, 1_000_000)? as u32,
            rate_limit_per_client: r.uint("rate_limit_per_client", 60, 0, 1_000_000)? as u32,
            cimd: clients::cimd(&r)?,
            cimd_allow_private: clients::boolean(&r, "cimd_allow_private", false)?,
            cimd_denied_hosts: clients::cimd_denied_hosts(&r)?,
            cors: clients::cors_mode(&r)?,
            cors_origins: clients::cors_origins(&r)?,
            tool_rules: tools::tool_rules(&r)?,
            tool_rules_default: tools::tool_default(&r)?,
            filter_tools_list: clients::boolean(&r, "filter_tools_list", false)?,
            max_mcp_body_bytes: r.uint("max_mcp_body_bytes", 1024 * 1024, 1024, 16 * 1024 * 1024)?
                as usize,
        },
        host,
    })
}

#[cfg(test)]
mod tests;
