//! What the proxy tells the origin about the signed-in user beyond the identity headers:
//! the IdP's own token of the user (`forward_upstream_token`, `upstream_token_header`) and a
//! signed identity assertion (`identity_assertion`, `identity_assertion_header`,
//! `identity_assertion_audience`).

use alloc::string::String;

use super::reader::{header_name_for_origin, Reader};
use super::ConfigError;

/// Which of the IdP's tokens of the user the origin receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamToken {
    /// None (the default).
    None,
    /// The IdP's access token (Cognito: the one its APIs and resource servers accept).
    Access,
    /// The IdP's ID token.
    Id,
}

/// The `forward_upstream_token` and `identity_assertion` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarding {
    pub upstream_token: UpstreamToken,
    /// Lower case; `authorization` sends `Bearer <token>`.
    pub upstream_token_header: String,
    pub assertion: bool,
    /// Lower case; `authorization` sends `Bearer <assertion>`.
    pub assertion_header: String,
    /// The assertion's `aud`; `None`: the MCP resource URL.
    pub assertion_audience: Option<String>,
}

impl Default for Forwarding {
    fn default() -> Self {
        Self {
            upstream_token: UpstreamToken::None,
            upstream_token_header: "x-mcpgate-upstream-token".into(),
            assertion: false,
            assertion_header: "x-mcpgate-assertion".into(),
            assertion_audience: None,
        }
    }
}

pub(super) fn read(r: &Reader) -> Result<Forwarding, ConfigError> {
    let upstream_token = match r.opt_str("forward_upstream_token")?.as_deref() {
        None | Some("none") => UpstreamToken::None,
        Some("access") => UpstreamToken::Access,
        Some("id") => UpstreamToken::Id,
        Some(_) => {
            return Err(ConfigError::new(
                "forward_upstream_token",
                "must be none, access or id",
            ))
        }
    };
    let mut f = Forwarding {
        upstream_token,
        ..Forwarding::default()
    };
    if let Some(h) = r.opt_str("upstream_token_header")? {
        f.upstream_token_header = header_name_for_origin("upstream_token_header", &h)?;
    }
    f.assertion = match r.map.get("identity_assertion") {
        None => false,
        Some(serde_json::Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ConfigError::new(
                "identity_assertion",
                "must be true or false",
            ))
        }
    };
    if let Some(h) = r.opt_str("identity_assertion_header")? {
        f.assertion_header = header_name_for_origin("identity_assertion_header", &h)?;
    }
    if let Some(aud) = r.opt_str("identity_assertion_audience")? {
        if aud.len() > 512 || aud.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "identity_assertion_audience",
                "must be an identifier (a URL) of at most 512 characters",
            ));
        }
        f.assertion_audience = Some(aud);
    }
    Ok(f)
}
