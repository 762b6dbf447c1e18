//! The configuration schema shared by every host. Parsed from JSON (Envoy plugin
//! configuration) or from a map of strings (Worker vars), validated key by key: unknown keys
//! and bad values fail with an error naming the key, never with a silent default.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::{Map, Value};

use crate::jwt::compact::DEFAULT_MAX_TOKEN_BYTES;
use crate::jwt::policy::DEFAULT_LEEWAY_SECONDS;

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

/// Header names used to pass the identity to the MCP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityHeaders {
    pub sub: String,
    pub username: String,
    pub groups: String,
    pub scope: String,
    pub client_id: String,
    pub email: String,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        Self {
            sub: "x-mcpgate-sub".into(),
            username: "x-mcpgate-username".into(),
            groups: "x-mcpgate-groups".into(),
            scope: "x-mcpgate-scope".into(),
            client_id: "x-mcpgate-client-id".into(),
            email: "x-mcpgate-email".into(),
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
    /// Hosts (lower case, no port) a Client ID Metadata Document URL may not name, besides
    /// the proxy's own: the origin's and other internal hosts the proxy could reach. The
    /// Worker adds its origin's host itself.
    pub cimd_denied_hosts: Vec<String>,
}

impl Config {
    /// The MCP resource URL: `base_url + mcp_path`, the audience of mcpgate's tokens.
    pub fn resource_url(&self) -> String {
        format!("{}{}", self.base_url, self.mcp_path)
    }

    /// The IdP callback: `base_url + redirect_path`.
    pub fn callback_url(&self) -> String {
        format!("{}{}", self.base_url, self.redirect_path)
    }
}

/// Every key the core understands.
pub const KEYS: &[&str] = &[
    "provider",
    "user_pool_id",
    "aws_region",
    "cognito_domain",
    "client_id",
    "client_secret",
    "base_url",
    "issuer_url",
    "redirect_path",
    "mcp_path",
    "required_scopes",
    "allowed_client_redirect_uris",
    "jwt_signing_key",
    "previous_jwt_signing_keys",
    "signing_algorithm",
    "consent",
    "upstream",
    "token_endpoint_auth_method",
    "leeway_seconds",
    "max_token_bytes",
    "access_token_max_lifetime",
    "refresh_token_lifetime",
    "accepted_client_ids",
    "accepted_client_scopes",
    "identity_headers",
    "claim_headers",
    "group_rules",
    "protect",
    "public_paths",
    "max_body_bytes",
    "max_header_bytes",
    "max_headers",
    "token_cache_size",
    "rate_limit_per_address",
    "rate_limit_per_client",
    "cimd_denied_hosts",
];

