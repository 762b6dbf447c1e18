//! Tampering helpers: flipped characters and bits, every way to damage a value.

use super::*;

/// Flips one character at `pos` (from the end when negative) to another base64url character.
pub fn flip_at(s: &str, pos: isize) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = if pos < 0 {
        b.len().saturating_sub(pos.unsigned_abs())
    } else {
        (pos as usize).min(b.len().saturating_sub(1))
    };
    if let Some(c) = b.get_mut(i) {
        *c = if *c == b'A' { b'B' } else { b'A' };
    }
    String::from_utf8(b).unwrap_or_default()
}

/// Flips one bit of the decoded payload (after the key-id prefix) and re-encodes it.
pub fn bit_flip(s: &str) -> String {
    let Some((kid, data)) = s.split_once('.') else {
        return flip_at(s, -3);
    };
    let Some(mut bytes) = URL_SAFE_NO_PAD.decode(data).ok() else {
        return flip_at(s, -3);
    };
    let mid = bytes.len() / 2;
    if let Some(b) = bytes.get_mut(mid) {
        *b ^= 0x01;
    }
    format!("{kid}.{}", b64(&bytes))
}

/// The variants of a sealed value every category tries: a bit flip in the ciphertext, a
/// changed key id, a flipped last character (tag), truncations, an extension, padding.
pub fn tamperings(s: &str) -> Vec<(&'static str, String)> {
    vec![
        ("bit flip", bit_flip(s)),
        ("key id changed", flip_at(s, 0)),
        ("tag flipped", flip_at(s, -1)),
        (
            "truncated by one",
            s[..s.len().saturating_sub(1)].to_owned(),
        ),
        ("truncated to half", s[..s.len() / 2].to_owned()),
        ("extended", format!("{s}AAAA")),
        ("padded", format!("{s}==")),
    ]
}
