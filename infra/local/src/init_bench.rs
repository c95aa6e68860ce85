//! `cargo xtask bench-init`: each handler's cold start next to a hello-world `lambda_http`
//! function's, measured the same way in one run. It prints figures and asserts nothing.
//!
//! How: the release binaries (this machine's target, the workspace's release profile and the
//! codegen flags `.cargo/config.toml` gives the deployed arm64 binaries, applied to the
//! handlers and hello-world alike: position-dependent executables) are spawned with
//! `AWS_LAMBDA_RUNTIME_API` pointing at a Lambda Runtime API played on loopback; the time
//! from spawn to the binary's first `GET /2018-06-01/runtime/invocation/next` is its init
//! (what Lambda bills as Init Duration, less the sandbox's own start). Each binary gets
//! the environment template.yaml gives it, with placeholder values (no AWS call happens
//! before the first poll). Runs alternate between binaries so drift hits all alike.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USAGE: &str = "usage: cargo xtask bench-init [--runs N (15)] [--no-build]

  Builds the four handlers and infra/hello-lambda (release, this machine's target, with the
  rustflags .cargo/config.toml gives the deployed arm64 binaries), copies them to
  target/<host triple>/release/bench-init/, then spawns each copy --runs times against a Lambda Runtime API on loopback and prints, per
  binary, its size, what the dynamic loader does to it before main (relative relocations,
  and the RELRO bytes it writes and so copies on write), and its init time (spawn → first
  poll of /invocation/next): min, median, max, and the median's ratio to hello-world's.
  Targets (issue 11): ratio ≤ 1.3, binary ≤ 8 MB.";

struct Subject {
    name: &'static str,
    package: &'static str,
}

const SUBJECTS: [Subject; 5] = [
    Subject {
        name: "hello-world (lambda_http)",
        package: "hello-lambda",
    },
    Subject {
        name: "connect-start",
        package: "connect-start",
    },
    Subject {
        name: "oauth-callback",
        package: "oauth-callback",
    },
    Subject {
        name: "scheduled-sync",
        package: "scheduled-sync",
    },
    Subject {
        name: "dashboard-api",
        package: "dashboard-api",
    },
];

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let runs: usize = crate::flag(args, "--runs", 15)?;
    anyhow::ensure!(runs >= 1, "--runs must be at least 1");
    let root = crate::workspace_root();
    let host = host_triple()?;
    let rustflags = deployed_rustflags(&root)?;
    if !args.iter().any(|a| a == "--no-build") {
        build(&root, &host, &rustflags)?;
    }
    let release = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join(&host)
        .join("release");
    let built: Vec<PathBuf> = SUBJECTS.iter().map(|s| release.join(s.package)).collect();
    for bin in &built {
        anyhow::ensure!(
            bin.is_file(),
            "{} is missing (drop --no-build)",
            bin.display()
        );
    }
    // Each binary is spawned from a fresh copy (target/release/bench-init/), written
    // sequentially as Lambda's unpacking of the deployment package writes it. Started from
    // the file the linker wrote, the same bytes took longer here (interleaved, 100 runs:
    // hello-world 0.09 ms, connect-start 0.23 ms more), the larger binary more, which put
    // the ratio 0.08 higher; most likely how the linker's memory-mapped writes leave the
    // file in the page cache (more, smaller page faults), nothing Lambda would see.
    let copies = release.join("bench-init");
    std::fs::create_dir_all(&copies)?;
    let mut bins = Vec::new();
    for bin in &built {
        let copy = copies.join(bin.file_name().context("binary name")?);
        let _ = std::fs::remove_file(&copy);
        std::fs::copy(bin, &copy).with_context(|| format!("copying {}", bin.display()))?;
        bins.push(copy);
    }
    let rt = crate::runtime()?;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); bins.len()];
    // One warm-up spawn each (page cache), not counted.
    for bin in &bins {
        rt.block_on(init_time(bin))?;
    }
    for _ in 0..runs {
        for (i, bin) in bins.iter().enumerate() {
            samples[i].push(rt.block_on(init_time(bin))?);
        }
    }
    let hello = median(&samples[0]);
    println!(
        "\nCold start: spawn → first poll of /2018-06-01/runtime/invocation/next, {runs} runs each, \
         release profile, rustflags {rustflags:?} (as deployed), {} ({} cores)\n",
        std::env::consts::ARCH,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| binary | size | ELF type | relative relocs | RELRO | init min | init median | init max | median ÷ hello-world |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (s, (bin, times)) in SUBJECTS.iter().zip(bins.iter().zip(&samples)) {
        let size = std::fs::metadata(bin)?.len() as f64 / 1e6;
        let (min, max) = (
            times.iter().min().copied().unwrap_or_default(),
            times.iter().max().copied().unwrap_or_default(),
        );
        let med = median(times);
        let elf = std::fs::read(bin)?;
        let kind = match elf.get(16..18).map(|b| u16::from_le_bytes([b[0], b[1]])) {
            Some(2) => "executable",
            Some(3) => "PIE",
            _ => "?",
        };
        let (relocs, relro) = match load_work(&elf) {
            Some((n, bytes)) => (n.to_string(), format!("{:.0} KB", bytes as f64 / 1e3)),
            None => ("?".into(), "?".into()),
        };
        println!(
            "| {} | {size:.1} MB | {kind} | {relocs} | {relro} | {:.1} ms | {:.1} ms | {:.1} ms | {:.2}× |",
            s.name,
            ms(min),
            ms(med),
            ms(max),
            med.as_secs_f64() / hello.as_secs_f64().max(1e-9)
        );
    }
    println!("\nTargets: median ÷ hello-world ≤ 1.30×, size ≤ 8 MB (MB = 10^6 bytes).");
    Ok(())
}