const UPSTREAM_KEYS: &[&str] = &[
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "revocation_endpoint",
    "userinfo_endpoint",
];

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
        if !KEYS.contains(&key.as_str()) && !host_keys.contains(&key.as_str()) {
            return Err(ConfigError::new(key, "unknown key"));
        }
    }
    for key in host_keys {
        if let Some(v) = map.remove(*key) {
            host.insert((*key).to_string(), v);
        }
    }
    let r = Reader { map: &map, env };

    let provider = match r.opt_str("provider")?.as_deref() {
        None | Some("cognito") => Provider::Cognito,
        Some("oidc") => Provider::Oidc,
        Some(_) => {
            return Err(ConfigError::new(
                "provider",
                "must be \"cognito\" or \"oidc\"",
            ))
        }
    };
    let aws_region = r
        .opt_str("aws_region")?
        .unwrap_or_else(|| "eu-central-1".into());
    if !aws_region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || aws_region.is_empty()
    {
        return Err(ConfigError::new(
            "aws_region",
            "must look like eu-central-1",
        ));
    }
    let user_pool_id = r.opt_str("user_pool_id")?;
    if let Some(pool) = &user_pool_id {
        let valid = pool.split_once('_').is_some_and(|(region, id)| {
            !region.is_empty()
                && !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric())
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        if !valid {
            return Err(ConfigError::new(
                "user_pool_id",
                "must look like eu-central-1_AbCdEf123",
            ));
        }
    }
    let client_id = r.req_str("client_id")?;
    let client_secret = r.opt_secret("client_secret")?;
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

    let mut jwt_signing_keys = Vec::new();
    match r.opt_secret("jwt_signing_key")? {
        Some(k) => jwt_signing_keys.push(k),
        None => match &client_secret {
            // Like the reference: without an explicit key, derive one from the client secret.
            Some(s) => jwt_signing_keys.push(Secret::new(format!(
                "derived-from-client-secret:{}",
                s.expose()
            ))),
            None => return Err(missing("jwt_signing_key")),
        },
    }
    if let Some(first) = jwt_signing_keys.first() {
        if first.expose().len() < 32 && r.map.contains_key("jwt_signing_key") {
            return Err(ConfigError::new(
                "jwt_signing_key",
                "must be at least 32 characters",
            ));
        }
    }
    for (i, v) in r
        .array("previous_jwt_signing_keys")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let key = format!("previous_jwt_signing_keys[{i}]");
        let s = secret_value(v, &key, env)?;
        if s.expose().len() < 32 {
            return Err(ConfigError::new(&key, "must be at least 32 characters"));
        }
        jwt_signing_keys.push(s);
    }
    let signing_algorithm = match r.opt_str("signing_algorithm")?.as_deref() {
        None | Some("HS256") => SigningAlgorithm::Hs256,
        Some("ES256") => SigningAlgorithm::Es256,
        Some("EdDSA") => SigningAlgorithm::EdDsa,
        Some(_) => {
            return Err(ConfigError::new(
                "signing_algorithm",
                "must be HS256, ES256 or EdDSA",
            ))
        }
    };
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
    let token_endpoint_auth_method = match r.opt_str("token_endpoint_auth_method")?.as_deref() {
        None | Some("client_secret_basic") => ClientAuthMethod::ClientSecretBasic,
        Some("client_secret_post") => ClientAuthMethod::ClientSecretPost,
        Some(_) => {
            return Err(ConfigError::new(
                "token_endpoint_auth_method",
                "must be client_secret_basic or client_secret_post",
            ))
        }
    };
    let upstream = upstream(&r, provider, &aws_region, user_pool_id.as_deref())?;

    let identity_headers = identity_headers(&r)?;
    let claim_headers = match map.get("claim_headers") {
        None => Vec::new(),
        Some(Value::Object(m)) => {
            let mut out = Vec::new();
            for (claim, header) in m {
                let key = format!("claim_headers.{claim}");
                let header = header
                    .as_str()
                    .ok_or_else(|| ConfigError::new(&key, "must be a header name"))?;
                out.push((claim.clone(), header_name(&key, header)?));
            }
            out
        }
        Some(_) => {
            return Err(ConfigError::new(
                "claim_headers",
                "must be an object of claim → header name",
            ))
        }
    };
    let group_rules = group_rules(&r)?;
    let protect = match r.opt_str("protect")?.as_deref() {
        None | Some("all") => Protect::All,
        Some("mcp_path") => Protect::McpPath,
        Some(_) => return Err(ConfigError::new("protect", "must be all or mcp_path")),
    };
    let public_paths = public_paths(&r, &mcp_path)?;
    let cimd_denied_hosts = cimd_denied_hosts(&r)?;

    Ok(Parsed {
        config: Config {
            provider,
            user_pool_id,
            aws_region,
            client_id,
            client_secret,
            base_url,
            issuer_url,
            redirect_path,
            mcp_path,
            required_scopes,
            allowed_client_redirect_uris,
            jwt_signing_keys,
            signing_algorithm,
            consent,
            upstream,
            token_endpoint_auth_method,
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
            identity_headers,
            claim_headers,
            group_rules,
            protect,
            public_paths,
            max_body_bytes: r.uint("max_body_bytes", 64 * 1024, 1024, 1024 * 1024)? as usize,
            max_header_bytes: r.uint("max_header_bytes", 32 * 1024, 4096, 1024 * 1024)? as usize,
            max_headers: r.uint("max_headers", 100, 16, 1000)? as usize,
            token_cache_size: r.uint("token_cache_size", 256, 0, 65_536)? as usize,
            rate_limit_per_address: r.uint("rate_limit_per_address", 120, 0, 1_000_000)? as u32,
            rate_limit_per_client: r.uint("rate_limit_per_client", 60, 0, 1_000_000)? as u32,
            cimd_denied_hosts,
        },
        host,
    })
}

