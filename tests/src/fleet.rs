//! Two real Envoy processes with the mcpgate filter sharing one fleet store (`store:
//! "dynamodb"`) on the local AWS of [`crate::aws_local`]: one public `base_url` (process A's
//! address, as a load balancer would give both), the same emulator and origin behind both.
//!
//! Process A gets its AWS credentials the IRSA way — `AWS_ROLE_ARN` and
//! `AWS_WEB_IDENTITY_TOKEN_FILE`, the token file served to the filter by an Envoy internal
//! listener with the `file_server` filter (`files_cluster`), exchanged at moto's STS — and
//! process B the EKS Pod Identity way — `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, the token read the same way and sent to a
//! stand-in agent ([`PodIdentityAgent`]) that answers the IAM user's keys. moto checks every
//! signature and the IAM policy of the user and the role.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::aws_local::{Moto, PodIdentityAgent, Relay};
use crate::cognito::{CognitoConfig, CognitoEmulator, EmulatorHandle};
use crate::envoy_setup::{default_config, envoy_config, filter_wasm, overlay, ENVOY_STARTUP};
use crate::harness::{
    free_port, log_dir, retry_if_port_taken, unique_name, wait_until, EnvoyProcess,
};
use crate::origin::{Origin, OriginKind};

/// The table the fleet tests use.
pub const TABLE: &str = "mcpgate-fleet";
/// The web identity token process A exchanges at STS.
pub const WEB_IDENTITY_TOKEN: &str =
    "eyJhbGciOiJSUzI1NiJ9.e2e-projected-service-account-token.c2ln";
/// The Pod Identity token process B presents to the agent.
pub const POD_IDENTITY_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.e2e-pod-identity-token.c2ln";

/// The local AWS, the IdP, the origin and two Envoy processes.
pub struct Fleet {
    pub idp: EmulatorHandle,
    pub origin: Origin,
    pub moto: Moto,
    /// In front of moto: `down()` makes the store unreachable for both processes.
    pub relay: Relay,
    /// Process B's credentials endpoint.
    pub agent: PodIdentityAgent,
    pub a: EnvoyProcess,
    pub b: EnvoyProcess,
    /// The public URL (`base_url` of both): process A's address.
    pub base_url: String,
    pub url_a: String,
    pub url_b: String,
    /// The directory of A's web identity token file.
    pub token_dir: PathBuf,
}

/// How the processes differ.
enum Credentials<'a> {
    WebIdentity {
        role_arn: &'a str,
        token_file: &'a str,
    },
    Container {
        uri: &'a str,
        token_file: &'a str,
    },
}

/// Where a process reaches the AWS side: the relay to moto, the Pod Identity agent stand-in,
/// the folder of token files.
#[derive(Clone, Copy)]
struct AwsSide<'a> {
    relay_port: u16,
    agent_port: u16,
    token_dir: &'a str,
}

/// The generated Envoy configuration with the fleet store: the DynamoDB cluster (to the
/// relay), the files cluster (an internal listener serving `token_dir`), the AWS variables
/// in the VM environment.
fn fleet_envoy_config(
    plugin: &Value,
    listen_port: u16,
    origin_port: u16,
    idp_port: u16,
    aws: &AwsSide<'_>,
    creds: &Credentials<'_>,
) -> anyhow::Result<String> {
    let AwsSide {
        relay_port,
        agent_port,
        token_dir,
    } = *aws;
    let wasm = filter_wasm()?;
    let text = envoy_config(&wasm, plugin, true, listen_port, origin_port, idp_port);
    let mut config: Value = serde_json::from_str(&text)?;
    let env_path = "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config\
                    /http_filters/0/typed_config/config/vm_config/environment_variables/key_values";
    let env = config
        .pointer_mut(env_path)
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow::anyhow!("no VM environment in the generated config"))?;
    match creds {
        Credentials::WebIdentity {
            role_arn,
            token_file,
        } => {
            env.insert("AWS_ROLE_ARN".into(), json!(role_arn));
            env.insert("AWS_WEB_IDENTITY_TOKEN_FILE".into(), json!(token_file));
            env.insert("AWS_ROLE_SESSION_NAME".into(), json!("mcpgate-e2e"));
        }
        Credentials::Container { uri, token_file } => {
            env.insert("AWS_CONTAINER_CREDENTIALS_FULL_URI".into(), json!(uri));
            env.insert(
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(),
                json!(token_file),
            );
        }
    }
    config["bootstrap_extensions"] = json!([{
        "name": "envoy.bootstrap.internal_listener",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener"}
    }]);
    let files_listener = json!({
        "name": "aws_files",
        "internal_listener": {},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "aws_files",
                "route_config": {"virtual_hosts": [{"name": "files", "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 404}}]}]},
                "http_filters": [
                    {"name": "envoy.filters.http.file_server", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.file_server.v3.FileServerConfig",
                        "manager_config": {"thread_pool": {"thread_count": 1}},
                        "path_mappings": [{"request_path_prefix": format!("{token_dir}/"),
                                           "file_path_prefix": format!("{token_dir}/")}]}},
                    {"name": "envoy.filters.http.router", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                ]
            }
        }]}]
    });
    let clusters = [
        json!({
            "name": "dynamodb",
            "type": "STATIC",
            "connect_timeout": "0.5s",
            "load_assignment": {"cluster_name": "dynamodb", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": relay_port}}}}]}]}
        }),
        json!({
            "name": "pod_identity",
            "type": "STATIC",
            "connect_timeout": "0.5s",
            "load_assignment": {"cluster_name": "pod_identity", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": agent_port}}}}]}]}
        }),
        json!({
            "name": "aws_files",
            "load_assignment": {"cluster_name": "aws_files", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"envoy_internal_address": {"server_listener_name": "aws_files"}}}}]}]}
        }),
    ];
    let statics = config["static_resources"]
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("no static_resources"))?;
    if let Some(Value::Array(l)) = statics.get_mut("listeners") {
        l.push(files_listener);
    }
    if let Some(Value::Array(c)) = statics.get_mut("clusters") {
        c.extend(clusters);
    }
    Ok(serde_json::to_string_pretty(&config)?)
}