/// What the dynamic loader does to a PIE before `main`, from its ELF headers (64-bit,
/// little-endian): the relative relocations it applies (DT_RELACOUNT) and the size of the
/// RELRO segment, the relocated data it writes (each page copied on write) and then
/// write-protects. None for anything else.
fn load_work(elf: &[u8]) -> Option<(u64, u64)> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (phoff, phentsize, phnum) = (u64_at(0x20)? as usize, u16_at(0x36)?, u16_at(0x38)?);
    let (mut relative, mut relro) = (None, 0);
    for i in 0..usize::from(phnum) {
        let ph = phoff + i * usize::from(phentsize);
        match u32_at(ph)? {
            // PT_DYNAMIC: its DT_RELACOUNT entry.
            2 => {
                let (off, size) = (u64_at(ph + 8)? as usize, u64_at(ph + 32)? as usize);
                relative = (off..off + size)
                    .step_by(16)
                    .map_while(|d| Some((u64_at(d)?, u64_at(d + 8)?)))
                    .take_while(|&(tag, _)| tag != 0)
                    .find(|&(tag, _)| tag == 0x6fff_fff9)
                    .map(|(_, n)| n);
            }
            // PT_GNU_RELRO: its size in memory.
            0x6474_e552 => relro = u64_at(ph + 40)?,
            _ => {}
        }
    }
    Some((relative.unwrap_or(0), relro))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// This machine's target triple (`rustc -vV`).
fn host_triple() -> anyhow::Result<String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV names no host")
}

/// The rustflags `.cargo/config.toml` gives the deployed binaries
/// (`[target.aarch64-unknown-linux-gnu]`), so the bench measures what Lambda runs.
fn deployed_rustflags(root: &Path) -> anyhow::Result<Vec<String>> {
    let path = root.join(".cargo/config.toml");
    let config: toml::Table = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    Ok(config
        .get("target")
        .and_then(|t| t.get("aarch64-unknown-linux-gnu"))
        .and_then(|t| t.get("rustflags"))
        .and_then(|f| f.as_array())
        .map(|flags| {
            flags
                .iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

fn build(root: &Path, host: &str, rustflags: &[String]) -> anyhow::Result<()> {
    eprintln!(
        "bench-init: building the handlers and hello-lambda (release, --target {host}, \
         rustflags {rustflags:?})…"
    );
    let started = Instant::now();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // With --target, the flags reach the binaries and their crates, never the build
    // scripts and proc macros (which must stay position-independent).
    cmd.current_dir(root)
        .args(["build", "--release", "--target", host])
        .env(
            format!(
                "CARGO_TARGET_{}_RUSTFLAGS",
                host.to_uppercase().replace(['-', '.'], "_")
            ),
            rustflags.join(" "),
        );
    for s in &SUBJECTS {
        cmd.args(["-p", s.package]);
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    eprintln!(
        "bench-init: release build done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The environment template.yaml gives every function (placeholders), and what Lambda sets.
fn lambda_env(cmd: &mut tokio::process::Command, runtime_api: &str) {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench-init")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench-init")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_SESSION_TOKEN", "bench")
        .env("TABLE_NAME", "seatscope-bench")
        .env("STAGE", "bench")
        .env("SECRET_PREFIX", "seatscope/bench")
        .env("ORG_CLAIM", "org_id")
        .env(
            "OAUTH_REDIRECT_URI",
            "https://example.invalid/oauth/callback",
        )
        .env("PAGERDUTY_CLIENT_ID", "bench")
        .env(
            "PAGERDUTY_CLIENT_SECRET_NAME",
            "seatscope/bench/oauth-clients/pagerduty",
        )
        .env("PANDADOC_CLIENT_ID", "bench")
        .env(
            "PANDADOC_CLIENT_SECRET_NAME",
            "seatscope/bench/oauth-clients/pandadoc",
        )
        .env("OIDC_ISSUER", "https://issuer.example.invalid/")
        .env("OIDC_CLIENT_ID", "bench")
        .env(
            "SYNC_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/000000000000/seatscope-bench-sync",
        );
}

/// Spawns `bin` against a Runtime API on loopback; the time until its first poll.
async fn init_time(bin: &Path) -> anyhow::Result<Duration> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let mut cmd = tokio::process::Command::new(bin);
    lambda_env(&mut cmd, &addr);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;
    let polled = async {
        loop {
            let (mut socket, _) = listener.accept().await?;
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await?;
            let at = started.elapsed();
            let head = String::from_utf8_lossy(&buf[..n]);
            if head.starts_with("GET /2018-06-01/runtime/invocation/next") {
                let _ = socket
                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n")
                    .await;
                return anyhow::Ok(at);
            }
        }
    };
    let result = tokio::select! {
        at = polled => at,
        status = child.wait() => {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr).await;
            }
            Err(anyhow::anyhow!("{} exited before polling ({:?}): {stderr}", bin.display(), status?))
        }
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            Err(anyhow::anyhow!("{} did not poll within 10 s", bin.display()))
        }
    };
    let _ = child.kill().await;
    result
}
