//! The fleet store: the core's store operations on Amazon DynamoDB, for Envoy fleets where
//! every process must see the same one-time use, refresh-token families, revocations and
//! rate limits (`store: "dynamodb"` and the `dynamodb` key).
//!
//! * [`requests`] — the DynamoDB calls for each operation (conditional writes, counters, the
//!   revocation feed) and how their answers become the core's replies;
//! * [`sigv4`] — AWS Signature Version 4, in the filter;
//! * [`credentials`] — static keys, IRSA (STS web identity) and container credentials (EKS
//!   Pod Identity), refreshed from `on_tick`;
//! * [`replica`] — revocations polled from `on_tick` into each process's shared data, so the
//!   revocation check on the MCP path never waits on the network.
//!
//! A request whose operation goes to DynamoDB is held (like an IdP call) until the answer
//! comes, then resumed with it; no answer within `timeout_ms`, an error or no credentials
//! mean [`mcpgate_filter::Reply::StoreFailed`] and the core decides (fails closed with a
//! retryable 503 for codes and rotations, open for rate limits).

pub mod credentials;
pub mod replica;
pub mod requests;
pub mod sigv4;

use std::cell::RefCell;
use std::time::Duration;

use mcpgate_filter::config::ConfigError;
use serde_json::Value;

use crate::config::{split_url, HostConfig};
use crate::hostcalls::Host;
use credentials::Source;
use requests::Call;

/// The `dynamodb` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamoConfig {
    /// The table (partition key `pk`, sort key `sk`, both strings; TTL attribute `exp`).
    pub table: String,
    /// The table's region (signing scope).
    pub region: String,
    /// `https://dynamodb.<region>.amazonaws.com` unless set; its authority needs a cluster.
    pub endpoint: String,
    /// `https://sts.<region>.amazonaws.com` unless set (web identity only).
    pub sts_endpoint: String,
    /// Each call's timeout.
    pub timeout_ms: u64,
    /// How often each process polls the revocation feed.
    pub revocation_poll_ms: u64,
    /// The cluster that serves token files (an internal listener with `file_server`).
    pub files_cluster: Option<String>,
}

fn err(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        problem: problem.into(),
    }
}

