//! The IdP side of the configuration: which provider, the app client the proxy signs in
//! with, and the IdP's endpoints — derived for Cognito from region, pool and domain,
//! overridable one by one under `upstream` (custom domains, emulators, any OIDC provider).

use alloc::format;
use alloc::string::String;
use serde_json::{Map, Value};

use super::keys::UPSTREAM_KEYS;
use super::reader::{check_url, missing, trim_slash, Reader};
use super::{ClientAuthMethod, ConfigError, Provider, Secret, Upstream};

/// The IdP settings, validated.
pub(super) struct Idp {
    pub provider: Provider,
    pub user_pool_id: Option<String>,
    pub aws_region: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub token_endpoint_auth_method: ClientAuthMethod,
    pub upstream: Upstream,
}

pub(super) fn read(r: &Reader) -> Result<Idp, ConfigError> {
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
    let upstream = upstream(r, provider, &aws_region, user_pool_id.as_deref())?;
    Ok(Idp {
        provider,
        user_pool_id,
        aws_region,
        client_id,
        client_secret,
        token_endpoint_auth_method,
        upstream,
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
    let no_domain = || match provider {
        // FastMCP finds the domain by OpenID discovery at start; mcpgate reads no network
        // while it loads its configuration, so the domain is a setting.
        Provider::Cognito => ConfigError::new(
            "cognito_domain",
            "is required: the Cognito domain prefix or custom domain URL of the hosted UI \
             (or every upstream endpoint)",
        ),
        Provider::Oidc => missing("upstream.authorization_endpoint"),
    };
    let authorization_endpoint = get("authorization_endpoint")?
        .or_else(|| from_domain("/oauth2/authorize"))
        .ok_or_else(no_domain)?;
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
