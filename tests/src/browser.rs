//! A person signing in through the proxy in a real browser: headless Chromium (Debian's
//! `chromium`, driven over WebDriver by `chromedriver` and `fantoccini`) on the consent page,
//! the emulator's sign-in page and the client's loopback redirect URI, where a tiny app of the
//! test receives the answer. Real browsers enforce what a scripted client does not: the pages'
//! Content-Security-Policy (on the redirects after a form post too), cookies per host and
//! SameSite, history (Back, reload).
//!
//! The scenarios are host-generic ([`Host`]); [`browser_scenario_tests!`](crate::browser_scenario_tests)
//! makes one `#[tokio::test]` per scenario for a host. Every scenario asserts that the browser
//! console shows no error and no CSP violation ([`Browser::assert_console_clean`]), and the first
//! one checks that a deliberate violation is reported, so the check is real. Screenshots go to
//! `target/screenshots/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::cognito::pkce_pair;
use crate::harness::{free_port, http_client, target_dir, unique_name, wait_until, ChildProcess};
use crate::journey::whoami;
use crate::scenarios::{Host, HostOptions, DEADLINE};

/// Debian's Chromium and its matching WebDriver (installed by `scripts/ensure-chromium.sh`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The user of the emulator who signs in.
const USER: (&str, &str) = ("alice", "alice-password");
/// The client's name, as it registers.
const CLIENT_NAME: &str = "Browser Test Client";
/// Desktop and phone viewports of the screenshots.
const DESKTOP: (u32, u32) = (900, 1000);
const PHONE: (u32, u32) = (375, 812);

fn require(path: &str) -> anyhow::Result<()> {
    if Path::new(path).is_file() {
        Ok(())
    } else {
        bail!(
            "{path} not found: the browser tests need Debian's chromium and chromium-driver; \
             run scripts/ensure-chromium.sh"
        )
    }
}

/// One console message of the browser (`goog:loggingPrefs` browser log).
#[derive(Debug, Clone, Deserialize)]
pub struct ConsoleEntry {
    pub level: String,
    pub message: String,
    #[serde(default)]
    pub source: String,
}

impl ConsoleEntry {
    /// An error or a warning, or anything about the Content Security Policy.
    pub fn is_problem(&self) -> bool {
        self.level == "SEVERE"
            || self.level == "WARNING"
            || self.message.contains("Content Security Policy")
            || self.source == "security"
    }
}

/// chromedriver's browser log (`POST /session/{id}/se/log`): the entries since the last read.
#[derive(Debug)]
struct ReadBrowserLog;