fn upstream(
    r: &Reader,
    provider: Provider,
    region: &str,
    pool: Option<&str>,
) -> Result<Upstream, ConfigError> {
    let sub = match r.map.get("upstream") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ConfigError::new("upstream", "must be an object")),
    };
    for key in sub.keys() {
        if !UPSTREAM_KEYS.contains(&key.as_str()) {
            return Err(ConfigError::new(&format!("upstream.{key}"), "unknown key"));
        }
    }
    let get = |k: &str| -> Result<Option<String>, ConfigError> {
        match sub.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => {
                check_url(&format!("upstream.{k}"), s).map(|u| Some(trim_slash(u)))
            }
            Some(_) => Err(ConfigError::new(
                &format!("upstream.{k}"),
                "must be a URL string",
            )),
        }
    };
    let issuer = match (get("issuer")?, provider, pool) {
        (Some(i), _, _) => i,
        (None, Provider::Cognito, Some(pool)) => {
            format!("https://cognito-idp.{region}.amazonaws.com/{pool}")
        }
        (None, Provider::Cognito, None) => return Err(missing("user_pool_id")),
        (None, Provider::Oidc, _) => return Err(missing("upstream.issuer")),
    };
    // Cognito's OAuth endpoints live on the user pool's domain (hosted UI or custom domain).
    let domain = match r.opt_str("cognito_domain")? {
        None => None,
        Some(d) if d.starts_with("https://") => Some(trim_slash(check_url("cognito_domain", &d)?)),
        Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            Some(format!("https://{d}.auth.{region}.amazoncognito.com"))
        }
        Some(_) => {
            return Err(ConfigError::new(
                "cognito_domain",
                "must be a domain prefix or an https URL",
            ))
        }
    };
    let from_domain = |path: &str| domain.as_ref().map(|d| format!("{d}{path}"));
    let authorization_endpoint = get("authorization_endpoint")?
        .or_else(|| from_domain("/oauth2/authorize"))
        .ok_or_else(|| missing("upstream.authorization_endpoint (or cognito_domain)"))?;
    let token_endpoint = get("token_endpoint")?
        .or_else(|| from_domain("/oauth2/token"))
        .ok_or_else(|| missing("upstream.token_endpoint (or cognito_domain)"))?;
    let jwks_uri = match get("jwks_uri")? {
        Some(u) => u,
        None if provider == Provider::Cognito => format!("{issuer}/.well-known/jwks.json"),
        None => return Err(missing("upstream.jwks_uri")),
    };
    Ok(Upstream {
        issuer,
        authorization_endpoint,
        token_endpoint,
        jwks_uri,
        revocation_endpoint: get("revocation_endpoint")?.or_else(|| from_domain("/oauth2/revoke")),
        userinfo_endpoint: get("userinfo_endpoint")?.or_else(|| from_domain("/oauth2/userInfo")),
    })
}

