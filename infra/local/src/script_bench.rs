//! The comparison script of `cargo xtask bench`: `infra/local/bench/pagerduty_script.py`,
//! the Python a data engineer would write from PagerDuty's and AWS's documentation
//! (PagerDuty's official client, one UTC day per query; boto3's batch writer), run
//! beside Seatscope's sync on the same sandbox, data set and DynamoDB Local.
//!
//! [`prepare`] creates or reuses its virtualenv at `.tools/bench-venv` (pip installs
//! `infra/local/bench/requirements.txt` only when the file's hash differs from the
//! one stamped after the last install); [`Script::command`] is the process to run and
//! measure; [`ScriptLine::parse`] reads the one line it prints at the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context as _};
use sha2::{Digest as _, Sha256};

/// The script and its pinned requirements, relative to the workspace root.
pub const SCRIPT: &str = "infra/local/bench/pagerduty_script.py";
pub const REQUIREMENTS: &str = "infra/local/bench/requirements.txt";
/// Its virtualenv, relative to the workspace root.
pub const VENV: &str = ".tools/bench-venv";
/// Written into the virtualenv after a successful install: the requirements' SHA-256.
const STAMP: &str = "requirements.sha256";

/// A virtualenv with the script's requirements installed.
pub struct Script {
    python: PathBuf,
    script: PathBuf,
}

/// Where the script writes and what it reads.
pub struct Target<'a> {
    /// The PagerDuty API's base URL (the sandbox's).
    pub pagerduty_url: &'a str,
    pub api_key: &'a str,
    /// Whole UTC days of history before today, as Seatscope's `SYNC_HISTORY_DAYS`.
    pub days: u32,
    pub dynamodb_endpoint: &'a str,
    /// A table the script creates (it must not exist yet).
    pub table: &'a str,
}

/// Creates `.tools/bench-venv` if it is missing and installs the requirements unless
/// the stamp says these exact requirements are installed. Progress goes to stderr.
pub fn prepare(root: &Path) -> anyhow::Result<Script> {
    let venv = root.join(VENV);
    let python = venv.join("bin/python");
    let script = root.join(SCRIPT);
    anyhow::ensure!(script.exists(), "{} is missing", script.display());
    let requirements = root.join(REQUIREMENTS);
    let wanted = hex(&Sha256::digest(
        std::fs::read(&requirements)
            .with_context(|| format!("reading {}", requirements.display()))?,
    ));
    if !python.exists() {
        eprintln!(
            "bench: creating the comparison script's virtualenv at {VENV} (python3 -m venv)…"
        );
        quiet(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv (the comparison script needs Python 3; --no-script skips it)",
        )?;
    }
    let stamp = venv.join(STAMP);
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        eprintln!("bench: {VENV} has {REQUIREMENTS} installed");
    } else {
        eprintln!("bench: pip install -r {REQUIREMENTS} into {VENV}…");
        quiet(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&requirements),
            "pip install -r requirements.txt",
        )?;
        std::fs::write(&stamp, &wanted)?;
    }
    Ok(Script { python, script })
}

/// Runs `cmd` to its end, its output shown only if it fails.
fn quiet(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Script {
    /// The script's process against `target`: its stdout piped (for [`ScriptLine`]),
    /// its stderr inherited; boto3 pointed at DynamoDB Local with dummy credentials in
    /// us-east-1, none of the caller's AWS settings let through.
    pub fn command(&self, target: &Target<'_>) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.arg(&self.script)
            .args(["--days", &target.days.to_string()])
            .args(["--table", target.table]);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("PAGERDUTY_API_KEY", target.api_key)
            .env("PAGERDUTY_URL", target.pagerduty_url)
            .env("AWS_ENDPOINT_URL_DYNAMODB", target.dynamodb_endpoint)
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        cmd
    }
}

/// The script's last line: `script events=N items=M fetch_ms=F write_ms=W`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptLine {
    /// Log entries counted (the five user actions).
    pub events: u64,
    /// DynamoDB items written: one per (user, day).
    pub items: u64,
    /// Listing and counting, then creating the table and writing.
    pub fetch: Duration,
    pub write: Duration,
}

impl ScriptLine {
    /// The last `script …` line of the script's stdout.
    pub fn parse(stdout: &str) -> anyhow::Result<ScriptLine> {
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with("script "))
            .with_context(|| format!("the comparison script printed {stdout:?}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("no {name}=N in {line:?}"))
        };
        Ok(ScriptLine {
            events: field("events")?,
            items: field("items")?,
            fetch: Duration::from_millis(field("fetch_ms")?),
            write: Duration::from_millis(field("write_ms")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_script_line_is_read() {
        let out = "warming up\nscript events=100000 items=24854 fetch_ms=12500 write_ms=7000\n";
        assert_eq!(
            ScriptLine::parse(out).unwrap(),
            ScriptLine {
                events: 100_000,
                items: 24_854,
                fetch: Duration::from_millis(12_500),
                write: Duration::from_millis(7_000),
            }
        );
        assert!(ScriptLine::parse("script events=1\n").is_err());
        assert!(ScriptLine::parse("").is_err());
    }

    #[test]
    fn the_script_and_its_requirements_are_where_the_bench_looks() {
        let root = crate::stack::workspace_root();
        assert!(root.join(SCRIPT).exists());
        let requirements = std::fs::read_to_string(root.join(REQUIREMENTS)).unwrap();
        assert!(requirements.lines().any(|l| l == "pagerduty==7.2.0"));
        assert!(requirements
            .lines()
            .all(|l| l.is_empty() || l.starts_with('#') || l.contains("==")));
    }
}
