//! `GET {redirect_path}`: the IdP sends the user back. Checks the sealed `state` and the
//! browser binding, exchanges the code with the proxy's own credentials and PKCE verifier,
//! verifies the IdP's tokens, and redirects to the client with the proxy's own code.

use super::authorize::{append_query, error_redirect};
use super::{cookie, PausedAt};
use crate::form::{self, Params};
use crate::gate::Gate;
use crate::http::{Env, Outcome, Reply, Request, Response};
use crate::idp::{self, TokenSet, UpstreamError, VerifyError};
use crate::jwt::Identity;
use crate::records::{Binding, Code, Grant, Transaction, CODE_SECONDS};
use crate::respond::{self, error_page, redirect};
use crate::seal::{self, Kind, SealError};

/// Paused on the code exchange, or on the IdP's keys.
#[derive(Debug)]
pub struct Paused {
    txn: Transaction,
    /// Set once the code was exchanged and the keys were requested.
    tokens: Option<TokenSet>,
}

pub(super) fn handle(gate: &Gate, req: &Request, env: &mut Env) -> Outcome {
    let Ok(params) = Params::parse(req.query()) else {
        return page(400, "invalid_request", "malformed callback");
    };
    let txn = match params
        .get("state")
        .map(|s| seal::unseal::<Transaction>(&gate.ring, Kind::State, s, env.now))
    {
        Some(Ok(t)) => t,
        Some(Err(SealError::Expired)) => {
            return page(
                400,
                "invalid_request",
                "the authorization expired; start again",
            )
        }
        _ => return page(400, "invalid_request", "invalid or missing state"),
    };
    let bound = cookie(req, &gate.cookies.binding)
        .and_then(|c| seal::unseal::<Binding>(&gate.ring, Kind::ConsentBinding, c, env.now).ok())
        .is_some_and(|b| b.txn == txn.txn && b.client_id == txn.client_id);
    if !bound {
        return page(
            403,
            "access_denied",
            "this authorization was started in another browser",
        );
    }
    if let Some(error) = params.get("error") {
        // Only well-known codes travel on; the IdP's own text never does.
        let (code, text) = match error {
            "access_denied" => (
                "access_denied",
                "the user or the identity provider denied the request",
            ),
            "temporarily_unavailable" => (
                "temporarily_unavailable",
                "the identity provider is temporarily unavailable",
            ),
            "invalid_scope" => (
                "invalid_scope",
                "the identity provider refused the requested scope",
            ),
            _ => ("server_error", "the identity provider reported an error"),
        };
        return finish(
            gate,
            error_redirect(gate, &txn.redirect_uri, code, text, txn.state.as_deref()),
        );
    }
    let Some(code) = params.get("code") else {
        return finish(
            gate,
            error_redirect(
                gate,
                &txn.redirect_uri,
                "server_error",
                "the identity provider returned no code",
                txn.state.as_deref(),
            ),
        );
    };
    Outcome::Fetch {
        request: idp::code_exchange(gate, code, &txn.upstream_verifier),
        paused: PausedAt::Callback(Paused { txn, tokens: None }).into(),
    }
}

pub(super) fn resume(gate: &Gate, paused: Paused, reply: Reply, env: &mut Env) -> Outcome {
    let Paused { txn, tokens } = paused;
    let fail = |code, text: &str| {
        finish(
            gate,
            error_redirect(gate, &txn.redirect_uri, code, text, txn.state.as_deref()),
        )
    };
    let (tokens, retried) = match (reply, tokens) {
        (Reply::Http(resp), None) => match idp::parse_token_response(&resp) {
            Ok(t) => (t, false),
            Err(UpstreamError::Unavailable) => {
                return fail(
                    "temporarily_unavailable",
                    "the identity provider did not answer; try again",
                )
            }
            Err(_) => {
                return fail(
                    "server_error",
                    "the identity provider refused the authorization code",
                )
            }
        },
        (Reply::Keys, Some(t)) => (t, true),
        _ => return fail("server_error", "unexpected host reply"),
    };
    match idp::verify(gate, &tokens, env) {
        Ok(identity) => issue_code(gate, &txn, &tokens, identity, env),
        Err(VerifyError::NeedKeys) if !retried => Outcome::NeedKeys {
            paused: PausedAt::Callback(Paused {
                txn,
                tokens: Some(tokens),
            })
            .into(),
        },
        Err(VerifyError::NeedKeys) if env.upstream_keys.is_none() => fail(
            "temporarily_unavailable",
            "the identity provider's keys are unavailable; try again",
        ),
        Err(_) => fail(
            "server_error",
            "the identity provider returned a token that failed verification",
        ),
    }
}

fn issue_code(
    gate: &Gate,
    txn: &Transaction,
    tokens: &TokenSet,
    id: Identity,
    env: &mut Env,
) -> Outcome {
    let grant = Grant {
        client_id: txn.client_id.clone(),
        scope: idp::granted_scope(gate, tokens, &id.scope, &txn.scope),
        resource: txn.resource.clone(),
        sub: id.sub,
        username: id.username,
        groups: id.groups,
        email: id.email,
        extra: id.extra,
        upstream_refresh: tokens.refresh_token.clone(),
        upstream_expires_in: tokens.expires_in.unwrap_or(3600),
        family: form::random_token(env.random, 12),
        jti: form::random_token(env.random, 12),
        generation: 0,
        upstream: crate::upstream_token::pick(gate, tokens, env.now),
    };
    let mut code = Code {
        grant,
        redirect_uri: txn.redirect_uri.clone(),
        code_challenge: txn.code_challenge.clone(),
    };
    let mut sealed = seal::seal(
        &gate.ring,
        Kind::Code,
        &code,
        env.now + CODE_SECONDS,
        env.random,
    );
    // The IdP's token for the origin makes the code of a user in very many groups too large
    // (codes travel in URLs): leave it out, `/token` asks the IdP for a fresh one instead.
    if sealed
        .as_ref()
        .is_some_and(|s| s.len() > seal::MAX_SEALED_BYTES)
        && code.grant.upstream.take().is_some()
    {
        sealed = seal::seal(
            &gate.ring,
            Kind::Code,
            &code,
            env.now + CODE_SECONDS,
            env.random,
        );
    }
    let Some(sealed) = sealed else {
        return finish(
            gate,
            error_redirect(
                gate,
                &txn.redirect_uri,
                "server_error",
                "could not issue a code",
                txn.state.as_deref(),
            ),
        );
    };
    let mut pairs = alloc::vec![("code", sealed.as_str())];
    if let Some(s) = &txn.state {
        pairs.push(("state", s.as_str()));
    }
    pairs.push(("iss", gate.cfg.issuer_url.as_str()));
    finish(
        gate,
        redirect(&append_query(&txn.redirect_uri, &form::build(&pairs))),
    )
}

fn page(status: u16, error: &'static str, text: &str) -> Outcome {
    Outcome::Respond(error_page(status, error, text))
}

/// The binding cookie is single-use: cleared on every final answer.
fn finish(gate: &Gate, mut r: Response) -> Outcome {
    respond::set_cookie(
        &mut r,
        alloc::format!(
            "{}=; Max-Age=0; {}",
            gate.cookies.binding,
            gate.cookies.attributes
        ),
    );
    Outcome::Respond(r)
}
