//! `cargo xtask bench-queries`: dashboard figures, printed, never asserted (README.md § Dashboard queries and page load).
//!
//! 1. **Query API.** `bench-queries` (`src/bin/bench-queries.rs`, a release build, as in
//!    Lambda) seeds one org with 50 apps × 10k seats × 365 daily rollups in DynamoDB
//!    Local, then times the dashboard-api handler: overview, app detail for 12 months,
//!    seat list — p50/p99; and in a second org, 10k people × 3 apps: the people list
//!    (a page of 100, and the "holds 2+ apps, active in none" filter), the same with
//!    the process's kept list forgotten first (a new Lambda instance) — read from the
//!    stored people snapshot, and rebuilt with the snapshot deleted — and its CSV.
//! 2. **Page load.** Headless Chromium loads the app page of the seeded PagerDuty app
//!    (10k seats, 12 months) through the local gateway, signed in through the dev
//!    issuer: p50/p99 from navigation start to the charts drawn
//!    (`tests/browser/page-load-bench.mjs`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use seatscope_local::services::Tools;
use seatscope_local::stack::{workspace_root, Stack, StackOptions};

const USAGE: &str = "usage: cargo xtask bench-queries [--apps 50] [--seats 10000] [--days 365]
                                 [--runs 200] [--page-runs 20] [--no-build] [--no-page]

  Seeds DynamoDB Local with --apps apps × --seats seats × --days daily rollups for one
  org, then prints p50/p99 of the dashboard-api handler (release build) for the
  overview, app detail (12 months) and the seat list; seeds a second org with 10k
  people × 3 apps (the first three apps: --apps 3 or more) and times the people list
  (GET /api/people) warm, cold from the stored people snapshot and cold rebuilt, and
  its CSV; and the page load to charts drawn in headless Chromium (--no-page skips
  it). Asserts nothing.";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let root = workspace_root();
    let bin = root.join("target/release/bench-queries");
    if !args.iter().any(|a| a == "--no-build") {
        eprintln!("bench-queries: building the measured process in release mode…");
        let started = Instant::now();
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&root).args([
            "build",
            "--release",
            "-p",
            "seatscope-local",
            "--bin",
            "bench-queries",
        ]);
        crate::run(&mut cmd)?;
        eprintln!(
            "bench-queries: release build done in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    anyhow::ensure!(
        bin.exists(),
        "{} is missing (drop --no-build)",
        bin.display()
    );
    let passthrough: Vec<String> = ["--apps", "--seats", "--days", "--runs"]
        .iter()
        .filter_map(|flag| {
            let i = args.iter().position(|a| a == flag)?;
            Some([flag.to_string(), args.get(i + 1)?.clone()])
        })
        .flatten()
        .collect();
    let page_runs = crate::flag(args, "--page-runs", 20u32)?;
    let page = !args.iter().any(|a| a == "--no-page");

    let tools = Tools::locate()?;
    let runtime = crate::runtime()?;
    runtime.block_on(tools.ensure())?;
    runtime.block_on(async {
        let stack = Stack::start(StackOptions::default()).await?;
        let status = Command::new(&bin)
            .args(&passthrough)
            .envs(&stack.env)
            .env("SEATSCOPE_LOCAL_DYNAMODB", &stack.aws.dynamodb.endpoint)
            .env("SEATSCOPE_LOCAL_MOTO", &stack.aws.moto.endpoint)
            .stdin(Stdio::null())
            .status()
            .context("starting bench-queries")?;
        anyhow::ensure!(status.success(), "bench-queries failed ({status})");
        if page {
            page_load(&root, &stack, page_runs)?;
        }
        Ok(())
    })
}

/// The browser part: the seeded org's PagerDuty page (10k seats, 12 months).
fn page_load(root: &Path, stack: &Stack, runs: u32) -> anyhow::Result<()> {
    let dir = root.join("tests/browser");
    if !dir.join("node_modules/playwright-core").is_dir() {
        crate::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
        )?;
    }
    eprintln!("bench-queries: page load in headless Chromium ({runs} loads)…");
    // Not through crate::run, which echoes the command: the token stays out of the output.
    let status = Command::new("node")
        .arg(dir.join("page-load-bench.mjs"))
        .env("SEATSCOPE_API", stack.api_url())
        .env(
            "SEATSCOPE_TOKEN",
            stack.token("bench-queries", "admin@bench-queries.example"),
        )
        .env("SEATSCOPE_BENCH_PROVIDER", "pagerduty")
        .env("SEATSCOPE_BENCH_RANGE", "12")
        .env("SEATSCOPE_BENCH_RUNS", runs.to_string())
        .status()
        .context("starting node")?;
    anyhow::ensure!(status.success(), "the page-load bench failed ({status})");
    Ok(())
}
