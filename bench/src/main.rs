//! `bench-envoy`: one Envoy binary, one pinned worker, one load generator (wrk, pinned to the
//! other core), every setup measured interleaved (A B C … A B C …) against a
//! `direct_response` upstream so only the filter is measured. Prints requests/s, p50/p99 and
//! Envoy CPU µs per request (from /proc), ratios against `jwt_authn`, the filter size and
//! Envoy's memory after 100k and 1M requests; writes the same to bench/RESULTS.md.
//! Rows 9 compare MCP POSTs (JSON-RPC bodies, `Mcp-Method` / `Mcp-Name` headers) without and
//! with a 10-rule `tool_rules` set, and a `tools/list` answer (20 tools, JSON, answered by
//! Envoy's `direct_response`) without and with filtering.
//!
//! Usage: `cargo run --release -p mcpgate-bench -- [--seconds 5] [--rounds 3] [--rows 4,4s,4d]`
//! (scripts/bench.sh builds the filter, installs wrk and runs this; `--rows` runs only those
//! rows and writes nothing). Rows 4s/5s and 4d/5d run the MCP path with `store: shared_data`
//! and `store: dynamodb` (the local moto server of `scripts/ensure-aws-local.sh`). `--oauth N`
//! instead times N complete OAuth flows per store ([`oauth`]). Rows F/F0/FG run FastMCP in the
//! same rounds ([`fastmcp`]); `--workerd` instead measures the Worker in workerd ([`workerd`]).

mod fastmcp;
mod oauth;
mod workerd;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use mcpgate_e2e::aws_local::Moto;
use mcpgate_e2e::cognito::{CognitoConfig, CognitoEmulator, MintRequest, TokenTemplate};
use mcpgate_e2e::envoy_setup::filter_wasm;
use mcpgate_e2e::harness::{log_dir, EnvoyProcess};
use mcpgate_filter::access_token::{self, Subject};
use serde_json::{json, Value};

const ENVOY_CPU: &str = "1";
const WRK_CPU: &str = "0";
const DISTINCT: usize = 1000;

#[derive(Clone)]
enum Load {
    /// One Authorization header value (or none) on every request.
    Fixed(Option<String>),
    /// Rotate through these bearer tokens.
    Rotate(PathBuf),
    /// An MCP POST: this bearer token, JSON-RPC body and extra headers on every request.
    Post {
        token: String,
        body: String,
        headers: Vec<(&'static str, &'static str)>,
    },
}

struct Row {
    id: &'static str,
    name: &'static str,
    instance: usize,
    load: Load,
    expect_2xx: bool,
}

#[derive(Default, Clone)]
struct Sample {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us: f64,
    disturbed: bool,
    non2xx: u64,
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn clk_tck() -> f64 {
    100.0
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).context("stat")?;
    let f: Vec<&str> = after.split_whitespace().collect();
    Ok(f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?)
}

/// Busy ticks of the whole machine.
fn machine_busy() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let cpu = stat.lines().next().context("/proc/stat")?;
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Ok(v.iter().sum::<u64>() - idle)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .context("VmRSS")
}

fn pin(pid: u32, cpu: &str) -> anyhow::Result<()> {
    let ok = Command::new("taskset")
        .args(["-a", "-cp", cpu, &pid.to_string()])
        .output()?
        .status
        .success();
    if !ok {
        bail!("taskset failed for pid {pid}");
    }
    Ok(())
}

/// A `tools/list` answer with 20 tools (JSON-RPC id 1).
fn tools_list_answer() -> String {
    let names = [
        "whoami",
        "search",
        "fetch_page",
        "admin_users",
        "admin_logs",
        "delete_user",
        "write_file",
        "deploy",
        "billing_report",
        "echo",
        "count",
        "t1",
        "t2",
        "t3",
        "t4",
        "t5",
        "t6",
        "t7",
        "t8",
        "t9",
    ];
    let tools: Vec<Value> = names
        .iter()
        .map(|n| {
            json!({"name": n, "description": format!("The {n} tool"),
                   "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}})
        })
        .collect();
    json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}).to_string()
}

