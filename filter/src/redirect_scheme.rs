//! Which redirect URIs a client may register, by kind: `https` web callbacks, loopback `http`
//! callbacks (RFC 8252 §7.3) and private-use URI schemes of native apps (RFC 8252 §7.1,
//! `cursor://…`, `vscode://…`, `com.example.app:/cb`), and what the OIDC `application_type`
//! of the registration (`web` / `native`, MCP SEP-837) allows of them.
//!
//! Private-use schemes are matched exactly (like every redirect URI here; only a loopback
//! port may vary). A scheme is refused when a browser, the operating system or a standard
//! protocol handles it itself ([`DENIED_SCHEMES`], `ms-*`): sending an authorization code
//! there would run a script, open a file or hand the code to a system component instead of
//! the app that registered. `allowed_client_redirect_uris` restricts every kind further.

use alloc::string::String;

use crate::redirect_uri::{self, RedirectUriError, MAX_REDIRECT_URI_BYTES};

/// What kind of redirect URI a registered URI is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectKind {
    /// `https://` to a host that is not loopback.
    Web,
    /// `http://` (or `https://`) to `localhost`, `127.0.0.1` or `[::1]`.
    Loopback,
    /// A private-use scheme of a native app.
    PrivateUse,
}

/// The registration's `application_type` (OpenID Connect Dynamic Client Registration §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplicationType {
    /// Only `https` redirect URIs on a host other than this computer.
    Web,
    /// Loopback, private-use or (claimed) `https` redirect URIs.
    Native,
}

impl ApplicationType {
    /// Reads the metadata value: absent is `None` (every kind allowed, as for clients that
    /// predate SEP-837: Cursor, the MCP Inspector 1.x), anything but `web` / `native` an error.
    pub fn parse(value: Option<&str>) -> Result<Option<Self>, RegistrationError> {
        match value {
            None => Ok(None),
            Some("web") => Ok(Some(Self::Web)),
            Some("native") => Ok(Some(Self::Native)),
            Some(_) => Err(RegistrationError::BadApplicationType),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Native => "native",
        }
    }
}

/// Schemes never accepted as private-use redirect schemes (compared in lower case). Also
/// refused: every scheme starting with `ms-` (Windows protocol handlers such as `ms-msdt`).
pub const DENIED_SCHEMES: &[&str] = &[
    // Run or show content in the browser itself.
    "javascript",
    "vbscript",
    "data",
    "blob",
    "about",
    "filesystem",
    "view-source",
    "jar",
    // Local files and browser internals.
    "file",
    "resource",
    "chrome",
    "chrome-extension",
    "chrome-untrusted",
    "edge",
    "moz-extension",
    "safari-extension",
    // Other standard protocols: the code would go to whatever handles them.
    "ftp",
    "ftps",
    "sftp",
    "ws",
    "wss",
    "mailto",
    "tel",
    "sms",
    "smb",
    "nfs",
    "ssh",
    "telnet",
    "gopher",
    "ldap",
    "ldaps",
    "news",
    "nntp",
    "irc",
    "urn",
    "cid",
    "mid",
    "intent",
    "android-app",
    // Operating-system handlers.
    "search",
    "search-ms",
    "shell",
    "hcp",
    "its",
    "mk",
    "res",
    "microsoft-edge",
];

/// Why a redirect URI cannot be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationError {
    /// An `http(s)` URI that fails the web rules (userinfo, fragment, dot segments, …).
    Uri(RedirectUriError),
    /// Not a URI with a scheme this server can tell apart from a file path or garbage.
    BadScheme,
    /// `HTTPS://…`: web schemes must be written in lower case.
    SchemeCase,
    /// `https:host/…`, `https:/host`: a web scheme without `//` and an authority.
    WebForm,
    /// A scheme the browser or the operating system handles itself.
    DangerousScheme,
    /// A private-use URI with nothing after the scheme, or characters not allowed in a URI.
    BadPrivateUse,
    /// `application_type` other than `web` or `native`.
    BadApplicationType,
    /// `application_type: web` with a loopback or private-use redirect URI.
    WebNeedsHttps,
    /// Not among `allowed_client_redirect_uris`.
    NotAllowed,
}

