//! The request path as the origin will route it.
//!
//! Origins do not route on the bytes they receive: Starlette and most frameworks percent-decode
//! first (`/mc%70` is `/mcp`), servlet containers drop `;` parameters (`/mcp;x=1` is `/mcp`),
//! IIS strips trailing dots and ASP.NET ignores case. A guard that matches the raw bytes has a
//! side door for every such difference. So the core decides on a canonical form, refuses every
//! spelling that stays ambiguous, and the hosts forward exactly the canonical path it checked.
//!
//! Canonical form ([`canonicalize`]):
//! * escapes of unreserved characters (`A–Z a–z 0–9 - . _ ~`, RFC 3986 §2.3) are decoded;
//! * escapes of UTF-8 multi-byte characters stay escaped, with upper-case hex, and must be valid
//!   shortest-form UTF-8 (overlong forms such as `%C0%AE` are refused);
//! * refused: escapes of anything else (delimiters such as `%2F` and `%3B`, `%25`, controls,
//!   space), `;` path parameters, backslashes, raw characters outside RFC 3986's `pchar`, empty
//!   segments (`//`), dot segments (`.`, `..`, also when encoded) and segments ending in a dot
//!   (IIS drops trailing dots), and anything not starting with `/`.
//!
//! Matching ([`matches_prefix`]) is by whole segments. Rules that restrict access (the MCP path,
//! `group_rules`) ignore ASCII case, so an origin that ignores case cannot step around them;
//! rules that open access (`public_paths`, the proxy's own routes) match case exactly.

use alloc::borrow::Cow;
use alloc::string::String;

use crate::encoding::percent_escape_at;

/// Why a request path was refused. Each maps to one 400 description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// Not an origin-form path (`*`, absolute-form, empty).
    NotAbsolute,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// An escape of a character that is not unreserved: a delimiter (`%2F`, `%3B`, `%3F`),
    /// `%25`, a control or a space. Origins differ in whether and how often they decode these.
    EncodedDelimiter,
    /// Escaped bytes that are not valid shortest-form UTF-8 (overlong `%C0%AE`, truncated).
    BadUtf8,
    /// A `;` path parameter (servlet containers route `/mcp;x=1` as `/mcp`).
    Parameter,
    /// A backslash (some servers read it as `/`).
    Backslash,
    /// A raw character outside RFC 3986's `pchar` (controls, space, `"<>[]^`{|}`, non-ASCII).
    IllegalCharacter,
    /// An empty segment (`//`).
    EmptySegment,
    /// A `.` or `..` segment, or a segment ending in a dot.
    DotSegment,
}