impl DynamoConfig {
    /// Reads the `dynamodb` object (from the environment, its JSON text).
    pub fn parse(value: Option<&Value>) -> Result<Self, ConfigError> {
        let parsed;
        let value = match value {
            Some(Value::String(text)) => {
                parsed = serde_json::from_str::<Value>(text)
                    .map_err(|_| err("dynamodb", "must be a JSON object"))?;
                &parsed
            }
            Some(v) => v,
            None => return Err(err("dynamodb", "is required with store \"dynamodb\"")),
        };
        let Value::Object(m) = value else {
            return Err(err("dynamodb", "must be an object"));
        };
        const KNOWN: &[&str] = &[
            "table",
            "region",
            "endpoint",
            "sts_endpoint",
            "timeout_ms",
            "revocation_poll_ms",
            "files_cluster",
        ];
        if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(err(&format!("dynamodb.{k}"), "unknown key"));
        }
        let text = |k: &str| -> Result<Option<String>, ConfigError> {
            match m.get(k) {
                None => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
                Some(_) => Err(err(&format!("dynamodb.{k}"), "must be a non-empty string")),
            }
        };
        let number = |k: &str, default: u64, range: (u64, u64)| -> Result<u64, ConfigError> {
            let v = match m.get(k) {
                None => return Ok(default),
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                Some(_) => None,
            };
            v.filter(|v| (range.0..=range.1).contains(v))
                .ok_or_else(|| {
                    err(
                        &format!("dynamodb.{k}"),
                        format!("must be a number from {} to {}", range.0, range.1),
                    )
                })
        };
        let table = text("table")?.ok_or_else(|| err("dynamodb.table", "is required"))?;
        let valid_table = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !valid_table {
            return Err(err(
                "dynamodb.table",
                "must be 3-255 characters of a-z, A-Z, 0-9, _ . -",
            ));
        }
        let region = text("region")?.ok_or_else(|| err("dynamodb.region", "is required"))?;
        if !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err("dynamodb.region", "must look like eu-central-1"));
        }
        let endpoint =
            text("endpoint")?.unwrap_or_else(|| format!("https://dynamodb.{region}.amazonaws.com"));
        let sts_endpoint =
            text("sts_endpoint")?.unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"));
        for (k, url) in [("endpoint", &endpoint), ("sts_endpoint", &sts_endpoint)] {
            if split_url(url).is_none_or(|(scheme, _, _)| scheme != "http" && scheme != "https") {
                return Err(err(&format!("dynamodb.{k}"), "must be an http(s) URL"));
            }
        }
        Ok(Self {
            table,
            region,
            endpoint,
            sts_endpoint,
            timeout_ms: number("timeout_ms", 1000, (100, 10_000))?,
            revocation_poll_ms: number("revocation_poll_ms", 1000, (100, 5000))?,
            files_cluster: text("files_cluster")?,
        })
    }

    /// Checks that every URL this store calls with `source`'s credentials has a cluster.
    pub fn check_routes(&self, host: &HostConfig, source: &Source) -> Result<(), ConfigError> {
        let needs = |name: &str, url: &str| -> Result<(), ConfigError> {
            let authority = split_url(url).map(|(_, a, _)| a).unwrap_or_default();
            if host.clusters.contains_key(&authority.to_ascii_lowercase()) {
                Ok(())
            } else {
                Err(err(
                    "clusters",
                    format!("no Envoy cluster for {authority} (needed by {name})"),
                ))
            }
        };
        needs("dynamodb.endpoint", &self.endpoint)?;
        match source {
            Source::Missing => {
                return Err(err(
                    "dynamodb",
                    format!("no AWS credentials: {}", source.describe()),
                ))
            }
            Source::WebIdentity { .. } => needs("dynamodb.sts_endpoint", &self.sts_endpoint)?,
            Source::Container { uri, .. } => needs("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri)?,
            Source::Static(_) => {}
        }
        if source.token_file().is_some() && self.files_cluster.is_none() {
            return Err(err(
                "dynamodb.files_cluster",
                "is required to read the token file (a Wasm VM cannot open files; see envoy/README.md)",
            ));
        }
        Ok(())
    }
}

/// A VM's DynamoDB client: configuration, where credentials come from, and its view of them.
pub struct Client {
    pub config: DynamoConfig,
    pub source: Source,
    pub creds: RefCell<credentials::Copy>,
}

impl Client {
    pub fn new(config: DynamoConfig, source: Source) -> Self {
        Self {
            config,
            source,
            creds: RefCell::default(),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }

    /// Signs and sends one DynamoDB call; the call token.
    pub fn send(&self, host: &dyn Host, routes: &HostConfig, call: &Call) -> Result<u32, String> {
        self.send_raw(host, routes, call.operation, &call.body)
    }

    /// Signs and sends `DynamoDB_20120810.<operation>` with `body`; the call token.
    pub fn send_raw(
        &self,
        host: &dyn Host,
        routes: &HostConfig,
        operation: &str,
        body: &[u8],
    ) -> Result<u32, String> {
        let now = host.now_ms() / 1000;
        let creds = self
            .creds
            .borrow_mut()
            .get(host, &self.source, now)
            .ok_or_else(|| "no AWS credentials yet".to_string())?;
        let (cluster, scheme, authority, path) = routes
            .route(&self.config.endpoint)
            .ok_or_else(|| "no Envoy cluster for the DynamoDB endpoint".to_string())?;
        let target = format!("DynamoDB_20120810.{operation}");
        let signed = sigv4::sign(
            &creds,
            &self.config.region,
            "dynamodb",
            &sigv4::Request {
                method: "POST",
                host: authority,
                path,
                headers: &[
                    ("content-type", "application/x-amz-json-1.0"),
                    ("x-amz-target", &target),
                ],
                body,
            },
            now,
        );
        let length = body.len().to_string();
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", "POST"),
            (":path", path),
            (":authority", authority),
            (":scheme", scheme),
            ("content-type", "application/x-amz-json-1.0"),
            ("x-amz-target", &target),
            ("content-length", &length),
        ];
        headers.extend(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        host.dispatch(cluster, &headers, Some(body), self.timeout())
    }

    /// Reads a token file through the files cluster; the call token.
    fn read_file(&self, host: &dyn Host, path: &str) -> Result<u32, String> {
        let cluster = self
            .config
            .files_cluster
            .as_deref()
            .ok_or_else(|| "no files_cluster".to_string())?;
        let headers = [
            (":method", "GET"),
            (":path", path),
            (":authority", "mcpgate-files"),
            (":scheme", "http"),
        ];
        host.dispatch(cluster, &headers, None, self.timeout())
    }

    /// Sends the STS exchange of a web identity token; the call token.
    fn assume_role(
        &self,
        host: &dyn Host,
        routes: &HostConfig,
        token: &str,
    ) -> Result<u32, String> {
        let Source::WebIdentity {
            role_arn,
            session_name,
            ..
        } = &self.source
        else {
            return Err("not a web identity".to_string());
        };
        let (cluster, scheme, authority, path) = routes
            .route(&self.config.sts_endpoint)
            .ok_or_else(|| "no Envoy cluster for the STS endpoint".to_string())?;
        let body = credentials::sts_body(role_arn, session_name, token);
        let length = body.len().to_string();
        let headers = [
            (":method", "POST"),
            (":path", path),
            (":authority", authority),
            (":scheme", scheme),
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "text/xml"),
            ("content-length", &length),
        ];
        host.dispatch(cluster, &headers, Some(&body), self.timeout())
    }

