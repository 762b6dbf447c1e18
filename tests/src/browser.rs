//! Headless Chromium (Debian's `chromium`) driven over WebDriver by its own `chromedriver`
//! through `fantoccini`: a fresh profile per browser, the console (browser log) read and checked
//! for errors and Content-Security-Policy reports, screenshots under `target/screenshots/`.
//! Real browsers enforce what a scripted client does not: the pages' CSP (on the redirects
//! after a form post too), cookies per host and SameSite, history (Back, reload).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::harness::{
    free_port, http_client, retry_if_port_taken, target_dir, unique_name, wait_until, ChildProcess,
};
use crate::scenarios::DEADLINE;

/// Debian's Chromium and its matching WebDriver (installed by `scripts/ensure-chromium.sh`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The viewport of a desktop browser window.
pub const DESKTOP: (u32, u32) = (900, 1000);

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
        // A port chosen free may be taken before chromedriver binds it: another port.
        let (driver, url) = retry_if_port_taken(Self::start_driver).await?;
        Self::session(driver, &url).await
    }

    async fn start_driver() -> anyhow::Result<(ChildProcess, String)> {
        let port = free_port()?;
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"));
        let mut driver = ChildProcess::spawn("chromedriver", cmd)?;
        let url = format!("http://127.0.0.1:{port}/");
        let client = http_client();
        // Only once it says it started on the port is an answer there its own (another test
        // process's chromedriver may have taken a port picked free).
        let started = format!("ChromeDriver was started successfully on port {port}.");
        let ready = wait_until(DEADLINE, "chromedriver to be ready", || {
            let exited = driver.try_exit_status();
            let ours = driver.log().contains(&started);
            let client = client.clone();
            let url = format!("{url}status");
            async move {
                if let Some(status) = exited {
                    return Some(Err(status));
                }
                if !ours {
                    return None;
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
