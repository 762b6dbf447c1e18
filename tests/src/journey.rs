//! An MCP client's OAuth journey through a proxy (Envoy or the Worker), host-agnostic:
//! register, authorize, consent, sign in at the emulator, callback, token, refresh, revoke.
//! The browser part (forms, cookies, redirects) is driven here; MCP calls use `rmcp`.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt as _};
use serde_json::{json, Value};

use crate::cognito::{hosted_ui_login, pkce_pair};

/// The loopback redirect URI the test client registers.
pub const REDIRECT_URI: &str = "http://127.0.0.1:33333/cb";

/// Cookies a browser would keep for the proxy.
#[derive(Debug, Default, Clone)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    /// Remembers the `Set-Cookie`s of a response (an empty value or `Max-Age=0` deletes).
    pub fn take(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            let Some((name, rest)) = v.to_str().ok().and_then(|s| s.split_once('=')) else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or("").to_owned();
            if value.is_empty() || rest.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value);
            }
        }
    }

    /// The `Cookie` header value.
    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_owned(), value.to_owned());
    }
}

/// The `Location` header of a redirect.
pub fn location(resp: &reqwest::Response) -> anyhow::Result<String> {
    Ok(resp
        .headers()
        .get("location")
        .context("no Location header")?
        .to_str()?
        .to_owned())
}

/// The value of a hidden form field on a page.
pub fn form_value(html: &str, name: &str) -> anyhow::Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .with_context(|| format!("no {name} field"))?
        + marker.len();
    let end = html[start..].find('"').context("unterminated value")? + start;
    Ok(html[start..end].to_owned())
}

/// The query parameters of a URL.
pub fn query(url: &str) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(url::Url::parse(url)?.query_pairs().into_owned().collect())
}

/// A token response from the proxy.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
    pub body: Value,
}

impl Tokens {
    fn from(body: Value) -> anyhow::Result<Self> {
        let access = body["access_token"]
            .as_str()
            .ok_or_else(|| anyhow!("no access_token in {body}"))?
            .to_owned();
        let refresh = body["refresh_token"].as_str().map(str::to_owned);
        Ok(Self {
            access,
            refresh,
            body,
        })
    }
}

/// An answer of the proxy's `/token` or `/revoke`.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    /// The JSON body (`Null` when there is none).
    pub body: Value,
    /// How long the proxy took to answer.
    pub took: std::time::Duration,
}

/// What [`Journey::authorization`] went through, for assertions on the way.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// The proxy's authorization code (empty when the redirect carries an error instead), and
    /// the PKCE verifier that goes with it.
    pub code: String,
    pub verifier: String,
    /// The consent page `/authorize` answered.
    pub consent_page: String,
    /// Where approving the consent sent the browser (the IdP's authorization endpoint).
    pub idp_url: String,
    /// Where the IdP sent the browser back (the proxy's callback).
    pub callback: String,
    /// Where the proxy's callback sent the browser (the client's redirect URI), and its query.
    pub redirect: String,
    pub redirect_query: BTreeMap<String, String>,
    /// How long the proxy took to answer the callback (it exchanges the IdP's code there).
    pub callback_took: std::time::Duration,
}

/// A client registered at the proxy, and the browser that signs in for it.
pub struct Journey {
    pub http: reqwest::Client,
    pub base: String,
    pub client_id: String,
    pub jar: Jar,
    /// The `scope` of the authorization request (`openid email` unless set).
    pub scope: String,
}

/// Registers a public client (RFC 7591) with one redirect URI; its `client_id`.
pub async fn register_client(
    http: &reqwest::Client,
    base: &str,
    redirect_uri: &str,
    name: &str,
) -> anyhow::Result<String> {
    let resp = http
        .post(format!("{base}/register"))
        .json(
            &json!({"redirect_uris": [redirect_uri], "client_name": name,
                       "token_endpoint_auth_method": "none"}),
        )
        .send()
        .await?;
    if resp.status() != 201 {
        bail!(
            "register answered {}: {}",
            resp.status(),
            resp.text().await?
        );
    }
    let reg: Value = resp.json().await?;
    Ok(reg["client_id"].as_str().context("client_id")?.to_owned())
}

impl Journey {
    /// Registers a public client with [`REDIRECT_URI`] (RFC 7591).
    pub async fn register(base: &str) -> anyhow::Result<Self> {
        let http = crate::harness::http_client();
        let client_id = register_client(&http, base, REDIRECT_URI, "e2e client").await?;
        Ok(Self {
            http,
            base: base.to_owned(),
            client_id,
            jar: Jar::default(),
            scope: "openid email".to_owned(),
        })
    }

    /// Authorize → consent → sign in at the emulator → callback. Returns the proxy's code and
    /// the PKCE verifier that goes with it.
    pub async fn authorize(
        &mut self,
        user: &str,
        password: &str,
    ) -> anyhow::Result<(String, String)> {
        let a = self.authorization(user, password).await?;
        Ok((a.code, a.verifier))
    }