/// "ok" for everything; the 20-tool `tools/list` answer for requests saying `Mcp-Method:
/// tools/list`.
fn direct_response_route() -> Value {
    json!({"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
        {"match": {"prefix": "/", "headers": [{"name": "mcp-method", "string_match": {"exact": "tools/list"}}]},
         "direct_response": {"status": 200, "body": {"inline_string": tools_list_answer()}},
         "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"},
                                      "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]},
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}
    ]}]})
}

/// The 10 rules of rows 9r and 9lf: groups, scopes, claims, globs, other methods; the
/// benchmarked call (`whoami`) is matched by the last one.
fn ten_rules() -> Value {
    json!([
        {"name": "admin_*", "groups": ["admins"]},
        {"name": "delete_*", "scopes": ["mcp/write"], "groups": ["admins"]},
        {"name": "write_*", "scopes": ["mcp/write"]},
        {"name": "deploy", "groups": ["ops"]},
        {"name": "billing_*", "claims": {"custom:tenant": "acme"}},
        {"method": "resources/read", "name": "file:///secret/*", "scopes": ["files"]},
        {"method": "prompts/get", "name": "internal_*", "groups": ["staff"]},
        {"name": "search", "scopes": ["openid"]},
        {"name": "fetch_*", "scopes": ["email"]},
        {"name": "whoami"},
    ])
}

fn envoy_yaml(filters: Vec<Value>, idp_port: u16) -> String {
    envoy_yaml_with(filters, idp_port, None)
}

/// [`envoy_yaml`] with a `dynamodb` cluster to a local DynamoDB on `dynamodb_port`.
fn envoy_yaml_with(filters: Vec<Value>, idp_port: u16, dynamodb_port: Option<u16>) -> String {
    let mut http_filters = filters;
    http_filters.push(json!({"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}));
    let cfg = json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "bench",
                        "use_remote_address": true,
                        "route_config": direct_response_route(),
                        "http_filters": http_filters,
                    }
                }]}]
            }],
            "clusters": [{
                "name": "idp", "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "idp", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": idp_port}}}}]}]}
            }]
        }
    });
    let mut cfg = cfg;
    if let (Some(port), Some(Value::Array(clusters))) =
        (dynamodb_port, cfg.pointer_mut("/static_resources/clusters"))
    {
        clusters.push(json!({
            "name": "dynamodb", "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": "dynamodb", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}
        }));
    }
    serde_json::to_string_pretty(&cfg).unwrap_or_default()
}

fn jwt_authn(issuer: &str, jwks: &str, cache: bool) -> Value {
    let mut provider =
        json!({"issuer": issuer, "local_jwks": {"inline_string": jwks}, "forward": false});
    if cache {
        provider["jwt_cache_config"] = json!({"jwt_cache_size": 1000});
    }
    json!({"name": "envoy.filters.http.jwt_authn", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        "providers": {"cognito": provider},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "cognito"}}]
    }})
}

fn mcpgate(wasm: &Path, plugin: &Value) -> Value {
    mcpgate_env(wasm, plugin, json!({}))
}

/// [`mcpgate`] with these variables in the VM environment.
fn mcpgate_env(wasm: &Path, plugin: &Value, env: Value) -> Value {
    json!({"name": "envoy.filters.http.wasm", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": "mcpgate", "root_id": "mcpgate",
            // OAuth POSTs held at their headers (declared in the plugin JSON too).
            "allow_on_headers_stop_iteration": true,
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": plugin.to_string()},
            "vm_config": {"vm_id": "mcpgate", "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": wasm.display().to_string()}},
                          "environment_variables": {"key_values": env}}
        }
    }})
}

/// Envoy's buffer filter: the request reaches the router whole. Rows 9 put it behind mcpgate
/// with and without rules alike, so `direct_response` answers after the body in both (answered
/// at the headers, Envoy closes HTTP/1.1 connections whose body is still coming, and wrk
/// reconnects: a cost of the bench's upstream, not of the filter).
fn buffer() -> Value {
    json!({"name": "envoy.filters.http.buffer", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
        "max_request_bytes": 1048576
    }})
}

