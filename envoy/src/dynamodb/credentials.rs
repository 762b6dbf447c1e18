//! AWS credentials for the DynamoDB store, from the VM's environment (pass the variables
//! with `vm_config.environment_variables.host_env_keys`), in the order AWS SDKs use:
//!
//! 1. **Static keys**: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, optional
//!    `AWS_SESSION_TOKEN` — used as they are.
//! 2. **IRSA (web identity)**: `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE` (optional
//!    `AWS_ROLE_SESSION_NAME`) — the token file is read, then exchanged at STS
//!    (`AssumeRoleWithWebIdentity`, an unsigned POST) for temporary credentials.
//! 3. **Container credentials** (EKS Pod Identity, ECS): `AWS_CONTAINER_CREDENTIALS_FULL_URI`
//!    (or ECS's `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`) with the token in
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` — a GET
//!    with that `Authorization` answers the credentials as JSON.
//!
//! A Wasm VM in Envoy cannot open files (Envoy's WASI `path_open` always answers "no such
//! file"), so token files are read over HTTP through Envoy: the `files_cluster` of the
//! `dynamodb` key, an internal listener with Envoy's `file_server` filter serving the token
//! directories (see envoy/README.md). Kubernetes rotates these tokens; they are read again
//! at every refresh.
//!
//! Temporary credentials are fetched once per Envoy process: one VM wins a lease in shared
//! data (`mcpgate.aws.lease`), fetches, and writes them to `mcpgate.aws.credentials`, which
//! every VM reads. They are refreshed [`REFRESH_MARGIN`] seconds before they expire (retried
//! every [`RETRY_MS`] while that fails, e.g. while Envoy's listeners are still starting); until a first set arrives the store answers
//! "unavailable" (the core then fails closed for codes and refreshes, open for the rest).

use serde_json::{json, Value};

use super::sigv4::{parse_iso8601, Credentials};
use crate::hostcalls::{Host, SharedError};

const RECORD: &str = "mcpgate.aws.credentials";
const LEASE: &str = "mcpgate.aws.lease";
/// Temporary credentials are replaced this long before they expire.
pub const REFRESH_MARGIN: u64 = 300;
/// A failed fetch is retried after this long (milliseconds): one call per process.
pub const RETRY_MS: u64 = 1000;
/// Where ECS's relative URI points.
const ECS_HOST: &str = "http://169.254.170.2";

/// Where this process's credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Static(Credentials),
    WebIdentity {
        role_arn: String,
        token_file: String,
        session_name: String,
    },
    Container {
        uri: String,
        token: Option<String>,
        token_file: Option<String>,
    },
    Missing,
}

impl Source {
    /// Reads the environment (see the module documentation for the order).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let (Some(access_key_id), Some(secret_access_key)) =
            (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        {
            return Self::Static(Credentials {
                access_key_id,
                secret_access_key,
                session_token: var("AWS_SESSION_TOKEN"),
                expires_at: None,
            });
        }
        if let (Some(role_arn), Some(token_file)) =
            (var("AWS_ROLE_ARN"), var("AWS_WEB_IDENTITY_TOKEN_FILE"))
        {
            return Self::WebIdentity {
                role_arn,
                token_file,
                session_name: var("AWS_ROLE_SESSION_NAME")
                    .unwrap_or_else(|| "mcpgate-envoy".to_string()),
            };
        }
        let uri = var("AWS_CONTAINER_CREDENTIALS_FULL_URI").or_else(|| {
            var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").map(|rel| format!("{ECS_HOST}{rel}"))
        });
        if let Some(uri) = uri {
            return Self::Container {
                uri,
                token: var("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
                token_file: var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            };
        }
        Self::Missing
    }

    /// A token file this source reads (through the files cluster).
    pub fn token_file(&self) -> Option<&str> {
        match self {
            Self::WebIdentity { token_file, .. } => Some(token_file),
            Self::Container {
                token: None,
                token_file: Some(f),
                ..
            } => Some(f),
            _ => None,
        }
    }

    /// How the log names it (no secrets).
    pub fn describe(&self) -> String {
        match self {
            Self::Static(c) if c.session_token.is_some() => {
                "static keys with a session token (AWS_ACCESS_KEY_ID …)".into()
            }
            Self::Static(_) => "static keys (AWS_ACCESS_KEY_ID …)".into(),
            Self::WebIdentity { role_arn, .. } => {
                format!("web identity for {role_arn} (AWS_WEB_IDENTITY_TOKEN_FILE, via STS)")
            }
            Self::Container { uri, .. } => format!("the container credentials endpoint {uri}"),
            Self::Missing => "none: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_ROLE_ARN/AWS_WEB_IDENTITY_TOKEN_FILE or AWS_CONTAINER_CREDENTIALS_FULL_URI in the VM environment".into(),
        }
    }
}

/// The STS request body exchanging a web identity token (form-encoded POST).
pub fn sts_body(role_arn: &str, session_name: &str, token: &str) -> Vec<u8> {
    mcpgate_filter::form::build(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("DurationSeconds", "3600"),
        ("RoleArn", role_arn),
        ("RoleSessionName", session_name),
        ("WebIdentityToken", token.trim()),
    ])
    .into_bytes()
}

/// The text of the first `<tag>…</tag>` of an XML document, entities decoded.
fn xml_text(doc: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = start + doc.get(start..)?.find(&close)?;
    let raw = doc.get(start..end)?.trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// Reads STS's `AssumeRoleWithWebIdentityResponse`.
pub fn parse_sts(body: &[u8]) -> Option<Credentials> {
    let doc = std::str::from_utf8(body).ok()?;
    let creds = doc.get(doc.find("<Credentials>")?..)?;
    Some(Credentials {
        access_key_id: xml_text(creds, "AccessKeyId")?,
        secret_access_key: xml_text(creds, "SecretAccessKey")?,
        session_token: Some(xml_text(creds, "SessionToken")?),
        expires_at: Some(parse_iso8601(&xml_text(creds, "Expiration")?)?),
    })
}

/// Reads the container credentials endpoint's JSON answer.
pub fn parse_container(body: &[u8]) -> Option<Credentials> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    Some(Credentials {
        access_key_id: text("AccessKeyId")?,
        secret_access_key: text("SecretAccessKey")?,
        session_token: text("Token"),
        expires_at: match text("Expiration") {
            Some(e) => Some(parse_iso8601(&e)?),
            None => None,
        },
    })
}

fn to_record(c: &Credentials) -> Vec<u8> {
    json!({
        "k": c.access_key_id, "s": c.secret_access_key,
        "t": c.session_token, "e": c.expires_at,
    })
    .to_string()
    .into_bytes()
}

fn from_record(data: &[u8]) -> Option<Credentials> {
    let v: Value = serde_json::from_slice(data).ok()?;
    Some(Credentials {
        access_key_id: v.get("k")?.as_str()?.to_string(),
        secret_access_key: v.get("s")?.as_str()?.to_string(),
        session_token: v.get("t").and_then(Value::as_str).map(str::to_string),
        expires_at: v.get("e").and_then(Value::as_u64),
    })
}

/// This VM's view of the process's credentials.
#[derive(Debug, Default)]
pub struct Copy {
    current: Option<Credentials>,
    cas: Option<u32>,
}

impl Copy {
    /// The credentials to sign with now, if any: the static ones, or the shared record's
    /// (re-read when it changed) while they have not expired.
    pub fn get(&mut self, host: &dyn Host, source: &Source, now: u64) -> Option<Credentials> {
        if let Source::Static(c) = source {
            return Some(c.clone());
        }
        let (data, cas) = host.shared_get(RECORD);
        if cas != self.cas {
            self.cas = cas;
            self.current = data.as_deref().and_then(from_record);
        }
        self.current
            .clone()
            .filter(|c| c.expires_at.is_none_or(|e| e > now))
    }

    /// Whether a fetch is due: no usable credentials, or they expire within the margin.
    pub fn due(&mut self, host: &dyn Host, source: &Source, now: u64) -> bool {
        match source {
            Source::Static(_) | Source::Missing => false,
            _ => match self.get(host, source, now) {
                None => true,
                Some(c) => c
                    .expires_at
                    .is_some_and(|e| e.saturating_sub(now) <= REFRESH_MARGIN),
            },
        }
    }
}

/// Creates the lease record if absent (configure time), so taking it is a real CAS.
pub fn init_lease(host: &dyn Host) {
    if let (None, None) = host.shared_get(LEASE) {
        let _ = host.shared_set(LEASE, b"0 0", None);
    }
}

/// Takes the fetch lease (one fetch per process at a time, at most one attempt per
/// [`RETRY_MS`]); `true` when this VM should fetch now.
pub fn take_lease(host: &dyn Host, timeout_ms: u64) -> bool {
    let now_ms = host.now_ms();
    for _ in 0..8 {
        let (data, cas) = host.shared_get(LEASE);
        let Some(cas) = cas else {
            init_lease(host);
            continue;
        };
        let (until, last) = parse_pair(data.as_deref().unwrap_or_default());
        if until > now_ms || now_ms.saturating_sub(last) < RETRY_MS {
            return false;
        }
        // Two calls (token file, then STS or the endpoint), each within the timeout.
        let value = format!("{} {now_ms}", now_ms.saturating_add(timeout_ms * 2 + 1000));
        match host.shared_set(LEASE, value.as_bytes(), Some(cas)) {
            Ok(()) => return true,
            Err(SharedError::CasMismatch) => continue,
            Err(SharedError::Failed) => return false,
        }
    }
    false
}

/// Ends a fetch: stores the credentials it got (if any) and frees the lease; a failure
/// keeps the attempt's time, so the next try waits [`RETRY_MS`].
pub fn complete(host: &dyn Host, got: Option<&Credentials>) {
    if let Some(c) = got {
        if host.shared_set(RECORD, &to_record(c), None).is_err() {
            log::warn!("mcpgate: cannot store the AWS credentials in shared data");
        }
    }
    let (data, cas) = host.shared_get(LEASE);
    let (_, last) = parse_pair(data.as_deref().unwrap_or_default());
    // Success: the next fetch is due by expiry only, not paced.
    let last = if got.is_some() { 0 } else { last };
    let _ = host.shared_set(LEASE, format!("0 {last}").as_bytes(), cas);
}

fn parse_pair(data: &[u8]) -> (u64, u64) {
    let text = String::from_utf8_lossy(data);
    let mut it = text
        .split(' ')
        .map(|p| p.trim().parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn sources_in_the_sdks_order() {
        let all = env(&[
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
            ("AWS_SESSION_TOKEN", "T"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ]);
        assert!(
            matches!(Source::from_env(&all), Source::Static(c) if c.session_token.as_deref() == Some("T"))
        );
        let irsa = env(&[
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
        ]);
        let s = Source::from_env(&irsa);
        assert_eq!(s.token_file(), Some("/t"));
        assert!(
            matches!(s, Source::WebIdentity { ref session_name, .. } if session_name == "mcpgate-envoy")
        );
        let pod = env(&[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/p"),
        ]);
        assert_eq!(Source::from_env(&pod).token_file(), Some("/p"));
        let ecs = env(&[("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds")]);
        assert!(
            matches!(Source::from_env(&ecs), Source::Container { uri, token: None, token_file: None } if uri == "http://169.254.170.2/v2/creds")
        );
        assert_eq!(Source::from_env(&env(&[])), Source::Missing);
        assert!(
            !format!("{:?}", Source::from_env(&all)).contains("SK"),
            "no secret in Debug"
        );
    }

    #[test]
    fn sts_and_container_answers_are_read() {
        let sts = br#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>secret/&amp;key</SecretAccessKey>
      <SessionToken>session</SessionToken>
      <Expiration>2026-11-28T13:34:56Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;
        let c = parse_sts(sts).unwrap();
        assert_eq!(c.access_key_id, "ASIAEXAMPLE");
        assert_eq!(c.secret_access_key, "secret/&key");
        assert_eq!(c.expires_at, parse_iso8601("2026-11-28T13:34:56Z"));
        assert!(parse_sts(b"<Error><Code>AccessDenied</Code></Error>").is_none());
        let pod = br#"{"AccessKeyId":"ASIA2","SecretAccessKey":"s2","Token":"t2","AccountId":"1","Expiration":"2026-11-28T18:00:00Z"}"#;
        let c = parse_container(pod).unwrap();
        assert_eq!(c.session_token.as_deref(), Some("t2"));
        assert_eq!(from_record(&to_record(&c)), Some(c));
        let body = String::from_utf8(sts_body("arn:aws:iam::1:role/r", "s", "a.b+c\n")).unwrap();
        assert!(
            body.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"),
            "{body}"
        );
        assert!(body.ends_with("WebIdentityToken=a.b%2Bc"), "{body}");
    }
}
