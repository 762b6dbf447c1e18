//! `--instructions`: the rows counted in instructions instead of CPU time. Each Envoy runs
//! under `valgrind --tool=callgrind`; requests go one after another on one keep-alive
//! connection; the counters are zeroed, N requests sent and the counts dumped, several times
//! per row. The same binary, configuration and requests give the same count whatever else the
//! machine does, so differences of a fraction of a per cent show, which CPU time on a shared
//! machine (10–20 µs between neighbouring samples) cannot settle. What the count leaves out:
//! the kernel (valgrind sees user space only) and what an instruction costs (cache misses,
//! branch mispredictions), so it ranks work, it does not time it.
//!
//! Each dump is split by where the instructions ran: Envoy's binary (with V8's runtime and
//! builtins, which Envoy embeds), code V8 compiled at run time (the filters' wasm and V8's
//! stubs) and shared libraries (libc, libm, libstdc++). Envoy's timers run during a
//! measurement too; their rate is measured on the idle Envoy and taken off.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mcpgate_e2e::harness::{unique_name, EnvoyProcess};

use crate::{Job, Load};

/// Where the instructions of a dump ran.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Split {
    pub total: f64,
    /// Envoy's binary, V8's runtime and builtins included.
    pub envoy: f64,
    /// Code V8 compiled at run time: the filters' wasm and V8's stubs.
    pub jit: f64,
    /// Shared libraries.
    pub libs: f64,
}

impl Split {
    fn scaled(self, by: f64) -> Self {
        Self {
            total: self.total * by,
            envoy: self.envoy * by,
            jit: self.jit * by,
            libs: self.libs * by,
        }
    }

    fn minus(self, o: Self) -> Self {
        Self {
            total: self.total - o.total,
            envoy: self.envoy - o.envoy,
            jit: self.jit - o.jit,
            libs: self.libs - o.libs,
        }
    }
}

/// Splits a callgrind dump (`positions: line`, `events: Ir`) by object: self costs of
/// functions in `envoy` (the binary's path) are Envoy's, in another named object the
/// libraries'; in the unnamed one (`???`: code callgrind found no object for, named by
/// address) they are Envoy's when the address is in `envoy_text`, else run-time compiled code. The parts must add up to the
/// dump's `totals` (its `summary` can differ slightly: costs of calls still under way when
/// the counters were zeroed).
pub fn split(dump: &str, envoy: &str, envoy_text: &Range<u64>) -> anyhow::Result<Split> {
    let mut objects: HashMap<String, String> = HashMap::new();
    let mut functions: HashMap<String, String> = HashMap::new();
    // Resolves `(id) name` (defines) or `(id)` (refers) in one of the compressed name tables.
    fn name(table: &mut HashMap<String, String>, spec: &str) -> String {
        let spec = spec.trim();
        match spec.strip_prefix('(').and_then(|s| s.split_once(')')) {
            Some((id, rest)) if !rest.trim().is_empty() => {
                table.insert(id.to_string(), rest.trim().to_string());
                rest.trim().to_string()
            }
            Some((id, _)) => table.get(id).cloned().unwrap_or_default(),
            None => spec.to_string(),
        }
    }
    let mut out = Split::default();
    let mut totals = None;
    let mut object = String::new();
    let mut function = String::new();
    let mut after_calls = false;
    for line in dump.lines() {
        let first = line.bytes().next().unwrap_or(b' ');
        if first.is_ascii_digit() || matches!(first, b'+' | b'-' | b'*') {
            // A cost line: `<position> <Ir>`; the one after `calls=` is the call's inclusive
            // cost, already counted in the callee.
            if std::mem::take(&mut after_calls) {
                continue;
            }
            let ir: f64 = match line.split_whitespace().nth(1) {
                Some(n) => n.parse().with_context(|| format!("cost line {line:?}"))?,
                None => 0.0,
            };
            let part = if object == envoy {
                &mut out.envoy
            } else if object != "???" {
                &mut out.libs
            } else {
                let address = function
                    .strip_prefix("0x")
                    .and_then(|hex| u64::from_str_radix(hex, 16).ok());
                match address {
                    Some(a) if !envoy_text.contains(&a) => &mut out.jit,
                    _ => &mut out.envoy,
                }
            };
            *part += ir;
            out.total += ir;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            if let Some(n) = line.strip_prefix("totals:") {
                totals = Some(n.trim().parse::<f64>().context("totals")?);
            }
            continue;
        };
        match key {
            "ob" => object = name(&mut objects, value),
            "cob" => {
                name(&mut objects, value);
            }
            "fn" => function = name(&mut functions, value),
            "cfn" => {
                name(&mut functions, value);
            }
            "calls" => after_calls = true,
            _ => {}
        }
    }
    match totals {
        Some(t) if (t - out.total).abs() < 0.5 => Ok(out),
        Some(t) => bail!(
            "the dump's parts add up to {} of its {t} instructions",
            out.total
        ),
        None => bail!("no totals line in the dump"),
    }
}