fn identity_headers(r: &Reader) -> Result<IdentityHeaders, ConfigError> {
    let mut h = IdentityHeaders::default();
    let Some(v) = r.map.get("identity_headers") else {
        return Ok(h);
    };
    let Value::Object(m) = v else {
        return Err(ConfigError::new("identity_headers", "must be an object"));
    };
    for (k, v) in m {
        let key = format!("identity_headers.{k}");
        let name = header_name(
            &key,
            v.as_str()
                .ok_or_else(|| ConfigError::new(&key, "must be a header name"))?,
        )?;
        match k.as_str() {
            "sub" => h.sub = name,
            "username" => h.username = name,
            "groups" => h.groups = name,
            "scope" => h.scope = name,
            "client_id" => h.client_id = name,
            "email" => h.email = name,
            _ => return Err(ConfigError::new(&key, "unknown key")),
        }
    }
    Ok(h)
}

fn group_rules(r: &Reader) -> Result<Vec<GroupRule>, ConfigError> {
    let mut rules = Vec::new();
    for (i, v) in r
        .array("group_rules")?
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let key = format!("group_rules[{i}]");
        let Value::Object(m) = v else {
            return Err(ConfigError::new(
                &key,
                "must be an object with path_prefix and groups",
            ));
        };
        for k in m.keys() {
            if k != "path_prefix" && k != "groups" {
                return Err(ConfigError::new(&format!("{key}.{k}"), "unknown key"));
            }
        }
        let path_prefix = match m.get("path_prefix") {
            Some(Value::String(p)) if crate::path::is_canonical(p) => p.clone(),
            _ => {
                return Err(ConfigError::new(
                    &format!("{key}.path_prefix"),
                    "must be a path starting with / without escapes, ;, // or dot segments",
                ))
            }
        };
        let groups: Vec<String> = match m.get("groups") {
            Some(Value::Array(a)) if !a.is_empty() => a
                .iter()
                .map(|g| g.as_str().map(String::from))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    ConfigError::new(&format!("{key}.groups"), "must be a list of group names")
                })?,
            _ => {
                return Err(ConfigError::new(
                    &format!("{key}.groups"),
                    "must be a non-empty list of group names",
                ))
            }
        };
        rules.push(GroupRule {
            path_prefix,
            groups,
        });
    }
    Ok(rules)
}

/// `public_paths`: exact paths or `/prefix/*` subtrees, canonical, never the MCP path.
fn public_paths(r: &Reader, mcp_path: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (i, p) in r
        .str_list("public_paths")?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let key = format!("public_paths[{i}]");
        let entry = match p.strip_suffix("/*") {
            Some(base) => format!("{base}/"),
            None => p,
        };
        if !crate::path::is_canonical(&entry) || entry.contains('*') {
            return Err(ConfigError::new(
                &key,
                "must be a path like /healthz or /static/* (no escapes, ;, // or dot segments)",
            ));
        }
        // Never open the MCP path, whatever the case (an origin may ignore it).
        let opens_mcp = crate::path::matches_prefix(&entry, mcp_path, true)
            || (entry.ends_with('/') && crate::path::matches_prefix(mcp_path, &entry, true));
        if opens_mcp {
            return Err(ConfigError::new(&key, "must not open the MCP path"));
        }
        out.push(entry);
    }
    Ok(out)
}

/// `cimd_denied_hosts`: host names or IP addresses (`[…]` for IPv6), kept in lower case.
fn cimd_denied_hosts(r: &Reader) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (i, h) in r
        .str_list("cimd_denied_hosts")?
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let ok = h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
            && (h.starts_with('[') || !h.contains(':'));
        if !ok {
            return Err(ConfigError::new(
                &format!("cimd_denied_hosts[{i}]"),
                "must be a host name or IP address without scheme or port",
            ));
        }
        out.push(h.to_ascii_lowercase());
    }
    Ok(out)
}

fn missing(key: &str) -> ConfigError {
    ConfigError::new(key, "is required")
}

fn trim_slash(mut s: String) -> String {
    while s.ends_with('/') {
        s.pop();
    }
    s
}

fn check_url(key: &str, s: &str) -> Result<String, ConfigError> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| ConfigError::new(key, "must be an http(s) URL"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || s.contains(['?', '#', ' ', '\\']) || host.contains('@') {
        return Err(ConfigError::new(
            key,
            "must be an http(s) URL without query, fragment or userinfo",
        ));
    }
    Ok(s.to_string())
}