    /// Asks the container credentials endpoint; the call token.
    fn container(&self, host: &dyn Host, routes: &HostConfig, token: &str) -> Result<u32, String> {
        let Source::Container { uri, .. } = &self.source else {
            return Err("not container credentials".to_string());
        };
        let (cluster, scheme, authority, path) = routes
            .route(uri)
            .ok_or_else(|| "no Envoy cluster for the container credentials endpoint".to_string())?;
        let mut headers = vec![
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            (":scheme", scheme),
        ];
        let token = token.trim();
        if !token.is_empty() {
            headers.push(("authorization", token));
        }
        host.dispatch(cluster, &headers, None, self.timeout())
    }
}

/// A step of fetching temporary credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CredStep {
    /// Reading the token file.
    TokenFile,
    /// Exchanging the token (STS, or the container endpoint).
    Exchange,
}

/// What a root context runs from `on_tick` for the fleet store: the credentials refresh and
/// the revocation poll, each at most one call in flight.
#[derive(Debug, Default)]
pub struct Background {
    creds_call: Option<(u32, CredStep)>,
    feed_call: Option<(u32, replica::Plan)>,
}

/// What the background work needs of the VM.
pub struct Ctx<'a> {
    pub host: &'a dyn Host,
    pub routes: &'a HostConfig,
    pub client: &'a Client,
    pub metrics: &'a crate::metrics::Metrics,
}

impl Background {
    /// Whether `token` is a call of this background work.
    pub fn owns(&self, token: u32) -> bool {
        self.creds_call.is_some_and(|(t, _)| t == token)
            || self.feed_call.as_ref().is_some_and(|(t, _)| *t == token)
    }

    /// Starts what is due: a credentials fetch, a feed poll.
    pub fn tick(&mut self, cx: &Ctx<'_>) {
        let now = cx.host.now_ms() / 1000;
        if self.creds_call.is_none()
            && cx
                .client
                .creds
                .borrow_mut()
                .due(cx.host, &cx.client.source, now)
            && credentials::take_lease(cx.host, cx.client.config.timeout_ms)
        {
            self.start_credentials(cx);
        }
        if self.feed_call.is_none() {
            if let Some(plan) = replica::take(cx.host, cx.client.config.timeout_ms) {
                self.send_poll(cx, plan);
            }
        }
    }

