//! Real Envoy running the mcpgate filter (`envoy/`, built for wasm32-wasip1) in front of the
//! demo MCP server, with the Cognito emulator as the IdP. One [`GateStack`] per test, every
//! port chosen by the OS. The listener speaks HTTP/1.1 and HTTP/2 without TLS (h2c, prior
//! knowledge); the filter holds OAuth POSTs at their headers (`allow_on_headers_stop_iteration`
//! set in Envoy and declared to the filter) unless a test asks otherwise.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mcpgate_e2e::envoy_setup::{GateOptions, GateStack};
//! let stack = GateStack::start(GateOptions::default()).await?;
//! println!("MCP at {}", stack.mcp_url());
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::cognito::{CognitoConfig, CognitoEmulator, EmulatorHandle};
use crate::harness::{free_port, retry_if_port_taken, EnvoyProcess};
use crate::origin::{Origin, OriginKind, OriginSettings};

/// Startup deadline for Envoy (V8 compiles the module once per VM).
pub const ENVOY_STARTUP: Duration = Duration::from_secs(60);

/// The dynamic forward proxy cluster of the generated configurations (plain HTTP: the
/// tests' metadata documents are on loopback), for `cimd_cluster`.
pub const CIMD_CLUSTER: &str = "cimd";

/// VM environment secrets used by the generated configurations.
pub const CLIENT_SECRET: &str = "mcpgate-web-secret";
pub const JWT_SIGNING_KEY: &str = "e2e-signing-key-0123456789abcdef0123456789abcdef";

/// Builds the filter once per test process (`scripts/build-envoy-filter.sh`: a no-op cargo
/// check when it is up to date) and returns the `.wasm` path.
pub fn filter_wasm() -> anyhow::Result<PathBuf> {
    static WASM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    WASM.get_or_init(|| crate::harness::build_artifact("build-envoy-filter.sh", ".wasm"))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// How to start a [`GateStack`].
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// Plugin configuration keys laid over [`GateStack::default_config`] (a `null` removes a key).
    pub config: Map<String, Value>,
    /// Envoy worker threads.
    pub concurrency: u32,
    /// The emulator's user pool.
    pub cognito: CognitoConfig,
    /// The MCP server behind Envoy.
    pub origin: OriginKind,
    /// Set `allow_on_headers_stop_iteration` in the Wasm filter's `PluginConfig` (Envoy's side;
    /// the filter's own declaration is the plugin configuration key of the same name).
    pub envoy_stop_iteration: bool,
}

impl Default for GateOptions {
    fn default() -> Self {
        Self {
            config: Map::new(),
            concurrency: 1,
            cognito: CognitoConfig::default(),
            origin: OriginKind::default(),
            envoy_stop_iteration: true,
        }
    }
}

impl GateOptions {
    /// Set (or with `Value::Null`, remove) one configuration key.
    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.config.insert(key.to_owned(), value);
        self
    }
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }
    pub fn origin(mut self, kind: OriginKind) -> Self {
        self.origin = kind;
        self
    }
    /// With or without `allow_on_headers_stop_iteration` in Envoy's `PluginConfig`.
    pub fn envoy_stop_iteration(mut self, on: bool) -> Self {
        self.envoy_stop_iteration = on;
        self
    }
}

/// Emulator + origin MCP server + Envoy with the filter. Dropping it stops all three.
pub struct GateStack {
    pub idp: EmulatorHandle,
    pub origin: Origin,
    pub envoy: EnvoyProcess,
    /// `http://127.0.0.1:{listener port}` (the filter's `base_url`).
    pub base_url: String,
    /// The plugin configuration Envoy was given.
    pub plugin_config: Value,
}

/// Lays `over` over `config`: each key replaces the configuration's, a `null` removes it.
pub fn overlay(config: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (k, v) in over {
        if v.is_null() {
            config.remove(k);
        } else {
            config.insert(k.clone(), v.clone());
        }
    }
}