impl RegistrationError {
    pub fn description(self) -> &'static str {
        match self {
            Self::Uri(e) => e.description(),
            Self::BadScheme => {
                "redirect_uri must be https, http to a loopback address, or a private-use scheme \
                 of a native app (RFC 8252)"
            }
            Self::SchemeCase => "redirect_uri scheme http/https must be written in lower case",
            Self::WebForm => "https and http redirect URIs must have the form scheme://host/path",
            Self::DangerousScheme => {
                "redirect_uri scheme is handled by the browser or the operating system, not by an \
                 app (javascript:, data:, file:, … are refused)"
            }
            Self::BadPrivateUse => {
                "private-use redirect_uri must be scheme:path without whitespace, fragment or \
                 backslash"
            }
            Self::BadApplicationType => "application_type must be native or web",
            Self::WebNeedsHttps => {
                "application_type web allows only https redirect URIs on a host other than \
                 localhost (use native for loopback and app redirects)"
            }
            Self::NotAllowed => RedirectUriError::NotAllowed.description(),
        }
    }

    /// The OAuth error code (RFC 7591 §3.2.2).
    pub fn code(self) -> &'static str {
        match self {
            Self::BadApplicationType => "invalid_client_metadata",
            _ => "invalid_redirect_uri",
        }
    }
}

/// The scheme of `uri` if it is a syntactically valid one (RFC 3986 §3.1) of at least two
/// characters (a single letter is a Windows drive: `C:\…`).
fn scheme(uri: &str) -> Option<&str> {
    let (scheme, _) = uri.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    (first_ok && rest_ok && scheme.len() >= 2).then_some(scheme)
}

/// Whether `scheme` (any case) may serve as a private-use redirect scheme.
pub fn private_use_allowed(scheme: &str) -> bool {
    let lower = scheme.to_ascii_lowercase();
    !lower.starts_with("ms-")
        && !DENIED_SCHEMES.contains(&lower.as_str())
        && lower != "http"
        && lower != "https"
}

/// The kind of a redirect URI, checked for registration.
pub fn classify(uri: &str) -> Result<RedirectKind, RegistrationError> {
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RegistrationError::Uri(RedirectUriError::BadCharacter));
    }
    if uri.starts_with("https://") || uri.starts_with("http://") {
        let parsed = redirect_uri::parse(uri).map_err(RegistrationError::Uri)?;
        return Ok(if parsed.is_loopback() {
            RedirectKind::Loopback
        } else {
            RedirectKind::Web
        });
    }
    if uri.len() > MAX_REDIRECT_URI_BYTES {
        return Err(RegistrationError::Uri(RedirectUriError::TooLong));
    }
    let scheme = scheme(uri).ok_or(RegistrationError::BadScheme)?;
    if scheme == "http" || scheme == "https" {
        return Err(RegistrationError::WebForm);
    }
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        return Err(RegistrationError::SchemeCase);
    }
    if !private_use_allowed(scheme) {
        return Err(RegistrationError::DangerousScheme);
    }
    let rest = uri.get(scheme.len() + 1..).unwrap_or("");
    let clean = !uri.contains(['#', '\\']);
    if rest.is_empty() || !clean {
        return Err(RegistrationError::BadPrivateUse);
    }
    Ok(RedirectKind::PrivateUse)
}