impl WebDriverCompatibleCommand for ReadBrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// Headless Chromium with a fresh profile under `target/browser-profiles/`, driven by its own
/// chromedriver on a free port. Dropping it stops both (the chromedriver process group).
pub struct Browser {
    pub client: Client,
    driver: ChildProcess,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a browser session; a clear error when the binaries are missing.
    pub async fn start() -> anyhow::Result<Self> {
        require(CHROMIUM)?;
        require(CHROMEDRIVER)?;
        let mut attempt = 1;
        loop {
            match Self::start_driver().await {
                Ok((driver, url)) => return Self::session(driver, &url).await,
                // The port chosen free was taken before chromedriver bound it.
                Err(e) if attempt < 3 => {
                    eprintln!("chromedriver did not start ({e}); another port");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn start_driver() -> anyhow::Result<(ChildProcess, String)> {
        let port = free_port()?;
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"));
        let mut driver = ChildProcess::spawn("chromedriver", cmd)?;
        let url = format!("http://127.0.0.1:{port}/");
        let client = http_client();
        let ready = wait_until(DEADLINE, "chromedriver to be ready", || {
            let exited = driver.try_exit_status();
            let client = client.clone();
            let url = format!("{url}status");
            async move {
                if let Some(status) = exited {
                    return Some(Err(status));
                }
                let v: Value = client.get(&url).send().await.ok()?.json().await.ok()?;
                (v["value"]["ready"] == json!(true)).then_some(Ok(()))
            }
        })
        .await;
        match ready {
            Ok(Ok(())) => Ok((driver, url)),
            Ok(Err(status)) => bail!("chromedriver exited with {status}: {}", driver.log_tail(20)),
            Err(e) => bail!("{e}: {}", driver.log_tail(20)),
        }
    }

    async fn session(driver: ChildProcess, url: &str) -> anyhow::Result<Self> {
        let profile = target_dir()
            .join("browser-profiles")
            .join(unique_name("chromium"));
        std::fs::create_dir_all(&profile)?;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--lang=en-US",
            &format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": args,
                // No password-manager bubbles or leak checks over the pages.
                "prefs": {
                    "credentials_enable_service": false,
                    "profile.password_manager_enabled": false,
                    "profile.password_manager_leak_detection": false,
                },
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let caps = caps.as_object().cloned().unwrap_or_default();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(url)
            .await
            .with_context(|| format!("WebDriver session: {}", driver.log_tail(20)))?;
        Ok(Self {
            client,
            driver,
            profile,
        })
    }

    /// Ends the session (the browser quits), then chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.driver.kill();
    }

    /// The console messages since the last read.
    pub async fn console(&self) -> anyhow::Result<Vec<ConsoleEntry>> {
        let v = self.client.issue_cmd(ReadBrowserLog).await?;
        Ok(serde_json::from_value(v)?)
    }

    /// Panics, listing them, if the console shows errors, warnings or CSP reports since the
    /// last read.
    pub async fn assert_console_clean(&self, when: &str) {
        self.assert_console_clean_but(when, None).await;
    }

    /// [`Browser::assert_console_clean`], except for the one report Chromium makes of an
    /// error page itself: `{url} - Failed to load resource: … status of {status}`.
    pub async fn assert_console_clean_but(&self, when: &str, error_page: Option<(&str, u16)>) {
        let expected = error_page.map(|(url, status)| {
            format!(
                "{url} - Failed to load resource: the server responded with a status of {status}"
            )
        });
        let problems: Vec<ConsoleEntry> = self
            .console()
            .await
            .unwrap()
            .into_iter()
            .filter(ConsoleEntry::is_problem)
            .filter(|e| {
                !(e.source == "network"
                    && expected
                        .as_deref()
                        .is_some_and(|x| e.message.starts_with(x)))
            })
            .collect();
        assert!(problems.is_empty(), "console {when}: {problems:#?}");
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Waits until the page's URL starts with `prefix` and its text contains `text`.
    pub async fn wait_for_page(&self, prefix: &str, text: &str) -> anyhow::Result<String> {
        let found = wait_until(
            DEADLINE,
            &format!("a page at {prefix} showing {text:?}"),
            || async {
                let url = self.url().await;
                let body = self.text().await;
                (url.starts_with(prefix) && body.contains(text)).then_some(body)
            },
        )
        .await;
        match found {
            Ok(body) => Ok(body),
            Err(e) => bail!(
                "{e}; at {} showing:\n{}\nconsole: {:#?}",
                self.url().await,
                self.text().await,
                self.console().await.unwrap_or_default()
            ),
        }
    }

    /// Clicks the element matched by `css`.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("no {css}"))?
            .click()
            .await?;
        Ok(())
    }

    /// Types `text` into the element matched by `css`.
    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("no {css}"))?
            .send_keys(text)
            .await?;
        Ok(())
    }

    /// Saves a PNG of the viewport as `target/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = target_dir().join("screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(path)
    }

