//! What a bare machine must have before `cargo xtask test` builds anything: Java (DynamoDB
//! Local), Node.js + npm (DynamoDB Local's package, the dashboard's browser libraries,
//! Playwright), Python 3 with venv (moto) and a headless Chromium (the browser tests).
//! Whatever is missing is installed from Debian's packages when this runs as root on a
//! machine with apt-get (as CI does); otherwise it stops at once with the one command
//! that installs it.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::bail;

/// One thing the commands need, the check that finds it and the Debian package with it.
struct Prerequisite {
    what: &'static str,
    package: &'static str,
    present: fn() -> bool,
}

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The browser the tests drive: `$CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

const JAVA: Prerequisite = Prerequisite {
    what: "Java 17 or newer (DynamoDB Local)",
    package: "default-jre-headless",
    present: || runs("java", &["-version"]),
};
const NODE: Prerequisite = Prerequisite {
    what: "Node.js (DynamoDB Local's npm package, the page's libraries, Playwright)",
    package: "nodejs",
    present: || runs("node", &["--version"]),
};
const NPM: Prerequisite = Prerequisite {
    what: "npm",
    package: "npm",
    present: || runs("npm", &["--version"]),
};
const PYTHON_VENV: Prerequisite = Prerequisite {
    what: "Python 3 with venv (moto, the template tools)",
    package: "python3-venv",
    present: || runs("python3", &["-c", "import venv, ensurepip"]),
};
const CHROMIUM: Prerequisite = Prerequisite {
    what: "a headless Chromium (the browser tests; or set CHROMIUM to one)",
    package: "chromium",
    present: || chromium_path().is_file(),
};

/// For `cargo xtask dev`.
pub fn for_dev() -> anyhow::Result<()> {
    ensure(&[JAVA, NODE, NPM, PYTHON_VENV])
}

/// For `cargo xtask test`: what `dev` needs, and the browser.
pub fn for_test() -> anyhow::Result<()> {
    ensure(&[JAVA, NODE, NPM, PYTHON_VENV, CHROMIUM])
}

fn missing(wanted: &[Prerequisite]) -> Vec<&Prerequisite> {
    wanted.iter().filter(|p| !(p.present)()).collect()
}

fn ensure(wanted: &[Prerequisite]) -> anyhow::Result<()> {
    let absent = missing(wanted);
    if absent.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = absent.iter().map(|p| p.package).collect();
    let list = absent
        .iter()
        .map(|p| format!("  - {} (Debian package `{}`)", p.what, p.package))
        .collect::<Vec<_>>()
        .join("\n");
    let command = format!("sudo apt-get install -y {}", packages.join(" "));
    let is_root = unsafe { libc::geteuid() } == 0;
    if !is_root || !runs("apt-get", &["--version"]) {
        bail!("this machine lacks:\n{list}\ninstall them with:\n  {command}\nthen run the command again");
    }
    eprintln!("installing what this machine lacks:\n{list}");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let installed =
        apt(&["update", "-qq"]) && apt(&[&["install", "-y", "-qq"][..], &packages[..]].concat());
    let still = missing(wanted);
    if !installed || !still.is_empty() {
        let names: Vec<&str> = still.iter().map(|p| p.package).collect();
        bail!(
            "apt-get could not install {} ; install by hand with:\n  {command}",
            names.join(" ")
        );
    }
    Ok(())
}
