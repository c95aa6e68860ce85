//! `cargo xtask <command>` — the project's task runner.
//!
//! - `dev`: the whole system locally (see `stack`), with the schedule as a timer.
//! - `test`: installs the local services if missing, then `cargo test --workspace`.
//! - `template`: `sam validate --lint`, `cfn-lint`, `checkov` (template.yaml and
//!   infra/vpc.yaml) and `sam build` (arm64, cargo-lambda).
//! - `bench`: sync figures (rate-limit bound, throughput, peak RSS), printed, not asserted.
//! - `bench-queries`: dashboard query API p50/p99 and page load, printed, not asserted.
//! - `bench-init`: handler cold starts and sizes beside a hello-world's, printed, not asserted.
//! - `scale`: the tick's fan-out at 2,000 connections and a model of 10,000 orgs × 3 apps
//!   (`scale`), printed; fails only if a connection was lost or synced twice.
//! - `migrate-activity`: packs the activity items of versions before issue 16 (`migrate`).

mod bench;
mod init_bench;
mod migrate;
mod prerequisites;
mod query_bench;
mod scale;

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use seatscope_local::services::Tools;
use seatscope_local::stack::{workspace_root, Stack, StackOptions};

const USAGE: &str =
    "usage: cargo xtask <dev|test|template|bench|bench-queries|bench-init|scale|migrate-activity>
                   [options]

  dev       run everything locally: DynamoDB Local, moto, the three vendor sandboxes,
            the four handlers behind template.yaml's routes
              --port N (3000)  --tick-seconds N (30)
              --sandbox-port N (4010, PagerDuty)  --pandadoc-port N (4011)
              --sendgrid-port N (4012)  --dynamodb-port N (8000)  --moto-port N (4566)
              --seed N --users N --days N --events-per-day N   (PagerDuty data)
  test      install what is missing (apt packages when root, .tools/), then cargo test
            --workspace with today pinned to 2026-11-23
              --today YYYY-MM-DD   run as if today were that day
  template  sam validate --lint, cfn-lint, checkov (template.yaml, infra/vpc.yaml),
            sam build (arm64 bootstrap binaries)
  bench     sync wall time vs the rate-limit bound; events/s, DynamoDB items and peak
            RSS at 10k/100k/1M events (release builds; prints, asserts nothing)
              --sizes 10000,100000,1000000  --no-rate-limit-run  --no-build
              (cargo xtask bench --help)
  bench-queries  query API p50/p99 (overview, app detail, seats) on 50 apps × 10k seats
            × 365 days in DynamoDB Local, and page load to charts drawn in Chromium
              --apps N --seats N --days N --runs N --page-runs N --no-page --no-build
  bench-init     each handler's cold start (spawn → first Runtime API poll) and binary
            size beside a hello-world lambda_http function's (release; prints only)
              --runs N (15)  --no-build
  scale     the tick's SQS fan-out at N connections (three sandboxes, the worker at
            template.yaml's MaximumConcurrency): timings, writes/s, calls per connection,
            0 lost / 0 duplicated checked; then a model of 10,000 orgs × 3 apps on AWS
              --connections N (2000)  --concurrency N
  migrate-activity  pack the per-(seat, day) activity items of versions before issue 16
            into day items, once, after deploying (idempotent)
              --table NAME  --endpoint URL (DynamoDB Local)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("dev") => dev(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("template") => template(),
        Some("bench") => bench::run(&args[1..]),
        Some("bench-queries") => query_bench::run(&args[1..]),
        Some("bench-init") => init_bench::run(&args[1..]),
        Some("scale") => scale::run(&args[1..]),
        Some("migrate-activity") => migrate::run(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> anyhow::Result<T> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            let v = args
                .get(i + 1)
                .with_context(|| format!("{name} needs a value"))?;
            v.parse()
                .map_err(|_| anyhow::anyhow!("{name}: '{v}' is not valid"))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn dev(args: &[String]) -> anyhow::Result<()> {
    prerequisites::for_dev()?;
    let mut options = StackOptions {
        api_port: flag(args, "--port", 3000)?,
        sandbox_port: flag(args, "--sandbox-port", 4010)?,
        pandadoc_port: flag(args, "--pandadoc-port", 4011)?,
        sendgrid_port: flag(args, "--sendgrid-port", 4012)?,
        // Where tests/events/env.json (sam local invoke) expects them.
        dynamodb_port: flag(args, "--dynamodb-port", 8000)?,
        moto_port: flag(args, "--moto-port", 4566)?,
        ..StackOptions::default()
    };
    options.sandbox.seed = flag(args, "--seed", options.sandbox.seed)?;
    options.sandbox.users = flag(args, "--users", options.sandbox.users)?;
    options.sandbox.days = flag(args, "--days", options.sandbox.days)?;
    options.sandbox.events_per_day =
        flag(args, "--events-per-day", options.sandbox.events_per_day)?;
    let tick_seconds: u64 = flag(args, "--tick-seconds", 30)?;
    seatscope_core::telemetry::init();
    runtime()?.block_on(async move {
        let started = Instant::now();
        eprintln!("starting the local stack…");
        let stack = Stack::start(options).await?;
        let api = stack.api_url();
        let token = stack.token("demo", "admin@demo.example");
        println!(
            "\nSeatscope is running ({:.1} s)\n\
             \n  dashboard                    {api}/connections\
             \n  API (template.yaml routes)   {api}\
             \n  dev OIDC issuer              {issuer}  (sign in as any email and org)\
             \n  PagerDuty sandbox            {sandbox}  (ground truth: {sandbox}/_sandbox/ground-truth)\
             \n  PandaDoc sandbox             {pandadoc}  (ground truth: {pandadoc}/_sandbox/ground-truth)\
             \n  SendGrid sandbox             {sendgrid}  (ground truth: {sendgrid}/_sandbox/ground-truth)\
             \n  DynamoDB Local               {ddb}  (table {table})\
             \n  moto (Secrets Manager, SQS)  {moto}\
             \n  schedule                     every {tick_seconds} s, or POST {api}/_local/tick\
             \n\nDemo org 'demo', user 'admin@demo.example'. Bearer token (12 h):\
             \n\n  export TOKEN={token}\
             \n\nWalk:\
             \n  curl -s -X POST -H \"Authorization: Bearer $TOKEN\" {api}/api/connections/pagerduty/connect\
             \n  → open authorize_url in a browser, press Approve\
             \n  curl -s -X POST -H \"Authorization: Bearer $TOKEN\" {api}/api/connections/pagerduty/sync\
             \n  curl -s -X POST {api}/_local/tick\
             \n  curl -s -H \"Authorization: Bearer $TOKEN\" {api}/api/overview\
             \n\nSendGrid connects with an API key; the sandbox accepts this one:\
             \n  curl -s -X POST -H \"Authorization: Bearer $TOKEN\" -H 'content-type: application/json' \\\
             \n    -d '{{\"api_key\":\"{sendgrid_key}\"}}' {api}/api/connections/sendgrid/api-key\
             \n\nCtrl-C stops everything.",
            started.elapsed().as_secs_f64(),
            issuer = stack.issuer_url(),
            sandbox = stack.sandbox.base_url(),
            pandadoc = stack.pandadoc.base_url(),
            sendgrid = stack.sendgrid.base_url(),
            sendgrid_key = seatscope_sandbox::SendGridSandboxKey::full().key,
            ddb = stack.aws.dynamodb.endpoint,
            table = stack.table_name,
            moto = stack.aws.moto.endpoint,
        );
        let mut timer = tokio::time::interval(Duration::from_secs(tick_seconds.max(1)));
        timer.tick().await;
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = timer.tick() => match stack.tick().await {
                    Ok(report) if report["due"].as_u64().unwrap_or(0) > 0 => eprintln!("tick: {report}"),
                    Ok(_) => {}
                    Err(e) => eprintln!("tick failed: {e:#}"),
                },
            }
        }
        eprintln!("stopping…");
        drop(stack);
        Ok(())
    })
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("+ {shown}");
    let status = cmd.status().with_context(|| format!("running {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// The day the test command pins when `--today` is not given: tests must pass on any
/// date, and the same fixed day makes every run reproducible (the suites also rerun
/// themselves at `common::PINNED_DAYS`).
const DEFAULT_TEST_DAY: &str = "2026-11-23";

fn test(args: &[String]) -> anyhow::Result<()> {
    // Before building anything: what the machine must have (installed if it can be).
    prerequisites::for_test()?;
    let (today, rest) = match args.iter().position(|a| a == "--today") {
        Some(i) => {
            let day = args
                .get(i + 1)
                .context("--today needs a YYYY-MM-DD value")?;
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(day, format)
                .with_context(|| format!("--today: '{day}' is not a YYYY-MM-DD date"))?;
            let rest = [&args[..i], &args[(i + 2).min(args.len())..]].concat();
            (day.clone(), rest)
        }
        None => (DEFAULT_TEST_DAY.to_string(), args.to_vec()),
    };
    let tools = Tools::locate()?;
    runtime()?.block_on(tools.ensure())?;
    let root = workspace_root();
    eprintln!("tests run as if today were {today} (SEATSCOPE_TODAY; --today YYYY-MM-DD picks another day)");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .env("SEATSCOPE_TODAY", &today)
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(rest);
    run(&mut cmd)
}

/// Installs checkov into its own venv, .tools/checkov, if missing: it pins boto3,
/// botocore and packaging to versions that would downgrade what sam, cfn-lint and moto
/// use in .tools/venv.
fn checkov_tool(tools: &Tools) -> anyhow::Result<std::path::PathBuf> {
    let venv = tools.root.join("checkov");
    let checkov = venv.join("bin").join("checkov");
    if checkov.exists() {
        return Ok(checkov);
    }
    if !venv.join("bin").join("pip").exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", "checkov"]))?;
    Ok(checkov)
}

/// Installs sam, cfn-lint, cargo-lambda and zig into .tools/venv if missing.
fn deploy_tools(tools: &Tools) -> anyhow::Result<std::path::PathBuf> {
    let venv = tools.root.join("venv");
    let bin = venv.join("bin");
    let wanted = ["sam", "cfn-lint", "cargo-lambda", "python-zig"];
    if wanted.iter().all(|b| bin.join(b).exists()) {
        return Ok(bin);
    }
    if !bin.join("pip").exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run(Command::new(bin.join("pip")).args([
        "install",
        "--quiet",
        "aws-sam-cli",
        "cfn-lint",
        "cargo-lambda",
        "ziglang",
    ]))?;
    Ok(bin)
}

fn template() -> anyhow::Result<()> {
    let tools = Tools::locate()?;
    let bin = deploy_tools(&tools)?;
    let root = workspace_root();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let with_env = |c: &mut Command| {
        c.current_dir(&root)
            .env("PATH", &path)
            .env("SAM_CLI_TELEMETRY", "0")
            .env("AWS_DEFAULT_REGION", "us-east-1");
    };
    let mut validate = Command::new(bin.join("sam"));
    validate.args(["validate", "--lint", "--template", "template.yaml"]);
    with_env(&mut validate);
    run(&mut validate)?;
    let mut validate_vpc = Command::new(bin.join("sam"));
    validate_vpc.args(["validate", "--lint", "--template", "infra/vpc.yaml"]);
    with_env(&mut validate_vpc);
    run(&mut validate_vpc)?;
    let mut lint = Command::new(bin.join("cfn-lint"));
    lint.args(["template.yaml", "infra/vpc.yaml"]);
    with_env(&mut lint);
    run(&mut lint)?;
    // 0 failed checks; every skip is justified in the resource's Metadata.checkov.skip.
    // --skip-download: no call to Prisma Cloud for guidelines (works offline, no API key).
    let mut checkov = Command::new(checkov_tool(&tools)?);
    checkov.args([
        "--framework",
        "cloudformation",
        "-f",
        "template.yaml",
        "-f",
        "infra/vpc.yaml",
        "--compact",
        "--quiet",
        "--skip-download",
    ]);
    with_env(&mut checkov);
    run(&mut checkov)?;
    let mut build = Command::new(bin.join("sam"));
    build.args(["build", "--beta-features", "--template", "template.yaml"]);
    with_env(&mut build);
    let started = Instant::now();
    run(&mut build)?;
    eprintln!("sam build took {:.0} s", started.elapsed().as_secs_f64());
    let built = root.join(".aws-sam/build");
    for function in [
        "ConnectStartFunction",
        "OAuthCallbackFunction",
        "ScheduledSyncFunction",
        "DashboardApiFunction",
    ] {
        let bootstrap = built.join(function).join("bootstrap");
        let meta = std::fs::metadata(&bootstrap)
            .with_context(|| format!("{} was not built", bootstrap.display()))?;
        let out = Command::new("file").arg(&bootstrap).output();
        let kind = out
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default();
        println!(
            "{function}: bootstrap {:.1} MB {}",
            meta.len() as f64 / 1_048_576.0,
            kind.split(':').nth(1).unwrap_or("").trim()
        );
        // .cargo/config.toml links the arm64 binaries position-dependent (cold start,
        // issue 11): ELF e_type 2 (EXEC), not 3 (DYN, a PIE).
        let head = std::fs::read(&bootstrap)?;
        let e_type = head.get(16..18).map(|b| u16::from_le_bytes([b[0], b[1]]));
        anyhow::ensure!(
            e_type == Some(2),
            "{} is not a position-dependent executable (ELF type {e_type:?}): the \
             relocation-model=static rustflags of .cargo/config.toml did not reach sam build",
            bootstrap.display()
        );
    }
    Ok(())
}
