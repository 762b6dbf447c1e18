//! What a recorded run states about itself: the date, the machine (cores, CPU model, kernel)
//! and the command, so runs on different machines or days are not compared blindly.

use std::process::Command;

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// `date · N cores (nproc) · CPU model · kernel` and the command line, as Markdown lines.
pub fn describe() -> String {
    let date = first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = first_line("uname", &["-sr"]);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "Run {date} on {cores} cores (nproc), {cpu}, {kernel}; load average {load} at the start.\n\
         Command: `cargo run --release -p mcpgate-bench -- {}`\n",
        args.join(" ")
    )
}
