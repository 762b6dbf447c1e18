//! `bench-envoy`: one Envoy binary, one pinned worker, one load generator (wrk, pinned to the
//! other core), every setup measured interleaved (A B C, C B A, A B C …: every other round in
//! reverse, so a load that drifts during a round favours no row) against a
//! `direct_response` upstream so only the filter is measured. Prints requests/s, p50/p99 and
//! Envoy CPU µs per request (from /proc; median and min–max of the rounds), the distance to
//! the proxy-wasm floor (row 1e: an empty Rust filter, [`floor`]; row 1eo the same on the
//! own token's shorter request, ≈ 15k instructions less for Envoy), ratios against
//! `jwt_authn` (row 3h: cached and copying the identity claims into headers, the same job as
//! row 7; row 2r: uncached on row 6's 1000 tokens), the filter size and Envoy's memory after
//! 100k and 1M requests ([`report`]).
//! Rows 9 compare MCP POSTs (JSON-RPC bodies, `Mcp-Method` / `Mcp-Name` headers) without and
//! with a 10-rule `tool_rules` set, and a `tools/list` answer (20 tools, JSON, answered by
//! Envoy's `direct_response`) without and with filtering.
//!
//! Usage: `cargo run --release -p mcpgate-bench -- [--seconds 5] [--rounds 3] [--rows 4,4s,4d]
//! [--wasm [label=]path …] [--quick]` (scripts/bench.sh builds the filter, installs wrk and
//! runs this). Only the full run (no `--rows`, no `--quick`) writes bench/RESULTS.md (its main
//! table); `--quick` runs a few rows for 2 s each. Every `--wasm` build runs the mcpgate rows
//! side by side in the same rounds (`4@label`), with an A/B table against the first.
//! Rows 4s/5s and 4d/5d run the MCP path with `store: shared_data` and `store: dynamodb` (the
//! local moto server of `scripts/ensure-aws-local.sh`). `--oauth N` instead times N complete
//! OAuth flows per store ([`oauth`]). Rows F/F0/FG run FastMCP in the same rounds
//! ([`fastmcp`]); `--workerd` instead measures the Worker in workerd ([`workerd`]);
//! `--instructions [--requests N]` instead counts the rows' instructions per request under
//! callgrind, `--rounds` windows each ([`instructions`]); `--together a:b,…` measures pairs of
//! the selected rows in the same windows, both on the Envoy CPU ([`together`]). The full run
//! (or `--together-rounds N`) also measures the goals' pairs that way after its rounds
//! ([`GOAL_PAIRS`], 16 windows), and judges those goals by them.

mod fastmcp;
mod floor;
mod instructions;
mod machine;
mod oauth;
mod report;
mod together;
mod workerd;

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

/// What `jwt_authn` does besides verifying: row 3h also copies claims into headers.
#[derive(Clone, Copy, PartialEq)]
enum Native {
    Verify,
    Cached,
    CachedWithClaims,
}

