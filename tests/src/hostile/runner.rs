//! Cases, their categories and platforms, running them, and the report.

use super::*;

/// The categories of the hardening issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// Tokens on the MCP endpoint.
    Tokens,
    /// Redirect URIs at `/register` and `/authorize`.
    RedirectUris,
    /// PKCE (and the other redirect-time checks) at `/authorize` and `/token`.
    Pkce,
    /// Sealed values: tampering, truncation, replay, kind swaps.
    Sealed,
    /// Consent CSRF and cookies.
    Consent,
    /// Request shape: sizes, content types, duplicates, paths, methods, spoofed headers.
    Requests,
    /// Spellings of guarded, restricted and public paths (canonicalisation, deny by default).
    Paths,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tokens => "tokens on the MCP endpoint",
            Self::RedirectUris => "redirect URIs",
            Self::Pkce => "PKCE and authorization requests",
            Self::Sealed => "sealed values",
            Self::Consent => "consent and cookies",
            Self::Requests => "requests",
            Self::Paths => "path spellings",
        }
    }
}

/// What the platform in front of the core does to a request before the core sees it, where
/// that changes the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    /// Envoy: the raw `:path` reaches the filter; Envoy's own limits (60 KiB of headers, 100
    /// headers) answer 431 before it; repeated headers arrive joined.
    Envoy,
    /// Cloudflare Workers (workerd): the URL is parsed (WHATWG) before the Worker runs, so
    /// dot segments (`/x/../mcp`, `%2e%2e`) arrive resolved and the Worker routes and forwards
    /// the resolved path; the core's own header limits apply.
    Worker,
}

/// One hostile request and the answer it must get.
#[derive(Clone, Debug)]
pub struct Case {
    pub category: Category,
    pub name: String,
    pub request: Req,
    pub expect: Expect,
    /// Response headers that must be present with exactly this value.
    pub headers: Vec<(&'static str, String)>,
    /// A filter bug the core owner has to fix: the case is expected to fail until then, and
    /// the run reports it apart (and as a failure once it unexpectedly passes).
    pub known_bug: Option<&'static str>,
    /// Why this case cannot reach the core on this platform (not run, listed in the report).
    pub skip: Option<&'static str>,
}

impl Case {
    pub(crate) fn new(
        category: Category,
        name: impl Into<String>,
        request: Req,
        expect: Expect,
    ) -> Self {
        Self {
            category,
            name: name.into(),
            request,
            expect,
            headers: Vec::new(),
            known_bug: None,
            skip: None,
        }
    }
    pub(crate) fn skip_if(mut self, skip: bool, why: &'static str) -> Self {
        if skip {
            self.skip = Some(why);
        }
        self
    }
    pub(crate) fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
    #[allow(dead_code)]
    pub(crate) fn known_bug(mut self, why: &'static str) -> Self {
        self.known_bug = Some(why);
        self
    }
}

/// A case that did not get its refusal.
#[derive(Clone, Debug)]
pub struct Failure {
    pub category: Category,
    pub name: String,
    pub request: String,
    pub expected: String,
    pub actual: String,
    pub why: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "[{}] {}: {}", self.category.name(), self.name, self.why)?;
        writeln!(f, "  expected: {}", self.expected)?;
        writeln!(
            f,
            "  request:\n    {}",
            self.request.replace('\n', "\n    ")
        )?;
        write!(f, "  actual:\n    {}", self.actual.replace('\n', "\n    "))
    }
}

/// The outcome of [`run_all`].
#[derive(Debug, Default)]
pub struct Report {
    /// Cases run per category (checks outside the table included).
    pub per_category: BTreeMap<Category, usize>,
    /// Cases that did not get their refusal (the suite fails on these).
    pub failures: Vec<Failure>,
    /// Cases marked [`Case::known_bug`] that still fail as known.
    pub known_bugs: Vec<Failure>,
    /// Cases not run on this platform, with the reason.
    pub skipped: Vec<(String, &'static str)>,
}

impl Report {
    pub fn total(&self) -> usize {
        self.per_category.values().sum()
    }

    /// Fails the test unless at least 120 cases ran and every one got its refusal.
    pub fn assert_all_refused(&self) {
        assert!(self.total() >= 120, "only {} cases", self.total());
        assert!(
            self.failures.is_empty(),
            "{} of {} hostile cases did not get their refusal:\n{self}",
            self.failures.len(),
            self.total()
        );
    }
    fn count(&mut self, c: Category) {
        *self.per_category.entry(c).or_default() += 1;
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} hostile cases", self.total())?;
        for (c, n) in &self.per_category {
            writeln!(f, "  {:<34} {n}", c.name())?;
        }
        for (name, why) in &self.skipped {
            writeln!(f, "not run: {name}: {why}")?;
        }
        for k in &self.known_bugs {
            writeln!(f, "KNOWN FILTER BUG {k}")?;
        }
        for x in &self.failures {
            writeln!(f, "FAILED {x}")?;
        }
        Ok(())
    }
}

