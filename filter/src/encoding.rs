//! Strict decoders applied before any JSON parser sees untrusted bytes.

use alloc::vec::Vec;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use base64ct::{Base64UrlUnpadded, Encoding};

/// Unpadded base64url that refuses padding and non-zero trailing bits.
const URL_SAFE_STRICT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Decodes unpadded, canonical base64url (RFC 7515 §2). Padding, the standard alphabet,
/// whitespace and non-zero trailing bits are all rejected.
///
/// What it decodes is public or the sender's own (token segments, the public halves of keys,
/// sealed ciphertext), so it uses a table decoder: every token the guard has not cached goes
/// through it twice, and `base64ct`'s constant-time arithmetic cost ≈ 23 instructions per
/// character there. Encoding, which writes secrets (random tokens), stays constant-time.
pub fn b64url_decode(input: &str) -> Option<Vec<u8>> {
    URL_SAFE_STRICT.decode(input).ok()
}

/// Encodes bytes as unpadded base64url (in constant time: the bytes may be secret).
pub fn b64url_encode(input: &[u8]) -> alloc::string::String {
    Base64UrlUnpadded::encode_string(input)
}

/// Encodes bytes as lower-case hex.
pub fn hex(input: &[u8]) -> alloc::string::String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = alloc::string::String::with_capacity(input.len() * 2);
    for b in input {
        for nibble in [b >> 4, b & 15] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// Returns true when the JSON text never nests objects/arrays deeper than `max_depth`.
///
/// This is a lexical pre-check, run before `serde_json`, so hostile input cannot make the
/// parser recurse deeply. Malformed JSON is left for the parser to reject.
pub fn json_depth_within(input: &[u8], max_depth: usize) -> bool {
    // Nesting needs an opening bracket per level: a text with few of them (every MCP request
    // but a hostile one) is within the limit without following its strings.
    openings(input) <= max_depth || nesting_within(input, max_depth)
}

/// How many `{` and `[` bytes `input` has, eight bytes at a time: `{` (0x7b) and `[` (0x5b)
/// differ in one bit only, so with 0x20 set in every byte both read 0x7b, and the bytes that
/// are then equal to 0x7b are counted as the zero bytes of the word XOR 0x7b…7b.
fn openings(input: &[u8]) -> usize {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const SPACE: u64 = 0x2020_2020_2020_2020;
    const OPEN: u64 = 0x7b7b_7b7b_7b7b_7b7b;
    let (words, rest) = words(input);
    let mut n = 0usize;
    for w in words {
        let x = (w | SPACE) ^ OPEN;
        // The high bit of each byte of `zero` is set exactly when that byte of `x` is 0.
        let zero = !(((x & LOW7) + LOW7) | x | LOW7);
        n += zero.count_ones() as usize;
    }
    n + rest.iter().filter(|&&b| b == b'{' || b == b'[').count()
}

/// `bytes` as little-endian 64-bit words, and the bytes after the last whole word: for
/// loops over long inputs on the hot path (in wasm, a byte loop costs several instructions
/// per byte; `==` on slices is libc's byte-by-byte `memcmp`).
pub fn words(bytes: &[u8]) -> (impl Iterator<Item = u64> + '_, &[u8]) {
    let chunks = bytes.chunks_exact(8);
    let rest = chunks.remainder();
    let words = chunks.map(|c| <[u8; 8]>::try_from(c).map_or(0, u64::from_le_bytes));
    (words, rest)
}

/// [`json_depth_within`] by following the text: brackets inside strings do not count.
fn nesting_within(input: &[u8], max_depth: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in input {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return false;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// The byte of the percent-escape `%XX` starting at `i` in `bytes`, if it is well-formed.
pub fn percent_escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    if bytes.get(i) != Some(&b'%') {
        return None;
    }
    let hi = hex(*bytes.get(i + 1)?)?;
    let lo = hex(*bytes.get(i + 2)?)?;
    Some(hi << 4 | lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64url_decode("aGk").as_deref(), Some(&b"hi"[..]));
        assert_eq!(b64url_decode("aGk="), None, "padding");
        assert_eq!(b64url_decode("a+8"), None, "standard alphabet");
        assert_eq!(b64url_decode("aGl"), None, "non-zero trailing bits");
        assert_eq!(b64url_decode("aG k"), None, "whitespace");
        assert_eq!(b64url_encode(b"hi"), "aGk");
    }

    /// The table decoder accepts exactly what `base64ct`'s strict one does, with the same bytes:
    /// every text of one to three characters over the alphabet and its neighbours (and those of
    /// four that repeat their first), then random longer ones (valid ones, and ones with a
    /// foreign character somewhere), and what `b64url_encode` writes.
    #[test]
    fn base64url_decoder_agrees_with_base64ct() {
        let same = |s: &str| {
            assert_eq!(
                b64url_decode(s),
                Base64UrlUnpadded::decode_vec(s).ok(),
                "{s:?}"
            )
        };
        let chars: Vec<char> =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= .\né"
                .chars()
                .collect();
        let mut text = alloc::string::String::new();
        same("");
        for &a in &chars {
            same(a.encode_utf8(&mut [0; 4]));
        }
        for &a in &chars {
            for &b in &chars {
                for c in core::iter::once(None).chain(chars.iter().copied().map(Some)) {
                    text.clear();
                    text.extend([a, b]);
                    text.extend(c);
                    same(&text);
                    text.insert(0, a);
                    same(&text);
                }
            }
        }
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..200_000 {
            let len = (next() % 80) as usize;
            let foreign = next() % 4 == 0;
            text.clear();
            for i in 0..len {
                let r = next() as usize;
                let pool = if foreign && i == r % len.max(1) {
                    chars.len()
                } else {
                    64
                };
                text.push(chars[r % pool]);
            }
            same(&text);
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            assert_eq!(b64url_decode(&b64url_encode(&bytes)), Some(bytes));
        }
    }

    #[test]
    fn nesting_is_bounded() {
        assert!(json_depth_within(br#"{"a":[{"b":1}]}"#, 3));
        assert!(!json_depth_within(br#"{"a":[{"b":1}]}"#, 2));
        assert!(
            json_depth_within(br#"{"a":"[[[[[[["}"#, 1),
            "brackets in strings"
        );
        assert!(json_depth_within(br#"{"a":"\"[[[["}"#, 1), "escaped quote");
    }

    #[test]
    fn openings_are_counted_eight_bytes_at_a_time_as_one_by_one() {
        let naive = |t: &[u8]| t.iter().filter(|&&b| b == b'{' || b == b'[').count();
        // Every byte value at every position of a word and of the tail, next to brackets.
        for len in 0..=19 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut t = alloc::vec![b'{'; len];
                    t[at] = b;
                    assert_eq!(openings(&t), naive(&t), "{t:?}");
                    t.fill(b'a');
                    t[at] = b;
                    assert_eq!(openings(&t), naive(&t), "{t:?}");
                }
            }
        }
        let mixed: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        assert_eq!(openings(&mixed), naive(&mixed));
    }

    /// The bracket count that skips the scan never changes the answer: every text of up to 7
    /// bytes over the characters that matter, against following the text alone, at depths 0 to 4.
    #[test]
    fn counting_brackets_first_agrees_with_following_strings() {
        let alphabet = *b"{[}]\"\\a";
        let mut text = Vec::new();
        fn each(text: &mut Vec<u8>, alphabet: &[u8], left: usize, f: &mut dyn FnMut(&[u8])) {
            f(text);
            if left == 0 {
                return;
            }
            for &c in alphabet {
                text.push(c);
                each(text, alphabet, left - 1, f);
                text.pop();
            }
        }
        each(&mut text, &alphabet, 7, &mut |t| {
            for max in 0..=4 {
                assert_eq!(
                    json_depth_within(t, max),
                    nesting_within(t, max),
                    "{t:?} at {max}"
                );
            }
        });
    }
}