fn jwt_authn(issuer: &str, jwks: &str, native: Native) -> Value {
    let mut provider =
        json!({"issuer": issuer, "local_jwks": {"inline_string": jwks}, "forward": false});
    if native != Native::Verify {
        provider["jwt_cache_config"] = json!({"jwt_cache_size": 1000});
    }
    if native == Native::CachedWithClaims {
        // mcpgate's default identity headers from the same claims. jwt_authn copies only
        // strings, numbers and booleans (not `cognito:groups`, a list) and adds rather than
        // replaces (a client's own `x-mcpgate-sub` stays beside it): the cost of this row is
        // a lower bound on the same job done natively.
        provider["claim_to_headers"] = json!([
            {"header_name": "x-mcpgate-sub", "claim_name": "sub"},
            {"header_name": "x-mcpgate-username", "claim_name": "username"},
            {"header_name": "x-mcpgate-groups", "claim_name": "cognito:groups"},
            {"header_name": "x-mcpgate-scope", "claim_name": "scope"},
            {"header_name": "x-mcpgate-client-id", "claim_name": "client_id"},
            {"header_name": "x-mcpgate-email", "claim_name": "email"},
        ]);
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

/// The wrk script of `load`; `tag` tells apart the scripts of loads that run at once.
fn wrk_script(dir: &Path, load: &Load, tag: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("wrk-{}{tag}.lua", std::process::id()));
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

/// What one wrk run measured: requests, p50 and p99 (ms), non-2xx answers.
type WrkResult = (u64, f64, f64, u64);

fn run_wrk(
    port: u16,
    load: &Load,
    seconds: u64,
    dir: &Path,
) -> anyhow::Result<(u64, f64, f64, u64, u64)> {
    let ticks0 = children_ticks();
    let out = wrk(port, load, seconds, dir, "")?
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let wrk_ticks = children_ticks() - ticks0;
    let (requests, p50, p99, non2xx) = wrk_result(&out)?;
    Ok((requests, p50, p99, non2xx, wrk_ticks))
}

/// The wrk command of one sample (pinned to the load generator's CPU); `tag` as
/// [`wrk_script`].
fn wrk(port: u16, load: &Load, seconds: u64, dir: &Path, tag: &str) -> anyhow::Result<Command> {
    let script = wrk_script(dir, load, tag)?;
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
    Ok(cmd)
}

/// Reads wrk's report.
fn wrk_result(out: &std::process::Output) -> anyhow::Result<WrkResult> {
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
    Ok((requests, pct("50%"), pct("99%"), non2xx))
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

/// What the rows send.
struct Loads<'a> {
    cognito_one: &'a str,
    cognito_file: &'a Path,
    own_one: &'a str,
    own_file: &'a Path,
    granted_one: &'a str,
    granted_file: &'a Path,
    mcp_call: Load,
    mcp_list: Load,
}

/// Every row of the table, in its order.
fn rows(l: &Loads) -> Vec<Row> {
    let bearer = |t: &str| Some(format!("Bearer {t}"));
    vec![
        Row {
            id: "1",
            name: "no auth filter",
            instance: 0,
            load: Load::Fixed(bearer(l.cognito_one)),
            expect_2xx: true,
        },
        Row {
            id: "1e",
            name: "empty proxy-wasm filter (the floor)",
            instance: EMPTY,
            load: Load::Fixed(bearer(l.cognito_one)),
            expect_2xx: true,
        },
        Row {
            id: "1eo",
            name: "empty proxy-wasm filter, own token (row 4's request)",
            instance: EMPTY,
            load: Load::Fixed(bearer(l.own_one)),
            expect_2xx: true,
        },
        Row {
            id: "2",
            name: "jwt_authn RS256, no cache",
            instance: 1,
            load: Load::Fixed(bearer(l.cognito_one)),
            expect_2xx: true,
        },
        Row {
            id: "2r",
            name: "jwt_authn RS256, no cache, 1000 Cognito tokens rotated (row 6's load)",
            instance: 1,
            load: Load::Rotate(l.cognito_file.to_path_buf()),
            expect_2xx: true,
        },
        Row {
            id: "3",
            name: "jwt_authn RS256 + jwt_cache_config",
            instance: 2,
            load: Load::Fixed(bearer(l.cognito_one)),
            expect_2xx: true,
        },
        Row {
            id: "3h",
            name: "jwt_authn RS256 + jwt_cache_config + claim_to_headers (the identity row 7 passes)",
            instance: CLAIMS,
            load: Load::Fixed(bearer(l.cognito_one)),
            expect_2xx: true,
        },
        Row {
            id: "4",
            name: "mcpgate, own token repeated",
            instance: 3,
            load: Load::Fixed(bearer(l.own_one)),
            expect_2xx: true,
        },
        Row {
            id: "4i",
            name: "mcpgate, own token repeated, only the subject passed (identity_headers null)",
            instance: 9,
            load: Load::Fixed(bearer(l.own_one)),
            expect_2xx: true,
        },
        Row {
            id: "5",
            name: "mcpgate, 1000 own tokens rotated",
            instance: 3,
            load: Load::Rotate(l.own_file.to_path_buf()),
            expect_2xx: true,
        },
        Row {
            id: "4s",
            name: "mcpgate with the store (revocation check), own token repeated",
            instance: 5,
            load: Load::Fixed(bearer(l.granted_one)),
            expect_2xx: true,
        },
        Row {
            id: "5s",
            name: "mcpgate with the store (revocation check), 1000 own tokens rotated",
            instance: 5,
            load: Load::Rotate(l.granted_file.to_path_buf()),
            expect_2xx: true,
        },
        Row {
            id: "4d",
            name: "mcpgate with the DynamoDB store (revocation check on the replica), own token repeated",
            instance: 8,
            load: Load::Fixed(bearer(l.granted_one)),
            expect_2xx: true,
        },
        Row {
            id: "5d",
            name: "mcpgate with the DynamoDB store (revocation check on the replica), 1000 own tokens rotated",
            instance: 8,
            load: Load::Rotate(l.granted_file.to_path_buf()),
            expect_2xx: true,
        },
        Row {
            id: "6",
            name: "mcpgate, 1000 Cognito RS256 tokens rotated (native)",
            instance: 3,
            load: Load::Rotate(l.cognito_file.to_path_buf()),
            expect_2xx: true,
        },
        Row {
            id: "6b",
            name: "mcpgate, 1000 Cognito RS256 tokens rotated (pure Rust)",
            instance: 4,
            load: Load::Rotate(l.cognito_file.to_path_buf()),
            expect_2xx: true,
        },
        Row {
            id: "7",
            name: "mcpgate, Cognito RS256 token repeated",
            instance: 3,
            load: Load::Fixed(bearer(l.cognito_one)),
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
            load: l.mcp_call.clone(),
            expect_2xx: true,
        },
        Row {
            id: "9r",
            name: "mcpgate, MCP POST tools/call, own token, 10 tool_rules",
            instance: 6,
            load: l.mcp_call.clone(),
            expect_2xx: true,
        },
        Row {
            id: "9l",
            name: "mcpgate, tools/list (20 tools, JSON), no tool_rules",
            instance: 7,
            load: l.mcp_list.clone(),
            expect_2xx: true,
        },
        Row {
            id: "9lf",
            name: "mcpgate, tools/list filtered by 10 tool_rules",
            instance: 6,
            load: l.mcp_list.clone(),
            expect_2xx: true,
        },
    ]
}

/// One measured row: a row of [`rows`] on one build of the filter.
struct Job {
    /// The row's id, `@label` added when several builds run.
    id: String,
    base: &'static str,
    name: &'static str,
    /// (instance, build)
    key: (usize, usize),
    load: Load,
    expect_2xx: bool,
}

/// The job of row `base` on build `build` (rows without mcpgate run once, for every build).
fn job_of(jobs: &[Job], base: &str, build: usize) -> Option<usize> {
    jobs.iter()
        .position(|j| j.base == base && (j.key.1 == build || !MCPGATE.contains(&j.key.0)))
}

/// Instances that run mcpgate, once per build given with `--wasm`.
const MCPGATE: std::ops::RangeInclusive<usize> = 3..=9;
/// The instance of row 1e (the empty proxy-wasm filter).
const EMPTY: usize = 10;
/// The instance of row 3h (cached `jwt_authn` copying the identity claims into headers).
const CLAIMS: usize = 11;
/// The rows of `--quick`.
const QUICK_ROWS: &str = "1,1e,1eo,2,3,4,5,7,8a,4s,9,9r";

/// The floor row `row` is measured against: the empty filter on the same request. The GET
/// rows with an own token (604 bytes) against row 1eo, when `own_floor` (it was measured);
/// the others against row 1e (the 946-byte Cognito token: Envoy spends ≈ 45 instructions per
/// byte of it, the empty filter in place).
pub(crate) fn floor_of(row: &str, own_floor: bool) -> &'static str {
    match row {
        "4" | "4i" | "5" | "4s" | "5s" | "4d" | "5d" if own_floor => "1eo",
        _ => "1e",
    }
}

/// The goals' pairs the full run measures together (`a:b`: row b against row a).
const GOAL_PAIRS: &str = "9:9r,1eo:4,1e:7,3:4,3:7,2:5,2:6,3h:7,2r:6";

/// The Envoys and loads of `spec`'s pairs (`a:b,…`, rows' ids as in the table).
fn together_pairs<'a>(
    jobs: &'a [Job],
    envoys: &std::collections::BTreeMap<(usize, usize), (EnvoyProcess, u16)>,
    spec: &str,
) -> anyhow::Result<Vec<(together::Side<'a>, together::Side<'a>)>> {
    let side = |id: &str| -> anyhow::Result<together::Side<'a>> {
        let job = jobs
            .iter()
            .find(|j| j.id == id)
            .with_context(|| format!("--together: row {id} is not among --rows"))?;
        let (e, port) = envoys
            .get(&job.key)
            .with_context(|| format!("--together: row {id} has no Envoy"))?;
        Ok(together::Side {
            id: &job.id,
            pid: e.child.pid(),
            port: *port,
            load: &job.load,
            expect_2xx: job.expect_2xx,
        })
    };
    let mut pairs = Vec::new();
    for pair in spec.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = pair
            .split_once(':')
            .with_context(|| format!("--together wants row:row pairs, got {pair:?}"))?;
        let (a, b) = (side(a)?, side(b)?);
        if a.pid == b.pid {
            bail!("--together: rows {} and {} share one Envoy", a.id, b.id);
        }
        pairs.push((a, b));
    }
    Ok(pairs)
}

