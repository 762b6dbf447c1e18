//! A header map as proxy-wasm hands it over, read in place: one buffer from Envoy, names and
//! values borrowed from it. (The SDK's reader copies every name into a `String` and every
//! value into a `Vec`: two allocations per header on every request.) The index of where each
//! name and value is reuses the last dropped map's, so a request allocates nothing for it.
//!
//! The serialization (proxy-wasm ABI 0.2): a little-endian `u32` count, then a `u32` length of
//! each name and value, then each name and value followed by a NUL byte.

use std::cell::Cell;
use std::ops::Range;

type Index = Vec<(Range<usize>, Range<usize>)>;

thread_local! {
    /// The index of the last map dropped, for the next map read (the VM reads one or two
    /// per request, one after the other). It keeps the room of the largest map seen: at most
    /// Envoy's header count limit × 16 bytes in wasm32.
    static SPARE: Cell<Index> = const { Cell::new(Vec::new()) };
}

/// An empty index with room for `n` entries: the spare one when there is one.
fn index_for(n: usize) -> Index {
    let mut index = SPARE.take();
    index.clear();
    index.reserve(n);
    index
}

/// The headers of a request or response: names lower-cased, values as text (a value that is
/// not UTF-8 reads with replacement characters).
#[derive(Clone, Debug, Default)]
pub struct HeaderMap {
    text: String,
    pairs: Index,
}

impl Drop for HeaderMap {
    fn drop(&mut self) {
        if self.pairs.capacity() > 0 {
            SPARE.set(std::mem::take(&mut self.pairs));
        }
    }
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
        let mut pairs = index_for(count);
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

    /// Runs `f` with the headers as a slice of pairs (what the core takes): from the stack for
    /// up to [`INLINE`] headers, so a usual request allocates nothing for it.
    pub fn with_pairs<R>(&self, f: impl FnOnce(&[(&str, &str)]) -> R) -> R {
        let n = self.pairs.len();
        if n > INLINE {
            return f(&self.iter().collect::<Vec<_>>());
        }
        let mut inline = [("", ""); INLINE];
        for (slot, pair) in inline.iter_mut().zip(self.iter()) {
            *slot = pair;
        }
        f(inline.get(..n).unwrap_or_default())
    }

    /// The map as Envoy serializes it.
    #[cfg(test)]
    pub fn serialized(&self) -> Vec<u8> {
        let word = |n: usize| u32::try_from(n).unwrap().to_le_bytes();
        let mut out = word(self.pairs.len()).to_vec();
        for (n, v) in self.iter() {
            out.extend(word(n.len()));
            out.extend(word(v.len()));
        }
        for (n, v) in self.iter() {
            out.extend(n.bytes());
            out.push(0);
            out.extend(v.bytes());
            out.push(0);
        }
        out
    }
}

/// How many headers [`HeaderMap::with_pairs`] hands over from the stack.
const INLINE: usize = 48;

/// Two maps are equal when they hold the same headers in the same order.
impl PartialEq for HeaderMap {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for HeaderMap {}

#[cfg(test)]
mod tests {
    use super::{HeaderMap, INLINE};

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
    fn the_core_gets_the_same_pairs_from_the_stack_or_not() {
        for n in [0, 1, INLINE - 1, INLINE, INLINE + 1, 3 * INLINE] {
            let names: Vec<String> = (0..n).map(|i| format!("X-H{i}")).collect();
            let m = HeaderMap::from_pairs(names.iter().map(|k| (k.as_str(), "v")));
            let expected: Vec<(&str, &str)> = m.iter().collect();
            assert_eq!(expected.len(), n);
            m.with_pairs(|pairs| assert_eq!(pairs, expected, "{n} headers"));
            assert_eq!(HeaderMap::parse(m.serialized()), Some(m.clone()));
        }
    }

    #[test]
    fn a_dropped_maps_index_serves_the_next_one() {
        let a = HeaderMap::parse(serialize(&[(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])).unwrap();
        let room = a.pairs.capacity();
        drop(a);
        let b = HeaderMap::parse(serialize(&[(b"x", b"9")])).unwrap();
        assert_eq!(b.pairs.capacity(), room, "the index was reused");
        assert_eq!(b.iter().collect::<Vec<_>>(), [("x", "9")], "and emptied");
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