    /// Saves a PNG of the element matched by `css` as `target/screenshots/{name}.png`.
    pub async fn screenshot_of(&self, css: &str, name: &str) -> anyhow::Result<PathBuf> {
        let dir = target_dir().join("screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        let element = self.client.find(Locator::Css(css)).await?;
        std::fs::write(&path, element.screenshot().await?)?;
        Ok(path)
    }

    /// Resizes the window (headless: the viewport) and waits until the page sees the width.
    pub async fn resize(&self, (width, height): (u32, u32)) -> anyhow::Result<()> {
        self.client.set_window_size(width, height).await?;
        wait_until(DEADLINE, "the new viewport width", || async {
            let w = self
                .client
                .execute("return window.innerWidth", vec![])
                .await
                .ok()?;
            (w == json!(width)).then_some(())
        })
        .await
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.driver.kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The client's loopback redirect URI: a tiny web app of the test on a free port that records
/// every query it receives and shows a page, so the browser really lands somewhere.
pub struct LoopbackApp {
    pub redirect_uri: String,
    received: mpsc::UnboundedReceiver<BTreeMap<String, String>>,
    task: tokio::task::JoinHandle<()>,
}

/// What the loopback app shows once it has the answer.
pub const APP_PAGE_TEXT: &str = "The test client received the answer.";

impl LoopbackApp {
    pub async fn start() -> anyhow::Result<Self> {
        use axum::extract::RawQuery;
        use axum::response::Html;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let redirect_uri = format!("http://{}/cb", listener.local_addr()?);
        let (tx, received) = mpsc::unbounded_channel();
        let router = axum::Router::new().route(
            "/cb",
            axum::routing::get(move |RawQuery(q): RawQuery| {
                let q: BTreeMap<String, String> =
                    url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                        .into_owned()
                        .collect();
                let _ = tx.send(q);
                async {
                    Html(format!(
                        "<!doctype html><html lang=\"en\"><head><title>Test client</title>\
                         <link rel=\"icon\" href=\"data:,\"></head><body><p>{APP_PAGE_TEXT}</p>\
                         </body></html>"
                    ))
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            redirect_uri,
            received,
            task,
        })
    }

    /// The query of the next request the browser made to the redirect URI.
    pub async fn answer(&mut self) -> anyhow::Result<BTreeMap<String, String>> {
        tokio::time::timeout(DEADLINE, self.received.recv())
            .await
            .context("timed out waiting for the browser at the redirect URI")?
            .context("the loopback app stopped")
    }

    /// Nothing more arrived at the redirect URI so far.
    pub fn nothing_more(&mut self) -> bool {
        self.received.try_recv().is_err()
    }
}

impl Drop for LoopbackApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client registered at the proxy (RFC 7591) with the loopback app's redirect URI.
pub async fn register(h: &impl Host, redirect_uri: &str) -> anyhow::Result<String> {
    let resp = http_client()
        .post(format!("{}/register", h.base_url()))
        .json(
            &json!({"redirect_uris": [redirect_uri], "client_name": CLIENT_NAME,
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

/// One authorization as the client starts it: its URL, `state` and PKCE verifier.
pub struct Request {
    pub url: String,
    pub state: String,
    pub verifier: String,
}

/// `/authorize?…` with PKCE S256, `state`, `scope` and `resource`, as an MCP client builds it.
pub fn authorization(h: &impl Host, client_id: &str, redirect_uri: &str) -> Request {
    let pkce = pkce_pair();
    let state = unique_name("state");
    let mcp = h.mcp_url();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", &state),
            ("scope", "openid email"),
            ("resource", &mcp),
        ])
        .finish();
    Request {
        url: format!("{}/authorize?{query}", h.base_url()),
        state,
        verifier: pkce.verifier,
    }
}

/// A browser, a loopback app and a registered client, for one scenario on host `h`.
pub struct Session<'h, H: Host> {
    pub h: &'h H,
    pub browser: Browser,
    pub app: LoopbackApp,
    pub client_id: String,
    /// Screenshot names start with it (`envoy`, `worker`).
    pub label: String,
}

/// The consent page's heading for [`CLIENT_NAME`].
fn consent_heading() -> String {
    format!("Allow {CLIENT_NAME} to use your account?")
}

impl<'h, H: Host> Session<'h, H> {
    pub async fn start(h: &'h H, label: &str) -> Self {
        let browser = Browser::start().await.unwrap();
        let app = LoopbackApp::start().await.unwrap();
        let client_id = register(h, &app.redirect_uri).await.unwrap();
        Self {
            h,
            browser,
            app,
            client_id,
            label: label.to_owned(),
        }
    }

    pub fn authorization(&self) -> Request {
        authorization(self.h, &self.client_id, &self.app.redirect_uri)
    }

    /// Opens `url` and waits for the consent page; its visible text.
    pub async fn open_consent(&self, url: &str) -> String {
        self.browser.client.goto(url).await.unwrap();
        self.expect_consent().await
    }

    /// The browser shows the consent page (the proxy's `/authorize` or a link to it).
    pub async fn expect_consent(&self) -> String {
        self.browser
            .wait_for_page(&format!("{}/", self.h.base_url()), &consent_heading())
            .await
            .unwrap()
    }

    /// The browser shows the emulator's sign-in page.
    pub async fn expect_sign_in(&self) {
        self.browser
            .wait_for_page(
                &format!("{}/", self.h.idp().base_url()),
                "Sign in with your username and password",
            )
            .await
            .unwrap();
    }

    /// Types the user's name and password on the emulator's page and submits.
    pub async fn sign_in(&self) {
        self.expect_sign_in().await;
        let b = &self.browser;
        b.type_into("input[name=username]", USER.0).await.unwrap();
        b.type_into("input[name=password]", USER.1).await.unwrap();
        b.click("input[name=signInSubmitButton]").await.unwrap();
    }

    /// The browser landed on the loopback app: the query it brought.
    pub async fn landed(&mut self) -> BTreeMap<String, String> {
        let q = self.app.answer().await.unwrap();
        self.browser
            .wait_for_page(&self.app.redirect_uri, APP_PAGE_TEXT)
            .await
            .unwrap();
        q
    }

    /// Checks the redirect carries a code, the request's `state` and the proxy's `iss`; the
    /// client exchanges the code and calls `whoami` with rmcp: the user is alice.
    pub async fn client_finishes(&self, q: &BTreeMap<String, String>, req: &Request) {
        assert_eq!(q.get("state"), Some(&req.state), "{q:?}");
        assert_eq!(
            q.get("iss").map(String::as_str),
            Some(self.h.base_url()),
            "{q:?}"
        );
        let code = q.get("code").unwrap_or_else(|| panic!("no code in {q:?}"));
        let mcp = self.h.mcp_url();
        let resp = http_client()
            .post(format!("{}/token", self.h.base_url()))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.app.redirect_uri),
                ("client_id", &self.client_id),
                ("code_verifier", &req.verifier),
                ("resource", &mcp),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "token exchange");
        let tokens: Value = resp.json().await.unwrap();
        let access = tokens["access_token"].as_str().unwrap();
        let out = whoami(&mcp, access).await.unwrap();
        assert_eq!(out["headers"]["x-mcpgate-username"], json!(USER.0), "{out}");
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        self.browser
            .screenshot(&format!("{}-{name}", self.label))
            .await
            .unwrap()
    }

    pub async fn close(self) {
        self.browser.close().await;
    }
}

/// The consent page shows who asks, what it gets and where the browser goes.
fn assert_consent_text(text: &str, h: &impl Host, redirect_uri: &str) {
    let host = redirect_uri
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    for shown in [
        CLIENT_NAME,
        &h.mcp_url(),
        "openid",
        "email",
        host,
        "localhost address",
        "Approve",
        "Deny",
    ] {
        assert!(
            text.contains(shown),
            "consent page lacks {shown:?}:\n{text}"
        );
    }
}

/// Options with `consent: remember`.
pub fn remember_options<O: HostOptions>() -> O {
    O::default().config("consent", json!("remember"))
}

/// Approve → sign in → the client gets a code and calls a tool. Screenshots of the consent page
/// at desktop and phone width; the page fits a 375 px screen. The console check is shown to
/// catch a CSP violation first.
pub async fn approve_sign_in_and_call_a_tool<H: Host>(h: &H, label: &str) {
    let mut s = Session::start(h, label).await;

    // The console check is real: an image the page's CSP forbids is reported.
    s.open_consent(&s.authorization().url).await;
    s.browser.assert_console_clean("on the consent page").await;
    s.browser
        .client
        .execute(
            "const i = document.createElement('img'); i.src = '/blocked.png'; \
             document.body.append(i);",
            vec![],
        )
        .await
        .unwrap();
    let reported = wait_until(DEADLINE, "the CSP violation in the console", || async {
        let entries = s.browser.console().await.ok()?;
        entries
            .into_iter()
            .find(|e| e.is_problem() && e.message.contains("Content Security Policy"))
    })
    .await
    .unwrap();
    assert!(reported.message.contains("blocked.png"), "{reported:?}");

    let req = s.authorization();
    let text = s.open_consent(&req.url).await;
    assert_consent_text(&text, h, &s.app.redirect_uri);
    assert_eq!(
        s.browser.client.title().await.unwrap(),
        format!("Allow {CLIENT_NAME}?")
    );
    s.screenshot("consent").await;
    // The card alone: what the README shows (docs/consent-page.png).
    s.browser
        .screenshot_of("main", &format!("{label}-consent-card"))
        .await
        .unwrap();
    s.browser.resize(PHONE).await.unwrap();
    let fits = s
        .browser
        .client
        .execute(
            "const r = document.querySelector('button[value=approve]').getBoundingClientRect(); \
             return [document.documentElement.scrollWidth, window.innerWidth, r.right];",
            vec![],
        )
        .await
        .unwrap();
    let fits: Vec<f64> = serde_json::from_value(fits).unwrap();
    assert!(
        fits[0] <= fits[1] && fits[2] <= fits[1],
        "at 375 px: page width {}, viewport {}, Approve ends at {}",
        fits[0],
        fits[1],
        fits[2]
    );
    s.screenshot("consent-phone").await;
    s.browser.resize(DESKTOP).await.unwrap();

    s.browser.click("button[value=approve]").await.unwrap();
    s.sign_in().await;
    let q = s.landed().await;
    s.browser
        .assert_console_clean("from consent to the client")
        .await;
    s.client_finishes(&q, &req).await;
    s.close().await;
}

/// Deny → the client's redirect URI gets `access_denied` with its `state` and `iss`.
pub async fn deny_sends_access_denied<H: Host>(h: &H, label: &str) {
    let mut s = Session::start(h, label).await;
    let req = s.authorization();
    s.open_consent(&req.url).await;
    s.browser.click("button[value=deny]").await.unwrap();
    let q = s.landed().await;
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("access_denied"),
        "{q:?}"
    );
    assert_eq!(q.get("state"), Some(&req.state), "{q:?}");
    assert_eq!(
        q.get("iss").map(String::as_str),
        Some(h.base_url()),
        "{q:?}"
    );
    assert!(!q.contains_key("code"), "{q:?}");
    s.browser.assert_console_clean("after Deny").await;
    s.close().await;
}

/// With `consent: remember`, the second authorization of the same client in the same browser
/// goes straight to the sign-in page. Needs [`remember_options`].
pub async fn remembered_consent_shows_no_page<H: Host>(h: &H, label: &str) {
    let mut s = Session::start(h, label).await;
    let req = s.authorization();
    s.open_consent(&req.url).await;
    s.browser.click("button[value=approve]").await.unwrap();
    s.sign_in().await;
    let q = s.landed().await;
    s.client_finishes(&q, &req).await;

    let req = s.authorization();
    s.browser.client.goto(&req.url).await.unwrap();
    s.expect_sign_in().await;
    assert!(
        !s.browser.text().await.contains(&consent_heading()),
        "no consent page the second time"
    );
    s.sign_in().await;
    let q = s.landed().await;
    s.client_finishes(&q, &req).await;
    s.browser
        .assert_console_clean("with a remembered approval")
        .await;
    s.close().await;
}

/// Reload on the consent page shows it again and it still works; Back from the sign-in page
/// returns to a consent page that works too.
pub async fn back_and_reload_keep_a_way_forward<H: Host>(h: &H, label: &str) {
    let mut s = Session::start(h, label).await;
    let req = s.authorization();
    s.open_consent(&req.url).await;
    s.browser.client.refresh().await.unwrap();
    let text = s.expect_consent().await;
    assert_consent_text(&text, h, &s.app.redirect_uri);
    s.browser.click("button[value=approve]").await.unwrap();
    s.expect_sign_in().await;

    s.browser.client.back().await.unwrap();
    s.expect_consent().await;
    s.browser.click("button[value=approve]").await.unwrap();
    s.sign_in().await;
    let q = s.landed().await;
    s.client_finishes(&q, &req).await;
    assert!(s.app.nothing_more(), "one answer for one authorization");
    s.browser
        .assert_console_clean("after reload and Back")
        .await;
    s.close().await;
}

/// A consent page left open while another one was opened in the same browser (another tab)
/// is out of date: approving it shows an error page that explains and links to the same
/// request again, which then completes. Screenshot of that error page.
pub async fn out_of_date_form_offers_the_request_again<H: Host>(h: &H, label: &str) {
    let mut s = Session::start(h, label).await;
    let req = s.authorization();
    s.open_consent(&req.url).await;
    let first = s.browser.client.window().await.unwrap();
    let tab = s.browser.client.new_window(true).await.unwrap();
    s.browser.client.switch_to_window(tab.handle).await.unwrap();
    s.open_consent(&s.authorization().url).await;
    s.browser.client.switch_to_window(first).await.unwrap();

    s.browser.click("button[value=approve]").await.unwrap();
    let text = s
        .browser
        .wait_for_page(
            &format!("{}/", h.base_url()),
            "This sign-in cannot continue",
        )
        .await
        .unwrap();
    for shown in [
        "out of date",
        "Nothing was approved",
        "Show the request again",
    ] {
        assert!(text.contains(shown), "error page lacks {shown:?}:\n{text}");
    }
    s.screenshot("error").await;
    let consent = format!("{}/consent", h.base_url());
    s.browser
        .assert_console_clean_but("on the error page", Some((&consent, 403)))
        .await;

    s.browser.click("a.button").await.unwrap();
    s.expect_consent().await;
    s.browser.click("button[value=approve]").await.unwrap();
    s.sign_in().await;
    let q = s.landed().await;
    s.client_finishes(&q, &req).await;
    s.browser
        .assert_console_clean("after showing the request again")
        .await;
    s.close().await;
}

/// One `#[tokio::test]` per browser scenario for the host type `$host`, each on a stack and a
/// browser of its own; `$label` names the screenshots (`target/screenshots/{label}-*.png`).
#[macro_export]
macro_rules! browser_scenario_tests {
    ($host:ty, $label:literal) => {
        $crate::browser_scenario_tests!(@each $host, $label;
            a_person_approves_signs_in_and_the_client_calls_a_tool:
                approve_sign_in_and_call_a_tool, Default::default();
            deny_sends_the_client_access_denied: deny_sends_access_denied, Default::default();
            a_remembered_approval_shows_no_consent_page:
                remembered_consent_shows_no_page, $crate::browser::remember_options();
            back_and_reload_on_the_consent_page_keep_a_way_forward:
                back_and_reload_keep_a_way_forward, Default::default();
            an_out_of_date_consent_form_offers_the_request_again:
                out_of_date_form_offers_the_request_again, Default::default();
        );
    };
    (@each $host:ty, $label:literal; $($test:ident: $scenario:ident, $options:expr;)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                let stack = <$host as $crate::scenarios::Host>::start($options).await.unwrap();
                $crate::browser::$scenario(&stack, $label).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_browser_says_how_to_install_it() {
        let e = require("/nonexistent/chromium").unwrap_err().to_string();
        assert!(e.contains("scripts/ensure-chromium.sh"), "{e}");
        require(CHROMIUM).expect("installed by scripts/ensure-chromium.sh");
    }

    #[test]
    fn console_problems_are_errors_warnings_and_csp_reports() {
        let e = |level: &str, source: &str, message: &str| ConsoleEntry {
            level: level.into(),
            message: message.into(),
            source: source.into(),
        };
        assert!(e("SEVERE", "network", "x").is_problem());
        assert!(e("WARNING", "console-api", "x").is_problem());
        assert!(e("INFO", "security", "x").is_problem());
        assert!(e("INFO", "other", "Content Security Policy").is_problem());
        assert!(!e("INFO", "console-api", "hello").is_problem());
    }
}