/// Checks one redirect URI for registration: its kind, what `app` allows of it, and the
/// `allowed_client_redirect_uris` patterns.
pub fn check(
    uri: &str,
    allowed: Option<&[String]>,
    app: Option<ApplicationType>,
) -> Result<RedirectKind, RegistrationError> {
    let kind = classify(uri)?;
    if app == Some(ApplicationType::Web) && kind != RedirectKind::Web {
        return Err(RegistrationError::WebNeedsHttps);
    }
    match allowed {
        Some(patterns)
            if !patterns
                .iter()
                .any(|p| redirect_uri::pattern_matches(p, uri)) =>
        {
            Err(RegistrationError::NotAllowed)
        }
        _ => Ok(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RegistrationError::*;

    #[test]
    fn private_use_schemes_of_real_clients_are_accepted() {
        for uri in [
            "cursor://anysphere.cursor-mcp/oauth/callback",
            "vscode://vscode.mcp/oauth/callback",
            "claude://claude.ai/mcp-auth-callback/sdk",
            "com.example.app:/oauth2redirect",
            "com.example.app:///callback?x=1",
            "x-my+app.v2://cb",
        ] {
            assert_eq!(classify(uri), Ok(RedirectKind::PrivateUse), "{uri}");
        }
        assert_eq!(
            classify("https://claude.ai/api/mcp/auth_callback"),
            Ok(RedirectKind::Web)
        );
        assert_eq!(
            classify("http://localhost:8787/callback"),
            Ok(RedirectKind::Loopback)
        );
        assert_eq!(
            classify("http://[::1]/oauth_callback"),
            Ok(RedirectKind::Loopback)
        );
    }

    #[test]
    fn dangerous_and_malformed_schemes_are_refused() {
        for uri in [
            "javascript:alert(1)",
            "JavaScript://%0aalert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "vbscript:msgbox",
            "blob:https://a.example/x",
            "about:blank",
            "ftp://x/cb",
            "ws://x/cb",
            "wss://x/cb",
            "mailto:a@example.com",
            "ms-msdt:/id",
            "MS-Settings:privacy",
            "search-ms:query=x",
            "intent://x#Intent;end",
            "view-source:https://a.example",
            "chrome-extension://abc/cb",
        ] {
            assert_eq!(classify(uri), Err(DangerousScheme), "{uri}");
        }
        for (uri, err) in [
            ("c:\\windows\\cb", BadScheme),
            ("/relative/cb", BadScheme),
            ("no-scheme", BadScheme),
            ("1app://cb", BadScheme),
            ("my_app://cb", BadScheme),
            ("HTTPS://a.example/cb", SchemeCase),
            ("Http://localhost/cb", SchemeCase),
            ("myapp:", BadPrivateUse),
            ("myapp://cb#frag", BadPrivateUse),
            ("https:evil.example/cb", WebForm),
            ("https:/evil.example/cb", WebForm),
            (
                " https://good.example/cb",
                Uri(RedirectUriError::BadCharacter),
            ),
            ("myapp://c b", Uri(RedirectUriError::BadCharacter)),
            ("myapp://cb\\x", BadPrivateUse),
            ("myapp://cb\u{0}", Uri(RedirectUriError::BadCharacter)),
            (
                "http://evil.example/cb",
                Uri(RedirectUriError::InsecureHttp),
            ),
        ] {
            assert_eq!(classify(uri), Err(err), "{uri}");
        }
        let long = alloc::format!("myapp://{}", "a".repeat(MAX_REDIRECT_URI_BYTES));
        assert_eq!(classify(&long), Err(Uri(RedirectUriError::TooLong)));
    }

    #[test]
    fn application_type_limits_the_kinds() {
        let web = Some(ApplicationType::Web);
        let native = Some(ApplicationType::Native);
        assert_eq!(
            check("https://claude.ai/api/mcp/auth_callback", None, web),
            Ok(RedirectKind::Web)
        );
        for uri in [
            "http://127.0.0.1:33418/",
            "https://localhost/cb",
            "cursor://anysphere.cursor-mcp/oauth/callback",
        ] {
            assert_eq!(check(uri, None, web), Err(WebNeedsHttps), "{uri}");
        }
        for uri in [
            "http://127.0.0.1:33418/",
            "https://vscode.dev/redirect",
            "vscode://vscode.mcp/oauth/callback",
        ] {
            assert!(check(uri, None, native).is_ok(), "{uri}");
            assert!(check(uri, None, None).is_ok(), "{uri}");
        }
        assert_eq!(ApplicationType::parse(Some("web")), Ok(web));
        assert_eq!(ApplicationType::parse(None), Ok(None));
        assert_eq!(
            ApplicationType::parse(Some("browser")),
            Err(BadApplicationType)
        );
        assert_eq!(
            RegistrationError::BadApplicationType.code(),
            "invalid_client_metadata"
        );
    }

    #[test]
    fn allowed_patterns_apply_to_private_use_uris() {
        let allowed = [String::from("cursor://anysphere.cursor-mcp/*")];
        assert_eq!(
            check(
                "cursor://anysphere.cursor-mcp/oauth/callback",
                Some(&allowed),
                None
            ),
            Ok(RedirectKind::PrivateUse)
        );
        assert_eq!(
            check("vscode://vscode.mcp/oauth/callback", Some(&allowed), None),
            Err(NotAllowed)
        );
    }

    #[test]
    fn private_use_uris_match_exactly() {
        let reg = "cursor://anysphere.cursor-mcp/oauth/callback";
        assert!(redirect_uri::matches(reg, reg));
        for other in [
            "cursor://anysphere.cursor-mcp/oauth/callback/",
            "CURSOR://anysphere.cursor-mcp/oauth/callback",
            "cursor://anysphere.cursor-mcp/oauth/callback?x=1",
            "cursor://evil/oauth/callback",
        ] {
            assert!(!redirect_uri::matches(reg, other), "{other}");
        }
    }
}