/// The plugin configuration for an emulator reachable at `idp` and a proxy at `base_url`:
/// client `mcpgate-web`, secrets from the VM environment, cluster `idp` for the emulator,
/// `allow_on_headers_stop_iteration` declared.
pub fn default_config(idp: &EmulatorHandle, base_url: &str) -> Map<String, Value> {
    let v = json!({
        "user_pool_id": idp.pool_id(),
        "aws_region": "us-east-1",
        "client_id": "mcpgate-web",
        "client_secret": {"env": "MCPGATE_CLIENT_SECRET"},
        "jwt_signing_key": {"env": "MCPGATE_JWT_SIGNING_KEY"},
        "base_url": base_url,
        "upstream": {
            "issuer": idp.issuer(),
            "authorization_endpoint": idp.authorization_endpoint(),
            "token_endpoint": idp.token_endpoint(),
            "jwks_uri": idp.jwks_uri(),
            "revocation_endpoint": idp.revocation_endpoint(),
            "userinfo_endpoint": idp.userinfo_endpoint(),
        },
        "clusters": { format!("127.0.0.1:{}", idp.port()): "idp" },
        "allow_on_headers_stop_iteration": true,
        // Every test talks from 127.0.0.1: the rate-limit test sets its own low limits.
        "rate_limit_per_address": 100000,
        "rate_limit_per_client": 100000,
    });
    v.as_object().cloned().unwrap_or_default()
}

/// A complete Envoy configuration (JSON, which Envoy reads as YAML): listener `main` on
/// `listen_port` (0: OS-chosen) for HTTP/1.1 and h2c, admin on an OS-chosen port, the wasm
/// filter with `plugin_config` (and `allow_on_headers_stop_iteration` in its `PluginConfig`
/// when `stop_iteration`), the demo MCP server as cluster `mcp`, the emulator as cluster
/// `idp`, and a dynamic forward proxy cluster [`CIMD_CLUSTER`] that reaches any host.
pub fn envoy_config(
    wasm: &std::path::Path,
    plugin_config: &Value,
    stop_iteration: bool,
    listen_port: u16,
    mcp_port: u16,
    idp_port: u16,
) -> String {
    let cluster = |name: &str, port: u16| {
        json!({
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                    "address": "127.0.0.1", "port_value": port}}}}]}]
            }
        })
    };
    let mut config = json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        // AUTO tells HTTP/2 with prior knowledge (h2c) by its connection preface
                        // and serves HTTP/1.1 otherwise.
                        "codec_type": "AUTO",
                        // The TCP peer is the client address, never X-Forwarded-For.
                        "use_remote_address": true,
                        "route_config": {"virtual_hosts": [{
                            "name": "all",
                            "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"},
                                        "route": {"cluster": "mcp", "timeout": "0s"}}]
                        }]},
                        "http_filters": [
                            {
                                "name": "envoy.filters.http.wasm",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                    "config": {
                                        "name": "mcpgate",
                                        "root_id": "mcpgate",
                                        "fail_open": false,
                                        "allow_on_headers_stop_iteration": stop_iteration,
                                        "vm_config": {
                                            "vm_id": "mcpgate",
                                            "runtime": "envoy.wasm.runtime.v8",
                                            "code": {"local": {"filename": wasm.display().to_string()}},
                                            "environment_variables": {"key_values": {
                                                "MCPGATE_CLIENT_SECRET": CLIENT_SECRET,
                                                "MCPGATE_JWT_SIGNING_KEY": JWT_SIGNING_KEY
                                            }}
                                        },
                                        "configuration": {
                                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                                            "value": plugin_config.to_string()
                                        }
                                    }
                                }
                            },
                            {
                                "name": "envoy.filters.http.router",
                                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
                            }
                        ]
                    }
                }]}]
            }],
            "clusters": [cluster("mcp", mcp_port), cluster("idp", idp_port), {
                "name": CIMD_CLUSTER,
                "connect_timeout": "2s",
                "lb_policy": "CLUSTER_PROVIDED",
                "cluster_type": {
                    "name": "envoy.clusters.dynamic_forward_proxy",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
                        "dns_cache_config": {"name": "cimd_dns", "dns_lookup_family": "V4_ONLY"}
                    }
                }
            }]
        }
    });
    if !stop_iteration {
        // Not merely false: absent, as in a configuration written before Envoy 1.35.
        let wasm_config = "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config\
                           /http_filters/0/typed_config/config";
        if let Some(Value::Object(c)) = config.pointer_mut(wasm_config) {
            c.remove("allow_on_headers_stop_iteration");
        }
    }
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

