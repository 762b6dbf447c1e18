//! What a case must get: the refusal in its protocol's own format, and the comparison of an
//! answer with it.

use super::*;

/// The refusal a case must get.
#[derive(Clone, Debug)]
pub enum Expect {
    /// An OAuth error body (RFC 6749 §5.2): status, `error`, and a substring of
    /// `error_description` when given.
    OAuth {
        status: u16,
        error: &'static str,
        desc: Option<&'static str>,
    },
    /// A Bearer challenge (RFC 6750 §3): status, the `error` attribute of `WWW-Authenticate`
    /// (`None`: the no-token challenge, which must carry no `error`), a substring of
    /// `error_description`; `resource_metadata` always present.
    Bearer {
        status: u16,
        error: Option<&'static str>,
        desc: Option<&'static str>,
    },
    /// The HTML error page for errors that must not redirect: status, the error code shown,
    /// a substring of the text, and no `Location`.
    Page {
        status: u16,
        error: &'static str,
        desc: Option<&'static str>,
    },
    /// 302 back to the client's redirect URI with `error`, the client's `state` and RFC 9207
    /// `iss` = the proxy's base URL.
    Redirect { error: &'static str },
    /// The proxy's HTML error page (400, no `Location`, no cookie set) showing `error`, with
    /// a link back to the client's redirect URI carrying `error`, exactly this `state`
    /// (encoded in the query, never breaking out of the link) and RFC 9207 `iss`: errors for
    /// a client the user has not approved never redirect by themselves (no open redirector).
    LinkBack { error: &'static str, state: String },
    /// A bare status answered by the host itself (Envoy's own limits), never a 5xx.
    Status(u16),
    /// Forwarded to the demo MCP server's `whoami` (200): each header as the server saw it
    /// (`None`: it must not arrive), and no `Authorization`.
    Upstream(Vec<(&'static str, Option<String>)>),
    /// Any one of these (answers that legitimately differ between hosts).
    OneOf(Vec<Expect>),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OAuth {
                status,
                error,
                desc,
            } => write!(f, "{status} OAuth error {error}{}", opt_desc(desc)),
            Self::Bearer {
                status,
                error: Some(e),
                desc,
            } => write!(f, "{status} Bearer error=\"{e}\"{}", opt_desc(desc)),
            Self::Bearer { status, .. } => write!(f, "{status} Bearer challenge without error"),
            Self::Page {
                status,
                error,
                desc,
            } => write!(
                f,
                "{status} error page {error}{} (no Location)",
                opt_desc(desc)
            ),
            Self::Redirect { error } => {
                write!(f, "302 to {REDIRECT_URI} with error={error}, state, iss")
            }
            Self::LinkBack { error, state } => write!(
                f,
                "400 error page {error} linking to {REDIRECT_URI} with error={error}, state={state:?}, iss (no Location, no Set-Cookie)"
            ),
            Self::Status(s) => write!(f, "{s} from the host"),
            Self::Upstream(h) => write!(f, "200 from whoami with {h:?}, no Authorization"),
            Self::OneOf(v) => {
                let parts: Vec<String> = v.iter().map(ToString::to_string).collect();
                write!(f, "one of [{}]", parts.join(" | "))
            }
        }
    }
}

pub(crate) fn opt_desc(desc: &Option<&'static str>) -> String {
    desc.map(|d| format!(" ({d:?})")).unwrap_or_default()
}

pub(crate) fn oauth(status: u16, error: &'static str) -> Expect {
    Expect::OAuth {
        status,
        error,
        desc: None,
    }
}
pub(crate) fn oauth_d(status: u16, error: &'static str, desc: &'static str) -> Expect {
    Expect::OAuth {
        status,
        error,
        desc: Some(desc),
    }
}
/// 401 `invalid_token` with this description.
pub(crate) fn invalid_token(desc: &'static str) -> Expect {
    Expect::Bearer {
        status: 401,
        error: Some("invalid_token"),
        desc: Some(desc),
    }
}
pub(crate) fn invalid_token_any() -> Expect {
    Expect::Bearer {
        status: 401,
        error: Some("invalid_token"),
        desc: None,
    }
}
pub(crate) fn no_token() -> Expect {
    Expect::Bearer {
        status: 401,
        error: None,
        desc: None,
    }
}
pub(crate) fn page(status: u16, error: &'static str) -> Expect {
    Expect::Page {
        status,
        error,
        desc: None,
    }
}
pub(crate) fn page_d(status: u16, error: &'static str, desc: &'static str) -> Expect {
    Expect::Page {
        status,
        error,
        desc: Some(desc),
    }
}
pub(crate) fn redirect(error: &'static str) -> Expect {
    Expect::Redirect { error }
}
/// [`Expect::LinkBack`] with the standard `client-state`.
pub(crate) fn link_back(error: &'static str) -> Expect {
    Expect::LinkBack {
        error,
        state: "client-state".to_owned(),
    }
}

/// The first `href` of an HTML page, with HTML escapes undone.
pub(crate) fn first_href(html: &str) -> Option<String> {
    // The page's first link (`<a href>`), not the head's icon link.
    let anchor = html.find("<a ")?;
    let start = anchor + html.get(anchor..)?.find("href=\"")? + 6;
    let end = start + html.get(start..)?.find('"')?;
    Some(
        html.get(start..end)?
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Why `answer` does not meet `expect` (`None`: it does).
pub fn mismatch(expect: &Expect, answer: &Answer, base_url: &str) -> Option<String> {
    let body = answer.json();
    let field = |k: &str| {
        body.as_ref()
            .and_then(|b| b.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let status = |want: u16| (answer.status != want).then(|| format!("status {}", answer.status));
    match expect {
        Expect::OAuth {
            status: want,
            error,
            desc,
        } => status(*want)
            .or_else(|| {
                (field("error").as_deref() != Some(error))
                    .then(|| format!("error {:?}", field("error")))
            })
            .or_else(|| {
                let d = field("error_description").unwrap_or_default();
                desc.filter(|x| !d.contains(x))
                    .map(|_| format!("error_description {d:?}"))
            }),
        Expect::Bearer {
            status: want,
            error,
            desc,
        } => status(*want).or_else(|| {
            let Some(www) = answer.header("www-authenticate") else {
                return Some("no WWW-Authenticate".into());
            };
            if !www.starts_with("Bearer ") || !www.contains("resource_metadata=\"") {
                return Some(format!("WWW-Authenticate {www:?}"));
            }
            match error {
                Some(e) if !www.contains(&format!("error=\"{e}\"")) => {
                    Some(format!("WWW-Authenticate {www:?}"))
                }
                None if www.contains("error=") => Some(format!("WWW-Authenticate {www:?}")),
                _ => desc
                    .filter(|d| !www.contains(&format!("error_description=\"{d}")))
                    .map(|_| format!("WWW-Authenticate {www:?}")),
            }
        }),
        Expect::Page {
            status: want,
            error,
            desc,
        } => status(*want)
            .or_else(|| {
                answer
                    .header("location")
                    .map(|l| format!("redirects to {l}"))
            })
            .or_else(|| {
                let ct = answer.header("content-type").unwrap_or("");
                (!ct.starts_with("text/html")).then(|| format!("content-type {ct:?}"))
            })
            .or_else(|| {
                let text = answer.text();
                let shown = text.contains(&format!("<code>{error}</code>"));
                let described = desc.is_none_or(|d| text.contains(d));
                (!(shown && described)).then(|| "page does not show the expected error".into())
            }),
        Expect::Redirect { error } => status(302).or_else(|| {
            let Some(loc) = answer.header("location") else {
                return Some("no Location".into());
            };
            if !loc.starts_with(REDIRECT_URI) {
                return Some(format!("Location {loc}"));
            }
            let q = query(loc).unwrap_or_default();
            let ok = q.get("error").map(String::as_str) == Some(error)
                && q.get("state").map(String::as_str) == Some("client-state")
                && q.get("iss").map(String::as_str) == Some(base_url)
                && !q.contains_key("code");
            (!ok).then(|| format!("Location {loc}"))
        }),
        Expect::LinkBack { error, state } => status(400)
            .or_else(|| {
                answer
                    .header("location")
                    .map(|l| format!("redirects to {l}"))
            })
            .or_else(|| {
                answer
                    .header("set-cookie")
                    .map(|c| format!("sets a cookie: {c}"))
            })
            .or_else(|| {
                let ct = answer.header("content-type").unwrap_or("");
                (!ct.starts_with("text/html")).then(|| format!("content-type {ct:?}"))
            })
            .or_else(|| {
                let text = answer.text();
                if !text.contains(&format!("<code>{error}</code>")) {
                    return Some("page does not show the expected error".into());
                }
                let Some(href) = first_href(&text) else {
                    return Some("no link back".into());
                };
                let q = query(&href).unwrap_or_default();
                let ok = href.starts_with(REDIRECT_URI)
                    && q.get("error").map(String::as_str) == Some(error)
                    && q.get("state") == Some(state)
                    && q.get("iss").map(String::as_str) == Some(base_url)
                    && !q.contains_key("code");
                (!ok).then(|| format!("link {href:?}"))
            }),
        Expect::Status(want) => status(*want),
        Expect::Upstream(want) => status(200).or_else(|| {
            let Some(out) = body
                .as_ref()
                .map(|b| &b["result"]["structuredContent"])
                .filter(|o| o.is_object())
            else {
                return Some("no whoami result".into());
            };
            if out["authorization_present"] != json!(false) {
                return Some("Authorization reached the MCP server".into());
            }
            want.iter().find_map(|(name, value)| {
                let got = out["headers"].get(*name).and_then(Value::as_str);
                (got != value.as_deref()).then(|| format!("{name} arrived as {got:?}"))
            })
        }),
        Expect::OneOf(all) => {
            let why: Vec<String> = all
                .iter()
                .filter_map(|e| mismatch(e, answer, base_url))
                .collect();
            (why.len() == all.len()).then(|| why.join("; "))
        }
    }
}
