//! The table of hostile cases, one module per category.

use super::*;

mod consent;
mod paths;
mod pkce;
mod redirect_uris;
mod requests;
mod sealed;
mod security;
mod tokens;

use consent::consent_cases;
use paths::path_cases;
pub use paths::{assert_origin_saw_only_verified, hostile_path_config, percent_spellings};
use pkce::pkce_cases;
use redirect_uris::redirect_uri_cases;
use requests::request_cases;
use sealed::sealed_cases;
use security::security_cases;
pub(crate) use security::SPOOFS;
use tokens::token_cases;

/// Every hostile case, in the order they must run.
pub fn cases(ctx: &HostileContext<'_>) -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(token_cases(ctx));
    all.extend(redirect_uri_cases(ctx));
    all.extend(pkce_cases(ctx));
    all.extend(sealed_cases(ctx));
    all.extend(consent_cases(ctx));
    all.extend(request_cases(ctx));
    all.extend(path_cases(ctx));
    all.extend(security_cases(ctx));
    all
}

pub(crate) trait TapTarget {
    fn tap_target(self, target: &str) -> Self;
}
impl TapTarget for Req {
    fn tap_target(mut self, target: &str) -> Self {
        self.target = target.to_owned();
        self
    }
}
