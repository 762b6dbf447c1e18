//! Shared fixtures for the fuzz targets.
#![allow(dead_code)]

use mcpgate_filter::config::parse_json;
use mcpgate_filter::{Gate, Random};

pub struct Xorshift(pub u64);

impl Random for Xorshift {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

pub const JWKS: &str = r#"{"keys":[{"kty":"RSA","kid":"rsa1","alg":"RS256","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","kid":"ed1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

pub fn gate() -> Gate {
    let cfg = serde_json::json!({
        "user_pool_id": "eu-central-1_TEST",
        "client_id": "app-client-id",
        "client_secret": "app-secret",
        "base_url": "https://mcp.example.com",
        "cognito_domain": "https://auth.example.com",
        "jwt_signing_key": "a-signing-key-of-at-least-32-characters!",
        "accepted_client_ids": ["app-client-id"],
        "consent": "remember",
        "claim_headers": {"custom:tenant": "x-tenant"},
        "group_rules": [{"path_prefix": "/mcp/admin", "groups": ["admins"]}],
    });
    match parse_json(cfg.to_string().as_bytes(), &[], &|_| None) {
        Ok(p) => match Gate::new(p.config) {
            Ok(g) => g,
            Err(e) => panic!("fixture gate: {e}"),
        },
        Err(e) => panic!("fixture config: {e}"),
    }
}