/// Fails the test when a line of the host's `log` has every part of one of `traps` (how the
/// host reports a trap or panic of the wasm module).
pub fn assert_no_traps(log: &str, traps: &[&[&str]]) {
    let hits: Vec<&str> = log
        .lines()
        .filter(|l| {
            traps
                .iter()
                .any(|parts| parts.iter().all(|p| l.contains(p)))
        })
        .collect();
    assert!(
        hits.is_empty(),
        "the wasm module trapped:\n{}",
        hits.join("\n")
    );
}

/// Runs one case; `Err` with a description when it did not get its refusal.
pub async fn run_case(base_url: &str, case: &Case) -> Result<(), Failure> {
    let authority = authority(base_url);
    let fail = |actual: String, why: String| Failure {
        category: case.category,
        name: case.name.clone(),
        request: case.request.to_string(),
        expected: case.expect.to_string(),
        actual,
        why,
    };
    let mut answer = send(&authority, &case.request).await;
    if answer.as_ref().is_ok_and(dev_proxy_dropped) {
        answer = send(&authority, &case.request).await;
    }
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return Err(fail(String::new(), format!("no answer: {e:#}"))),
    };
    if answer.status >= 500 {
        return Err(fail(answer.to_string(), "server error".into()));
    }
    if let Some(why) = mismatch(&case.expect, &answer, base_url) {
        return Err(fail(answer.to_string(), why));
    }
    for (name, value) in &case.headers {
        if answer.header(name) != Some(value.as_str()) {
            return Err(fail(
                answer.to_string(),
                format!("header {name}: {:?}, not {value:?}", answer.header(name)),
            ));
        }
    }
    Ok(())
}

/// `wrangler dev`'s own proxy lost its pooled connection to the Worker: after the Worker
/// answered a streamed (chunked) body before reading all of it (an oversized body's 413), the
/// next request on that connection fails in the proxy, which answers this 503 itself (and
/// retries only GET and HEAD). Cloudflare's edge has no such hop; the case is sent once more.
pub(crate) fn dev_proxy_dropped(answer: &Answer) -> bool {
    answer.status == 503
        && answer
            .text()
            .starts_with("Your worker restarted mid-request.")
}

/// `127.0.0.1:port` of `http://127.0.0.1:port`.
pub fn authority(base_url: &str) -> String {
    base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// Runs every case of [`cases`] in order, then the checks that need more than one request
/// ([`spoofing_checks`], [`retired_key_check`], [`still_serving`]). Sequential: some cases
/// depend on state left by earlier ones (the spent code and refresh token).
///
/// The retired-key check rotates the emulator's keys (retiring the old one): run this once per
/// emulator, after everything else that uses its tokens.
pub async fn run_all(base_url: &str, ctx: &HostileContext<'_>) -> Report {
    let mut report = Report::default();
    // The unmodified base requests are accepted: each refusal below is due to its one change.
    for case in controls_before(ctx) {
        if let Err(f) = run_case(base_url, &case).await {
            report.failures.push(f);
        }
    }
    for case in cases(ctx) {
        if let Some(why) = case.skip {
            report.skipped.push((case.name.clone(), why));
            continue;
        }
        report.count(case.category);
        match (run_case(base_url, &case).await, case.known_bug) {
            (Ok(()), None) => {}
            (Ok(()), Some(bug)) => report.failures.push(Failure {
                category: case.category,
                name: case.name.clone(),
                request: case.request.to_string(),
                expected: case.expect.to_string(),
                actual: "the expected refusal".into(),
                why: format!("marked as a known filter bug ({bug}) but passes: remove the mark"),
            }),
            (Err(f), None) => report.failures.push(f),
            (Err(mut f), Some(bug)) => {
                f.why = format!("{bug}: {}", f.why);
                report.known_bugs.push(f);
            }
        }
    }
    // The values the table tampered with still work (nothing was consumed by a refusal).
    for case in controls_after(ctx) {
        if let Err(f) = run_case(base_url, &case).await {
            report.failures.push(f);
        }
    }
    for (category, result) in spoofing_checks(base_url, ctx).await {
        report.count(category);
        if let Err(f) = result {
            report.failures.push(f);
        }
    }
    report.count(Category::Tokens);
    if let Err(f) = retired_key_check(base_url, ctx).await {
        report.failures.push(f);
    }
    if let Err(f) = still_serving(base_url, ctx).await {
        report.failures.push(f);
    }
    report
}