impl GateStack {
    /// Starts the emulator and the demo MCP server in this runtime, then Envoy; waits until
    /// Envoy is ready and the filter has fetched the IdP's JWKS once.
    pub async fn start(opts: GateOptions) -> anyhow::Result<Self> {
        let wasm = filter_wasm()?;
        let idp = CognitoEmulator::start(opts.cognito.clone()).await?;
        let origin = Origin::start(opts.origin).await?;
        // A port chosen free may be taken before Envoy binds it: another port.
        let (envoy, base_url, plugin_config) = retry_if_port_taken(|| async {
            let port = free_port()?;
            let base_url = format!("http://127.0.0.1:{port}");
            let mut config = default_config(&idp, &base_url);
            overlay(&mut config, &opts.config);
            let plugin_config = Value::Object(config);
            let yaml = envoy_config(
                &wasm,
                &plugin_config,
                opts.envoy_stop_iteration,
                port,
                origin.port(),
                idp.port(),
            );
            let concurrency = opts.concurrency.to_string();
            let envoy = EnvoyProcess::start(
                "envoy-mcpgate",
                &yaml,
                &["--concurrency", &concurrency],
                ENVOY_STARTUP,
            )
            .await?;
            Ok((envoy, base_url, plugin_config))
        })
        .await?;
        idp.add_redirect_uri("mcpgate-web", &format!("{base_url}/auth/callback"))?;
        origin
            .configure(&OriginSettings::for_proxy(
                &base_url,
                &idp.userinfo_endpoint(),
            ))
            .await?;
        let stack = Self {
            idp,
            origin,
            envoy,
            base_url,
            plugin_config,
        };
        // The first JWKS fetch runs from a tick right after start; until it has landed in
        // shared data, tokens of the IdP are answered 503 (no keys yet). Start from a
        // known state: wait for it (the JWKS-down tests take the IdP down only afterwards).
        crate::harness::wait_until(ENVOY_STARTUP, "the filter's first JWKS fetch", || async {
            let ok = stack.counter("mcpgate.jwks_fetch_ok").await.unwrap_or(0);
            (ok >= 1).then_some(())
        })
        .await?;
        Ok(stack)
    }

    /// `{base_url}/mcp`.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url)
    }

    /// A filter counter (`mcpgate.…`) from Envoy's `/stats`, where Envoy lists it under its
    /// custom-metric namespace as `wasmcustom.mcpgate.…`; 0 when not defined yet.
    pub async fn counter(&self, name: &str) -> anyhow::Result<u64> {
        Ok(self
            .envoy
            .stat(&format!("wasmcustom.{name}"))
            .await?
            .unwrap_or(0))
    }
}

/// Starts Envoy with a plugin configuration and returns its error (with Envoy's log) if it
/// refuses to start, `Ok(None)` if it started.
pub async fn envoy_refusal(plugin_config: &Value) -> anyhow::Result<Option<String>> {
    let wasm = filter_wasm()?;
    let yaml = envoy_config(&wasm, plugin_config, true, 0, free_port()?, free_port()?);
    match EnvoyProcess::start("envoy-bad-config", &yaml, &[], ENVOY_STARTUP).await {
        Ok(_) => Ok(None),
        Err(e) => Ok(Some(e.to_string())),
    }
}
