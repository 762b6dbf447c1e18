//! A person signs in through the proxy in headless Chromium ([`crate::browser`]): the consent
//! page, the emulator's sign-in page, the client's loopback redirect URI
//! ([`crate::loopback_client`]); then the client exchanges the code and calls a tool. Also
//! Deny, `consent: remember`, reload and Back, an out-of-date form.
//!
//! The scenarios are host-generic ([`Host`]);
//! [`browser_scenario_tests!`](crate::browser_scenario_tests) makes one `#[tokio::test]` per
//! scenario for a host. Every scenario asserts that the browser console shows no error and no
//! CSP report ([`Browser::assert_console_clean`]), and the first one checks that a deliberate
//! violation is reported, so the check is real. Screenshots go to `target/screenshots/`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::browser::{Browser, DESKTOP};
use crate::harness::{http_client, wait_until};
use crate::journey::whoami;
use crate::loopback_client::{
    authorization, register, LoopbackApp, Request, APP_PAGE_TEXT, CLIENT_NAME,
};
use crate::scenarios::{Host, HostOptions, DEADLINE};

/// The user of the emulator who signs in.
const USER: (&str, &str) = ("alice", "alice-password");
/// The phone viewport of a screenshot.
const PHONE: (u32, u32) = (375, 812);

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

/// A browser-based MCP client (as the MCP Inspector in direct mode) on another origin than the
/// proxy: its `fetch` of the MCP endpoint without a token reads the 401's `WWW-Authenticate`
/// (only possible when the proxy allows the origin and exposes the header), and with a token
/// (and the MCP headers that make Chromium send a preflight) gets the tool's answer. No CORS error in the console (only Chromium's report of the 401).
pub async fn a_browser_client_reads_the_challenge_and_calls_a_tool<H: Host>(h: &H, label: &str) {
    let s = Session::start(h, label).await;
    let mut journey = crate::journey::Journey::register(h.base_url())
        .await
        .unwrap();
    let access = journey.login(USER.0, USER.1).await.unwrap().access;
    // A page of the client's own origin (the loopback app), not the proxy's.
    s.browser.client.goto(&s.app.redirect_uri).await.unwrap();
    s.browser
        .wait_for_page(&s.app.redirect_uri, APP_PAGE_TEXT)
        .await
        .unwrap();
    let script = r#"
        const [url, token, done] = arguments;
        (async () => {
          const init = {jsonrpc: "2.0", id: 1, method: "initialize", params: {
            protocolVersion: "2025-06-18", capabilities: {},
            clientInfo: {name: "browser", version: "1"}}};
          const call = {jsonrpc: "2.0", id: 2, method: "tools/call",
                        params: {name: "whoami", arguments: {}}};
          const headers = {"content-type": "application/json",
                           "accept": "application/json, text/event-stream",
                           "mcp-protocol-version": "2025-06-18"};
          const a = await fetch(url, {method: "POST", headers, body: JSON.stringify(init)});
          const out = {status: a.status, challenge: a.headers.get("www-authenticate")};
          const b = await fetch(url, {method: "POST", body: JSON.stringify(call),
            headers: {...headers, "authorization": "Bearer " + token}});
          out.toolStatus = b.status;
          out.tool = await b.text();
          done(out);
        })().catch(e => done({error: String(e)}));
    "#;
    let out = s
        .browser
        .client
        .execute_async(script, vec![json!(h.mcp_url()), json!(access)])
        .await
        .unwrap();
    assert!(out.get("error").is_none(), "fetch failed (CORS?): {out}");
    assert_eq!(out["status"], json!(401), "{out}");
    let challenge = out["challenge"].as_str().unwrap_or_default();
    assert!(
        challenge.contains("resource_metadata="),
        "the page reads WWW-Authenticate: {out}"
    );
    assert_eq!(out["toolStatus"], json!(200), "{out}");
    assert!(out["tool"].as_str().unwrap().contains("alice"), "{out}");
    // Chromium reports the deliberate 401 itself; nothing else (no CORS error).
    s.browser
        .assert_console_clean_but("after the cross-origin calls", Some((&h.mcp_url(), 401)))
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
                remembered_consent_shows_no_page, $crate::browser_scenarios::remember_options();
            back_and_reload_on_the_consent_page_keep_a_way_forward:
                back_and_reload_keep_a_way_forward, Default::default();
            an_out_of_date_consent_form_offers_the_request_again:
                out_of_date_form_offers_the_request_again, Default::default();
            a_browser_client_on_another_origin_reads_the_challenge_and_calls_a_tool:
                a_browser_client_reads_the_challenge_and_calls_a_tool, Default::default();
        );
    };
    (@each $host:ty, $label:literal; $($test:ident: $scenario:ident, $options:expr;)*) => {
        $(
            #[tokio::test]
            async fn $test() {
                let stack = <$host as $crate::scenarios::Host>::start($options).await.unwrap();
                $crate::browser_scenarios::$scenario(&stack, $label).await;
            }
        )*
    };
}
