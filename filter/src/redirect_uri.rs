//! Client redirect URIs: what may be registered, how a requested URI matches a registered
//! one, and the `allowed_client_redirect_uris` patterns.

use alloc::string::String;

/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_BYTES: usize = 2048;
/// Most redirect URIs per client.
pub const MAX_REDIRECT_URIS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectUriError {
    TooLong,
    /// Not `https://` (or `http://` to a loopback host).
    Scheme,
    /// `http://` to a host that is not loopback.
    InsecureHttp,
    Userinfo,
    Fragment,
    DotSegment,
    Backslash,
    /// Whitespace, control characters or other bytes not allowed in a URI.
    BadCharacter,
    BadHost,
    BadPort,
    /// Not among `allowed_client_redirect_uris`.
    NotAllowed,
}

impl RedirectUriError {
    pub fn description(self) -> &'static str {
        match self {
            Self::TooLong => "redirect_uri too long",
            Self::Scheme => "redirect_uri must use https (or http to a loopback address)",
            Self::InsecureHttp => {
                "http redirect_uri allowed only for localhost, 127.0.0.1 or [::1]"
            }
            Self::Userinfo => "redirect_uri must not contain userinfo",
            Self::Fragment => "redirect_uri must not contain a fragment",
            Self::DotSegment => "redirect_uri must not contain dot segments",
            Self::Backslash => "redirect_uri must not contain backslashes",
            Self::BadCharacter => "redirect_uri contains characters not allowed in a URI",
            Self::BadHost => "redirect_uri has an invalid host",
            Self::BadPort => "redirect_uri has an invalid port",
            Self::NotAllowed => "redirect_uri is not allowed by this server",
        }
    }
}

/// The parts of a validated redirect URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectUri<'a> {
    pub https: bool,
    pub host: &'a str,
    pub port: Option<&'a str>,
    /// Path and query.
    pub rest: &'a str,
}

impl RedirectUri<'_> {
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.host.to_ascii_lowercase())
    }
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// Validates a redirect URI for registration.
pub fn parse(uri: &str) -> Result<RedirectUri<'_>, RedirectUriError> {
    if uri.len() > MAX_REDIRECT_URI_BYTES {
        return Err(RedirectUriError::TooLong);
    }
    if uri.contains('\\') {
        return Err(RedirectUriError::Backslash);
    }
    if uri.contains('#') {
        return Err(RedirectUriError::Fragment);
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RedirectUriError::BadCharacter);
    }
    let (https, rest) = if let Some(r) = uri.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = uri.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(RedirectUriError::Scheme);
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.contains('@') {
        return Err(RedirectUriError::Userinfo);
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or(RedirectUriError::BadHost)?;
        let (inside, after) = v6.split_at(end);
        let host = authority.get(..end + 2).ok_or(RedirectUriError::BadHost)?;
        if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(RedirectUriError::BadHost);
        }
        match after.get(1..) {
            Some("") | None => (host, None),
            Some(p) => (
                host,
                Some(p.strip_prefix(':').ok_or(RedirectUriError::BadPort)?),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        && !host.starts_with('.')
        && !host.ends_with('.')
        && !host.contains("..");
    if !host_ok {
        return Err(RedirectUriError::BadHost);
    }
    if let Some(p) = port {
        if p.is_empty()
            || p.len() > 5
            || !p.bytes().all(|b| b.is_ascii_digit())
            || p.parse::<u32>().map_or(true, |n| n == 0 || n > 65535)
        {
            return Err(RedirectUriError::BadPort);
        }
    }
    let path_only = path.split('?').next().unwrap_or("");
    let lower = path_only.to_ascii_lowercase();
    if path_only.split('/').any(|seg| seg == "." || seg == "..")
        || lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
    {
        return Err(RedirectUriError::DotSegment);
    }
    let host_lower = host.to_ascii_lowercase();
    if !https && !is_loopback(&host_lower) {
        return Err(RedirectUriError::InsecureHttp);
    }
    Ok(RedirectUri {
        https,
        host,
        port,
        rest: path,
    })
}

/// Whether `requested` matches the registered URI: exactly, except that the port of a
/// loopback `http` URI may differ (RFC 8252 §7.3).
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (parse(registered), parse(requested)) {
        (Ok(a), Ok(b)) => {
            !a.https && !b.https && a.is_loopback() && a.host == b.host && a.rest == b.rest
        }
        _ => false,
    }
}

/// Glob match for `allowed_client_redirect_uris`: `*` matches any run of characters except
/// `/`, `?`, `@` and `#`; a trailing `*` matches the rest of the URI.
///
/// Runs in O(pattern × URI) steps whatever the input: the pattern is simulated as a
/// non-deterministic automaton (the set of pattern positions reachable so far, advanced one URI
/// byte at a time), never by backtracking, so a pattern with several `*` cannot make a
/// registration cost exponential time.
pub fn pattern_matches(pattern: &str, uri: &str) -> bool {
    glob(pattern.as_bytes(), uri.as_bytes()).0
}