/// The builds of the filter to measure: every `--wasm [label=]path` (label: the file's
/// name), or the one `scripts/build-envoy-filter.sh` builds.
fn variants() -> anyhow::Result<Vec<(String, PathBuf)>> {
    let args: Vec<String> = std::env::args().collect();
    let mut out = Vec::new();
    for w in args.windows(2).filter(|w| w[0] == "--wasm") {
        let (label, path) = match w[1].split_once('=') {
            Some((l, p)) => (l.to_string(), PathBuf::from(p)),
            None => {
                let p = PathBuf::from(&w[1]);
                let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
                (stem.unwrap_or_default(), p)
            }
        };
        out.push((label, path));
    }
    if out.is_empty() {
        out.push((String::new(), filter_wasm()?));
    }
    Ok(out)
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
    let described = machine::describe();
    let quick = std::env::args().any(|a| a == "--quick");
    let seconds = arg("--seconds", if quick { 2 } else { 5 });
    let rounds = arg("--rounds", 3);
    let dir = log_dir()?;
    let variants = variants()?;
    let wasm = variants.first().map(|v| v.1.clone()).context("no filter")?;
    let only: Option<Vec<String>> = std::env::args()
        .skip_while(|a| a != "--rows")
        .nth(1)
        .or_else(|| quick.then(|| QUICK_ROWS.to_string()))
        .map(|r| r.split(',').map(String::from).collect());
    // Only the full run is recorded (the main table of bench/RESULTS.md).
    let record = only.is_none();

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
    // Row 4i: the origin reads only the subject; each identity header not passed is one host
    // call less per request.
    let mut subject_plugin = plugin.clone();
    subject_plugin["identity_headers"] = json!({"username": null, "groups": null, "scope": null,
                                                "client_id": null, "email": null});
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
    let dynamodb_config = |wasm: &Path| {
        moto.as_ref().map(|m| {
            let mut p = plugin.clone();
            p["store"] = json!("dynamodb");
            p["dynamodb"] = json!({"table": m.table, "region": "eu-central-1",
                                   "endpoint": format!("http://127.0.0.1:{}", m.port)});
            p["clusters"][format!("127.0.0.1:{}", m.port)] = json!("dynamodb");
            let env = json!({"AWS_ACCESS_KEY_ID": m.keys.access_key_id,
                             "AWS_SECRET_ACCESS_KEY": m.keys.secret_access_key});
            envoy_yaml_with(vec![mcpgate_env(wasm, &p, env)], idp.port(), Some(m.port))
        })
    };
    // Instances 0–2, EMPTY and CLAIMS run once; 3–9 (mcpgate) once per `--wasm` build.
    let config = |instance: usize, wasm: &Path| -> anyhow::Result<String> {
        Ok(match instance {
            0 => envoy_yaml(vec![], idp.port()),
            1 => envoy_yaml(
                vec![jwt_authn(&idp.issuer(), &jwks, Native::Verify)],
                idp.port(),
            ),
            2 => envoy_yaml(
                vec![jwt_authn(&idp.issuer(), &jwks, Native::Cached)],
                idp.port(),
            ),
            CLAIMS => envoy_yaml(
                vec![jwt_authn(&idp.issuer(), &jwks, Native::CachedWithClaims)],
                idp.port(),
            ),
            3 => envoy_yaml(vec![mcpgate(wasm, &plugin)], idp.port()),
            4 => envoy_yaml(vec![mcpgate(wasm, &pure_plugin)], idp.port()),
            5 => envoy_yaml(vec![mcpgate(wasm, &store_plugin)], idp.port()),
            6 => envoy_yaml(vec![mcpgate(wasm, &rules_plugin), buffer()], idp.port()),
            7 => envoy_yaml(vec![mcpgate(wasm, &plugin), buffer()], idp.port()),
            8 => dynamodb_config(wasm).unwrap_or_default(),
            9 => envoy_yaml(vec![mcpgate(wasm, &subject_plugin)], idp.port()),
            EMPTY => envoy_yaml(vec![floor::filter(&floor::build()?)], idp.port()),
            _ => String::new(),
        })
    };

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
    let rows = rows(&Loads {
        cognito_one: &cognito_one,
        cognito_file: &cognito_file,
        own_one: &own_one,
        own_file: &own_file,
        granted_one: &granted_one,
        granted_file: &granted_file,
        mcp_call,
        mcp_list,
    });
    // Each selected row once per build when it runs mcpgate: ids `4@label` with several.
    let mut jobs: Vec<Job> = Vec::new();
    for row in rows
        .into_iter()
        .filter(|r| only.as_ref().is_none_or(|o| o.iter().any(|x| x == r.id)))
    {
        let builds = if MCPGATE.contains(&row.instance) {
            variants.len()
        } else {
            1
        };
        for v in 0..builds {
            let label = match (&variants[..], MCPGATE.contains(&row.instance)) {
                ([_, _, ..], true) => variants.get(v).map_or("", |x| x.0.as_str()),
                _ => "",
            };
            jobs.push(Job {
                id: if label.is_empty() {
                    row.id.to_string()
                } else {
                    format!("{}@{label}", row.id)
                },
                base: row.id,
                name: row.name,
                key: (row.instance, v),
                load: row.load.clone(),
                expect_2xx: row.expect_2xx,
            });
        }
    }

    if std::env::args().any(|a| a == "--instructions") {
        let yaml = |(instance, v): (usize, usize)| {
            config(
                instance,
                variants.get(v).map_or(wasm.as_path(), |x| x.1.as_path()),
            )
        };
        let requests = arg("--requests", 1000) as usize;
        println!(
            "{}",
            instructions::run(&jobs, &yaml, rounds as usize, requests).await?
        );
        return Ok(());
    }

    let mut envoys: std::collections::BTreeMap<(usize, usize), (EnvoyProcess, u16)> =
        Default::default();
    for key @ (instance, v) in jobs.iter().map(|j| j.key) {
        if envoys.contains_key(&key) {
            continue;
        }
        let wasm = variants.get(v).map(|x| x.1.as_path()).unwrap_or(&wasm);
        let yaml = config(instance, wasm)?;
        if yaml.is_empty() {
            continue;
        }
        let name = format!("bench-{instance}-{v}");
        match EnvoyProcess::start(&name, &yaml, &[], Duration::from_secs(60)).await {
            Ok(e) => {
                pin(e.child.pid(), ENVOY_CPU)?;
                let port = e.listener_port("main").await?;
                envoys.insert(key, (e, port));
            }
            Err(err) if instance == 4 => {
                eprintln!("pure-Rust RSA row skipped (host has no `native_rsa` switch): {err:#}");
            }
            Err(err) => return Err(err),
        }
    }
    // Let the filters fetch the JWKS before measuring.
    for (e, port) in envoys.values() {
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

    // The rules instance filters for real: 4 of the 20 tools are not the caller's.
    for (_, port) in envoys.iter().filter(|(k, _)| k.0 == 6).map(|(_, e)| e) {
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

    // `--together a:b,…`: pairs of rows in the same windows instead of the rounds below.
    let slice_ms = arg("--slice-ms", 100);
    if let Some(spec) = std::env::args().skip_while(|a| a != "--together").nth(1) {
        let pairs = together_pairs(&jobs, &envoys, &spec)?;
        let measured = together::measure(&pairs, rounds, seconds, slice_ms, &dir)?;
        let report = together::table(&measured, rounds, seconds, slice_ms);
        println!("{report}\n{described}");
        return Ok(());
    }

    // Rows F/F0/FG: FastMCP in the same rounds (bench/src/fastmcp.rs).
    let mut peers = match wants(&["F", "F0", "FG"]) {
        true => fastmcp::Peers::start(&idp, &wasm, &plugin, &own_one).await?,
        false => None,
    };
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); jobs.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..jobs.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let job = &jobs[i];
            let Some((e, port)) = envoys.get(&job.key) else {
                continue;
            };
            let s = measure(e, *port, &job.load, seconds, &dir).await?;
            eprintln!(
                "round {} row {:>6}: {:>9.0} req/s {:>7.1} µs/req{}",
                round + 1,
                job.id,
                s.rps,
                s.cpu_us,
                if s.disturbed { "  (disturbed)" } else { "" }
            );
            if job.expect_2xx && s.non2xx > 0 {
                bail!(
                    "row {} got {} non-2xx answers: the setup is wrong",
                    job.id,
                    s.non2xx
                );
            }
            samples[i].push(s);
        }
        if let Some(p) = peers.as_mut() {
            p.measure_round(seconds, &dir)?;
        }
    }
    // The full run (or `--together-rounds N`) measures the goals' pairs among its rows together
    // as well: steadier than the rounds.
    let together_rounds = arg("--together-rounds", 16);
    let together = if record || std::env::args().any(|a| a == "--together-rounds") {
        let spec = GOAL_PAIRS
            .split(',')
            .filter(|p| {
                p.split(':').all(|id| {
                    jobs.iter()
                        .any(|j| j.id == id && envoys.contains_key(&j.key))
                })
            })
            .collect::<Vec<_>>()
            .join(",");
        let pairs = together_pairs(&jobs, &envoys, &spec)?;
        together::measure(&pairs, together_rounds, seconds, slice_ms, &dir)?
    } else {
        Vec::new()
    };
    drop(envoys);

    // Memory: a fresh mcpgate Envoy, distinct own and Cognito tokens, after 100k and 1M requests.
    let mut rss = Vec::new();
    if record {
        let mem_envoy = EnvoyProcess::start(
            "bench-memory",
            &config(3, &wasm)?,
            &[],
            Duration::from_secs(60),
        )
        .await?;
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
    let run = report::Run {
        jobs: &jobs,
        samples: &samples,
        rounds,
        seconds,
        builds: &variants,
        rss: &rss,
        machine: &described,
        together: &together,
        together_rounds,
        slice_ms,
    };
    let mut out = report::render(&run);
    if let Some(p) = &peers {
        out.push_str(&p.report(run.med("4"), run.med("9")));
    }
    println!("{out}");
    if record {
        let path = report::record(&out)?;
        println!("written to {}", path.display());
    }
    Ok(())
}
