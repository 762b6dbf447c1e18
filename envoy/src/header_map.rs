//! A header map as proxy-wasm hands it over, read in place: one buffer from Envoy, names and
//! values borrowed from it. (The SDK's reader copies every name into a `String` and every
//! value into a `Vec`: two allocations per header on every request.)
//!
//! The serialization (proxy-wasm ABI 0.2): a little-endian `u32` count, then a `u32` length of
//! each name and value, then each name and value followed by a NUL byte.

use std::ops::Range;

/// The headers of a request or response: names lower-cased, values as text (a value that is
/// not UTF-8 reads with replacement characters).
#[derive(Clone, Debug, Default)]
pub struct HeaderMap {
    text: String,
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

impl HeaderMap {
    /// Reads a serialized map; `None` when it is not one (lengths past its end).
    pub fn parse(mut buf: Vec<u8>) -> Option<Self> {
        let word = |at: usize| -> Option<usize> {
            let b: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
            usize::try_from(u32::from_le_bytes(b)).ok()
        };
        let count = word(0)?;
        let table_end = count.checked_mul(8)?.checked_add(4)?;
        if table_end > buf.len() {
            return None;
        }
        let mut pairs = Vec::with_capacity(count);
        let mut at = table_end;
        for i in 0..count {
            let (name_len, value_len) = (word(4 + 8 * i)?, word(8 + 8 * i)?);
            let name = at..at.checked_add(name_len)?;
            let value_start = name.end.checked_add(1)?;
            let value = value_start..value_start.checked_add(value_len)?;
            at = value.end.checked_add(1)?;
            if at > buf.len() {
                return None;
            }
            pairs.push((name, value));
        }
        for (name, _) in &pairs {
            buf.get_mut(name.clone())?.make_ascii_lowercase();
        }
        // The table is no text: blank it, and the whole buffer is UTF-8 exactly when every
        // name and value is (they are separated by NULs).
        buf.get_mut(..table_end)?.fill(b' ');
        match String::from_utf8(buf) {
            Ok(text) => Some(Self { text, pairs }),
            Err(e) => {
                let buf = e.into_bytes();
                let lossy = |r: &Range<usize>| {
                    String::from_utf8_lossy(buf.get(r.clone()).unwrap_or_default()).into_owned()
                };
                let owned: Vec<(String, String)> =
                    pairs.iter().map(|(n, v)| (lossy(n), lossy(v))).collect();
                Some(Self::from_pairs(
                    owned.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                ))
            }
        }
    }

    /// A map of these headers (names lower-cased).
    pub fn from_pairs<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut map = Self::default();
        for (name, value) in headers {
            let n = map.text.len()..map.text.len() + name.len();
            map.text.push_str(name);
            if let Some(s) = map.text.get_mut(n.clone()) {
                s.make_ascii_lowercase();
            }
            let v = map.text.len()..map.text.len() + value.len();
            map.text.push_str(value);
            map.pairs.push((n, v));
        }
        map
    }

    /// Every header, in the order received.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| {
            (
                self.text.get(n.clone()).unwrap_or_default(),
                self.text.get(v.clone()).unwrap_or_default(),
            )
        })
    }

    /// The first value of `name` (lower case), or `""`.
    pub fn get(&self, name: &str) -> &str {
        self.iter().find(|(k, _)| *k == name).map_or("", |(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Two maps are equal when they hold the same headers in the same order.
impl PartialEq for HeaderMap {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for HeaderMap {}

#[cfg(test)]
mod tests {
    use super::HeaderMap;

    /// proxy-wasm's serialization of `pairs`.
    fn serialize(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in pairs {
            out.extend((n.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (n, v) in pairs {
            out.extend(*n);
            out.push(0);
            out.extend(*v);
            out.push(0);
        }
        out
    }

    #[test]
    fn reads_names_lower_cased_and_values_as_sent() {
        let buf = serialize(&[
            (b":path", b"/mcp?x=1"),
            (b"Authorization", b"Bearer abc"),
            (b"x-empty", b""),
            (b"x-long", "é".repeat(300).as_bytes()),
        ]);
        let m = HeaderMap::parse(buf).unwrap();
        let all: Vec<_> = m.iter().collect();
        assert_eq!(
            all,
            [
                (":path", "/mcp?x=1"),
                ("authorization", "Bearer abc"),
                ("x-empty", ""),
                ("x-long", "é".repeat(300).as_str()),
            ]
        );
        assert_eq!(m.get("authorization"), "Bearer abc");
        assert_eq!(m.get("missing"), "");
        assert_eq!(
            m,
            HeaderMap::from_pairs(all.iter().copied()),
            "the same map whichever way it was made"
        );
        assert!(HeaderMap::parse(serialize(&[])).unwrap().is_empty());
    }

    #[test]
    fn a_value_that_is_not_utf8_reads_with_replacement_characters() {
        let m = HeaderMap::parse(serialize(&[(b"x-a", b"ok"), (b"X-B", b"a\xffb")])).unwrap();
        assert_eq!(m.get("x-a"), "ok");
        assert_eq!(m.get("x-b"), "a\u{fffd}b");
    }

    #[test]
    fn a_truncated_or_lying_map_is_refused() {
        let whole = serialize(&[(b"a", b"b"), (b"cc", b"dd")]);
        for cut in 0..whole.len() {
            assert_eq!(
                HeaderMap::parse(whole[..cut].to_vec()),
                None,
                "cut at {cut}"
            );
        }
        let mut huge = whole.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(HeaderMap::parse(huge), None);
        let mut long_name = whole;
        long_name[4..8].copy_from_slice(&(u32::MAX - 1).to_le_bytes());
        assert_eq!(HeaderMap::parse(long_name), None);
    }
}
