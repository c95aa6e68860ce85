//! Child processes that cannot outlive us: killed (and reaped) on drop, and on Linux
//! also when this process dies without running destructors (SIGKILL, panic=abort).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// A port on 127.0.0.1 that was free a moment ago. Never hands out the same port twice
/// in one process, so tests starting services in parallel do not race each other for
/// it; a race with another process is possible, which is why the starters retry on
/// "address already in use".
pub fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    for _ in 0..64 {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .context("binding 127.0.0.1:0 to find a free port")?;
        let port = listener
            .local_addr()
            .context("reading the bound address")?
            .port();
        let mut handed_out = HANDED_OUT
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
    bail!("the OS kept offering ports this process already handed out")
}

/// A child process whose stdout and stderr go to `log`.
pub(crate) struct ManagedChild {
    child: Child,
    name: &'static str,
    log: PathBuf,
    stopped: bool,
}

impl ManagedChild {
    /// Spawns `cmd` with stdin closed and both output streams appended to `log`
    /// (truncated first, headed by the command line).
    pub(crate) fn spawn(name: &'static str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the log directory {}", dir.display()))?;
        }
        prune_stale_port_logs(log.parent());
        let mut out = File::create(log)
            .with_context(|| format!("creating the log file {}", log.display()))?;
        writeln!(out, "$ {}", command_line(&cmd)).ok();
        let err = out.try_clone().context("duplicating the log file handle")?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        die_with_parent(&mut cmd);
        let shown = command_line(&cmd);
        let child = spawn_on_long_lived_thread(cmd).map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::NotFound {
                " (program not found)"
            } else {
                ""
            };
            anyhow::anyhow!("starting {name}: `{shown}` failed{hint}: {e}")
        })?;
        Ok(ManagedChild {
            child,
            name,
            log: log.to_path_buf(),
            stopped: false,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// The exit status if the process has already ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL and reap. Idempotent. In-memory emulators have nothing to flush, and
    /// a kill cannot hang on a wedged JVM.
    pub(crate) fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        tracing::debug!(service = self.name, pid = self.child.id(), "stopped");
    }

    /// Waits until `probe` says the service answers, failing early (with the log's
    /// tail) if the process exits, and after `timeout`.
    pub(crate) async fn wait_until_ready<F, Fut>(
        &mut self,
        timeout: Duration,
        mut probe: F,
    ) -> Result<Duration, StartFailure>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                let tail = log_tail(&self.log);
                return Err(StartFailure {
                    port_taken: mentions_port_in_use(&tail),
                    error: anyhow::anyhow!(
                        "{} exited during start-up ({status}); last lines of {}:\n{tail}",
                        self.name,
                        self.log.display()
                    ),
                });
            }
            // Still ours? A process that lost the port race may not have exited yet
            // while whatever holds the port answers.
            if probe().await && self.exited().is_none() {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                let tail = log_tail(&self.log);
                return Err(StartFailure {
                    port_taken: false,
                    error: anyhow::anyhow!(
                        "{} (pid {}) did not answer within {} s; last lines of {}:\n{tail}",
                        self.name,
                        self.pid(),
                        timeout.as_secs(),
                        self.log.display()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
}

impl Drop for ManagedChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Each start writes `<service>-<port>.log`; drop those older than a day, once per
/// process, so test runs do not pile them up.
fn prune_stale_port_logs(dir: Option<&Path>) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let Some(dir) = dir else { return };
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for path in entries.flatten().map(|entry| entry.path()) {
            let per_port = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .and_then(|stem| stem.rsplit_once('-'))
                .is_some_and(|(_, port)| {
                    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                });
            let stale = std::fs::metadata(&path)
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(24 * 60 * 60));
            if per_port && stale && path.extension().is_some_and(|ext| ext == "log") {
                let _ = std::fs::remove_file(path);
            }
        }
    });
}

/// Why a start attempt failed; `port_taken` means another port may work.
pub(crate) struct StartFailure {
    pub(crate) port_taken: bool,
    pub(crate) error: anyhow::Error,
}

fn mentions_port_in_use(log: &str) -> bool {
    log.contains("Address already in use") || log.contains("is in use by another program")
}

/// The last lines (at most ~4 KB) of a log file, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    const MAX: u64 = 4096;
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // Drop a partial first line.
        Ok(match (len > MAX, text.find('\n')) {
            (true, Some(i)) => text[i + 1..].to_string(),
            _ => text,
        })
    };
    match read() {
        Ok(text) if text.trim().is_empty() => "(empty)".to_string(),
        Ok(text) => text.trim_end().to_string(),
        Err(e) => format!("(could not read it: {e})"),
    }
}

pub(crate) fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|part| {
            let part = part.to_string_lossy();
            if part.contains(' ') {
                format!("'{part}'")
            } else {
                part.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asks the kernel to SIGKILL the child when its parent goes away.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // calls (prctl, getppid) and builds errors without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) == -1
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would
            // ever send the signal.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// Spawns from one thread that lives as long as the process. PR_SET_PDEATHSIG fires
/// when the *thread* that forked the child exits, not the process: spawned from a
/// test thread, a tokio blocking thread or a runtime that is shut down, the emulator
/// would be killed while still in use.
fn spawn_on_long_lived_thread(cmd: Command) -> io::Result<Child> {
    type Job = (Command, mpsc::SyncSender<io::Result<Child>>);
    static SPAWNER: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("seatscope-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok()
            .map(|_| jobs)
    });
    let Some(spawner) = spawner else {
        let mut cmd = cmd;
        return cmd.spawn();
    };
    let (reply, answer) = mpsc::sync_channel(1);
    let gone = || io::Error::other("the process-spawning thread is gone");
    spawner.send((cmd, reply)).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}
