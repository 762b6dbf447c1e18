//! JWT verification: key sets, algorithms, compact parsing, claims and acceptance policies.
//!
//! The flow is [`Policy::verify`]: split and bound the token ([`compact`]), check the
//! algorithm against the allow-list ([`alg`]), pick the key ([`jwks`]), verify the signature
//! ([`signature`]), and only then parse and check the claims ([`claims`]) into an
//! [`Identity`].

pub mod alg;
pub mod claims;
pub mod compact;
mod der;
pub mod error;
pub mod identity;
pub mod jwks;
pub mod policy;
pub mod signature;
#[cfg(test)]
pub(crate) mod tests;

pub use alg::{Algorithm, AlgorithmSet};
pub use error::{BearerError, TokenError};
pub use identity::Identity;
pub use jwks::{HmacKey, Jwk, JwksError, KeyMaterial, KeySet};
pub use policy::{AudienceRule, Policy};
pub use signature::NativeRsa;