impl PathError {
    pub fn description(self) -> &'static str {
        match self {
            Self::NotAbsolute => "ambiguous request path: it must start with /",
            Self::BadEscape => "ambiguous request path: malformed percent-encoding",
            Self::EncodedDelimiter => {
                "ambiguous request path: only letters, digits and -._~ may be percent-encoded"
            }
            Self::BadUtf8 => "ambiguous request path: percent-encoded bytes are not valid UTF-8",
            Self::Parameter => "ambiguous request path: path parameters (;) are not accepted",
            Self::Backslash => "ambiguous request path: backslashes are not accepted",
            Self::IllegalCharacter => "ambiguous request path: character not allowed in a path",
            Self::EmptySegment => "ambiguous request path: empty segment (//)",
            Self::DotSegment => "ambiguous request path: dot segment",
        }
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Characters a path may carry unencoded: `pchar` and `/` without `;` (RFC 3986 §3.3).
fn allowed_raw(b: u8) -> bool {
    unreserved(b)
        || matches!(b, b'/' | b':' | b'@' | b'!' | b'$' | b'&' | b'\'')
        || matches!(b, b'(' | b')' | b'*' | b'+' | b',' | b'=')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The canonical form of `raw` (a path without its query), borrowed when it is already
/// canonical: the common case costs one pass and no allocation.
pub fn canonicalize(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    // `None` until the first change; then the canonical bytes so far.
    let mut out: Option<String> = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let v = percent_escape_at(bytes, i).ok_or(PathError::BadEscape)?;
            if unreserved(v) {
                let buf = out.get_or_insert_with(|| String::from(raw.get(..i).unwrap_or("")));
                buf.push(char::from(v));
                i += 3;
                continue;
            }
            if v < 0x80 {
                return Err(PathError::EncodedDelimiter);
            }
            // A run of escaped non-ASCII bytes: one or more whole UTF-8 characters.
            let start = i;
            let mut run = alloc::vec::Vec::new();
            while bytes.get(i) == Some(&b'%') {
                match percent_escape_at(bytes, i) {
                    Some(v) if v >= 0x80 => run.push(v),
                    Some(_) => break,
                    None => return Err(PathError::BadEscape),
                }
                i += 3;
            }
            if core::str::from_utf8(&run).is_err() {
                return Err(PathError::BadUtf8);
            }
            let lower_hex = raw
                .get(start..i)
                .is_some_and(|s| s.bytes().any(|c| c.is_ascii_lowercase()));
            if lower_hex && out.is_none() {
                out = Some(String::from(raw.get(..start).unwrap_or("")));
            }
            if let Some(buf) = out.as_mut() {
                for v in run {
                    buf.push('%');
                    for nibble in [v >> 4, v & 0xf] {
                        buf.push(char::from(
                            HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
                        ));
                    }
                }
            }
            continue;
        }
        if !allowed_raw(b) {
            return Err(match b {
                b';' => PathError::Parameter,
                b'\\' => PathError::Backslash,
                _ => PathError::IllegalCharacter,
            });
        }
        if let Some(buf) = out.as_mut() {
            buf.push(char::from(b));
        }
        i += 1;
    }
    let canonical = match out {
        Some(s) => Cow::Owned(s),
        None => Cow::Borrowed(raw),
    };
    check_segments(&canonical)?;
    Ok(canonical)
}

/// Segment rules, on the decoded form: no empty segment except a trailing slash, no dot
/// segments, no segment ending in a dot.
fn check_segments(path: &str) -> Result<(), PathError> {
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(seg) = segments.next() {
        if seg.is_empty() {
            if segments.peek().is_some() {
                return Err(PathError::EmptySegment);
            }
        } else if seg.ends_with('.') {
            return Err(PathError::DotSegment);
        }
    }
    Ok(())
}

/// Whether `path` is `prefix` or lies below it, by whole segments (`/mcp/admin` matches
/// `/mcp/admin` and `/mcp/admin/x`, not `/mcp/administrators`). A prefix ending in `/`
/// matches everything below it.
pub fn matches_prefix(path: &str, prefix: &str, ignore_case: bool) -> bool {
    let Some(head) = path.get(..prefix.len()) else {
        return false;
    };
    let same = if ignore_case {
        head.eq_ignore_ascii_case(prefix)
    } else {
        head == prefix
    };
    same && (prefix.ends_with('/')
        || matches!(path.as_bytes().get(prefix.len()), None | Some(b'/')))
}