    /// [`Journey::authorize`], keeping every page and redirect on the way for assertions.
    pub async fn authorization(
        &mut self,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Authorization> {
        let a = self.authorization_answer(user, password).await?;
        if a.code.is_empty() {
            bail!("no code in {}", a.redirect);
        }
        Ok(a)
    }

    /// [`Journey::authorization`] up to the callback's redirect back to the client, whatever it
    /// carries: a code, or an error (then `code` is empty).
    pub async fn authorization_answer(
        &mut self,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Authorization> {
        let pkce = pkce_pair();
        let resource = self.resource();
        let resp = self
            .http
            .get(format!("{}/authorize", self.base))
            .query(&[
                ("response_type", "code"),
                ("client_id", &self.client_id),
                ("redirect_uri", REDIRECT_URI),
                ("code_challenge", &pkce.challenge),
                ("code_challenge_method", "S256"),
                ("state", "client-state"),
                ("scope", &self.scope),
                ("resource", &resource),
            ])
            .send()
            .await?;
        if resp.status() != 200 {
            bail!("authorize answered {}", resp.status());
        }
        self.jar.take(&resp);
        let consent_page = resp.text().await?;
        let resp = self
            .http
            .post(format!("{}/consent", self.base))
            .header("cookie", self.jar.header())
            .form(&[
                ("txn", form_value(&consent_page, "txn")?),
                ("csrf", form_value(&consent_page, "csrf")?),
                ("action", "approve".into()),
            ])
            .send()
            .await?;
        if resp.status() != 302 {
            bail!("consent answered {}", resp.status());
        }
        self.jar.take(&resp);
        let idp_url = location(&resp)?;
        let callback = hosted_ui_login(&self.http, &idp_url, user, password)
            .await?
            .to_string();
        let t0 = std::time::Instant::now();
        let resp = self
            .http
            .get(&callback)
            .header("cookie", self.jar.header())
            .send()
            .await?;
        let callback_took = t0.elapsed();
        self.jar.take(&resp);
        if resp.status() != 302 {
            bail!(
                "callback answered {}: {}",
                resp.status(),
                resp.text().await?
            );
        }
        let redirect = location(&resp)?;
        let redirect_query = query(&redirect)?;
        if !redirect.starts_with(REDIRECT_URI)
            || redirect_query.get("state").map(String::as_str) != Some("client-state")
        {
            bail!("unexpected redirect {redirect}");
        }
        let code = redirect_query.get("code").cloned().unwrap_or_default();
        Ok(Authorization {
            code,
            verifier: pkce.verifier,
            consent_page,
            idp_url,
            callback,
            redirect,
            redirect_query,
            callback_took,
        })
    }

    /// The protected resource the client asks for (`{base}/mcp`, RFC 8707).
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.base)
    }

    /// POSTs a form to `path` (`/token`, `/revoke`).
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<Answer> {
        let t0 = std::time::Instant::now();
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.json().await.unwrap_or(Value::Null);
        Ok(Answer {
            status,
            retry_after,
            body,
            took: t0.elapsed(),
        })
    }

    /// POSTs a form to `/token`; the status and the JSON answer.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> anyhow::Result<(u16, Value)> {
        let a = self.post_form("/token", form).await?;
        Ok((a.status, a.body))
    }

    /// The `authorization_code` grant for `code` (with `resource`, as MCP clients send it);
    /// the status and the answer.
    pub async fn exchange(&self, code: &str, verifier: &str) -> anyhow::Result<(u16, Value)> {
        let resource = self.resource();
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", &self.client_id),
            ("code_verifier", verifier),
            ("resource", &resource),
        ])
        .await
    }

    /// Redeems a code for tokens.
    pub async fn redeem(&self, code: &str, verifier: &str) -> anyhow::Result<Tokens> {
        let (status, body) = self.exchange(code, verifier).await?;
        if status != 200 {
            bail!("token answered {status}: {body}");
        }
        Tokens::from(body)
    }

    /// The whole sign-in: authorize, then redeem.
    pub async fn login(&mut self, user: &str, password: &str) -> anyhow::Result<Tokens> {
        let (code, verifier) = self.authorize(user, password).await?;
        self.redeem(&code, &verifier).await
    }

    /// A refresh; the status and the answer.
    pub async fn refresh(&self, refresh_token: &str) -> anyhow::Result<(u16, Value)> {
        let a = self.refresh_answer(refresh_token).await?;
        Ok((a.status, a.body))
    }

    /// A refresh, the whole answer.
    pub async fn refresh_answer(&self, refresh_token: &str) -> anyhow::Result<Answer> {
        self.post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", &self.client_id),
            ],
        )
        .await
    }

    /// RFC 7009 revocation; the status.
    pub async fn revoke(&self, token: &str) -> anyhow::Result<u16> {
        Ok(self.revoke_answer(token).await?.status)
    }

    /// RFC 7009 revocation, the whole answer.
    pub async fn revoke_answer(&self, token: &str) -> anyhow::Result<Answer> {
        self.post_form(
            "/revoke",
            &[("token", token), ("client_id", &self.client_id)],
        )
        .await
    }
}

/// An rmcp client connected to `mcp_url` with a bearer token.
pub async fn mcp_client(
    mcp_url: &str,
    token: &str,
) -> anyhow::Result<RunningService<RoleClient, ClientConfig>> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(mcp_url.to_owned());
    config.auth_header = Some(token.to_owned());
    Ok(ClientConfig::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await?)
}

/// `tools/call whoami` with the rmcp client: the demo server's structured answer (what it saw
/// of the request).
pub async fn whoami(mcp_url: &str, token: &str) -> anyhow::Result<Value> {
    let client = mcp_client(mcp_url, token).await?;
    let r = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await?;
    client.cancel().await?;
    r.structured_content
        .context("whoami: no structured content")
}