fn wrk_script(dir: &Path, load: &Load) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("wrk-{}.lua", std::process::id()));
    let lua = match load {
        Load::Fixed(_) => "".to_string(),
        Load::Post {
            token,
            body,
            headers,
        } => {
            let mut lua = format!(
                "wrk.method = \"POST\"\nwrk.body = [[{body}]]\n\
                 wrk.headers[\"Content-Type\"] = \"application/json\"\n\
                 wrk.headers[\"Accept\"] = \"application/json, text/event-stream\"\n\
                 wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n"
            );
            for (k, v) in headers {
                lua.push_str(&format!("wrk.headers[\"{k}\"] = \"{v}\"\n"));
            }
            lua
        }
        Load::Rotate(file) => format!(
            "local tokens = {{}}\nfor line in io.lines(\"{}\") do tokens[#tokens + 1] = \"Bearer \" .. line end\nlocal i = 0\nrequest = function()\n  i = i % #tokens + 1\n  return wrk.format(\"GET\", \"/mcp\", {{[\"Authorization\"] = tokens[i]}})\nend\n",
            file.display()
        ),
    };
    std::fs::write(&path, lua)?;
    Ok(path)
}

fn parse_ms(v: &str) -> f64 {
    let num: f64 = v
        .trim_end_matches(|c: char| c.is_alphabetic())
        .parse()
        .unwrap_or(0.0);
    if v.ends_with("us") {
        num / 1000.0
    } else if v.ends_with("ms") {
        num
    } else if v.ends_with('s') {
        num * 1000.0
    } else {
        num
    }
}

/// CPU ticks used by waited-for children (wrk) so far.
fn children_ticks() -> u64 {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime) + us(ru.ru_stime)) / 10_000
}

fn run_wrk(
    port: u16,
    load: &Load,
    seconds: u64,
    dir: &Path,
) -> anyhow::Result<(u64, f64, f64, u64, u64)> {
    let script = wrk_script(dir, load)?;
    let mut cmd = Command::new("taskset");
    cmd.args([
        "-c",
        WRK_CPU,
        "wrk",
        "-t1",
        "-c16",
        &format!("-d{seconds}s"),
        "--latency",
        "-s",
    ])
    .arg(&script);
    if let Load::Fixed(Some(h)) = load {
        cmd.args(["-H", &format!("Authorization: {h}")]);
    }
    cmd.arg(format!("http://127.0.0.1:{port}/mcp"));
    let ticks0 = children_ticks();
    let out = cmd.output().context("running wrk (apt-get install wrk)")?;
    let wrk_ticks = children_ticks() - ticks0;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("wrk output: {text}"))?;
    let pct = |p: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(parse_ms)
            .unwrap_or(0.0)
    };
    let non2xx = text
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Ok((requests, pct("50%"), pct("99%"), non2xx, wrk_ticks))
}

