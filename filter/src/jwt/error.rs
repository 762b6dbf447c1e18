//! Why a bearer token was refused. Each variant maps to one `WWW-Authenticate` error and a
//! short description that is safe to show a client (no token contents, no key material).

/// A rejected token.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than the configured maximum; refused before any decoding.
    TooLong,
    /// Not three dot-separated segments.
    NotCompact,
    /// A segment is not canonical unpadded base64url.
    BadBase64,
    /// Header or payload is not the JSON object expected (includes duplicate keys, wrong types).
    BadJson,
    /// JSON nested deeper than allowed.
    TooDeep,
    /// `alg: none` (unsigned).
    AlgNone,
    /// An `alg` this verifier does not implement.
    UnknownAlgorithm,
    /// An `alg` outside the provider's allow-list (e.g. HS256 where RS256 is expected).
    AlgorithmNotAllowed,
    /// The key named by `kid` has another type or a different `alg` than the token.
    KeyMismatch,
    /// A `crit` header the verifier does not understand (RFC 7515 §4.1.11).
    UnsupportedCrit,
    /// No key with the token's `kid`.
    UnknownKid,
    /// No `kid` and not exactly one usable key for the algorithm.
    AmbiguousKey,
    /// Signature does not verify.
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A claim has a type or value outside its allowed range.
    InvalidClaim(&'static str),
    /// `iss` differs from the configured issuer.
    WrongIssuer,
    /// The audience (or, for Cognito access tokens, `client_id`) is not this server's.
    WrongAudience,
    /// `token_use` is not the kind of token expected (e.g. an ID token used as access token).
    WrongTokenUse,
    /// The token lacks at least one required scope.
    InsufficientScope,
    /// The token was revoked.
    Revoked,
}

/// The RFC 6750 error code a rejection maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerError {
    /// 401 `invalid_token`.
    InvalidToken,
    /// 403 `insufficient_scope`.
    InsufficientScope,
}

impl BearerError {
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Self::InvalidToken => 401,
            Self::InsufficientScope => 403,
        }
    }
}

impl TokenError {
    pub fn bearer_error(&self) -> BearerError {
        match self {
            Self::InsufficientScope => BearerError::InsufficientScope,
            _ => BearerError::InvalidToken,
        }
    }

    /// A short description for `error_description`; never includes token or key contents.
    pub fn description(&self) -> &'static str {
        match self {
            Self::TooLong => "token too long",
            Self::NotCompact => "token is not a compact JWS",
            Self::BadBase64 => "token is not valid base64url",
            Self::BadJson => "token header or claims are not valid JSON",
            Self::TooDeep => "token JSON nested too deeply",
            Self::AlgNone => "unsigned tokens are not accepted",
            Self::UnknownAlgorithm => "unsupported signing algorithm",
            Self::AlgorithmNotAllowed => "signing algorithm not allowed",
            Self::KeyMismatch => "signing key does not match the algorithm",
            Self::UnsupportedCrit => "unsupported critical header",
            Self::UnknownKid => "unknown signing key",
            Self::AmbiguousKey => "token names no key and several keys match",
            Self::BadSignature => "signature verification failed",
            Self::Expired => "token expired",
            Self::NotYetValid => "token not yet valid",
            Self::MissingClaim(_) => "required claim missing",
            Self::InvalidClaim(_) => "claim has an invalid value",
            Self::WrongIssuer => "token issued by another issuer",
            Self::WrongAudience => "token issued for another audience",
            Self::WrongTokenUse => "wrong kind of token",
            Self::InsufficientScope => "token lacks a required scope",
            Self::Revoked => "token revoked",
        }
    }

    /// A stable short label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLong => "too_long",
            Self::NotCompact | Self::BadBase64 | Self::BadJson | Self::TooDeep => "malformed",
            Self::AlgNone
            | Self::UnknownAlgorithm
            | Self::AlgorithmNotAllowed
            | Self::KeyMismatch
            | Self::UnsupportedCrit => "algorithm",
            Self::UnknownKid | Self::AmbiguousKey => "unknown_key",
            Self::BadSignature => "signature",
            Self::Expired | Self::NotYetValid => "expired",
            Self::MissingClaim(_) | Self::InvalidClaim(_) => "claims",
            Self::WrongIssuer => "issuer",
            Self::WrongAudience => "audience",
            Self::WrongTokenUse => "token_use",
            Self::InsufficientScope => "scope",
            Self::Revoked => "revoked",
        }
    }
}

impl core::fmt::Display for TokenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::MissingClaim(c) => write!(f, "{}: {c}", self.description()),
            Self::InvalidClaim(c) => write!(f, "{}: {c}", self.description()),
            _ => f.write_str(self.description()),
        }
    }
}
