//! Name patterns of `tool_rules`: `*` matches any run of characters (none included), `?`
//! exactly one character; everything else matches itself, case included. Linear in the text
//! for patterns with one `*`, at most `pattern × text` steps otherwise (patterns are short:
//! see `config::tools::MAX_PATTERN_BYTES`). The configuration's are [`Pattern`]s.

use alloc::string::String;

/// The length of the UTF-8 character starting at `b`.
fn char_len(b: u8) -> usize {
    match b {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// Where `pattern`'s literal head ends: the first `*` or `?`, or its end.
fn head_of(pattern: &[u8]) -> usize {
    pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?'))
        .unwrap_or(pattern.len())
}

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    matches_from(p, head_of(p), text.as_bytes())
}

/// A pattern of the configuration, its literal head found once: matching a plain name
/// (`tools/call`, `deploy`) is then one comparison, a prefix and a `*` (`admin_*`) one more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    head: usize,
}

impl Pattern {
    pub fn new(text: String) -> Self {
        let head = head_of(text.as_bytes());
        Self { text, head }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `text` matches the pattern (as [`matches`]).
    pub fn matches(&self, text: &str) -> bool {
        matches_from(self.text.as_bytes(), self.head, text.as_bytes())
    }
}

impl From<&str> for Pattern {
    fn from(text: &str) -> Self {
        Self::new(text.into())
    }
}

impl PartialEq<&str> for Pattern {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

/// Whether `t` matches `p`, whose first `start` bytes are literal (and the next, if any, a
/// wildcard).
fn matches_from(p: &[u8], start: usize, t: &[u8]) -> bool {
    if start == p.len() {
        return p == t;
    }
    if t.get(..start) != p.get(..start) {
        return false;
    }
    if p.get(start..) == Some(b"*") {
        return true;
    }
    let (mut pi, mut ti) = (start, start);
    // After the last `*`: where the pattern resumes, and where the text it swallowed ends.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                pi += 1;
                star = Some((pi, ti));
                continue;
            }
            Some(b'?') => {
                pi += 1;
                ti += t.get(ti).map_or(1, |b| char_len(*b));
                continue;
            }
            Some(c) if t.get(ti) == Some(c) => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last `*` swallow one more character, or fail.
        match star {
            Some((sp, st)) => {
                let next = st + t.get(st).map_or(1, |b| char_len(*b));
                star = Some((sp, next));
                pi = sp;
                ti = next;
            }
            None => return false,
        }
    }
    // Only `*`s may be left of the pattern (and `?` must not have run past the text).
    ti == t.len()
        && p.get(pi..)
            .is_some_and(|rest| rest.iter().all(|b| *b == b'*'))
}

#[cfg(test)]
mod tests {
    use super::matches;
    use alloc::string::String;
    use alloc::vec::Vec;
    use alloc::{format, vec};

    #[test]
    fn literal_star_and_question_mark() {
        assert!(matches("tools/call", "tools/call"));
        assert!(!matches("tools/call", "tools/calls"));
        assert!(!matches("tools/call", "Tools/call"), "case counts");
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("admin_*", "admin_"));
        assert!(matches("admin_*", "admin_delete"));
        assert!(!matches("admin_*", "xadmin_delete"));
        assert!(matches("*_admin", "db_admin"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(matches("a*b*c", "abbbc"));
        assert!(!matches("a*b*c", "aXXbYY"));
        assert!(matches("resources/*", "resources/read"));
        assert!(matches("file:///etc/*", "file:///etc/passwd"));
        assert!(matches("v?", "v1"));
        assert!(!matches("v?", "v"));
        assert!(!matches("v?", "v12"));
        assert!(matches("caf?", "café"), "? is one character, not one byte");
        assert!(matches("*é", "café"));
        assert!(!matches("", "x"));
        assert!(matches("", ""));
        assert!(matches("**", "x"));
        assert!(!matches("admin", "admin_"));
        assert!(!matches("admin_*", "admin"));
        assert!(matches("é*", "é"), "a literal head of several bytes");
        assert!(!matches("é?", "é"));
        assert!(matches("ab?d*", "abcdef"));
        assert!(!matches("ab?d*", "abcef"));
    }

    /// The definition, by characters and recursion (exponential, for tiny inputs only).
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && reference(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
        }
    }

    /// Every string of up to `n` characters over `alphabet`.
    fn strings(alphabet: &[char], n: usize) -> Vec<String> {
        let mut out = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..n {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            out.extend(last.iter().cloned());
        }
        out
    }

    #[test]
    fn agrees_with_the_definition_on_every_small_case() {
        let texts = strings(&['a', 'b', 'é'], 4);
        for pattern in strings(&['a', 'é', '*', '?'], 4) {
            let p: Vec<char> = pattern.chars().collect();
            for text in &texts {
                let t: Vec<char> = text.chars().collect();
                let expected = reference(&p, &t);
                assert_eq!(
                    matches(&pattern, text),
                    expected,
                    "{pattern:?} against {text:?}"
                );
                assert_eq!(
                    super::Pattern::new(pattern.clone()).matches(text),
                    expected,
                    "Pattern {pattern:?} against {text:?}"
                );
            }
        }
    }

    #[test]
    fn backtracking_stays_bounded() {
        let text = "a".repeat(4096);
        assert!(!matches("*a*a*a*a*a*b", &text));
        assert!(matches("*a*a*a*a*a*", &text));
    }
}
