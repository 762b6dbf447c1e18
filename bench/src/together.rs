//! `--together a:b[,c:d …] [--slice-ms 100]`: two rows measured in the same windows, each by
//! its own wrk, both Envoys pinned to the one Envoy CPU and taking turns of `--slice-ms`
//! (the other one stopped with `SIGSTOP`). The paired rounds of the main table measure rows
//! one after the other, seconds apart, and a neighbour that slows this shared VM in between
//! moves their ratio by as much as the effects measured (10–20 µs between neighbouring
//! samples of one row). Here whatever slows a window slows both rows of the pair alike, and
//! each row still runs alone on the core for a whole turn. `--slice-ms 0` lets both run at
//! once: the scheduler then switches between them every few milliseconds, and each switch
//! refills the caches — which costs the larger filter more and inflates differences
//! (measured minutes apart: the floor to a cached token +13.3 µs at once, +8.3 µs by turns).
//!
//! Per pair: each row's median CPU per request, and the per-window ratio and difference with
//! a distribution-free 95 % confidence interval of their medians (order statistics of the
//! windows), so a goal is met, missed or not settled by the numbers themselves. The ratios
//! carry from run to run; the differences in µs scale with how fast the shared machine is
//! at the time (two runs minutes apart: the floor 31.0 and 41.2 µs, a cached token 1.275 and
//! 1.280 × the floor, +8.3 and +11.1 µs).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context};

use crate::{children_ticks, clk_tck, cpu_ticks, machine_busy, wrk, wrk_result, Load};

/// One row of a pair: its Envoy and what it is sent.
pub(crate) struct Side<'a> {
    pub(crate) id: &'a str,
    pub(crate) pid: u32,
    pub(crate) port: u16,
    pub(crate) load: &'a Load,
    pub(crate) expect_2xx: bool,
}

/// One window of a pair: CPU µs per request of each row, and whether someone else used the
/// machine meanwhile.
struct Window {
    a: f64,
    b: f64,
    disturbed: bool,
}

/// Lets the two Envoys run by turns of `slice_ms` (the other one stopped), `a` first, until
/// both wrk runs are done; both run again afterwards.
fn take_turns(
    a: u32,
    b: u32,
    slice_ms: u64,
    wa: &mut std::process::Child,
    wb: &mut std::process::Child,
) {
    let signal = |pid: u32, sig: libc::c_int| {
        // SAFETY: kill only sends a signal to a process of ours.
        unsafe { libc::kill(pid as libc::pid_t, sig) };
    };
    let mut turn = [a, b];
    while !matches!((wa.try_wait(), wb.try_wait()), (Ok(Some(_)), Ok(Some(_)))) {
        signal(turn[1], libc::SIGSTOP);
        signal(turn[0], libc::SIGCONT);
        std::thread::sleep(std::time::Duration::from_millis(slice_ms));
        turn.swap(0, 1);
    }
    signal(a, libc::SIGCONT);
    signal(b, libc::SIGCONT);
}

fn window(
    a: &Side,
    b: &Side,
    seconds: u64,
    slice_ms: u64,
    b_first: bool,
    dir: &Path,
) -> anyhow::Result<Window> {
    let (a0, b0, busy0, wrk0) = (
        cpu_ticks(a.pid)?,
        cpu_ticks(b.pid)?,
        machine_busy()?,
        children_ticks(),
    );
    let spawn = |s: &Side, tag: &str| -> anyhow::Result<std::process::Child> {
        wrk(s.port, s.load, seconds, dir, tag)?
            .stdout(Stdio::piped())
            .spawn()
            .context("running wrk (apt-get install wrk)")
    };
    // Every other window row b starts (its wrk first, its turn first): neither row is favoured
    // by its place in the pair.
    let (mut wa, mut wb) = if b_first {
        let wb = spawn(b, "-b")?;
        (spawn(a, "-a")?, wb)
    } else {
        let wa = spawn(a, "-a")?;
        (wa, spawn(b, "-b")?)
    };
    if slice_ms > 0 {
        let (first, second) = if b_first { (b, a) } else { (a, b) };
        take_turns(first.pid, second.pid, slice_ms, &mut wa, &mut wb);
    }
    let (oa, ob) = (wa.wait_with_output()?, wb.wait_with_output()?);
    let (ca, cb) = (cpu_ticks(a.pid)? - a0, cpu_ticks(b.pid)? - b0);
    let busy = machine_busy()? - busy0;
    let wrk_ticks = children_ticks() - wrk0;
    let mut per_request = [0.0; 2];
    for (i, (side, out, ticks)) in [(a, &oa, ca), (b, &ob, cb)].into_iter().enumerate() {
        let (requests, _, _, non2xx) = wrk_result(out)?;
        if side.expect_2xx && non2xx > 0 {
            bail!(
                "row {} got {non2xx} non-2xx answers: the setup is wrong",
                side.id
            );
        }
        per_request[i] = ticks as f64 / clk_tck() * 1e6 / requests.max(1) as f64;
    }
    let others = busy.saturating_sub(ca + cb + wrk_ticks);
    Ok(Window {
        a: per_request[0],
        b: per_request[1],
        disturbed: others as f64 > 0.10 * seconds as f64 * clk_tck(),
    })
}

