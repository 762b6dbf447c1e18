//! The report of a bench-envoy run: the main table (median, spread and disturbance of each
//! row's rounds, the distance to the proxy-wasm floor, the ratios to `jwt_authn`), the
//! targets, and with several `--wasm` builds their A/B comparison; the full run writes it
//! into bench/RESULTS.md between the markers, leaving the rest of the file as it is.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::{median, Job, Sample, ENVOY_CPU, WRK_CPU};

const BEGIN: &str = "<!-- bench-envoy: begin (written by the full run; edits here are lost) -->";
const END: &str = "<!-- bench-envoy: end -->";

pub struct Run<'a> {
    pub jobs: &'a [Job],
    pub samples: &'a [Vec<Sample>],
    pub rounds: u64,
    pub seconds: u64,
    /// (label, path) of each build of the filter.
    pub builds: &'a [(String, PathBuf)],
    /// (requests, RSS KiB) after 100k and 1M requests.
    pub rss: &'a [(u64, u64)],
    /// The date, machine and command ([`machine::describe`], taken at the start).
    pub machine: &'a str,
    /// The goals' pairs measured together (the full run), their windows and turns.
    pub together: &'a [crate::together::Pair],
    pub together_rounds: u64,
    pub slice_ms: u64,
}

impl Run<'_> {
    /// Row `b` measured together with row `a`, when it was.
    fn together(&self, a: &str, b: &str) -> Option<&crate::together::Pair> {
        self.together.iter().find(|p| p.is(a, b))
    }

    /// The floor row `id` is measured against ([`crate::floor_of`]; row 1eo when it ran).
    fn floor_of(&self, id: &str) -> &'static str {
        crate::floor_of(id, !self.med("1eo").is_nan())
    }

    fn pos(&self, base: &str, build: usize) -> Option<usize> {
        crate::job_of(self.jobs, base, build)
    }

    fn cpu(&self, i: usize) -> Vec<f64> {
        self.samples
            .get(i)
            .map(|s| s.iter().map(|s| s.cpu_us).collect())
            .unwrap_or_default()
    }

    /// Median CPU µs/request of a row (of the first build), NaN when not measured.
    pub fn med(&self, base: &str) -> f64 {
        self.pos(base, 0)
            .map(|i| median(self.cpu(i)))
            .filter(|v| *v > 0.0)
            .unwrap_or(f64::NAN)
    }

    /// Median of the per-round `f(a, b)` of two rows measured back to back in each round:
    /// steadier than comparing medians on a shared machine.
    fn paired(&self, a: (&str, usize), b: (&str, usize), f: fn(f64, f64) -> f64) -> f64 {
        let (Some(a), Some(b)) = (self.pos(a.0, a.1), self.pos(b.0, b.1)) else {
            return f64::NAN;
        };
        let v: Vec<f64> = self
            .cpu(a)
            .iter()
            .zip(&self.cpu(b))
            .map(|(x, y)| f(*x, *y))
            .collect();
        if v.is_empty() {
            f64::NAN
        } else {
            median(v)
        }
    }
}

fn ratio(x: f64, y: f64) -> f64 {
    x / y
}

fn diff(x: f64, y: f64) -> f64 {
    x - y
}

/// A difference with its sign, or — .
fn signed(v: f64) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:+.1}")
    }
}

/// A target's line; empty when a row it needs was not measured.
fn check(name: &str, value: f64, limit: f64, floor: &str) -> String {
    if value.is_nan() {
        return String::new();
    }
    let verdict = if value <= limit { "met" } else { "NOT met" };
    let floor = if floor.contains("NaN") { "" } else { floor };
    format!("| {name} | {value:.2} | {limit:.2} | {verdict} | {floor} |\n")
}

/// A target's line from rows measured together: the median with its 95 % interval; met or not
/// met when the whole interval is on one side of the limit, else not settled by this run.
fn check_together(
    name: &str,
    (m, ci): (f64, Option<(f64, f64)>),
    limit: f64,
    digits: usize,
    signed: bool,
    note: &str,
) -> String {
    let verdict = match ci {
        Some((_, hi)) if hi <= limit => "met",
        Some((lo, _)) if lo > limit => "NOT met",
        _ if m <= limit => "not settled (median within)",
        _ => "not settled (median beyond)",
    };
    let measured = crate::together::with_ci((m, ci), digits, signed);
    format!("| {name} | {measured} | {limit:.2} | {verdict} | {note} |\n")
}

/// A number, or — when it could not be computed (a row not measured).
fn num(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "—".into()
    } else {
        format!("{v:.decimals$}")
    }
}