fn header_name(key: &str, name: &str) -> Result<String, ConfigError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !name.eq_ignore_ascii_case("authorization")
        && !name.starts_with(':');
    if ok {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(ConfigError::new(
            key,
            "must be a valid HTTP header name other than authorization",
        ))
    }
}

fn secret_value(v: &Value, key: &str, env: EnvLookup) -> Result<Secret, ConfigError> {
    match v {
        Value::String(s) if !s.is_empty() => Ok(Secret::new(s.clone())),
        Value::Object(m) if m.len() == 1 => match m.get("env") {
            Some(Value::String(name)) => env(name)
                .filter(|s| !s.is_empty())
                .map(Secret::new)
                .ok_or_else(|| {
                    ConfigError::new(key, format!("environment variable {name} is not set"))
                }),
            _ => Err(ConfigError::new(
                key,
                "must be a string or {\"env\": \"VARIABLE\"}",
            )),
        },
        _ => Err(ConfigError::new(
            key,
            "must be a non-empty string or {\"env\": \"VARIABLE\"}",
        )),
    }
}

/// Keys whose value is a list (`a,b c` or a JSON array in a variable).
const LIST_KEYS: &[&str] = &[
    "required_scopes",
    "allowed_client_redirect_uris",
    "previous_jwt_signing_keys",
    "accepted_client_ids",
    "accepted_client_scopes",
    "public_paths",
    "cimd_denied_hosts",
];
/// Keys whose value is JSON in a variable.
const JSON_KEYS: &[&str] = &["identity_headers", "claim_headers", "group_rules"];
/// Keys whose value is an integer.
const INT_KEYS: &[&str] = &[
    "leeway_seconds",
    "max_token_bytes",
    "access_token_max_lifetime",
    "refresh_token_lifetime",
    "max_body_bytes",
    "max_header_bytes",
    "max_headers",
    "token_cache_size",
    "rate_limit_per_address",
    "rate_limit_per_client",
];
/// The reference implementation's variable names, accepted as fallbacks.
const FASTMCP_PREFIX: &str = "FASTMCP_SERVER_AUTH_AWS_COGNITO_";
const FASTMCP_KEYS: &[&str] = &[
    "user_pool_id",
    "aws_region",
    "client_id",
    "client_secret",
    "base_url",
    "issuer_url",
    "redirect_path",
    "required_scopes",
    "allowed_client_redirect_uris",
    "jwt_signing_key",
];

/// The environment variable that carries `key` (`upstream.issuer` → `MCPGATE_UPSTREAM_ISSUER`).
pub fn env_name(key: &str) -> String {
    let mut out = String::from("MCPGATE_");
    out.extend(key.chars().map(|c| {
        if c == '.' {
            '_'
        } else {
            c.to_ascii_uppercase()
        }
    }));
    out
}

