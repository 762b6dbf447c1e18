//! The proxy's own tokens: its signing keys (current first, then retired ones still
//! accepted), and the algorithm.

use alloc::format;
use alloc::vec::Vec;

use super::reader::{missing, secret_value, Reader};
use super::{ConfigError, Secret, SigningAlgorithm};

/// The signing keys, current first. Without `jwt_signing_key`, one derived from the client
/// secret (as the reference does).
pub(super) fn signing_keys(
    r: &Reader,
    client_secret: Option<&Secret>,
) -> Result<Vec<Secret>, ConfigError> {
    let mut jwt_signing_keys = Vec::new();
    match r.opt_secret("jwt_signing_key")? {
        Some(k) => jwt_signing_keys.push(k),
        None => match client_secret {
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
        let s = secret_value(v, &key, r.env)?;
        if s.expose().len() < 32 {
            return Err(ConfigError::new(&key, "must be at least 32 characters"));
        }
        jwt_signing_keys.push(s);
    }
    Ok(jwt_signing_keys)
}

pub(super) fn algorithm(r: &Reader) -> Result<SigningAlgorithm, ConfigError> {
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
    Ok(signing_algorithm)
}