pub fn render(run: &Run) -> String {
    let (rounds, seconds) = (run.rounds, run.seconds);
    let mut out = String::new();
    let _ = writeln!(out, "# Envoy benchmark ({rounds} interleaved rounds × {seconds} s, every other round in reverse order, Envoy 1 worker pinned to CPU {ENVOY_CPU}, wrk -t1 -c16 pinned to CPU {WRK_CPU})\n");
    let _ = writeln!(out, "{}", run.machine);
    let all: Vec<&Sample> = run.samples.iter().flatten().collect();
    let disturbed = all.iter().filter(|s| s.disturbed).count();
    let _ = writeln!(
        out,
        "Disturbed samples: {disturbed} of {} (the rest of the machine used more than 10 % of a \
         core during the sample). CPU is Envoy's user + system time per request: the median of \
         the rounds, and their min–max.\n",
        all.len()
    );
    let _ = writeln!(out, "| row | setup | req/s | p50 ms | p99 ms | Envoy CPU µs/req | min–max | − its floor µs | ÷ row 2 | ÷ row 3 | disturbed rounds |");
    let _ = writeln!(
        out,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let (r2, r3) = (run.med("2"), run.med("3"));
    for (i, job) in run.jobs.iter().enumerate() {
        let Some(s) = run.samples.get(i).filter(|s| !s.is_empty()) else {
            let _ = writeln!(
                out,
                "| {} | {} | — | — | — | — | — | — | — | — | skipped |",
                job.id, job.name
            );
            continue;
        };
        let m = |f: fn(&Sample) -> f64| median(s.iter().map(f).collect());
        let cpu = m(|s| s.cpu_us);
        let lo = s.iter().map(|s| s.cpu_us).fold(f64::INFINITY, f64::min);
        let hi = s.iter().map(|s| s.cpu_us).fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {:.2} | {cpu:.1} | {lo:.1}–{hi:.1} | {} | {} | {} | {}/{} |",
            job.id,
            job.name,
            m(|s| s.rps),
            m(|s| s.p50_ms),
            m(|s| s.p99_ms),
            {
                let fl = run.floor_of(job.base);
                format!("{} ({fl})", signed(run.paired((job.base, job.key.1), (fl, 0), diff)))
            },
            num(cpu / r2, 2),
            num(cpu / r3, 2),
            s.iter().filter(|s| s.disturbed).count(),
            s.len()
        );
    }

    // The filter's own cost (beyond the floor) against jwt_authn's (beyond no filter).
    let r1 = run.med("1");
    let beyond = |id: &str, by: f64, by_name: &str| {
        let fl = run.floor_of(id);
        // Sequential medians: when row 3 reads at or below row 1, the ratio means nothing.
        if by - r1 < 1.0 {
            return format!(
                "row {by_name} − row 1 reads {:+.1} µs in this run: within the noise, no ratio",
                by - r1
            );
        }
        format!(
            "(row {id} − row {fl}) ÷ (row {by_name} − row 1) = {:.2}",
            (run.med(id) - run.med(fl)) / (by - r1)
        )
    };
    let _ = writeln!(
        out,
        "\n| target | measured | limit | | beyond the floor |\n| --- | ---: | ---: | --- | --- |"
    );
    // Each row against the floor on its own request.
    for id in ["4", "7", "4i"] {
        let fl = run.floor_of(id);
        let line = match run.together(fl, id) {
            Some(p) => check_together(
                &format!("row {id} − row {fl}, µs (measured together)"),
                p.diff(),
                10.0,
                1,
                true,
                &format!(
                    "the floor + 10 µs; {} × the floor",
                    crate::together::with_ci(p.ratio(), 3, false)
                ),
            ),
            None => check(
                &format!("row {id} − row {fl}, µs (median of per-round differences)"),
                run.paired((id, 0), (fl, 0), diff),
                10.0,
                "the floor + 10 µs",
            ),
        };
        out.push_str(&line);
    }
    // The ratio goals against jwt_authn: (row, against, limit).
    for (id, by, limit) in [
        ("4", "3", 1.2),
        ("5", "2", 0.55),
        ("6", "2", 1.1),
        ("7", "3", 1.2),
    ] {
        let against = run.med(by);
        let line = match run.together(by, id) {
            Some(p) => check_together(
                &format!("row {id} ÷ row {by} (measured together)"),
                p.ratio(),
                limit,
                3,
                false,
                &beyond(id, against, by),
            ),
            None => check(
                &format!("row {id} ÷ row {by}"),
                run.med(id) / against,
                limit,
                &beyond(id, against, by),
            ),
        };
        out.push_str(&line);
    }
    for id in ["8a", "8b"] {
        let _ = write!(
            out,
            "{}",
            check(
                &format!("row {id} ÷ row 4"),
                run.med(id) / run.med("4"),
                1.0,
                ""
            )
        );
    }
    let line = match run.together("9", "9r") {
        Some(p) => check_together(
            "row 9r ÷ row 9 (10 tool_rules), measured together",
            p.ratio(),
            1.10,
            3,
            false,
            &format!(
                "the rules cost {} µs",
                crate::together::with_ci(p.diff(), 1, true)
            ),
        ),
        None => check(
            "row 9r ÷ row 9 (10 tool_rules), median of per-round ratios",
            run.paired(("9r", 0), ("9", 0), ratio),
            1.10,
            &format!(
                "the rules cost {:+.1} µs (median of per-round differences)",
                run.paired(("9r", 0), ("9", 0), diff)
            ),
        ),
    };
    out.push_str(&line);
    // The same job natively: cached jwt_authn passing the identity row 7 passes (row 3h), and
    // uncached jwt_authn on row 6's 1000 tokens (row 2r).
    for (a, b, what) in [
        ("3h", "7", "the same identity passed natively"),
        ("2r", "6", "jwt_authn on the same 1000 tokens"),
    ] {
        let line = match run.together(a, b) {
            Some(p) => format!(
                "| row {b} ÷ row {a} ({what}), measured together | {} | — | measured | |",
                crate::together::with_ci(p.ratio(), 3, false)
            ),
            None => match run.paired((b, 0), (a, 0), ratio) {
                v if v.is_nan() => continue,
                v => format!("| row {b} ÷ row {a} ({what}), median of per-round ratios | {v:.2} | — | measured | |"),
            },
        };
        let _ = writeln!(out, "{line}");
    }
    for (name, v) in [
        (
            "row 9r ÷ row 9, ratio of medians",
            run.med("9r") / run.med("9"),
        ),
        (
            "row 9lf ÷ row 9l (tools/list filtered), median of per-round ratios",
            run.paired(("9lf", 0), ("9l", 0), ratio),
        ),
    ] {
        if !v.is_nan() {
            let _ = writeln!(out, "| {name} | {v:.2} | — | measured | |");
        }
    }
    if let [(n1, m1), (n2, m2)] = run.rss[..] {
        let _ = write!(
            out,
            "{}",
            check(
                "memory after 1M ÷ after 100k",
                m2 as f64 / m1 as f64,
                1.10,
                ""
            )
        );
        let _ = writeln!(
            out,
            "\nEnvoy RSS: {m1} KiB after {n1} requests, {m2} KiB after {n2} requests."
        );
    }
    for (label, path) in run.builds {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("{label}: ")
        };
        let _ = writeln!(
            out,
            "Filter: {label}{} ({} KiB).",
            path.display(),
            size / 1024
        );
    }
    if !run.together.is_empty() {
        let _ = write!(
            out,
            "\n#{}",
            crate::together::table(run.together, run.together_rounds, run.seconds, run.slice_ms)
        );
    }
    if run.builds.len() > 1 {
        ab(run, &mut out);
    }
    out
}