/// Builds the configuration from environment-style variables (Worker vars and secrets,
/// shell environment): every key as `MCPGATE_<KEY>` (`MCPGATE_UPSTREAM_<KEY>` for the
/// `upstream` object), with the reference's `FASTMCP_SERVER_AUTH_AWS_COGNITO_*` names as
/// fallbacks. Lists may be comma/space separated or JSON; objects are JSON. Errors name the
/// variable. `host_keys` are read the same way and returned as strings.
pub fn from_vars(get: EnvLookup, host_keys: &[&str]) -> Result<Parsed, ConfigError> {
    let mut map = Map::new();
    let read = |key: &str| -> Option<String> {
        get(&env_name(key)).or_else(|| {
            FASTMCP_KEYS
                .contains(&key)
                .then(|| {
                    get(&alloc::format!(
                        "{FASTMCP_PREFIX}{}",
                        key.to_ascii_uppercase()
                    ))
                })
                .flatten()
        })
    };
    for key in KEYS.iter().chain(host_keys.iter()) {
        if *key == "upstream" {
            continue;
        }
        let Some(raw) = read(key).filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = if LIST_KEYS.contains(key) {
            if raw.trim_start().starts_with('[') {
                serde_json::from_str(&raw)
                    .map_err(|_| ConfigError::new(&env_name(key), "is not a JSON list"))?
            } else {
                Value::Array(
                    raw.split([',', ' '])
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.into()))
                        .collect(),
                )
            }
        } else if JSON_KEYS.contains(key) {
            serde_json::from_str(&raw)
                .map_err(|_| ConfigError::new(&env_name(key), "is not valid JSON"))?
        } else if INT_KEYS.contains(key) {
            Value::Number(
                raw.trim()
                    .parse::<u64>()
                    .map_err(|_| ConfigError::new(&env_name(key), "must be a whole number"))?
                    .into(),
            )
        } else {
            Value::String(raw)
        };
        map.insert((*key).to_string(), value);
    }
    let mut upstream = Map::new();
    for key in UPSTREAM_KEYS {
        if let Some(v) = get(&env_name(&alloc::format!("upstream.{key}"))).filter(|v| !v.is_empty())
        {
            upstream.insert((*key).to_string(), Value::String(v));
        }
    }
    if !upstream.is_empty() {
        map.insert("upstream".into(), Value::Object(upstream));
    }
    parse_map(map, host_keys, get).map_err(|e| {
        let root = e.key.split(['.', '[']).next().unwrap_or("");
        let name = if e.key.starts_with("upstream.") || e.key == root {
            env_name(&e.key)
        } else {
            alloc::format!("{} ({})", env_name(root), e.key)
        };
        ConfigError {
            key: name,
            problem: e.problem,
        }
    })
}

struct Reader<'a> {
    map: &'a Map<String, Value>,
    env: EnvLookup<'a>,
}

impl Reader<'_> {
    fn opt_str(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(ConfigError::new(key, "must be a non-empty string")),
        }
    }

    fn req_str(&self, key: &str) -> Result<String, ConfigError> {
        self.opt_str(key)?.ok_or_else(|| missing(key))
    }

    fn opt_secret(&self, key: &str) -> Result<Option<Secret>, ConfigError> {
        self.map
            .get(key)
            .map(|v| secret_value(v, key, self.env))
            .transpose()
    }

    fn url(&self, key: &str) -> Result<Option<String>, ConfigError> {
        self.opt_str(key)?.map(|s| check_url(key, &s)).transpose()
    }

    fn path(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        let p = self.opt_str(key)?.unwrap_or_else(|| default.into());
        let ok = p.starts_with('/')
            && p.len() > 1
            && !p.ends_with('/')
            && !p.contains("//")
            && !p.split('/').any(|seg| seg == "." || seg == "..")
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b));
        if ok {
            Ok(p)
        } else {
            Err(ConfigError::new(
                key,
                "must be a path like /mcp (no trailing slash, no dot segments)",
            ))
        }
    }

    fn array(&self, key: &str) -> Result<Option<Vec<Value>>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a.clone())),
            Some(_) => Err(ConfigError::new(key, "must be a list")),
        }
    }

    fn str_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                _ => Err(ConfigError::new(key, "must be a list of non-empty strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Scopes: a JSON list, or one string separated by spaces or commas (as the reference).
    fn scopes(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let list = match self.map.get(key) {
            None => return Ok(None),
            Some(Value::String(s)) => s
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            Some(_) => self.str_list(key)?.unwrap_or_default(),
        };
        for s in &list {
            if !s
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
            {
                return Err(ConfigError::new(
                    key,
                    "scopes must be printable ASCII without quotes",
                ));
            }
        }
        Ok(Some(list))
    }

    fn uint(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    ConfigError::new(key, format!("must be an integer from {min} to {max}"))
                }),
        }
    }
}

#[cfg(test)]
mod tests;
