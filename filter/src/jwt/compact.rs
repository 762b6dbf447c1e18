//! Splitting a compact JWS (RFC 7515 §7.1) and reading its protected header, with size and
//! shape limits applied before any JSON parser runs.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

use super::alg::Algorithm;
use super::error::TokenError;
use crate::encoding::{b64url_decode, json_depth_within};

/// Default maximum token length in bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// JSON nesting allowed in headers and claims.
pub const MAX_JSON_DEPTH: usize = 8;

/// A token split into its parts, with the header parsed and the signature decoded. The
/// payload stays encoded until the signature has been checked.
#[derive(Debug)]
pub struct Compact<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a str,
    pub payload_b64: &'a str,
    pub signature: Vec<u8>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

impl<'a> Compact<'a> {
    pub fn parse(token: &'a str, max_len: usize) -> Result<Self, TokenError> {
        if token.len() > max_len {
            return Err(TokenError::TooLong);
        }
        let mut parts = token.splitn(4, '.');
        let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::NotCompact);
        };
        let signing_input = token
            .get(..header_b64.len() + 1 + payload_b64.len())
            .ok_or(TokenError::NotCompact)?;
        let header_json = b64url_decode(header_b64).ok_or(TokenError::BadBase64)?;
        if !json_depth_within(&header_json, MAX_JSON_DEPTH) {
            return Err(TokenError::TooDeep);
        }
        let header: RawHeader =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::BadJson)?;
        let alg_name = header.alg.ok_or(TokenError::MissingClaim("alg"))?;
        if alg_name.eq_ignore_ascii_case("none") {
            return Err(TokenError::AlgNone);
        }
        let alg = Algorithm::from_name(&alg_name).ok_or(TokenError::UnknownAlgorithm)?;
        // mcpgate understands no JWS extensions, so any `crit` makes the token unusable.
        if header.crit.is_some() {
            return Err(TokenError::UnsupportedCrit);
        }
        if payload_b64.is_empty() {
            return Err(TokenError::BadBase64);
        }
        let signature = b64url_decode(sig_b64).ok_or(TokenError::BadBase64)?;
        Ok(Self {
            alg,
            kid: header.kid,
            signing_input,
            payload_b64,
            signature,
        })
    }

    /// Decodes the payload; call only after the signature has been verified.
    pub fn payload(&self) -> Result<Vec<u8>, TokenError> {
        let json = b64url_decode(self.payload_b64).ok_or(TokenError::BadBase64)?;
        if !json_depth_within(&json, MAX_JSON_DEPTH) {
            return Err(TokenError::TooDeep);
        }
        Ok(json)
    }
}