async fn measure(
    envoy: &EnvoyProcess,
    port: u16,
    load: &Load,
    seconds: u64,
    dir: &Path,
) -> anyhow::Result<Sample> {
    let pid = envoy.child.pid();
    let cpu0 = cpu_ticks(pid)?;
    let busy0 = machine_busy()?;
    let (requests, p50, p99, non2xx, wrk_ticks) = run_wrk(port, load, seconds, dir)?;
    let cpu = cpu_ticks(pid)? - cpu0;
    let busy = machine_busy()? - busy0;
    // Whatever the machine did beyond Envoy and wrk was someone else's load.
    let others = busy.saturating_sub(cpu).saturating_sub(wrk_ticks);
    Ok(Sample {
        rps: requests as f64 / seconds as f64,
        p50_ms: p50,
        p99_ms: p99,
        cpu_us: cpu as f64 / clk_tck() * 1e6 / requests.max(1) as f64,
        disturbed: others as f64 > 0.10 * seconds as f64 * clk_tck(),
        non2xx,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

async fn requests_total(envoy: &EnvoyProcess) -> u64 {
    envoy
        .stat("http.bench.downstream_rq_total")
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--oauth") {
        let table = oauth::run(arg("--oauth", 30) as usize).await?;
        println!("{table}");
        return Ok(());
    }
    if std::env::args().any(|a| a == "--workerd") {
        println!("{}", workerd::run().await?);
        return Ok(());
    }
    let seconds = arg("--seconds", 5);
    let rounds = arg("--rounds", 3);
    let dir = log_dir()?;
    let wasm = match std::env::args().skip_while(|a| a != "--wasm").nth(1) {
        Some(p) => PathBuf::from(p),
        None => filter_wasm()?,
    };
    let only: Option<Vec<String>> = std::env::args()
        .skip_while(|a| a != "--rows")
        .nth(1)
        .map(|r| r.split(',').map(String::from).collect());
    let wasm_size = std::fs::metadata(&wasm)?.len();

    // The IdP: the Cognito emulator (JWKS for mcpgate, keys for the RS256 tokens).
    let idp = CognitoEmulator::start(CognitoConfig::default()).await?;
    let jwks = idp.jwks().to_string();
    let machine = |i: usize| -> anyhow::Result<String> {
        idp.mint(
            &MintRequest::template(TokenTemplate::Machine, "", "m2m-client")
                .claim("jti", json!(format!("bench-{i}"))),
        )
    };
    let cognito_one = machine(0)?;
    let cognito_file = dir.join("bench-cognito-tokens.txt");
    std::fs::write(
        &cognito_file,
        (1..=DISTINCT)
            .map(machine)
            .collect::<anyhow::Result<Vec<_>>>()?
            .join("\n"),
    )?;

    let key = "bench-signing-key-of-at-least-32-characters";
    let plugin = json!({
        "user_pool_id": idp.pool_id(), "aws_region": "us-east-1",
        "client_id": "mcpgate-web", "client_secret": "mcpgate-web-secret",
        "base_url": "http://127.0.0.1:10000",
        "jwt_signing_key": key,
        "accepted_client_ids": ["m2m-client"],
        "required_scopes": [],
        "upstream": {"issuer": idp.issuer(), "authorization_endpoint": idp.authorization_endpoint(),
                     "token_endpoint": idp.token_endpoint(), "jwks_uri": idp.jwks_uri()},
        "clusters": {format!("127.0.0.1:{}", idp.port()): "idp"},
        "store": "none",
        "allow_on_headers_stop_iteration": true,
    });
    // The proxy's own tokens, minted by the same core the filter runs.
    let core_cfg = {
        let mut c = plugin.clone();
        if let Some(o) = c.as_object_mut() {
            o.remove("clusters");
            o.remove("store");
            o.remove("allow_on_headers_stop_iteration");
        }
        mcpgate_filter::config::parse_json(c.to_string().as_bytes(), &[], &|_| None)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .config
    };
    let gate = mcpgate_filter::Gate::new(core_cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    struct Rng(u64);
    impl mcpgate_filter::Random for Rng {
        fn fill(&mut self, buf: &mut [u8]) {
            for b in buf {
                self.0 = self
                    .0
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *b = (self.0 >> 33) as u8;
            }
        }
    }
    let mut rng = Rng(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    // `grant`: the token names its grant (`sid`), as the tokens issued at /token do: with a
    // store, every request then checks the grant's revocation.
    let mut mint_own = |i: usize, grant: bool| -> anyhow::Result<String> {
        let subject = Subject {
            client_id: "bench-client".into(),
            sub: format!("user-{i}"),
            scope: "openid email".into(),
            username: Some(format!("user{i}")),
            groups: vec!["admins".into()],
            email: None,
            extra: vec![],
            sid: grant.then(|| format!("bench-grant-{i}")),
        };
        let mut env = mcpgate_filter::Env {
            now,
            random: &mut rng,
            upstream_keys: None,
            store: false,
            native_rsa: None,
            cache: None,
        };
        access_token::mint(&gate, &subject, 3600, &mut env).context("mint")
    };
    let own_one = mint_own(0, false)?;
    let own_file = dir.join("bench-own-tokens.txt");
    std::fs::write(
        &own_file,
        (1..=DISTINCT)
            .map(|i| mint_own(i, false))
            .collect::<anyhow::Result<Vec<_>>>()?
            .join("\n"),
    )?;
    let granted_one = mint_own(0, true)?;
    let granted_file = dir.join("bench-own-granted-tokens.txt");
    std::fs::write(
        &granted_file,
        (1..=DISTINCT)
            .map(|i| mint_own(i, true))
            .collect::<anyhow::Result<Vec<_>>>()?
            .join("\n"),
    )?;

    let mut pure_plugin = plugin.clone();
    pure_plugin["native_rsa"] = json!(false);
    let mut store_plugin = plugin.clone();
    store_plugin["store"] = json!("shared_data");
    let mut rules_plugin = plugin.clone();
    rules_plugin["tool_rules"] = ten_rules();
    rules_plugin["filter_tools_list"] = json!(true);
    // The fleet store on the local moto server (its signature and policy checks on).
    let wants = |ids: &[&str]| {
        only.as_ref()
            .is_none_or(|o| o.iter().any(|x| ids.contains(&x.as_str())))
    };
    let moto = if wants(&["4d", "5d"]) {
        Some(Moto::start("mcpgate-bench", 0).await?)
    } else {
        None
    };
    let dynamodb_config = moto.as_ref().map(|m| {
        let mut p = plugin.clone();
        p["store"] = json!("dynamodb");
        p["dynamodb"] = json!({"table": m.table, "region": "eu-central-1",
                               "endpoint": format!("http://127.0.0.1:{}", m.port)});
        p["clusters"][format!("127.0.0.1:{}", m.port)] = json!("dynamodb");
        let env = json!({"AWS_ACCESS_KEY_ID": m.keys.access_key_id,
                         "AWS_SECRET_ACCESS_KEY": m.keys.secret_access_key});
        envoy_yaml_with(vec![mcpgate_env(&wasm, &p, env)], idp.port(), Some(m.port))
    });
    let configs = [
        envoy_yaml(vec![], idp.port()),
        envoy_yaml(vec![jwt_authn(&idp.issuer(), &jwks, false)], idp.port()),
        envoy_yaml(vec![jwt_authn(&idp.issuer(), &jwks, true)], idp.port()),
        envoy_yaml(vec![mcpgate(&wasm, &plugin)], idp.port()),
        envoy_yaml(vec![mcpgate(&wasm, &pure_plugin)], idp.port()),
        envoy_yaml(vec![mcpgate(&wasm, &store_plugin)], idp.port()),
        envoy_yaml(vec![mcpgate(&wasm, &rules_plugin), buffer()], idp.port()),
        envoy_yaml(vec![mcpgate(&wasm, &plugin), buffer()], idp.port()),
        dynamodb_config.unwrap_or_default(),
    ];
    let mut envoys = Vec::new();
    for (i, yaml) in configs.iter().enumerate() {
        if yaml.is_empty() {
            envoys.push(None);
            continue;
        }
        match EnvoyProcess::start(&format!("bench-{i}"), yaml, &[], Duration::from_secs(60)).await {
            Ok(e) => {
                pin(e.child.pid(), ENVOY_CPU)?;
                let port = e.listener_port("main").await?;
                envoys.push(Some((e, port)));
            }
            Err(err) if i == 4 => {
                eprintln!("pure-Rust RSA row skipped (host has no `native_rsa` switch): {err:#}");
                envoys.push(None);
            }
            Err(err) => return Err(err),
        }
    }
    // Let the filters fetch the JWKS before measuring.
    tokio::time::sleep(Duration::from_millis(0)).await;
    for (e, port) in envoys.iter().flatten() {
        let probe = Load::Fixed(Some(format!("Bearer {cognito_one}")));
        let _ = mcpgate_e2e::harness::wait_until(
            Duration::from_secs(30),
            "the filter to have keys",
            || {
                let ok = run_wrk(*port, &probe, 1, &dir)
                    .map(|r| r.3 == 0)
                    .unwrap_or(false);
                async move { ok.then_some(()) }
            },
        )
        .await;
        let _ = e;
    }

    // The MCP requests of rows 9: a tool call and a tools/list, with the 2026-07-28 headers.
    let call_body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;
    let list_body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    let mcp_call = Load::Post {
        token: own_one.clone(),
        body: call_body.into(),
        headers: vec![("Mcp-Method", "tools/call"), ("Mcp-Name", "whoami")],
    };
    let mcp_list = Load::Post {
        token: own_one.clone(),
        body: list_body.into(),
        headers: vec![("Mcp-Method", "tools/list")],
    };
    // The rules instance filters for real: 4 of the 20 tools are not the caller's.
    if let Some(Some((_, port))) = envoys.get(6) {
        let answer = mcpgate_e2e::harness::http_client()
            .post(format!("http://127.0.0.1:{port}/mcp"))
            .header("authorization", format!("Bearer {own_one}"))
            .header("content-type", "application/json")
            .header("mcp-method", "tools/list")
            .body(list_body)
            .send()
            .await?
            .text()
            .await?;
        let v: Value = serde_json::from_str(&answer).context("tools/list answer")?;
        let n = v["result"]["tools"].as_array().map_or(0, Vec::len);
        if n != 16 || answer.contains("delete_user") {
            bail!("the rules instance did not filter tools/list: {answer}");
        }
    }

    let bearer = |t: &str| Some(format!("Bearer {t}"));
    let rows = vec![
        Row {
            id: "1",
            name: "no auth filter",
            instance: 0,
            load: Load::Fixed(bearer(&cognito_one)),
            expect_2xx: true,
        },
        Row {
            id: "2",
            name: "jwt_authn RS256, no cache",
            instance: 1,
            load: Load::Fixed(bearer(&cognito_one)),
            expect_2xx: true,
        },
        Row {
            id: "3",
            name: "jwt_authn RS256 + jwt_cache_config",
            instance: 2,
            load: Load::Fixed(bearer(&cognito_one)),
            expect_2xx: true,
        },
        Row {
            id: "4",
            name: "mcpgate, own token repeated",
            instance: 3,
            load: Load::Fixed(bearer(&own_one)),
            expect_2xx: true,
        },
        Row {
            id: "5",
            name: "mcpgate, 1000 own tokens rotated",
            instance: 3,
            load: Load::Rotate(own_file.clone()),
            expect_2xx: true,
        },
        Row {
            id: "4s",
            name: "mcpgate with the store (revocation check), own token repeated",
            instance: 5,
            load: Load::Fixed(bearer(&granted_one)),
            expect_2xx: true,
        },
        Row {
            id: "5s",
            name: "mcpgate with the store (revocation check), 1000 own tokens rotated",
            instance: 5,
            load: Load::Rotate(granted_file.clone()),
            expect_2xx: true,
        },
        Row {
            id: "4d",
            name: "mcpgate with the DynamoDB store (revocation check on the replica), own token repeated",
            instance: 8,
            load: Load::Fixed(bearer(&granted_one)),
            expect_2xx: true,
        },
        Row {
            id: "5d",
            name: "mcpgate with the DynamoDB store (revocation check on the replica), 1000 own tokens rotated",
            instance: 8,
            load: Load::Rotate(granted_file.clone()),
            expect_2xx: true,
        },
        Row {
            id: "6",
            name: "mcpgate, 1000 Cognito RS256 tokens rotated (native)",
            instance: 3,
            load: Load::Rotate(cognito_file.clone()),
            expect_2xx: true,
        },
        Row {
            id: "6b",
            name: "mcpgate, 1000 Cognito RS256 tokens rotated (pure Rust)",
            instance: 4,
            load: Load::Rotate(cognito_file.clone()),
            expect_2xx: true,
        },
        Row {
            id: "7",
            name: "mcpgate, Cognito RS256 token repeated",
            instance: 3,
            load: Load::Fixed(bearer(&cognito_one)),
            expect_2xx: true,
        },
        Row {
            id: "8a",
            name: "mcpgate, no token (401)",
            instance: 3,
            load: Load::Fixed(None),
            expect_2xx: false,
        },
        Row {
            id: "8b",
            name: "mcpgate, garbage token (401)",
            instance: 3,
            load: Load::Fixed(bearer("garbage.token.here")),
            expect_2xx: false,
        },
        Row {
            id: "9",
            name: "mcpgate, MCP POST tools/call, own token, no tool_rules",
            instance: 7,
            load: mcp_call.clone(),
            expect_2xx: true,
        },
        Row {
            id: "9r",
            name: "mcpgate, MCP POST tools/call, own token, 10 tool_rules",
            instance: 6,
            load: mcp_call,
            expect_2xx: true,
        },
        Row {
            id: "9l",
            name: "mcpgate, tools/list (20 tools, JSON), no tool_rules",
            instance: 7,
            load: mcp_list.clone(),
            expect_2xx: true,
        },
        Row {
            id: "9lf",
            name: "mcpgate, tools/list filtered by 10 tool_rules",
            instance: 6,
            load: mcp_list,
            expect_2xx: true,
        },
    ];
    let rows: Vec<Row> = rows
        .into_iter()
        .filter(|r| only.as_ref().is_none_or(|o| o.iter().any(|x| x == r.id)))
        .collect();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); rows.len()];
    // Rows F/F0/FG: FastMCP in the same rounds (bench/src/fastmcp.rs).
    let mut peers = match wants(&["F", "F0", "FG"]) {
        true => fastmcp::Peers::start(&idp, &wasm, &plugin, &own_one).await?,
        false => None,
    };
    for round in 0..rounds {
        for (i, row) in rows.iter().enumerate() {
            let Some((e, port)) = envoys.get(row.instance).and_then(Option::as_ref) else {
                continue;
            };
            let s = measure(e, *port, &row.load, seconds, &dir).await?;
            eprintln!(
                "round {} row {:>3}: {:>9.0} req/s {:>7.1} µs/req{}",
                round + 1,
                row.id,
                s.rps,
                s.cpu_us,
                if s.disturbed { "  (disturbed)" } else { "" }
            );
            if row.expect_2xx && s.non2xx > 0 {
                bail!(
                    "row {} got {} non-2xx answers: the setup is wrong",
                    row.id,
                    s.non2xx
                );
            }
            samples[i].push(s);
        }
        if let Some(p) = peers.as_mut() {
            p.measure_round(seconds, &dir)?;
        }
    }

    // Memory: a fresh mcpgate Envoy, distinct own and Cognito tokens, after 100k and 1M requests.
    let mut rss = Vec::new();
    if only.is_none() {
        let mem_envoy =
            EnvoyProcess::start("bench-memory", &configs[3], &[], Duration::from_secs(60)).await?;
        pin(mem_envoy.child.pid(), ENVOY_CPU)?;
        let mem_port = mem_envoy.listener_port("main").await?;
        for target in [100_000u64, 1_000_000] {
            let mut flip = false;
            while requests_total(&mem_envoy).await < target {
                let load = if flip {
                    Load::Rotate(cognito_file.clone())
                } else {
                    Load::Rotate(own_file.clone())
                };
                flip = !flip;
                run_wrk(mem_port, &load, 2, &dir)?;
            }
            rss.push((
                requests_total(&mem_envoy).await,
                rss_kib(mem_envoy.child.pid())?,
            ));
        }
    }

    // Report.
    let med = |i: usize, f: fn(&Sample) -> f64| median(samples[i].iter().map(f).collect());
    let cpu: Vec<f64> = (0..rows.len()).map(|i| med(i, |s| s.cpu_us)).collect();
    let by_id = |id: &str| {
        rows.iter()
            .position(|r| r.id == id)
            .and_then(|i| cpu.get(i).copied())
            .filter(|v| *v > 0.0)
            .unwrap_or(f64::NAN)
    };
    let (r2, r3) = (by_id("2"), by_id("3"));
    let mut out = String::new();
    let _ = writeln!(out, "# Envoy benchmark ({rounds} interleaved rounds × {seconds} s, Envoy 1 worker pinned to CPU {ENVOY_CPU}, wrk -t1 -c16 pinned to CPU {WRK_CPU})\n");
    let _ = writeln!(out, "| row | setup | req/s | p50 ms | p99 ms | Envoy CPU µs/req | ÷ row 2 | ÷ row 3 | disturbed rounds |");
    let _ = writeln!(
        out,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for (i, row) in rows.iter().enumerate() {
        if samples[i].is_empty() {
            let _ = writeln!(
                out,
                "| {} | {} | — | — | — | — | — | — | skipped |",
                row.id, row.name
            );
            continue;
        }
        let disturbed = samples[i].iter().filter(|s| s.disturbed).count();
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {:.2} | {:.2} | {}/{} |",
            row.id,
            row.name,
            med(i, |s| s.rps),
            med(i, |s| s.p50_ms),
            med(i, |s| s.p99_ms),
            cpu[i],
            cpu[i] / r2,
            cpu[i] / r3,
            disturbed,
            samples[i].len()
        );
    }
    let check = |name: &str, value: f64, limit: f64| {
        format!(
            "| {name} | {value:.2} | {limit:.2} | {} |",
            if value <= limit { "met" } else { "NOT met" }
        )
    };
    let _ = writeln!(
        out,
        "\n| target | measured | limit | |\n| --- | ---: | ---: | --- |"
    );
    let _ = writeln!(out, "{}", check("row 4 ÷ row 3", by_id("4") / r3, 1.2));
    let _ = writeln!(out, "{}", check("row 5 ÷ row 2", by_id("5") / r2, 0.55));
    let _ = writeln!(out, "{}", check("row 6 ÷ row 2", by_id("6") / r2, 1.1));
    let _ = writeln!(out, "{}", check("row 7 ÷ row 3", by_id("7") / r3, 1.2));
    let _ = writeln!(
        out,
        "{}",
        check("row 8a ÷ row 4", by_id("8a") / by_id("4"), 1.0)
    );
    let _ = writeln!(
        out,
        "{}",
        check("row 8b ÷ row 4", by_id("8b") / by_id("4"), 1.0)
    );
    // Rows measured back to back in each round, compared round by round: the median of the
    // per-round ratios is steadier than the ratio of medians on a shared machine.
    let paired = |a: &str, b: &str| {
        let pos = |id: &str| rows.iter().position(|r| r.id == id);
        let (Some(a), Some(b)) = (pos(a), pos(b)) else {
            return f64::NAN;
        };
        median(
            samples[a]
                .iter()
                .zip(&samples[b])
                .map(|(x, y)| x.cpu_us / y.cpu_us)
                .collect(),
        )
    };
    let _ = writeln!(
        out,
        "{}",
        check(
            "row 9r ÷ row 9 (10 tool_rules), median of per-round ratios",
            paired("9r", "9"),
            1.10
        )
    );
    let _ = writeln!(
        out,
        "| row 9r ÷ row 9, ratio of medians | {:.2} | — | measured |",
        by_id("9r") / by_id("9")
    );
    let _ = writeln!(
        out,
        "| row 9lf ÷ row 9l (tools/list filtered), median of per-round ratios | {:.2} | — | measured |",
        paired("9lf", "9l")
    );
    if let [(n1, m1), (n2, m2)] = rss[..] {
        let _ = writeln!(
            out,
            "{}",
            check("memory after 1M ÷ after 100k", m2 as f64 / m1 as f64, 1.10)
        );
        let _ = writeln!(
            out,
            "\nEnvoy RSS: {m1} KiB after {n1} requests, {m2} KiB after {n2} requests."
        );
    }
    let _ = writeln!(
        out,
        "Filter: {} ({} KiB).",
        wasm.display(),
        wasm_size / 1024
    );
    if let Some(p) = &peers {
        out.push_str(&p.report(by_id("4"), by_id("9")));
    }
    println!("{out}");
    if only.is_none() {
        let results = mcpgate_e2e::harness::repo_root().join("bench/RESULTS.md");
        std::fs::write(&results, &out)?;
        println!("written to {}", results.display());
    }
    Ok(())
}