/// The median of `v` and a distribution-free 95 % confidence interval for it: the order
/// statistics k and n + 1 − k with k the largest such that P(Binomial(n, ½) < k) ≤ 2.5 %
/// (no interval below six values).
pub fn median_ci(mut v: Vec<f64>) -> (f64, Option<(f64, f64)>) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return (f64::NAN, None);
    }
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    // P(X ≤ i) for X ~ Binomial(n, ½), accumulated term by term.
    let (mut term, mut below, mut k) = (0.5f64.powi(n as i32), 0.0, 0);
    for i in 0..n {
        below += term;
        if below > 0.025 {
            break;
        }
        k = i + 1;
        term *= (n - i) as f64 / (i + 1) as f64;
    }
    let ci = (k >= 1).then(|| (v[k - 1], v[n - k]));
    (median, ci)
}

/// A median with its interval, as the tables print it: `1.088 (1.080 to 1.110)`.
pub(crate) fn with_ci((m, ci): (f64, Option<(f64, f64)>), digits: usize, signed: bool) -> String {
    let fmt = |x: f64| {
        if signed {
            format!("{x:+.digits$}")
        } else {
            format!("{x:.digits$}")
        }
    };
    match ci {
        Some((lo, hi)) => format!("{} ({} to {})", fmt(m), fmt(lo), fmt(hi)),
        None => fmt(m),
    }
}

/// The windows of one pair.
pub(crate) struct Pair {
    /// The rows' ids (`a`, then `b`).
    pub(crate) a: String,
    pub(crate) b: String,
    windows: Vec<Window>,
}

impl Pair {
    /// Whether this is the pair `b` measured against `a` (rows' base ids, first build).
    pub(crate) fn is(&self, a: &str, b: &str) -> bool {
        self.a == a && self.b == b
    }

    /// b ÷ a per window: the median and its interval.
    pub(crate) fn ratio(&self) -> (f64, Option<(f64, f64)>) {
        median_ci(self.windows.iter().map(|w| w.b / w.a).collect())
    }

    /// b − a per window (µs per request): the median and its interval.
    pub(crate) fn diff(&self) -> (f64, Option<(f64, f64)>) {
        median_ci(self.windows.iter().map(|w| w.b - w.a).collect())
    }
}

/// Measures every pair in each of `rounds` windows of `seconds`.
pub(crate) fn measure(
    pairs: &[(Side, Side)],
    rounds: u64,
    seconds: u64,
    slice_ms: u64,
    dir: &Path,
) -> anyhow::Result<Vec<Pair>> {
    let mut out: Vec<Pair> = pairs
        .iter()
        .map(|(a, b)| Pair {
            a: a.id.to_string(),
            b: b.id.to_string(),
            windows: Vec::new(),
        })
        .collect();
    for round in 0..rounds {
        for ((a, b), pair) in pairs.iter().zip(&mut out) {
            let w = window(a, b, seconds, slice_ms, round % 2 == 1, dir)?;
            eprintln!(
                "round {} {} {:.1} µs/req, {} {:.1} µs/req{}",
                round + 1,
                a.id,
                w.a,
                b.id,
                w.b,
                if w.disturbed { "  (disturbed)" } else { "" }
            );
            pair.windows.push(w);
        }
    }
    Ok(out)
}

/// The table of [`measure`]'s pairs.
pub(crate) fn table(pairs: &[Pair], rounds: u64, seconds: u64, slice_ms: u64) -> String {
    let mut out = format!(
        "# Rows measured together ({rounds} windows × {seconds} s per pair, both Envoys pinned to CPU {}{}, one wrk -t1 -c16 each on CPU {})\n\n\
         Medians of the windows; in brackets a 95 % confidence interval of the median (order statistics).\n\n\
         | pair | row a µs/req | row b µs/req | b ÷ a per window | b − a µs per window | disturbed windows |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
        crate::ENVOY_CPU,
        match slice_ms {
            0 => " at once".to_string(),
            ms => format!(" by turns of {ms} ms"),
        },
        crate::WRK_CPU,
    );
    for p in pairs {
        let w = &p.windows;
        let _ = writeln!(
            out,
            "| {} : {} | {} | {} | {} | {} | {}/{} |",
            p.a,
            p.b,
            with_ci(median_ci(w.iter().map(|x| x.a).collect()), 1, false),
            with_ci(median_ci(w.iter().map(|x| x.b).collect()), 1, false),
            with_ci(p.ratio(), 3, false),
            with_ci(p.diff(), 1, true),
            w.iter().filter(|x| x.disturbed).count(),
            w.len(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::median_ci;

    #[test]
    fn median_interval_is_the_binomial_order_statistics() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        // n = 20: P(X ≤ 5) = 2.07 % ≤ 2.5 % < P(X ≤ 6) = 5.77 %: the 6th and the 15th values.
        assert_eq!(median_ci(v), (10.5, Some((6.0, 15.0))));
        let v: Vec<f64> = (1..=5).map(f64::from).collect();
        assert_eq!(median_ci(v), (3.0, None), "too few for 95 %");
        let v: Vec<f64> = (1..=6).map(f64::from).collect();
        assert_eq!(median_ci(v), (3.5, Some((1.0, 6.0))));
    }
}
