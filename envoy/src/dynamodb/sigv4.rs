//! AWS Signature Version 4 for the filter's calls to DynamoDB: the canonical request, the
//! string to sign, the derived signing key and the `Authorization` header, as AWS specifies
//! them ("Create a signed AWS API request"). Checked against botocore's signer on a fixed
//! request (the test below: same credentials, time, headers and body → the same signature).

use ::hmac::{KeyInit, Mac};
use mcpgate_filter::encoding::hex;
use sha2::{Digest, Sha256};

type HmacSha256 = ::hmac::Hmac<Sha256>;

/// AWS credentials: long-lived keys, or temporary ones (with a session token and an expiry).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Seconds since the epoch; `None` for keys that do not expire.
    pub expires_at: Option<u64>,
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What is signed: one HTTP request to an AWS service.
pub struct Request<'a> {
    pub method: &'a str,
    /// The `Host` header: the endpoint's authority as sent in `:authority`.
    pub host: &'a str,
    /// Path, already URI-encoded (`/` for DynamoDB).
    pub path: &'a str,
    /// Headers besides `host` and the `x-amz-*` ones added here (names in any case).
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The headers to add to `req` to sign it for `service` in `region` at `now` (seconds since
/// the epoch): `x-amz-date`, `x-amz-security-token` (temporary credentials) and
/// `authorization`.
pub fn sign(
    creds: &Credentials,
    region: &str,
    service: &str,
    req: &Request<'_>,
    now: u64,
) -> Vec<(String, String)> {
    let amz_date = amz_date(now);
    let date = amz_date.get(..8).unwrap_or_default().to_string();
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), canonical_value(v)))
        .collect();
    headers.push(("host".to_string(), req.host.to_string()));
    headers.push(("x-amz-date".to_string(), amz_date.clone()));
    if let Some(token) = &creds.session_token {
        headers.push(("x-amz-security-token".to_string(), token.clone()));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical = String::with_capacity(256 + req.body.len() / 8);
    canonical.push_str(req.method);
    canonical.push('\n');
    canonical.push_str(req.path);
    canonical.push_str("\n\n");
    for (k, v) in &headers {
        canonical.push_str(k);
        canonical.push(':');
        canonical.push_str(v);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers);
    canonical.push('\n');
    canonical.push_str(&hex(&Sha256::digest(req.body)));

    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(&creds.secret_access_key, &date, region, service);
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
    let mut out = vec![("x-amz-date".to_string(), amz_date)];
    if let Some(token) = &creds.session_token {
        out.push(("x-amz-security-token".to_string(), token.clone()));
    }
    out.push((
        "authorization".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            creds.access_key_id
        ),
    ));
    out
}

/// A header value as canonicalised: trimmed, inner runs of spaces made one.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// `YYYYMMDD'T'HHMMSS'Z'` for seconds since the epoch (UTC).
pub fn amz_date(now: u64) -> String {
    let days = now / 86_400;
    let secs = now % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` (STS and the container endpoint give expiries so) → seconds
/// since the epoch.
pub fn parse_iso8601(s: &str) -> Option<u64> {
    let s = s.trim();
    let date = s.get(..10)?;
    let time = s.get(11..19)?;
    if s.get(10..11)? != "T" {
        return None;
    }
    let mut d = date.split('-').map(|p| p.parse::<u64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || y < 1970 {
        return None;
    }
    // Days from civil (the inverse of civil_from_days).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: botocore 1.44.8's `SigV4Auth` (from PyPI, in a scratch venv) signing the
    /// same request at the same instant, with the same credentials:
    ///
    /// ```python
    /// import datetime, botocore.auth as a
    /// from botocore.awsrequest import AWSRequest
    /// from botocore.credentials import Credentials
    /// class Fixed(datetime.datetime):
    ///     @classmethod
    ///     def utcnow(cls): return cls(2026, 11, 28, 12, 34, 56)
    ///     @classmethod
    ///     def now(cls, tz=None): return cls(2026, 11, 28, 12, 34, 56, tzinfo=tz)
    /// a.datetime.datetime = Fixed
    /// body = '{"TableName":"mcpgate","Key":{"pk":{"S":"abc"},"sk":{"S":"e"}}}'
    /// r = AWSRequest(method="POST", url="https://dynamodb.eu-central-1.amazonaws.com/",
    ///     data=body, headers={"Content-Type": "application/x-amz-json-1.0",
    ///                         "X-Amz-Target": "DynamoDB_20120810.GetItem"})
    /// a.SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    ///     "session-token-example"), "dynamodb", "eu-central-1").add_auth(r)
    /// print(r.headers["Authorization"])
    /// ```
    #[test]
    fn matches_botocore_on_a_fixed_request() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("session-token-example".into()),
            expires_at: None,
        };
        let body = br#"{"TableName":"mcpgate","Key":{"pk":{"S":"abc"},"sk":{"S":"e"}}}"#;
        let now = parse_iso8601("2026-11-28T12:34:56Z").unwrap();
        let out = sign(
            &creds,
            "eu-central-1",
            "dynamodb",
            &Request {
                method: "POST",
                host: "dynamodb.eu-central-1.amazonaws.com",
                path: "/",
                headers: &[
                    ("Content-Type", "application/x-amz-json-1.0"),
                    ("X-Amz-Target", "DynamoDB_20120810.GetItem"),
                ],
                body,
            },
            now,
        );
        let get = |n: &str| out.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-date"), Some("20261128T123456Z"));
        assert_eq!(get("x-amz-security-token"), Some("session-token-example"));
        assert_eq!(get("authorization"), Some(BOTOCORE_AUTHORIZATION));
    }

    const BOTOCORE_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
        Credential=AKIDEXAMPLE/20261128/eu-central-1/dynamodb/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, \
        Signature=703000f8050794cc30f8f296449df364f2a23e9f2555596545a92bf1c73c34aa";

    #[test]
    fn dates_round_trip() {
        for (text, secs) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2000-02-29T23:59:59Z", 951_868_799),
            ("2026-11-28T12:34:56.789Z", 1_795_869_296),
        ] {
            assert_eq!(parse_iso8601(text), Some(secs), "{text}");
        }
        assert_eq!(amz_date(951_868_799), "20000229T235959Z");
        assert_eq!(parse_iso8601("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso8601("yesterday"), None);
    }
}