/// Each mcpgate row on every build against the first, round by round.
fn ab(run: &Run, out: &mut String) {
    let first = run.builds.first().map_or("", |b| b.0.as_str());
    let _ = writeln!(
        out,
        "\n| row | build | Envoy CPU µs/req | min–max | − its floor µs | − {first} µs | ÷ {first} |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for (i, job) in run.jobs.iter().enumerate() {
        if !crate::MCPGATE.contains(&job.key.0) {
            continue;
        }
        let cpu = run.cpu(i);
        if cpu.is_empty() {
            continue;
        }
        let lo = cpu.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = cpu.iter().copied().fold(0.0, f64::max);
        let label = run.builds.get(job.key.1).map_or("", |b| b.0.as_str());
        let me = (job.base, job.key.1);
        let _ = writeln!(
            out,
            "| {} | {label} | {:.1} | {lo:.1}–{hi:.1} | {} | {} | {} |",
            job.base,
            median(cpu.clone()),
            signed(run.paired(me, (run.floor_of(job.base), 0), diff)),
            signed(run.paired(me, (job.base, 0), diff)),
            num(run.paired(me, (job.base, 0), ratio), 3),
        );
    }
}

/// Writes `report` into bench/RESULTS.md between the markers (at the top when they are
/// missing), keeping the rest of the file.
pub fn record(report: &str) -> anyhow::Result<PathBuf> {
    let path = mcpgate_e2e::harness::repo_root().join("bench/RESULTS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let block = format!("{BEGIN}\n{report}\n{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{block}{}", &old[..b], &old[e + END.len()..])
        }
        _ => format!("{block}\n\n{old}"),
    };
    std::fs::write(&path, new)?;
    Ok(path)
}
