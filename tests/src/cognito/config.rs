//! Emulator configuration: the user pool, its app clients and its users.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The fixture shipped with the crate (`tests/fixtures/cognito-users.json`).
pub const DEFAULT_CONFIG_JSON: &str = include_str!("../../fixtures/cognito-users.json");

/// The three pre-generated RSA-2048 test keys (`tests/fixtures/keys/key{1,2,3}.pem`).
pub const DEFAULT_KEYS_PEM: [&str; 3] = [
    include_str!("../../fixtures/keys/key1.pem"),
    include_str!("../../fixtures/keys/key2.pem"),
    include_str!("../../fixtures/keys/key3.pem"),
];

/// A user pool as the emulator serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CognitoConfig {
    /// AWS region, e.g. `us-east-1` (only used for display and default pool ids).
    pub region: String,
    /// User pool id, e.g. `us-east-1_McpGate01`; the issuer is `{base_url}/{pool_id}`.
    pub pool_id: String,
    /// Lifetime of access and ID tokens in seconds (Cognito's default is 3600).
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime_secs: u64,
    /// Lifetime of authorization codes in seconds (Cognito: 5 minutes).
    #[serde(default = "default_code_lifetime")]
    pub code_lifetime_secs: u64,
    /// Resource servers: identifier + scope names; scope strings are `{identifier}/{name}`.
    #[serde(default)]
    pub resource_servers: Vec<ResourceServerConfig>,
    /// App clients.
    pub clients: Vec<ClientConfig>,
    /// Users.
    pub users: Vec<UserConfig>,
    /// PEM files (PKCS#8) of the signing keys, in rotation order. Empty: the three fixture keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_files: Vec<PathBuf>,
}

/// A resource server (custom scopes for `client_credentials`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServerConfig {
    pub identifier: String,
    pub scopes: Vec<String>,
}

/// An app client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    /// `None`: a public client (no client authentication at the token endpoint).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Callback URLs; matched exactly, like Cognito.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Allowed OAuth scopes (`openid`, `email`, `profile`, `aws.cognito.signin.user.admin`,
    /// or resource-server scopes such as `https://api.example/read`).
    pub allowed_scopes: Vec<String>,
    /// Any of `authorization_code`, `refresh_token`, `client_credentials`.
    pub allowed_grant_types: Vec<String>,
}

/// A user of the pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub username: String,
    pub password: String,
    pub sub: String,
    pub email: String,
    #[serde(default = "default_true")]
    pub email_verified: bool,
    #[serde(default)]
    pub groups: Vec<String>,
}

fn default_token_lifetime() -> u64 {
    3600
}
fn default_code_lifetime() -> u64 {
    300
}
fn default_true() -> bool {
    true
}

impl Default for CognitoConfig {
    /// The shipped fixture: users `alice` (group `admins`) and `bob`; clients `mcpgate-web`,
    /// `m2m-client` and `other-client`.
    fn default() -> Self {
        // The fixture is compiled in and checked by a unit test, so this cannot fail at run time;
        // fall back to an empty pool rather than panicking anyway.
        serde_json::from_str(DEFAULT_CONFIG_JSON).unwrap_or_else(|_| CognitoConfig {
            region: "us-east-1".into(),
            pool_id: "us-east-1_McpGate01".into(),
            token_lifetime_secs: default_token_lifetime(),
            code_lifetime_secs: default_code_lifetime(),
            resource_servers: Vec::new(),
            clients: Vec::new(),
            users: Vec::new(),
            key_files: Vec::new(),
        })
    }
}

impl CognitoConfig {
    /// Load a configuration from a JSON file (same schema as the fixture).
    pub fn from_file(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Self::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parse a configuration from JSON text.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        let config: CognitoConfig = serde_json::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reject configurations the emulator cannot serve.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.pool_id.is_empty(), "pool_id must not be empty");
        anyhow::ensure!(!self.pool_id.contains('/'), "pool_id must not contain '/'");
        for c in &self.clients {
            for g in &c.allowed_grant_types {
                anyhow::ensure!(
                    matches!(
                        g.as_str(),
                        "authorization_code" | "refresh_token" | "client_credentials"
                    ),
                    "client {}: unknown grant type {g}",
                    c.client_id
                );
            }
        }
        Ok(())
    }

    /// Signing keys as PEM text, in rotation order.
    pub fn signing_keys_pem(&self) -> anyhow::Result<Vec<String>> {
        if self.key_files.is_empty() {
            return Ok(DEFAULT_KEYS_PEM.iter().map(|s| s.to_string()).collect());
        }
        self.key_files
            .iter()
            .map(|p| {
                std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
            })
            .collect()
    }

    pub fn client(&self, client_id: &str) -> Option<&ClientConfig> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    pub fn user(&self, username: &str) -> Option<&UserConfig> {
        self.users.iter().find(|u| u.username == username)
    }

    /// All resource-server scopes, as `{identifier}/{scope}`.
    pub fn custom_scopes(&self) -> Vec<String> {
        self.resource_servers
            .iter()
            .flat_map(|rs| {
                rs.scopes
                    .iter()
                    .map(move |s| format!("{}/{}", rs.identifier, s))
            })
            .collect()
    }
}

impl ClientConfig {
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.allowed_grant_types.iter().any(|g| g == grant)
    }
    pub fn allows_scope(&self, scope: &str) -> bool {
        self.allowed_scopes.iter().any(|s| s == scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_parses_and_has_demo_principals() {
        let c = CognitoConfig::from_json(DEFAULT_CONFIG_JSON).unwrap();
        assert_eq!(c, CognitoConfig::default());
        let alice = c.user("alice").unwrap();
        assert_eq!(alice.password, "alice-password");
        assert_eq!(alice.groups, vec!["admins"]);
        assert!(c.user("bob").unwrap().groups.is_empty());
        assert!(c.client("mcpgate-web").unwrap().client_secret.is_some());
        assert!(c
            .client("m2m-client")
            .unwrap()
            .allows_grant("client_credentials"));
        assert!(c.client("other-client").is_some());
        assert_eq!(c.signing_keys_pem().unwrap().len(), 3);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let mut v: serde_json::Value = serde_json::from_str(DEFAULT_CONFIG_JSON).unwrap();
        v["bogus"] = serde_json::json!(1);
        let err = CognitoConfig::from_json(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
