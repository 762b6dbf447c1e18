//! Client-side helpers for tests: PKCE pairs and driving the hosted-UI login form.

use sha2::Digest as _;

use crate::jwt::b64url;

/// A PKCE verifier and its S256 challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkcePair {
    pub verifier: String,
    pub challenge: String,
}

/// A fresh random PKCE pair (43-character verifier).
pub fn pkce_pair() -> PkcePair {
    let bytes: [u8; 32] = rand::random();
    let verifier = b64url(&bytes);
    let challenge = b64url(&sha2::Sha256::digest(verifier.as_bytes()));
    PkcePair {
        verifier,
        challenge,
    }
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("{name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(&tag[start..end])
}

/// `(action, hidden fields)` of the first form of an emulator login page.
fn parse_login_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let form_start = html.find("<form")?;
    let form_tag_end = html[form_start..].find('>')? + form_start;
    let action = attr(&html[form_start..form_tag_end], "action")?.to_owned();
    let mut fields = Vec::new();
    let mut rest = &html[form_tag_end..];
    while let Some(i) = rest.find("<input") {
        let end = rest[i..].find('>')? + i;
        let tag = &rest[i..end];
        if attr(tag, "type") == Some("hidden") {
            if let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value")) {
                fields.push((n.to_owned(), html_unescape(v)));
            }
        }
        rest = &rest[end..];
    }
    Some((action, fields))
}

/// Sign in through the hosted UI like a browser would.
///
/// GETs `authorize_url` (an emulator `/oauth2/authorize?...` URL). When the emulator answers with
/// a redirect (an error), that `Location` is returned unchanged. Otherwise the login form is
/// submitted with `username`/`password` and the `Location` of the resulting redirect (the
/// client's `redirect_uri?code=...&state=...`) is returned. `http` must not follow redirects.
pub async fn hosted_ui_login(
    http: &reqwest::Client,
    authorize_url: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<url::Url> {
    let page_url = url::Url::parse(authorize_url)?;
    let resp = http.get(page_url.clone()).send().await?;
    if resp.status().is_redirection() {
        return location(&page_url, &resp);
    }
    anyhow::ensure!(
        resp.status().is_success(),
        "authorize answered {}: {}",
        resp.status(),
        resp.text().await.unwrap_or_default()
    );
    let html = resp.text().await?;
    let (action, mut fields) =
        parse_login_form(&html).ok_or_else(|| anyhow::anyhow!("no login form in page"))?;
    fields.push(("username".into(), username.into()));
    fields.push(("password".into(), password.into()));
    let post_url = page_url.join(&action)?;
    let resp = http.post(post_url.clone()).form(&fields).send().await?;
    if resp.status().is_redirection() {
        return location(&post_url, &resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if body.contains("Incorrect username or password") {
        anyhow::bail!("login rejected: Incorrect username or password.");
    }
    anyhow::bail!("login answered {status} without a redirect: {body}")
}

fn location(base: &url::Url, resp: &reqwest::Response) -> anyhow::Result<url::Url> {
    let loc = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .ok_or_else(|| anyhow::anyhow!("redirect without Location"))?
        .to_str()?;
    Ok(base.join(loc)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_pair_is_consistent() {
        let p = pkce_pair();
        assert_eq!(p.verifier.len(), 43);
        assert_eq!(
            p.challenge,
            b64url(&sha2::Sha256::digest(p.verifier.as_bytes()))
        );
        assert_ne!(pkce_pair().verifier, p.verifier);
    }

    #[test]
    fn parses_hidden_fields() {
        let html = r#"<form method="post" action="/login">
            <input type="hidden" name="state" value="a&amp;b&quot;c">
            <input type="text" name="username">
            <input type="hidden" name="client_id" value="x"></form>"#;
        let (action, fields) = parse_login_form(html).unwrap();
        assert_eq!(action, "/login");
        assert_eq!(
            fields,
            vec![
                ("state".to_string(), "a&b\"c".to_string()),
                ("client_id".to_string(), "x".to_string())
            ]
        );
    }
}
