//! The entry point hosts call: [`Gate::handle`] routes a request, [`Gate::resume`] continues
//! it after a host call. Everything derivable from the configuration is derived once here.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::config::{Config, ConfigError, Provider};
use crate::http::{Env, HttpRequest, Outcome, Reply, Request};
use crate::jwt::{AlgorithmSet, AudienceRule, Policy};
use crate::keys::KeyRing;

/// A paused request: what an [`Outcome`] that needs a host call carries, and what
/// [`Gate::resume`] takes back with the [`Reply`]. Opaque to hosts: they hold it while the
/// host call runs.
#[derive(Debug)]
pub struct Paused(pub(crate) crate::routes::PausedAt);

/// The configured proxy. Immutable after construction; share it across requests.
pub struct Gate {
    pub(crate) cfg: Config,
    pub(crate) ring: KeyRing,
    /// `base_url + mcp_path`: the audience of the proxy's tokens.
    pub(crate) resource_url: String,
    /// Upstream access tokens returned to the proxy at the callback (Cognito only).
    pub(crate) upstream_access: Option<Policy>,
    /// Upstream ID tokens returned to the proxy.
    pub(crate) upstream_id: Policy,
    /// IdP access tokens presented directly on the MCP endpoint (`accepted_client_ids`).
    pub(crate) direct: Option<Policy>,
    pub(crate) paths: Paths,
    /// Incoming headers removed from every forwarded request.
    pub(crate) strip_headers: Vec<String>,
    /// Claims read from verified tokens and carried in the proxy's own: those of
    /// `claim_headers` and those `tool_rules` look at.
    pub(crate) carried_claims: Vec<String>,
    pub(crate) cookies: Cookies,
    /// The identity assertion's keys (`identity_assertion`), published in the JWKS.
    pub(crate) assertion_keys: Option<crate::assertion::AssertionKeys>,
}

/// Absolute paths of every route, with the base URL's path prefix applied.
pub(crate) struct Paths {
    pub mcp: String,
    pub callback: String,
    pub register: String,
    pub authorize: String,
    pub consent: String,
    pub token: String,
    pub revoke: String,
    pub jwks: String,
    pub prm: Vec<String>,
    pub as_metadata: Vec<String>,
    pub resource_metadata_url: String,
}

/// Cookie names and attributes: `__Host-` and `Secure` when the proxy is served over https.
pub(crate) struct Cookies {
    pub csrf: String,
    pub binding: String,
    pub approvals: String,
    pub attributes: &'static str,
}

fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("")
}

