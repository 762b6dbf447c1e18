//! `application/x-www-form-urlencoded` bodies and query strings, parsed strictly: bad
//! percent-escapes, invalid UTF-8 and repeated parameters (RFC 6749 §3.1) are errors.

use alloc::string::String;
use alloc::vec::Vec;

use crate::encoding::b64url_encode;

/// Most parameters accepted in one form or query.
pub const MAX_PARAMS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormError {
    BadEncoding,
    /// The parameter appears more than once.
    Duplicate(String),
    TooMany,
}

/// Parsed parameters, each name present at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(input: &str) -> Result<Self, FormError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for pair in input.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode(k)?;
            let v = decode(v)?;
            if out.iter().any(|(existing, _)| *existing == k) {
                return Err(FormError::Duplicate(k));
            }
            if out.len() == MAX_PARAMS {
                return Err(FormError::TooMany);
            }
            out.push((k, v));
        }
        Ok(Self(out))
    }

    /// The value, treating an empty value as absent (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Percent-decodes one component (`+` is a space).
pub fn decode(s: &str) -> Result<String, FormError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let v =
                    crate::encoding::percent_escape_at(bytes, i).ok_or(FormError::BadEncoding)?;
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| FormError::BadEncoding)
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX.get((b >> 4) as usize).copied().unwrap_or(b'0') as char);
            out.push(HEX.get((b & 15) as usize).copied().unwrap_or(b'0') as char);
        }
    }
    out
}

/// Builds `a=1&b=2` from pairs, encoding each component.
pub fn build(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// Random URL-safe token of `bytes` random bytes.
pub fn random_token(random: &mut dyn crate::http::Random, bytes: usize) -> String {
    let mut buf = alloc::vec![0u8; bytes];
    random.fill(&mut buf);
    b64url_encode(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let p = Params::parse("a=1&b=hello+world&c=%2Fx%3D&d=").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("hello world"));
        assert_eq!(p.get("c"), Some("/x="));
        assert_eq!(p.get("d"), None, "empty is absent");
        assert_eq!(p.get("e"), None);
    }

    #[test]
    fn duplicates_bad_escapes_and_invalid_utf8_are_refused() {
        assert_eq!(
            Params::parse("a=1&a=2"),
            Err(FormError::Duplicate("a".into()))
        );
        assert_eq!(
            Params::parse("a%3D=1&a%3d=2"),
            Err(FormError::Duplicate("a=".into()))
        );
        assert_eq!(Params::parse("a=%zz"), Err(FormError::BadEncoding));
        assert_eq!(Params::parse("a=%2"), Err(FormError::BadEncoding));
        assert_eq!(Params::parse("a=%ff"), Err(FormError::BadEncoding));
        let many: alloc::vec::Vec<String> = (0..65).map(|i| alloc::format!("k{i}=v")).collect();
        assert_eq!(Params::parse(&many.join("&")), Err(FormError::TooMany));
    }

    #[test]
    fn encode_round_trips() {
        let s = "a b/c?d=e&f~ü";
        assert_eq!(decode(&encode(s)).unwrap(), s);
        assert_eq!(build(&[("x", "1 2"), ("y", "/")]), "x=1%202&y=%2F");
    }
}
