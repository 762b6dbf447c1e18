//! The claims mcpgate reads, their types checked strictly, and the time rules.

use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;
use serde_json::Value;

use super::error::TokenError;

/// 9999-12-31T23:59:59Z: later NumericDates are treated as invalid, not as "never".
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// Registered and provider claims. Unknown claims are ignored; a duplicated known claim
/// makes the whole payload invalid.
#[derive(Debug, Default, Deserialize)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    pub aud: Option<Value>,
    pub exp: Option<Value>,
    pub nbf: Option<Value>,
    pub iat: Option<Value>,
    pub jti: Option<String>,
    pub client_id: Option<String>,
    pub token_use: Option<String>,
    pub scope: Option<String>,
    pub scp: Option<Value>,
    pub username: Option<String>,
    #[serde(rename = "cognito:username")]
    pub cognito_username: Option<String>,
    #[serde(rename = "cognito:groups")]
    pub cognito_groups: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub email: Option<String>,
}

/// Reads a NumericDate claim: a non-negative integer no later than year 9999.
pub fn numeric_date(value: &Value, name: &'static str) -> Result<u64, TokenError> {
    value
        .as_u64()
        .filter(|t| *t <= MAX_NUMERIC_DATE)
        .ok_or(TokenError::InvalidClaim(name))
}

impl Claims {
    pub fn from_json(json: &[u8]) -> Result<Self, TokenError> {
        serde_json::from_slice(json).map_err(|_| TokenError::BadJson)
    }

    /// Checks `exp` (required) and `nbf` (optional) against `now` with `leeway` seconds.
    /// Returns `exp`.
    pub fn check_time(&self, now: u64, leeway: u64) -> Result<u64, TokenError> {
        let exp = numeric_date(
            self.exp.as_ref().ok_or(TokenError::MissingClaim("exp"))?,
            "exp",
        )?;
        if exp.saturating_add(leeway) <= now {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = &self.nbf {
            if numeric_date(nbf, "nbf")? > now.saturating_add(leeway) {
                return Err(TokenError::NotYetValid);
            }
        }
        if let Some(iat) = &self.iat {
            numeric_date(iat, "iat")?;
        }
        Ok(exp)
    }

    /// True when `aud` is `audience` or an array containing it.
    pub fn audience_contains(&self, audience: &str) -> Result<bool, TokenError> {
        match &self.aud {
            None => Ok(false),
            Some(Value::String(s)) => Ok(s == audience),
            Some(Value::Array(items)) => {
                let mut found = false;
                for item in items {
                    match item {
                        Value::String(s) => found |= s == audience,
                        _ => return Err(TokenError::InvalidClaim("aud")),
                    }
                }
                Ok(found)
            }
            Some(_) => Err(TokenError::InvalidClaim("aud")),
        }
    }

    /// The granted scopes: `scope` (space-delimited) or `scp` (string or array).
    pub fn scopes(&self) -> Result<Vec<&str>, TokenError> {
        if let Some(scope) = &self.scope {
            return Ok(scope.split(' ').filter(|s| !s.is_empty()).collect());
        }
        match &self.scp {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(s.split(' ').filter(|s| !s.is_empty()).collect()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or(TokenError::InvalidClaim("scp")))
                .collect(),
            Some(_) => Err(TokenError::InvalidClaim("scp")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Result<Claims, TokenError> {
        Claims::from_json(json.as_bytes())
    }

    #[test]
    fn exp_must_be_a_plain_integer() {
        let now = 1_000;
        assert_eq!(
            claims(r#"{"exp":2000}"#).unwrap().check_time(now, 0),
            Ok(2000)
        );
        for bad in [
            r#""2000""#,
            "2000.5",
            "-5",
            "1e400",
            "253402300800",
            "true",
            "[1]",
        ] {
            let c = claims(&alloc::format!(r#"{{"exp":{bad}}}"#));
            match c {
                Ok(c) => assert_eq!(
                    c.check_time(now, 0),
                    Err(TokenError::InvalidClaim("exp")),
                    "{bad}"
                ),
                Err(e) => assert_eq!(e, TokenError::BadJson, "{bad}"),
            }
        }
        assert_eq!(
            claims("{}").unwrap().check_time(now, 0),
            Err(TokenError::MissingClaim("exp"))
        );
        let null = claims(r#"{"exp":null}"#).unwrap();
        assert_eq!(
            null.check_time(now, 0),
            Err(TokenError::MissingClaim("exp"))
        );
    }

    #[test]
    fn leeway_applies_to_exp_and_nbf() {
        let c = claims(r#"{"exp":1000,"nbf":1040}"#).unwrap();
        assert_eq!(c.check_time(1020, 30), Ok(1000));
        assert_eq!(c.check_time(1030, 30), Err(TokenError::Expired));
        assert_eq!(c.check_time(1000, 0), Err(TokenError::Expired));
        let c = claims(r#"{"exp":5000,"nbf":1040}"#).unwrap();
        assert_eq!(c.check_time(1000, 30), Err(TokenError::NotYetValid));
        assert_eq!(c.check_time(1010, 30), Ok(5000));
        let c = claims(r#"{"exp":5000,"nbf":"soon"}"#).unwrap();
        assert_eq!(c.check_time(1010, 30), Err(TokenError::InvalidClaim("nbf")));
    }

    #[test]
    fn duplicate_known_claims_are_rejected() {
        assert_eq!(
            claims(r#"{"sub":"a","sub":"b"}"#).unwrap_err(),
            TokenError::BadJson
        );
        assert_eq!(
            claims(r#"{"exp":1,"exp":2}"#).unwrap_err(),
            TokenError::BadJson
        );
    }

    #[test]
    fn wrongly_typed_claims_are_rejected() {
        assert_eq!(claims(r#"{"sub":5}"#).unwrap_err(), TokenError::BadJson);
        assert_eq!(
            claims(r#"{"cognito:groups":"admins"}"#).unwrap_err(),
            TokenError::BadJson
        );
        assert_eq!(claims("[]").unwrap_err(), TokenError::BadJson);
        let c = claims(r#"{"aud":5}"#).unwrap();
        assert_eq!(
            c.audience_contains("x"),
            Err(TokenError::InvalidClaim("aud"))
        );
        let c = claims(r#"{"scp":{"a":1}}"#).unwrap();
        assert_eq!(c.scopes(), Err(TokenError::InvalidClaim("scp")));
    }

    #[test]
    fn audience_and_scopes() {
        let c = claims(r#"{"aud":["a","b"],"scope":"openid  email"}"#).unwrap();
        assert_eq!(c.audience_contains("b"), Ok(true));
        assert_eq!(c.audience_contains("c"), Ok(false));
        assert_eq!(c.scopes().unwrap(), ["openid", "email"]);
        let c = claims(r#"{"scp":["read","write"]}"#).unwrap();
        assert_eq!(c.scopes().unwrap(), ["read", "write"]);
    }
}