    fn start_credentials(&mut self, cx: &Ctx<'_>) {
        let sent = match (cx.client.source.token_file(), &cx.client.source) {
            (Some(file), _) => cx
                .client
                .read_file(cx.host, file)
                .map(|t| (t, CredStep::TokenFile)),
            (None, Source::Container { token, .. }) => cx
                .client
                .container(cx.host, cx.routes, token.as_deref().unwrap_or_default())
                .map(|t| (t, CredStep::Exchange)),
            _ => Err("nothing to fetch".to_string()),
        };
        match sent {
            Ok(call) => self.creds_call = Some(call),
            Err(e) => {
                log::warn!("mcpgate: cannot fetch AWS credentials now: {e}");
                credentials::complete(cx.host, None);
            }
        }
    }

    fn send_poll(&mut self, cx: &Ctx<'_>, plan: replica::Plan) {
        let body =
            requests::feed_query(&cx.client.config.table, plan.from_ms, plan.start.as_deref());
        match cx.client.send_raw(cx.host, cx.routes, "Query", &body) {
            Ok(token) => self.feed_call = Some((token, plan)),
            Err(e) => {
                log::debug!("mcpgate: revocation poll not sent: {e}");
                let poll = cx.client.config.revocation_poll_ms;
                replica::complete(cx.host, &plan, None, poll, cx.client.config.timeout_ms);
            }
        }
    }

    /// Handles the answer to a call of this root context; `false` when it was not one.
    pub fn on_response(&mut self, cx: &Ctx<'_>, token: u32, status: u16, body: &[u8]) -> bool {
        if let Some((t, plan)) = self.feed_call.take() {
            if t == token {
                let page = (status == 200).then(|| requests::feed_page(body)).flatten();
                if page.is_none() {
                    log::warn!("mcpgate: revocation poll failed (status {status})");
                }
                let poll = cx.client.config.revocation_poll_ms;
                let (next, new) =
                    replica::complete(cx.host, &plan, page, poll, cx.client.config.timeout_ms);
                for _ in 0..new {
                    cx.metrics
                        .inc(crate::metrics::Counter::RevocationsReplicated);
                }
                if new > 0 {
                    log::info!("mcpgate: {new} revocation(s) replicated from the fleet store");
                }
                if let Some(next) = next {
                    self.send_poll(cx, next);
                }
                return true;
            }
            self.feed_call = Some((t, plan));
        }
        match self.creds_call.take() {
            Some((t, step)) if t == token => {
                self.credentials_answer(cx, step, status, body);
                true
            }
            other => {
                self.creds_call = other;
                false
            }
        }
    }

    fn credentials_answer(&mut self, cx: &Ctx<'_>, step: CredStep, status: u16, body: &[u8]) {
        let client = cx.client;
        match step {
            CredStep::TokenFile => {
                let token = String::from_utf8_lossy(body).trim().to_string();
                if status != 200 || token.is_empty() {
                    log::warn!("mcpgate: cannot read the AWS token file (status {status})");
                    credentials::complete(cx.host, None);
                    return;
                }
                let sent = match &client.source {
                    Source::WebIdentity { .. } => client.assume_role(cx.host, cx.routes, &token),
                    _ => client.container(cx.host, cx.routes, &token),
                };
                match sent {
                    Ok(t) => self.creds_call = Some((t, CredStep::Exchange)),
                    Err(e) => {
                        log::warn!("mcpgate: cannot fetch AWS credentials: {e}");
                        credentials::complete(cx.host, None);
                    }
                }
            }
            CredStep::Exchange => {
                let creds = match (&client.source, status) {
                    (Source::WebIdentity { .. }, 200) => credentials::parse_sts(body),
                    (Source::Container { .. }, 200) => credentials::parse_container(body),
                    _ => None,
                };
                match &creds {
                    Some(c) => log::info!(
                        "mcpgate: AWS credentials from {} (key {}, expiring at {})",
                        client.source.describe(),
                        c.access_key_id,
                        c.expires_at.map_or_else(|| "never".to_string(), |e| e.to_string())
                    ),
                    None => log::warn!(
                        "mcpgate: fetching AWS credentials failed (status {status}); retrying in {} ms",
                        credentials::RETRY_MS
                    ),
                }
                credentials::complete(cx.host, creds.as_ref());
            }
        }
    }
}