/// Envoy's executable text in the process's address space (from `/proc/<pid>/maps`).
fn envoy_text(pid: u32, binary: &Path) -> anyhow::Result<Range<u64>> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    let binary = binary.display().to_string();
    maps.lines()
        .filter(|l| l.ends_with(&binary) && l.split_whitespace().nth(1) == Some("r-xp"))
        .find_map(|l| {
            let (lo, hi) = l.split_whitespace().next()?.split_once('-')?;
            Some(u64::from_str_radix(lo, 16).ok()?..u64::from_str_radix(hi, 16).ok()?)
        })
        .with_context(|| format!("no executable mapping of {binary} in process {pid}"))
}

/// One Envoy under callgrind.
struct Counted {
    envoy: EnvoyProcess,
    port: u16,
    out: PathBuf,
    dumps: usize,
    binary: String,
    text: Range<u64>,
    /// Instructions per second of the idle Envoy (its timers).
    idle: Split,
}

impl Counted {
    async fn start(name: &str, yaml: &str) -> anyhow::Result<Self> {
        let out = mcpgate_e2e::harness::log_dir()?.join(format!("{}.callgrind", unique_name(name)));
        let wrapper = [
            "valgrind".to_string(),
            "--tool=callgrind".into(),
            // V8 writes the code it runs.
            "--smc-check=all-non-file".into(),
            format!("--callgrind-out-file={}", out.display()),
        ];
        // V8 compiles the filter under valgrind: minutes, not seconds.
        let envoy =
            EnvoyProcess::start_wrapped(name, yaml, &wrapper, Duration::from_secs(600)).await?;
        let port = envoy.listener_port("main").await?;
        let binary = mcpgate_e2e::harness::envoy_native_bin()?;
        let text = envoy_text(envoy.child.pid(), &binary)?;
        Ok(Self {
            envoy,
            port,
            out,
            dumps: 0,
            binary: binary.display().to_string(),
            text,
            idle: Split::default(),
        })
    }