impl Fleet {
    /// Starts everything; `config` is laid over the plugin configuration of both processes.
    /// Waits until both fetched the JWKS and A holds credentials from STS.
    pub async fn start(config: Map<String, Value>) -> anyhow::Result<Self> {
        // One unauthenticated call for A's STS exchange (moto cannot check an unsigned one).
        let moto = Moto::start(TABLE, 1).await?;
        let relay = Relay::start(moto.port).await?;
        let agent = PodIdentityAgent::start(moto.keys.clone(), POD_IDENTITY_TOKEN).await?;
        let idp = CognitoEmulator::start(CognitoConfig::default()).await?;
        let origin = Origin::start(OriginKind::Demo).await?;
        let token_dir = log_dir()?.join(unique_name("irsa-token"));
        std::fs::create_dir_all(&token_dir)?;
        let token_file = token_dir.join("token");
        std::fs::write(&token_file, WEB_IDENTITY_TOKEN)?;
        let pod_token_file = token_dir.join("pod-identity-token");
        std::fs::write(&pod_token_file, POD_IDENTITY_TOKEN)?;
        let pod_file = pod_token_file.display().to_string();
        let agent_uri = format!("http://127.0.0.1:{}/v1/credentials", agent.port);
        let dir = token_dir.display().to_string();
        let file = token_file.display().to_string();
        let aws = AwsSide {
            relay_port: relay.port,
            agent_port: agent.port,
            token_dir: &dir,
        };
        let endpoint = format!("http://127.0.0.1:{}", relay.port);
        // Ports chosen free may be taken before Envoy binds them: other ports.
        let (a, plugin, base_url) = retry_if_port_taken(|| async {
            let port_a = free_port()?;
            let base_url = format!("http://127.0.0.1:{port_a}");
            let mut plugin = default_config(&idp, &base_url);
            if let Some(Value::Object(clusters)) = plugin.get_mut("clusters") {
                clusters.insert(format!("127.0.0.1:{}", relay.port), json!("dynamodb"));
                clusters.insert(format!("127.0.0.1:{}", agent.port), json!("pod_identity"));
            }
            plugin.insert("store".into(), json!("dynamodb"));
            plugin.insert(
                "dynamodb".into(),
                json!({"table": TABLE, "region": "eu-central-1", "endpoint": endpoint,
                       "sts_endpoint": endpoint, "files_cluster": "aws_files", "timeout_ms": 1000}),
            );
            overlay(&mut plugin, &config);
            let plugin = Value::Object(plugin);
            let yaml_a = fleet_envoy_config(
                &plugin,
                port_a,
                origin.port(),
                idp.port(),
                &aws,
                &Credentials::WebIdentity {
                    role_arn: &moto.keys.role_arn,
                    token_file: &file,
                },
            )?;
            let a = EnvoyProcess::start("envoy-fleet-a", &yaml_a, &[], ENVOY_STARTUP).await?;
            Ok((a, plugin, base_url))
        })
        .await?;
        // A's credentials first: its STS exchange is moto's one unauthenticated call.
        wait_until(
            ENVOY_STARTUP,
            "process A's AWS credentials from STS",
            || {
                let log = a.child.log();
                async move {
                    log.contains("mcpgate: AWS credentials from web identity")
                        .then_some(())
                }
            },
        )
        .await?;
        let (b, port_b) = retry_if_port_taken(|| async {
            let port_b = free_port()?;
            let yaml_b = fleet_envoy_config(
                &plugin,
                port_b,
                origin.port(),
                idp.port(),
                &aws,
                &Credentials::Container {
                    uri: &agent_uri,
                    token_file: &pod_file,
                },
            )?;
            let b = EnvoyProcess::start("envoy-fleet-b", &yaml_b, &[], ENVOY_STARTUP).await?;
            Ok((b, port_b))
        })
        .await?;
        wait_until(
            ENVOY_STARTUP,
            "process B's AWS credentials from the agent",
            || {
                let log = b.child.log();
                async move {
                    log.contains("mcpgate: AWS credentials from the container credentials endpoint")
                        .then_some(())
                }
            },
        )
        .await?;
        idp.add_redirect_uri("mcpgate-web", &format!("{base_url}/auth/callback"))?;
        for e in [&a, &b] {
            wait_until(ENVOY_STARTUP, "the filter's first JWKS fetch", || async {
                let ok = e
                    .stat("wasmcustom.mcpgate.jwks_fetch_ok")
                    .await
                    .ok()
                    .flatten();
                (ok.unwrap_or(0) >= 1).then_some(())
            })
            .await?;
        }
        Ok(Self {
            idp,
            origin,
            moto,
            relay,
            agent,
            a,
            b,
            url_a: base_url.clone(),
            url_b: format!("http://127.0.0.1:{port_b}"),
            base_url,
            token_dir,
        })
    }

    /// A filter counter of a process (0 when not defined yet).
    pub async fn counter(e: &EnvoyProcess, name: &str) -> u64 {
        e.stat(&format!("wasmcustom.{name}"))
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    /// Waits `timeout` at most for `cond` on a process's log.
    pub async fn wait_log(e: &EnvoyProcess, what: &str, timeout: Duration) -> anyhow::Result<()> {
        wait_until(timeout, what, || {
            let log = e.child.log();
            async move { log.contains(what).then_some(()) }
        })
        .await
    }
}