/// [`pattern_matches`], plus the number of automaton steps taken (for the worst-case test).
pub(crate) fn glob(p: &[u8], u: &[u8]) -> (bool, usize) {
    let last = p.len();
    // `on[i]`: the pattern is matched up to position `i` (state `last` = all of it).
    let mut on = alloc::vec![false; last + 1];
    let mut next = alloc::vec![false; last + 1];
    let mut steps = 0usize;
    // A star may match nothing: reaching it reaches what follows it too.
    let close = |set: &mut [bool]| {
        for i in 0..last {
            if p.get(i) == Some(&b'*') && set.get(i) == Some(&true) {
                if let Some(s) = set.get_mut(i + 1) {
                    *s = true;
                }
            }
        }
    };
    if let Some(s) = on.first_mut() {
        *s = true;
    }
    close(&mut on);
    for c in u {
        next.iter_mut().for_each(|s| *s = false);
        let mut any = false;
        for (i, state) in on.iter().enumerate() {
            if !*state {
                continue;
            }
            steps += 1;
            match p.get(i) {
                Some(b'*') if i + 1 == last || !b"/?@#".contains(c) => {
                    if let Some(s) = next.get_mut(i) {
                        *s = true;
                        any = true;
                    }
                }
                Some(b) if b == c && *b != b'*' => {
                    if let Some(s) = next.get_mut(i + 1) {
                        *s = true;
                        any = true;
                    }
                }
                _ => {}
            }
        }
        if !any {
            return (false, steps);
        }
        close(&mut next);
        core::mem::swap(&mut on, &mut next);
    }
    (on.get(last) == Some(&true), steps)
}

/// Validates a URI for registration against the rules and the optional allow-list.
pub fn check_registration(uri: &str, allowed: Option<&[String]>) -> Result<(), RedirectUriError> {
    parse(uri)?;
    match allowed {
        Some(patterns) if !patterns.iter().any(|p| pattern_matches(p, uri)) => {
            Err(RedirectUriError::NotAllowed)
        }
        _ => Ok(()),
    }
}

/// The host of an `http(s)://` URL, in lower case, without port or userinfo (`[…]` kept
/// for IPv6); `None` for anything else.
pub fn url_host(url: &str) -> Option<alloc::string::String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if authority.starts_with('[') {
        authority.get(..authority.find(']')? + 1)?
    } else {
        authority.split(':').next().unwrap_or("")
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The host (and port) to show the user on the consent page.
pub fn display_host(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    rest.get(..end).unwrap_or(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RedirectUriError::*;

    #[test]
    fn accepted_uris() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "http://localhost:3000/callback",
            "http://127.0.0.1/callback",
            "http://[::1]:8080/cb",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejected_uris() {
        let cases = [
            ("javascript:alert(1)", Scheme),
            ("data:text/html,hi", Scheme),
            ("file:///etc/passwd", Scheme),
            ("vbscript:msgbox", Scheme),
            ("ftp://x/cb", Scheme),
            ("http://evil.example/cb", InsecureHttp),
            ("http://localhost.evil.example/cb", InsecureHttp),
            ("http://127.0.0.1.nip.io/cb", InsecureHttp),
            ("https://good.example@evil.example/cb", Userinfo),
            ("https://app.example/cb#frag", Fragment),
            ("https://app.example/a/../cb", DotSegment),
            ("https://app.example/./cb", DotSegment),
            ("https://app.example/%2e%2e/cb", DotSegment),
            ("https://app.example/a%2Fb", DotSegment),
            ("https://app.example\\@evil/cb", Backslash),
            ("https://app.example/c b", BadCharacter),
            ("https://app.example/cb\u{0}", BadCharacter),
            ("https://аpp.example/cb", BadCharacter),
            ("https://:443/cb", BadHost),
            ("https://app..example/cb", BadHost),
            ("https://app.example:0/cb", BadPort),
            ("https://app.example:99999/cb", BadPort),
            ("https://app.example:80a/cb", BadPort),
        ];
        for (uri, err) in cases {
            assert_eq!(parse(uri), Err(err), "{uri}");
        }
        let long = alloc::format!("https://a.example/{}", "a".repeat(MAX_REDIRECT_URI_BYTES));
        assert_eq!(parse(&long), Err(TooLong));
    }

    #[test]
    fn matching_is_exact_except_loopback_port() {
        assert!(matches("https://a.example/cb", "https://a.example/cb"));
        assert!(!matches("https://a.example/cb", "https://a.example/cb/"));
        assert!(!matches("https://a.example/cb", "https://a.example:444/cb"));
        assert!(!matches("https://a.example/cb", "https://A.example/cb"));
        assert!(matches(
            "http://127.0.0.1:1000/cb",
            "http://127.0.0.1:2000/cb"
        ));
        assert!(matches("http://localhost/cb", "http://localhost:5555/cb"));
        assert!(!matches("http://localhost:1/cb", "http://127.0.0.1:1/cb"));
        assert!(!matches(
            "http://localhost:1/cb",
            "http://localhost:1/other"
        ));
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches(
            "http://localhost:*",
            "http://localhost:8080/callback"
        ));
        assert!(pattern_matches(
            "https://*.example.com/*",
            "https://app.example.com/cb"
        ));
        assert!(!pattern_matches(
            "https://*.example.com/*",
            "https://evil.com/x.example.com/cb"
        ));
        assert!(!pattern_matches(
            "https://*.example.com/*",
            "https://a@b.example.com/cb"
        ));
        assert!(!pattern_matches(
            "https://app.example.com/cb",
            "https://app.example.com/cb2"
        ));
        let allowed = [String::from("http://localhost:*")];
        assert_eq!(
            check_registration("https://x.example/cb", Some(&allowed)),
            Err(NotAllowed)
        );
        assert_eq!(
            check_registration("http://localhost:1/cb", Some(&allowed)),
            Ok(())
        );
    }

    #[test]
    fn display_host_shows_authority() {
        assert_eq!(
            display_host("https://app.example.com:8443/cb?x"),
            "app.example.com:8443"
        );
    }
}