impl Gate {
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        let ring = KeyRing::new(&cfg.jwt_signing_keys, cfg.signing_algorithm)
            .ok_or(ConfigError {
                key: "jwt_signing_key".into(),
                problem: "could not derive keys".into(),
            })?
            .bound_to(&cfg.issuer_url, &cfg.resource_url());
        let leeway = cfg.leeway_seconds;
        let mut extra: Vec<String> = cfg.claim_headers.iter().map(|(c, _)| c.clone()).collect();
        for c in crate::routes::tools::claims(&cfg.tool_rules) {
            if !extra.contains(&c) {
                extra.push(c);
            }
        }
        let with_limits = |mut p: Policy| {
            p.leeway = leeway;
            p.max_token_bytes = cfg.max_token_bytes;
            p.extra_claims = extra.clone();
            p
        };
        let upstream_algs = match cfg.provider {
            Provider::Cognito => AlgorithmSet::COGNITO,
            Provider::Oidc => AlgorithmSet::ASYMMETRIC,
        };
        let issuer = cfg.upstream.issuer.clone();
        let (upstream_access, upstream_id, direct) = match cfg.provider {
            Provider::Cognito => {
                let access = with_limits(Policy::new(
                    issuer.clone(),
                    upstream_algs,
                    AudienceRule::CognitoAccess {
                        client_ids: alloc::vec![cfg.client_id.clone()],
                    },
                ));
                let id = with_limits(Policy::new(
                    issuer.clone(),
                    upstream_algs,
                    AudienceRule::CognitoId {
                        client_id: cfg.client_id.clone(),
                    },
                ));
                let direct = (!cfg.accepted_client_ids.is_empty()).then(|| {
                    let mut p = with_limits(Policy::new(
                        issuer.clone(),
                        upstream_algs,
                        AudienceRule::CognitoAccess {
                            client_ids: cfg.accepted_client_ids.clone(),
                        },
                    ));
                    p.required_scopes = cfg.accepted_client_scopes.clone();
                    p
                });
                (Some(access), id, direct)
            }
            Provider::Oidc => {
                let id = with_limits(Policy::new(
                    issuer.clone(),
                    upstream_algs,
                    AudienceRule::Audience(cfg.client_id.clone()),
                ));
                let direct = (!cfg.accepted_client_ids.is_empty()).then(|| {
                    let mut p = with_limits(Policy::new(
                        issuer.clone(),
                        upstream_algs,
                        AudienceRule::Audience(cfg.resource_url()),
                    ));
                    p.required_scopes = cfg.accepted_client_scopes.clone();
                    p
                });
                (None, id, direct)
            }
        };
        let base = path_of(&cfg.base_url).to_string();
        let issuer_path = path_of(&cfg.issuer_url).to_string();
        let mcp = format!("{base}{}", cfg.mcp_path);
        let mut prm = alloc::vec![
            format!("/.well-known/oauth-protected-resource{mcp}"),
            "/.well-known/oauth-protected-resource".to_string(),
        ];
        let mut as_metadata = alloc::vec![
            format!("/.well-known/oauth-authorization-server{issuer_path}"),
            format!("/.well-known/openid-configuration{issuer_path}"),
            format!("{issuer_path}/.well-known/openid-configuration"),
        ];
        if !base.is_empty() {
            prm.push(format!(
                "{base}/.well-known/oauth-protected-resource{}",
                cfg.mcp_path
            ));
            prm.push(format!("{base}/.well-known/oauth-protected-resource"));
            as_metadata.push(format!("{base}/.well-known/oauth-authorization-server"));
        }
        if !issuer_path.is_empty() {
            as_metadata.push("/.well-known/oauth-authorization-server".to_string());
        }
        as_metadata.dedup();
        let origin_len = cfg.base_url.len() - base.len();
        let origin = cfg.base_url.get(..origin_len).unwrap_or(&cfg.base_url);
        let paths = Paths {
            callback: format!("{base}{}", cfg.redirect_path),
            register: format!("{base}/register"),
            authorize: format!("{base}/authorize"),
            consent: format!("{base}/consent"),
            token: format!("{base}/token"),
            revoke: format!("{base}/revoke"),
            jwks: format!("{base}/.well-known/jwks.json"),
            resource_metadata_url: format!("{origin}/.well-known/oauth-protected-resource{mcp}"),
            mcp,
            prm,
            as_metadata,
        };
        // Whether or not the IdP's token and the assertion are on: a client never sends these.
        let mut strip_headers: Vec<String> = crate::config::origin_headers(
            &cfg.identity_headers,
            &cfg.claim_headers,
            &cfg.forwarding,
        )
        .map(|(_, name)| String::from(name))
        .collect();
        strip_headers.sort();
        strip_headers.dedup();
        let secure = cfg.base_url.starts_with("https://");
        let cookie = |name: &str| {
            if secure {
                format!("__Host-mcpgate-{name}")
            } else {
                format!("mcpgate-{name}")
            }
        };
        let cookies = Cookies {
            csrf: cookie("csrf"),
            binding: cookie("binding"),
            approvals: cookie("approvals"),
            attributes: if secure {
                "Path=/; HttpOnly; Secure; SameSite=Lax"
            } else {
                "Path=/; HttpOnly; SameSite=Lax"
            },
        };
        let assertion_keys = if cfg.forwarding.assertion {
            let resource = cfg.resource_url();
            let audience = cfg
                .forwarding
                .assertion_audience
                .clone()
                .unwrap_or_else(|| resource.clone());
            Some(
                crate::assertion::AssertionKeys::new(
                    &cfg.jwt_signing_keys,
                    cfg.signing_algorithm,
                    &cfg.issuer_url,
                    &resource,
                    &audience,
                )
                .ok_or(ConfigError {
                    key: "identity_assertion".into(),
                    problem: "could not derive keys".into(),
                })?,
            )
        } else {
            None
        };
        Ok(Self {
            assertion_keys,
            resource_url: cfg.resource_url(),
            upstream_access,
            upstream_id,
            direct,
            paths,
            strip_headers,
            carried_claims: extra,
            cookies,
            ring,
            cfg,
        })
    }

    /// The required scopes, then each of `more` not among them yet, space-separated: what is
    /// asked of the IdP, granted, or named in a step-up challenge.
    pub(crate) fn with_required_scopes<'a>(
        &'a self,
        more: impl IntoIterator<Item = &'a str>,
    ) -> String {
        let mut scopes: Vec<&str> = self
            .cfg
            .required_scopes
            .iter()
            .map(String::as_str)
            .collect();
        for s in more {
            if !s.is_empty() && !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        scopes.join(" ")
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// How much of the request's body the host must buffer before the core decides, or
    /// `None` when the core decides from the headers: `max_body_bytes` for the OAuth
    /// endpoints' POSTs, `max_mcp_body_bytes` for MCP POSTs while `tool_rules` are in force
    /// (the host forwards the buffered body afterwards). One look at the route, so hosts ask
    /// once per request.
    pub fn body_limit(&self, method: &str, path: &str) -> Option<usize> {
        crate::routes::body_limit(self, method, path)
    }

    /// Whether the request is an MCP POST whose body the core reads for `tool_rules` (its
    /// errors are JSON-RPC errors; [`Gate::body_limit`] gives it `max_mcp_body_bytes`).
    pub fn reads_mcp_body(&self, method: &str, path: &str) -> bool {
        crate::routes::tools::reads_body(self, method, path)
    }

    /// The answer to a body over [`Gate::body_limit`], in the route's protocol: a
    /// JSON-RPC error on the MCP path, an OAuth error elsewhere (413).
    pub fn body_too_large(&self, method: &str, path: &str) -> crate::http::Response {
        if self.reads_mcp_body(method, path) {
            crate::routes::tools::too_large()
        } else {
            crate::respond::oauth_error(413, "invalid_request", "request body too large")
        }
    }

    /// Whether the route is rate limited per client address, i.e. whether the host should
    /// fill in [`Request::client_address`] (hosts may skip the lookup elsewhere).
    pub fn wants_client_address(&self, path: &str) -> bool {
        crate::routes::rate_limited(self, path)
    }

    pub fn handle(&self, req: &Request, env: &mut Env) -> Outcome {
        crate::routes::handle(self, req, env)
    }

    pub fn resume(&self, paused: Paused, reply: Reply, env: &mut Env) -> Outcome {
        crate::routes::resume(self, paused.0, reply, env)
    }

    /// The request that fetches the IdP's JWKS, for hosts that keep it fresh.
    pub fn jwks_request(&self) -> HttpRequest {
        HttpRequest {
            method: "GET",
            url: self.cfg.upstream.jwks_uri.clone(),
            headers: alloc::vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            max_response_bytes: crate::jwt::jwks::MAX_JWKS_BYTES,
            cacheable: false,
        }
    }

    /// The proxy's public JWKS: the keys of its own access tokens when they are ES256/EdDSA,
    /// and the identity assertion's keys (current and retired) when assertions are on.
    /// `None` when there is no public key.
    pub fn public_jwks(&self) -> Option<serde_json::Value> {
        let mut keys: Vec<serde_json::Value> = match self.ring.public_jwks() {
            Some(serde_json::Value::Object(mut doc)) => match doc.remove("keys") {
                Some(serde_json::Value::Array(k)) => k,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        if let Some(a) = &self.assertion_keys {
            keys.extend(a.public_jwks().cloned());
        }
        (!keys.is_empty()).then(|| serde_json::json!({ "keys": keys }))
    }
}