/// Whether a configured path (MCP path, group-rule prefix, public path) is already canonical,
/// so that it can be compared with canonical request paths.
pub fn is_canonical(p: &str) -> bool {
    canonicalize(p).is_ok_and(|c| matches!(c, Cow::Borrowed(_))) && !p.contains('%')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        canonicalize(raw).unwrap().into_owned()
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in [
            "/",
            "/mcp",
            "/mcp/",
            "/mcp/x-y_z~1.json",
            "/a:b@c!$&'()*+,=",
            "/v1.2/x",
        ] {
            assert!(matches!(canonicalize(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn escaped_unreserved_characters_are_decoded() {
        assert_eq!(ok("/mc%70"), "/mcp");
        assert_eq!(ok("/%6Dcp"), "/mcp");
        assert_eq!(ok("/%6dcp"), "/mcp");
        assert_eq!(ok("/%6D%63%70"), "/mcp");
        assert_eq!(ok("/mcp/adm%69n"), "/mcp/admin");
        assert_eq!(ok("/file%2Ejson"), "/file.json");
        assert_eq!(ok("/%7Euser/%2D%5F"), "/~user/-_");
    }

    #[test]
    fn utf8_escapes_stay_escaped_in_upper_case() {
        assert_eq!(ok("/caf%C3%A9"), "/caf%C3%A9");
        assert!(matches!(canonicalize("/caf%C3%A9"), Ok(Cow::Borrowed(_))));
        assert_eq!(ok("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(ok("/m%63p/caf%c3%a9"), "/mcp/caf%C3%A9");
        assert_eq!(ok("/%F0%9F%98%80x"), "/%F0%9F%98%80x");
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        use PathError::*;
        let cases: &[(&str, PathError)] = &[
            ("", NotAbsolute),
            ("*", NotAbsolute),
            ("mcp", NotAbsolute),
            ("http://x/mcp", NotAbsolute),
            ("/mcp%", BadEscape),
            ("/mcp%7", BadEscape),
            ("/mcp%zz", BadEscape),
            ("/mcp%2F", EncodedDelimiter),
            ("/mcp%2fadmin", EncodedDelimiter),
            ("/mcp%3B", EncodedDelimiter),
            ("/mcp%00", EncodedDelimiter),
            ("/mcp%20", EncodedDelimiter),
            ("/mcp%09", EncodedDelimiter),
            ("/mcp%25", EncodedDelimiter),
            ("/mc%2570", EncodedDelimiter),
            ("/mcp%5C", EncodedDelimiter),
            ("/mcp%3F", EncodedDelimiter),
            ("/mcp%23", EncodedDelimiter),
            ("/%C0%AE%C0%AE/mcp", BadUtf8),
            ("/%C0%AF", BadUtf8),
            ("/%E0%80%AE", BadUtf8),
            ("/%C3", BadUtf8),
            ("/%C3x", BadUtf8),
            ("/%ED%A0%80", BadUtf8),
            ("/mcp;x=1", Parameter),
            ("/mcp;", Parameter),
            ("/mcp\\admin", Backslash),
            ("/mcp x", IllegalCharacter),
            ("/mcp\t", IllegalCharacter),
            ("/mcp\u{e9}", IllegalCharacter),
            ("/mcp#x", IllegalCharacter),
            ("/mcp<", IllegalCharacter),
            ("/mcp[", IllegalCharacter),
            ("//mcp", EmptySegment),
            ("/mcp//admin", EmptySegment),
            ("/.", DotSegment),
            ("/mcp/.", DotSegment),
            ("/mcp/..", DotSegment),
            ("/x/../mcp", DotSegment),
            ("/x/%2e%2e/mcp", DotSegment),
            ("/x/%2E/mcp", DotSegment),
            ("/x/.%2e/mcp", DotSegment),
            ("/mcp/admin.", DotSegment),
            ("/mcp.", DotSegment),
            ("/mcp%2e", DotSegment),
            ("/mcp/...", DotSegment),
        ];
        for (raw, want) in cases {
            assert_eq!(canonicalize(raw), Err(*want), "{raw:?}");
        }
    }

    #[test]
    fn trailing_slash_is_kept() {
        assert_eq!(ok("/mcp/"), "/mcp/");
        assert_eq!(ok("/"), "/");
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(matches_prefix("/mcp", "/mcp", false));
        assert!(matches_prefix("/mcp/", "/mcp", false));
        assert!(matches_prefix("/mcp/x", "/mcp", false));
        assert!(!matches_prefix("/mcpx", "/mcp", false));
        assert!(!matches_prefix("/mc", "/mcp", false));
        assert!(!matches_prefix("/MCP", "/mcp", false));
        assert!(matches_prefix("/MCP/Admin/x", "/mcp/admin", true));
        assert!(!matches_prefix("/mcp/administrators", "/mcp/admin", true));
        assert!(matches_prefix("/static/a", "/static/", false));
        assert!(!matches_prefix("/static", "/static/", false));
    }

    #[test]
    fn configured_paths_must_be_canonical() {
        assert!(is_canonical("/mcp"));
        assert!(is_canonical("/healthz"));
        assert!(!is_canonical("/mc%70"));
        assert!(!is_canonical("/caf%C3%A9"));
        assert!(!is_canonical("/a;b"));
        assert!(!is_canonical("mcp"));
    }
}
