//! JWS algorithms (RFC 7518) the verifier knows, and allow-lists of them.

/// A JWS `alg` value mcpgate can verify. `none` is deliberately absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Algorithm {
    Hs256,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Es256,
    EdDsa,
}

/// The key family an algorithm needs; a token's `alg` must match the key's family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFamily {
    /// A symmetric secret: never taken from a published key set.
    Symmetric,
    Rsa,
    EcP256,
    Ed25519,
}

impl Algorithm {
    /// Parses the `alg` header value (case-sensitive, RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "HS256" => Self::Hs256,
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "ES256" => Self::Es256,
            "EdDSA" => Self::EdDsa,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    pub fn family(self) -> KeyFamily {
        match self {
            Self::Hs256 => KeyFamily::Symmetric,
            Self::Rs256 | Self::Rs384 | Self::Rs512 | Self::Ps256 => KeyFamily::Rsa,
            Self::Es256 => KeyFamily::EcP256,
            Self::EdDsa => KeyFamily::Ed25519,
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Self::Hs256 => 1,
            Self::Rs256 => 1 << 1,
            Self::Rs384 => 1 << 2,
            Self::Rs512 => 1 << 3,
            Self::Ps256 => 1 << 4,
            Self::Es256 => 1 << 5,
            Self::EdDsa => 1 << 6,
        }
    }
}

/// An allow-list of algorithms, checked before any key is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlgorithmSet(u8);

impl AlgorithmSet {
    /// Cognito signs with RS256 only.
    pub const COGNITO: Self = Self::of(&[Algorithm::Rs256]);
    /// Every asymmetric algorithm; the default for generic OIDC providers.
    pub const ASYMMETRIC: Self = Self::of(&[
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Es256,
        Algorithm::EdDsa,
    ]);

    pub const fn of(algs: &[Algorithm]) -> Self {
        let mut bits = 0u8;
        let mut rest = algs;
        while let [alg, tail @ ..] = rest {
            bits |= alg.bit();
            rest = tail;
        }
        Self(bits)
    }

    pub const fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_none_is_unknown() {
        for alg in [
            Algorithm::Hs256,
            Algorithm::Rs256,
            Algorithm::Rs384,
            Algorithm::Rs512,
            Algorithm::Ps256,
            Algorithm::Es256,
            Algorithm::EdDsa,
        ] {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
        assert_eq!(Algorithm::from_name("none"), None);
        assert_eq!(Algorithm::from_name("rs256"), None);
    }

    #[test]
    fn cognito_allows_rs256_only() {
        assert!(AlgorithmSet::COGNITO.contains(Algorithm::Rs256));
        assert!(!AlgorithmSet::COGNITO.contains(Algorithm::Rs512));
        assert!(!AlgorithmSet::COGNITO.contains(Algorithm::Hs256));
        assert!(!AlgorithmSet::ASYMMETRIC.contains(Algorithm::Hs256));
    }
}