    fn control(&self, flag: &str) -> anyhow::Result<()> {
        let pid = self.envoy.child.pid().to_string();
        let out = Command::new("callgrind_control")
            .args([flag, &pid])
            .output()
            .context("running callgrind_control (apt-get install valgrind)")?;
        if !out.status.success() {
            bail!(
                "callgrind_control {flag} {pid}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Zeroes the counters, runs `work`, dumps: the instructions of the window and its length.
    async fn window<F: std::future::Future<Output = anyhow::Result<()>>>(
        &mut self,
        work: F,
    ) -> anyhow::Result<(Split, f64)> {
        self.control("-z")?;
        let started = Instant::now();
        work.await?;
        let seconds = started.elapsed().as_secs_f64();
        self.control("-d")?;
        self.dumps += 1;
        let path = PathBuf::from(format!("{}.{}", self.out.display(), self.dumps));
        let dump = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
        let parts = split(&dump, &self.binary, &self.text)
            .with_context(|| format!("{}", path.display()))?;
        let _ = std::fs::remove_file(&path);
        Ok((parts, seconds))
    }
}

/// Sends `n` requests of `load` one after another on one connection.
async fn send(
    client: &reqwest::Client,
    port: u16,
    load: &Load,
    n: usize,
    expect_2xx: bool,
) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/mcp");
    let rotated: Vec<String> = match load {
        Load::Rotate(file) => std::fs::read_to_string(file)?
            .lines()
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    };
    if matches!(load, Load::Rotate(_)) && rotated.is_empty() {
        bail!("no tokens to rotate through");
    }
    for i in 0..n {
        let request = match load {
            Load::Fixed(auth) => {
                let r = client.get(&url);
                match auth {
                    Some(a) => r.header("authorization", a),
                    None => r,
                }
            }
            Load::Rotate(_) => client.get(&url).header(
                "authorization",
                format!("Bearer {}", rotated[i % rotated.len()]),
            ),
            Load::Post {
                token,
                body,
                headers,
            } => {
                let mut r = client
                    .post(&url)
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .header("accept", "application/json, text/event-stream")
                    .body(body.clone());
                for (k, v) in headers {
                    r = r.header(*k, *v);
                }
                r
            }
        };
        let status = request.send().await?.status();
        if expect_2xx != status.is_success() {
            bail!("answered {status}: the setup is wrong");
        }
    }
    Ok(())
}

/// Runs every job under callgrind: `rounds` windows of `requests` requests each, after a
/// warm-up (V8 compiles hot functions again while they run); returns the report.
pub async fn run(
    jobs: &[Job],
    config: &dyn Fn((usize, usize)) -> anyhow::Result<String>,
    rounds: usize,
    requests: usize,
) -> anyhow::Result<String> {
    // One connection: the requests go one after another.
    let client = mcpgate_e2e::harness::http_client();
    // V8 compiling the filter under valgrind takes minutes: one Envoy starting per core.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(cores));
    let mut starting = tokio::task::JoinSet::new();
    let mut keys = std::collections::HashSet::new();
    for job in jobs {
        let yaml = config(job.key)?;
        if yaml.is_empty() || !keys.insert(job.key) {
            continue;
        }
        eprintln!("starting Envoy for row {} under callgrind", job.id);
        let (key, name) = (job.key, format!("callgrind-{}-{}", job.key.0, job.key.1));
        let slots = slots.clone();
        starting.spawn(async move {
            let _slot = slots.acquire_owned().await;
            (key, Counted::start(&name, &yaml).await)
        });
    }
    let mut counted: HashMap<(usize, usize), Counted> = HashMap::new();
    while let Some(started) = starting.join_next().await {
        let (key, c) = started?;
        let mut c = c?;
        let (idle, seconds) = c
            .window(async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok(())
            })
            .await?;
        c.idle = idle.scaled(1.0 / seconds);
        counted.insert(key, c);
    }
    let mut results: Vec<Vec<Split>> = vec![Vec::new(); jobs.len()];
    for (i, job) in jobs.iter().enumerate() {
        let Some(c) = counted.get_mut(&job.key) else {
            continue;
        };
        let port = c.port;
        for _ in 0..2 {
            send(&client, port, &job.load, requests, job.expect_2xx).await?;
        }
        for round in 0..rounds {
            let (raw, seconds) = c
                .window(send(&client, port, &job.load, requests, job.expect_2xx))
                .await?;
            let s = raw
                .minus(c.idle.scaled(seconds))
                .scaled(1.0 / requests as f64);
            eprintln!(
                "round {} row {:>6}: {:>9.0} instructions/request",
                round + 1,
                job.id,
                s.total
            );
            results[i].push(s);
        }
    }
    drop(counted);
    Ok(render(jobs, &results, rounds, requests))
}

fn median_of(v: &[Split], f: fn(&Split) -> f64) -> f64 {
    crate::median(v.iter().map(f).collect())
}

fn render(jobs: &[Job], results: &[Vec<Split>], rounds: usize, requests: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Envoy instructions per request (callgrind; {rounds} windows × {requests} requests on one connection, after 2 × {requests} of warm-up)\n"
    );
    let _ = writeln!(
        out,
        "User-space instructions of the Envoy process per request (its timers' idle rate taken off): the median of the windows, their min–max, and where they ran.\n"
    );
    let _ = writeln!(
        out,
        "| row | setup | instructions/request | min–max | Envoy's binary (with V8) | V8-compiled code | libraries | − its floor |"
    );
    let _ = writeln!(
        out,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let med = |base: &str, build: usize| -> Option<f64> {
        let i = crate::job_of(jobs, base, build)?;
        results
            .get(i)
            .filter(|r| !r.is_empty())
            .map(|r| median_of(r, |s| s.total))
    };
    let own_floor = med("1eo", 0).is_some();
    for (job, r) in jobs.iter().zip(results) {
        let floor = crate::floor_of(job.base, own_floor);
        if r.is_empty() {
            let _ = writeln!(out, "| {} | {} | — | — | — | — | — | — |", job.id, job.name);
            continue;
        }
        let total = median_of(r, |s| s.total);
        let lo = r.iter().map(|s| s.total).fold(f64::INFINITY, f64::min);
        let hi = r.iter().map(|s| s.total).fold(0.0, f64::max);
        let beyond = med(floor, 0).map_or("—".into(), |f| format!("{:+.0} ({floor})", total - f));
        let _ = writeln!(
            out,
            "| {} | {} | {total:.0} | {lo:.0}–{hi:.0} | {:.0} | {:.0} | {:.0} | {beyond} |",
            job.id,
            job.name,
            median_of(r, |s| s.envoy),
            median_of(r, |s| s.jit),
            median_of(r, |s| s.libs),
        );
    }
    let builds: std::collections::BTreeSet<usize> = jobs.iter().map(|j| j.key.1).collect();
    let mut ratios = String::new();
    for b in builds {
        let label = jobs
            .iter()
            .find(|j| j.key.1 == b && j.id.contains('@'))
            .and_then(|j| j.id.split_once('@'))
            .map_or(String::new(), |(_, l)| format!(" ({l})"));
        for (a, by, what) in [
            (
                "9r",
                "9",
                "10 tool_rules on a tools/call (goal ≤ 1.10 in CPU time)",
            ),
            (
                "4",
                "1eo",
                "own token repeated against the floor on the same request",
            ),
            (
                "4i",
                "1eo",
                "own token repeated, only the subject passed, against the floor on the same request",
            ),
            ("4", "1e", "own token repeated against the floor on row 7's request"),
            ("7", "1e", "Cognito token repeated against the floor"),
            (
                "4",
                "3",
                "own token repeated against cached jwt_authn (goal ≤ 1.2)",
            ),
            (
                "7",
                "3",
                "Cognito token repeated against cached jwt_authn (goal ≤ 1.2)",
            ),
            (
                "3h",
                "3",
                "cached jwt_authn: the identity's claims copied into headers, against none",
            ),
            (
                "7",
                "3h",
                "Cognito token repeated against cached jwt_authn passing the same identity",
            ),
            (
                "5",
                "2",
                "1000 own tokens against uncached jwt_authn (goal ≤ 0.55)",
            ),
            (
                "6",
                "2",
                "1000 Cognito tokens against uncached jwt_authn (goal ≤ 1.1)",
            ),
            (
                "6",
                "2r",
                "1000 Cognito tokens against uncached jwt_authn on the same 1000 tokens",
            ),
        ] {
            if let (Some(x), Some(y)) = (med(a, b), med(by, b)) {
                let _ = writeln!(
                    ratios,
                    "| row {a} ÷ row {by}{label} | {what} | {:.3} | {:+.0} |",
                    x / y,
                    x - y
                );
            }
        }
    }
    if !ratios.is_empty() {
        let _ = writeln!(
            out,
            "\n| ratio | what | instructions ÷ | instructions − |\n| --- | --- | ---: | ---: |\n{ratios}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DUMP: &str =
        "# callgrind format\nversion: 1\npositions: line\nevents: Ir\nsummary: 1100\n\n\
ob=(1) /usr/lib/x86_64-linux-gnu/libc.so.6\nfl=(1) ???\nfn=(1) memcpy\n0 100\n\
ob=(3) /opt/envoy\nfl=(2) ???\nfn=(4) 0x0000000000001600\n0 5000\n\
ob=(2) ???\nfl=(2) ???\nfn=(2) 0x0000000000001500\n0 10\n\
cob=(1)\ncfi=(1)\ncfn=(1)\ncalls=3 0\n0 300\n+1 1\n\
fn=(3) 0x0000000070000000\n0 1000\ntotals: 6111\n";

    #[test]
    fn a_dump_splits_into_envoy_compiled_code_and_libraries() {
        let s = split(DUMP, "/opt/envoy", &(0x1000..0x2000)).unwrap();
        assert_eq!(
            s,
            Split {
                total: 6111.0,
                envoy: 5011.0,
                jit: 1000.0,
                libs: 100.0
            }
        );
    }

    #[test]
    fn a_dump_whose_parts_miss_its_totals_is_refused() {
        let short = DUMP.replace("totals: 6111", "totals: 6112");
        assert!(split(&short, "/opt/envoy", &(0x1000..0x2000)).is_err());
        assert!(split(&DUMP.replace("totals: 6111\n", ""), "/opt/envoy", &(0..1)).is_err());
    }
}
