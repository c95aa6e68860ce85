//! `cargo xtask bench`: sync figures, printed, never asserted (README.md § Performance).
//!
//! 1. **Rate-limit bound, every vendor.** Each vendor's sandbox enforces its limits
//!    (PagerDuty: 960 requests per fixed 60 s window; PandaDoc: per operation over a
//!    sliding 60 s window, 600 for document details, 600 for template details, 2000
//!    for each list; SendGrid: a fixed window per endpoint reported in `X-RateLimit-*`,
//!    set to [`SENDGRID_PER_MINUTE`], a number the client is not told); a data set
//!    that needs a few windows' worth of requests is synced with the production
//!    budget; wall time is compared with the least time the vendor's limit allows
//!    (see [`rate_bound_secs`], for the busiest operation or endpoint where each has
//!    its own limit), and the sandbox's 429s are counted.
//! 2. **Throughput and memory.** The sandbox's limit and the client's budget off;
//!    10k, 100k and 1M activity events (`--sizes`); wall time, events/s, DynamoDB
//!    items written and time share, and the sync process's peak RSS. Before the
//!    measured runs every log entry is listed once ([`prime`]): the sandbox keeps
//!    each entry's rendered JSON, and both clients should meet it warm.
//! 3. **Against the comparison script.** For each throughput size, after Seatscope's
//!    sync and against the same sandbox process (its data fixed at start, primed, its
//!    limit off), `infra/local/bench/pagerduty_script.py` (`seatscope_local::script_bench`):
//!    the afternoon's Python a data engineer would write from PagerDuty's and AWS's
//!    documentation (PagerDuty's official client, one UTC day of log entries per
//!    query, counts per user, day and feature in a dict, one item per user and day
//!    with boto3's batch writer into its own table on the same DynamoDB Local), in a
//!    virtualenv at `.tools/bench-venv`. Side by side: process wall, events/s, items
//!    written, peak RSS, and Seatscope's events/s ÷ the script's. The one thing
//!    checked: both counted the same events, or the bench fails (`--no-script` skips it).
//!
//! The measured sync runs in its own process (`bench-sync`, `src/bin/bench-sync.rs`, a
//! release build, as in Lambda), against a release build of the sandbox (its own process
//! too) and DynamoDB Local and moto (child processes of this one). Peak RSS and CPU time come
//! from `wait4`'s rusage of the sync process (and of the script's); the sandbox's and
//! DynamoDB Local's CPU time from `/proc/<pid>/stat`, so the table shows where the time goes.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use seatscope_core::domain::Caller;
use seatscope_local::script_bench::{self, Script, ScriptLine};
use seatscope_local::services::Tools;
use seatscope_local::stack::{workspace_root, Stack, StackOptions};
use seatscope_sandbox::{PagerDutyConfig, PandaDocConfig, SendGridSandboxKey};

const USAGE: &str = "usage: cargo xtask bench [--sizes 10000,100000,1000000] [--no-rate-limit-run]
                         [--rate-vendors pagerduty,pandadoc,sendgrid]
                         [--rate-events-per-day N (3000)] [--no-script] [--no-build]

  Builds bench-sync and the sandbox (release), then prints, as Markdown tables:
  1. for each vendor of --rate-vendors (default all three), sync wall time vs the least
     time the vendor's limit allows, and its 429s; the sandbox enforcing PagerDuty's
     960/min (200 users, 30 days, N counted events a day), PandaDoc's per-operation
     sliding windows (50 users, 14 days, 100 documents a day) and SendGrid's per-endpoint
     windows at 10/min (5 years of daily stats, 90 days a request);
  2. with every limit off, for each size (activity events; 500 users, 100 days; every
     log entry listed once first, so the sandbox serves them from its cache):
     wall time, events/s, DynamoDB items written and time share, peak RSS;
  3. for each size of 2, the comparison script (infra/local/bench/pagerduty_script.py:
     PagerDuty's Python client, one UTC day per query, boto3's batch writer; in a
     virtualenv at .tools/bench-venv, pip-installed from requirements.txt) on the same
     sandbox and DynamoDB Local after Seatscope's sync: wall time, events/s, items
     written, peak RSS beside Seatscope's, and Seatscope's events/s ÷ the script's.
  --sizes none skips 2 and 3; --no-rate-limit-run skips 1; --no-script skips 3.
  Asserts nothing, except that the script counted the events Seatscope counted.";

/// The sandbox's API key for the bench connection (an account key: one rate subject).
const API_KEY: &str = "seatscope-bench-account-key";
/// The PandaDoc sandbox's legacy API key for the bench connection (the owner's).
const PANDADOC_KEY: &str = "5eb7bc1b3a9d4e0f8c6a2b1d0e9f8a7b6c5d4e3f";
/// PagerDuty's documented limit, the sandbox's default.
const VENDOR_PER_MINUTE: u64 = 960;
/// PandaDoc's documented limits per operation (sliding 60 s), the sandbox's defaults.
const PANDADOC_DETAILS_PER_MINUTE: u64 = 600;
const PANDADOC_LIST_PER_MINUTE: u64 = 2000;
/// SendGrid publishes no number; the sandbox is set to this per endpoint and minute,
/// far under the client's fallback budget (600/min), so only the headers keep the
/// client under it; and low enough that five years of daily stats (90 days a
/// request) take three windows.
const SENDGRID_PER_MINUTE: u64 = 10;
/// "Off": far above anything a single sync can send.
const UNLIMITED: u32 = 1_000_000_000;
const DEFAULT_SIZES: &[u64] = &[10_000, 100_000, 1_000_000];

/// The vendors a rate-limited run can sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vendor {
    PagerDuty,
    PandaDoc,
    SendGrid,
}

impl Vendor {
    const ALL: [Vendor; 3] = [Vendor::PagerDuty, Vendor::PandaDoc, Vendor::SendGrid];

    fn id(self) -> &'static str {
        match self {
            Vendor::PagerDuty => "pagerduty",
            Vendor::PandaDoc => "pandadoc",
            Vendor::SendGrid => "sendgrid",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Vendor::PagerDuty => "PagerDuty",
            Vendor::PandaDoc => "PandaDoc",
            Vendor::SendGrid => "SendGrid",
        }
    }

    /// How the sandbox counts, for the table.
    fn limit_label(self) -> String {
        match self {
            Vendor::PagerDuty => format!("{VENDOR_PER_MINUTE} per fixed 60 s window"),
            Vendor::PandaDoc => format!(
                "per operation, sliding 60 s: details {PANDADOC_DETAILS_PER_MINUTE}, lists \
                 {PANDADOC_LIST_PER_MINUTE}"
            ),
            Vendor::SendGrid => {
                format!("{SENDGRID_PER_MINUTE} per endpoint and fixed 60 s window (headers)")
            }
        }
    }

    fn key(self) -> String {
        match self {
            Vendor::PagerDuty => API_KEY.into(),
            Vendor::PandaDoc => PANDADOC_KEY.into(),
            Vendor::SendGrid => SendGridSandboxKey::full().key,
        }
    }
}

struct Options {
    sizes: Vec<u64>,
    rate_limit_run: bool,
    rate_vendors: Vec<Vendor>,
    rate_events_per_day: u32,
    /// Runs the comparison script beside each throughput size.
    script: bool,
    build: bool,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        sizes: DEFAULT_SIZES.to_vec(),
        rate_limit_run: true,
        rate_vendors: Vendor::ALL.to_vec(),
        rate_events_per_day: 3_000,
        script: true,
        build: true,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sizes" => {
                let v = it.next().context("--sizes needs a value")?;
                options.sizes = if v == "none" {
                    Vec::new()
                } else {
                    v.split(',')
                        .map(|s| s.trim().replace('_', "").parse::<u64>())
                        .collect::<Result<_, _>>()
                        .map_err(|_| anyhow::anyhow!("--sizes: '{v}' is not a list of numbers"))?
                };
            }
            "--rate-events-per-day" => {
                let v = it.next().context("--rate-events-per-day needs a value")?;
                options.rate_events_per_day = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--rate-events-per-day: '{v}' is not valid"))?;
            }
            "--rate-vendors" => {
                let v = it.next().context("--rate-vendors needs a value")?;
                options.rate_vendors = v
                    .split(',')
                    .map(|id| {
                        Vendor::ALL
                            .into_iter()
                            .find(|x| x.id() == id.trim())
                            .with_context(|| format!("--rate-vendors: unknown vendor '{id}'"))
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            "--no-rate-limit-run" => options.rate_limit_run = false,
            "--no-script" => options.script = false,
            "--no-build" => options.build = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    Ok(options)
}

/// The least wall time in which `requests` requests can be sent to a vendor that
/// admits `per_minute` of them per fixed 60 s window: the first window opens with the
/// first request and lets a whole window's worth through at once, so the k-th window
/// (k = ⌈requests ÷ per_minute⌉) opens (k − 1) × 60 s later and the last request
/// goes out then: bound = (⌈requests ÷ per_minute⌉ − 1) × 60 s. The naive
/// requests ÷ rate (× 60 s) would be beaten by any client that bursts.
pub fn rate_bound_secs(requests: u64, per_minute: u64) -> u64 {
    requests.div_ceil(per_minute.max(1)).saturating_sub(1) * 60
}

/// The least time for requests spread over several independently limited operations
/// (or endpoints): each needs its own windows, at once, so the busiest one decides.
/// `counts` are (operation, requests, per minute); returns the bound and the busiest.
fn busiest_bound(counts: &[(String, u64, u64)]) -> (u64, Option<&(String, u64, u64)>) {
    let busiest = counts
        .iter()
        .max_by_key(|(_, n, limit)| (rate_bound_secs(*n, *limit), *n));
    (
        busiest.map_or(0, |(_, n, limit)| rate_bound_secs(*n, *limit)),
        busiest,
    )
}

struct Scenario {
    label: String,
    vendor: Vendor,
    users: u32,
    days: u32,
    events_per_day: u32,
    /// The sandbox's requests per 60 s window (PagerDuty and SendGrid; PandaDoc keeps
    /// its defaults).
    sandbox_limit: u32,
    /// The client's budget, replacing the catalog's (None: production's).
    client_limit: Option<u32>,
    /// Whether the comparison script runs after Seatscope's sync (throughput sizes).
    compare: bool,
}

#[derive(Debug, Default)]
struct Figures {
    events: u64,
    api_requests: u64,
    rate_limited: u64,
    /// Requests per independently limited operation or endpoint, with its limit.
    limited_counts: Vec<(String, u64, u64)>,
    sync: Duration,
    process: Duration,
    ddb_busy: Duration,
    ddb_items_written: u64,
    ddb_write: Duration,
    peak_rss_kb: u64,
    cpu_sync: Duration,
    cpu_sandbox: Duration,
    cpu_dynamodb: Duration,
    /// The comparison script's run on the same sandbox and data set, if it ran.
    script: Option<ScriptFigures>,
}

/// The comparison script's figures (`script_bench`).
#[derive(Debug)]
struct ScriptFigures {
    line: ScriptLine,
    api_requests: u64,
    /// The process, start to exit.
    wall: Duration,
    peak_rss_kb: u64,
    cpu: Duration,
    cpu_sandbox: Duration,
    cpu_dynamodb: Duration,
}

struct Bins {
    bench_sync: PathBuf,
    sandbox: PathBuf,
}

fn build(root: &Path, build: bool) -> anyhow::Result<Bins> {
    let release = root.join("target/release");
    let bins = Bins {
        bench_sync: release.join("bench-sync"),
        sandbox: release.join("sandbox"),
    };
    if build {
        eprintln!(
            "bench: building bench-sync and the sandbox in release mode (the measured sync \
             runs as Lambda would; a first release build takes many minutes on 2 cores)…"
        );
        let started = Instant::now();
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(root).args([
            "build",
            "--release",
            "-p",
            "seatscope-local",
            "--bin",
            "bench-sync",
            "-p",
            "seatscope-sandbox",
            "--bin",
            "sandbox",
        ]);
        crate::run(&mut cmd)?;
        eprintln!(
            "bench: release build done in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    for bin in [&bins.bench_sync, &bins.sandbox] {
        anyhow::ensure!(
            bin.exists(),
            "{} is missing (drop --no-build)",
            bin.display()
        );
    }
    Ok(bins)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let root = workspace_root();
    let bins = build(&root, options.build)?;
    let tools = Tools::locate()?;
    let runtime = crate::runtime()?;
    runtime.block_on(tools.ensure())?;
    let script = if options.script && !options.sizes.is_empty() {
        Some(script_bench::prepare(&root)?)
    } else {
        None
    };

    let mut scenarios = Vec::new();
    if options.rate_limit_run {
        for &vendor in &options.rate_vendors {
            let (users, days, events_per_day, sandbox_limit) = match vendor {
                Vendor::PagerDuty => (
                    200,
                    30,
                    options.rate_events_per_day,
                    VENDOR_PER_MINUTE as u32,
                ),
                // 1,400 documents, each read in detail: three windows of
                // document details.
                Vendor::PandaDoc => (50, 14, 100, 0),
                // 12 teammates; 5 years of stats, 90 days a request: 21 requests.
                Vendor::SendGrid => (12, 1_825, 2_000, SENDGRID_PER_MINUTE as u32),
            };
            scenarios.push(Scenario {
                label: vendor.name().into(),
                vendor,
                users,
                days,
                events_per_day,
                sandbox_limit,
                client_limit: None,
                compare: false,
            });
        }
    }
    for &size in &options.sizes {
        let days = 100u32;
        scenarios.push(Scenario {
            vendor: Vendor::PagerDuty,
            label: human(size),
            users: 500,
            days,
            events_per_day: u32::try_from(size.div_ceil(u64::from(days)))
                .context("size too large")?,
            sandbox_limit: UNLIMITED,
            client_limit: Some(UNLIMITED),
            compare: script.is_some(),
        });
    }

    let started = Instant::now();
    let mut results = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        eprintln!(
            "\nbench [{}/{}] {}: {} users, {} days, {} a day; sandbox limit {}, client budget {}",
            i + 1,
            scenarios.len(),
            scenario.label,
            scenario.users,
            scenario.days,
            scenario.events_per_day,
            if scenario.client_limit.is_some() {
                limit_label(u64::from(scenario.sandbox_limit))
            } else {
                scenario.vendor.limit_label()
            },
            scenario
                .client_limit
                .map_or("the catalog's (production)".to_string(), |l| limit_label(
                    u64::from(l)
                )),
        );
        let figures = runtime.block_on(run_scenario(&bins, script.as_ref(), scenario, i))?;
        eprintln!(
            "bench [{}/{}] done: {} events, {} API requests, sync {:.1} s (process {:.1} s), peak RSS {:.1} MB",
            i + 1,
            scenarios.len(),
            figures.events,
            figures.api_requests,
            figures.sync.as_secs_f64(),
            figures.process.as_secs_f64(),
            figures.peak_rss_kb as f64 / 1024.0
        );
        if let Some(s) = &figures.script {
            eprintln!(
                "bench [{}/{}] script: {} events, {} items, {} API requests, {:.1} s (listing {:.1} s, \
                 writing {:.1} s), peak RSS {:.1} MB",
                i + 1,
                scenarios.len(),
                s.line.events,
                s.line.items,
                s.api_requests,
                s.wall.as_secs_f64(),
                s.line.fetch.as_secs_f64(),
                s.line.write.as_secs_f64(),
                s.peak_rss_kb as f64 / 1024.0
            );
        }
        results.push(figures);
    }
    eprintln!(
        "\nbench: finished in {:.0} s\n",
        started.elapsed().as_secs_f64()
    );
    println!("{}", tables(&scenarios, &results));
    Ok(())
}

fn limit_label(l: u64) -> String {
    if l >= u64::from(UNLIMITED) {
        "off".into()
    } else {
        format!("{l}/min")
    }
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// A child process that is killed (and reaped) when dropped, and on Linux also when
/// this process dies.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: between fork and exec; prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// utime + stime of a live process.
fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may contain spaces), 1-based 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
}

/// Waits for `pid` with wait4: its exit status and its own rusage (not the sum over
/// every child this process ever waited for, as RUSAGE_CHILDREN would be).
fn wait4(pid: u32) -> anyhow::Result<(i32, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own child.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r == pid as libc::pid_t {
            return Ok((status, usage));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("wait4");
        }
    }
}

async fn sandbox_stats(base: &str) -> anyhow::Result<serde_json::Value> {
    Ok(reqwest::get(format!("{base}/_sandbox/stats"))
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Lists every PagerDuty log entry of the last `days` days (and today) once, an hour
/// a query, a few queries at a time, before the throughput runs. The sandbox keeps each
/// entry's rendered JSON after the first page that lists it, so without this the first
/// client would pay for rendering every entry and the second — the comparison script,
/// on the same sandbox process — would be served from what the first one left behind.
/// Primed, both meet the same sandbox, and what either does changes nothing the other
/// sees. Returns the requests it sent.
async fn prime(sandbox_url: &str, days: u32) -> anyhow::Result<u64> {
    use futures::{StreamExt as _, TryStreamExt as _};
    let client = &reqwest::Client::new();
    let first = time::OffsetDateTime::now_utc().date() - time::Duration::days(i64::from(days));
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let hours = (0..(i64::from(days) + 1) * 24).map(|h| {
        let since = first.midnight().assume_utc() + time::Duration::hours(h);
        (rfc3339(since), rfc3339(since + time::Duration::HOUR))
    });
    let get = |since: &str, until: &str, limit: u64, offset: u64| {
        client
            .get(format!("{sandbox_url}/log_entries"))
            .header("Authorization", format!("Token token={API_KEY}"))
            .query(&[("since", since), ("until", until)])
            .query(&[("limit", limit), ("offset", offset)])
    };
    futures::stream::iter(hours)
        .map(|(since, until)| async move {
            // The hour's total from a one-entry page, then its pages, read and dropped
            // unparsed (parsing them here, in the xtask's debug build, would take longer
            // than the rendering this is for).
            let first: serde_json::Value = get(&since, &until, 1, 0)
                .query(&[("total", "true")])
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let total = first["total"].as_u64().context("no total")?;
            let mut requests = 1u64;
            // Past the API's offset limit (10,000), the rest of the hour goes unprimed.
            for offset in (0..total.min(10_000)).step_by(100) {
                get(&since, &until, 100, offset)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
                requests += 1;
            }
            anyhow::Ok(requests)
        })
        .buffer_unordered(4)
        .try_fold(0, |sum, n| async move { Ok(sum + n) })
        .await
}

/// A measured child process that has exited.
struct Measured {
    status: i32,
    usage: libc::rusage,
    /// Spawn to exit.
    wall: Duration,
    stdout: String,
}

impl Measured {
    fn succeeded(&self) -> bool {
        libc::WIFEXITED(self.status) && libc::WEXITSTATUS(self.status) == 0
    }
}

/// Spawns `cmd` (stdout piped), reads its stdout while it runs and waits for it with
/// `wait4`, printing the sandbox's request count (since `before`) every 15 s.
async fn measured(
    cmd: &mut Command,
    what: &str,
    sandbox_url: &str,
    before: &serde_json::Value,
) -> anyhow::Result<Measured> {
    die_with_parent(cmd);
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let pid = child.id();
    let stdout = child.stdout.take().context("stdout not piped")?;
    let reading = tokio::task::spawn_blocking(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut out).map(|_| out)
    });
    let mut waiting = tokio::task::spawn_blocking(move || wait4(pid));
    let mut progress = tokio::time::interval(Duration::from_secs(15));
    progress.tick().await;
    let (status, usage) = loop {
        tokio::select! {
            done = &mut waiting => break done??,
            _ = progress.tick() => {
                let sent = sandbox_stats(sandbox_url).await.ok()
                    .and_then(|s| s["api_requests"].as_u64())
                    .unwrap_or(0)
                    .saturating_sub(before["api_requests"].as_u64().unwrap_or(0));
                eprintln!("  … {:.0} s, {sent} API requests so far", started.elapsed().as_secs_f64());
            }
        }
    };
    let wall = started.elapsed();
    // Reaped by wait4 already: dropping the handle neither waits nor kills.
    drop(child);
    Ok(Measured {
        status,
        usage,
        wall,
        stdout: reading.await??,
    })
}

async fn run_scenario(
    bins: &Bins,
    script: Option<&Script>,
    scenario: &Scenario,
    index: usize,
) -> anyhow::Result<Figures> {
    // The sandbox the sync talks to: its own process, a release build.
    let today = time::OffsetDateTime::now_utc().date();
    let end_date = today.previous_day().unwrap_or(today);
    let vendor = scenario.vendor;
    let mut cmd = Command::new(&bins.sandbox);
    cmd.arg(vendor.id())
        .args(["--port", "0", "--seed", "42"])
        .args(["--days", &scenario.days.to_string()])
        .args(["--end-date", &end_date.to_string()]);
    match vendor {
        Vendor::PagerDuty => {
            cmd.args(["--users", &scenario.users.to_string()])
                .args(["--events-per-day", &scenario.events_per_day.to_string()])
                .args(["--api-token", API_KEY])
                .args(["--rate-limit", &scenario.sandbox_limit.to_string()]);
        }
        Vendor::PandaDoc => {
            cmd.args(["--users", &scenario.users.to_string()])
                .args(["--events-per-day", &scenario.events_per_day.to_string()])
                .args(["--api-key", PANDADOC_KEY]);
        }
        Vendor::SendGrid => {
            cmd.args(["--teammates", &scenario.users.to_string()])
                .args(["--emails-per-day", &scenario.events_per_day.to_string()])
                .args(["--rate-limit", &scenario.sandbox_limit.to_string()]);
        }
    }
    cmd.env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    die_with_parent(&mut cmd);
    let generating = Instant::now();
    eprintln!("  generating the sandbox's data set…");
    let mut sandbox = Guard(cmd.spawn().context("starting the sandbox")?);
    let stdout = sandbox.0.stdout.take().context("sandbox stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let sandbox_url = line
        .split_whitespace()
        .last()
        .filter(|u| u.starts_with("http://"))
        .with_context(|| format!("the sandbox printed {line:?}"))?
        .to_string();
    let sandbox_pid = sandbox.0.id();
    eprintln!(
        "  sandbox ready at {sandbox_url} ({:.1} s); starting DynamoDB Local and moto…",
        generating.elapsed().as_secs_f64()
    );

    // The rest of the local system. Its own (in-process, tiny) sandboxes only verify
    // the key at connect time, so the measured sandbox's rate windows open with the
    // sync's first request.
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            api_token: Some(API_KEY.into()),
            users: 3,
            days: 1,
            events_per_day: 1,
            ..PagerDutyConfig::default()
        },
        pandadoc: PandaDocConfig {
            api_key: Some(PANDADOC_KEY.into()),
            users: 3,
            days: 1,
            events_per_day: 1,
            ..PandaDocConfig::default()
        },
        history_days: scenario.days,
        ..StackOptions::default()
    })
    .await?;
    let org = format!("bench-{index}");
    seatscope_core::ops::connect::connect_api_key(
        &stack.deps,
        &Caller::member(
            &seatscope_core::domain::OrgId::parse(&org)?,
            &format!("admin@{org}.example"),
        )
        .admin_for(seatscope_core::domain::audit::Action::ApiKey)?,
        vendor.id(),
        vendor.key().into(),
    )
    .await
    .context("connecting the bench org")?;

    if scenario.client_limit.is_some() {
        let priming = Instant::now();
        eprintln!("  listing every log entry once, so the sandbox has rendered them all…");
        let requests = prime(&sandbox_url, scenario.days).await?;
        eprintln!(
            "  primed: {requests} requests in {:.1} s",
            priming.elapsed().as_secs_f64()
        );
    }
    let before = sandbox_stats(&sandbox_url).await?;
    let ddb_pid = stack.aws.dynamodb.pid();
    let (sandbox_cpu0, ddb_cpu0) = (cpu_time(sandbox_pid), cpu_time(ddb_pid));
    let mut cmd = Command::new(&bins.bench_sync);
    cmd.args([org.as_str(), vendor.id()]);
    if let Some(limit) = scenario.client_limit {
        cmd.args(["--client-rate-limit", &limit.to_string()]);
    }
    cmd.envs(&stack.env)
        .env(
            format!("{}_API_BASE", vendor.id().to_ascii_uppercase()),
            &sandbox_url,
        )
        .env("SEATSCOPE_LOCAL_DYNAMODB", &stack.aws.dynamodb.endpoint)
        .env("SEATSCOPE_LOCAL_MOTO", &stack.aws.moto.endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    eprintln!("  syncing (bench-sync, its own process)…");
    let run = measured(&mut cmd, "bench-sync", &sandbox_url, &before).await?;
    let (process, usage, out) = (run.wall, run.usage, &run.stdout);
    let after = sandbox_stats(&sandbox_url).await?;
    let (sandbox_cpu1, ddb_cpu1) = (cpu_time(sandbox_pid), cpu_time(ddb_pid));
    if !run.succeeded() {
        bail!("bench-sync failed (wait status {}): {out}", run.status);
    }
    let line = out
        .lines()
        .find(|l| l.starts_with("bench "))
        .with_context(|| format!("bench-sync printed {out:?}"))?;
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    if !line.contains("result=synced") {
        bail!("bench-sync did not finish the sync: {line}");
    }
    let delta = |k: &str| {
        after[k]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[k].as_u64().unwrap_or(0))
    };
    // Requests per independently limited operation or endpoint (PagerDuty: one
    // window for all), with the sandbox's limit for each.
    let per = |key: &str| -> Vec<(String, u64)> {
        after[key]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let n = v.as_u64().unwrap_or(0);
                        (
                            k.clone(),
                            n.saturating_sub(before[key][k].as_u64().unwrap_or(0)),
                        )
                    })
                    .filter(|(_, n)| *n > 0)
                    .collect()
            })
            .unwrap_or_default()
    };
    let limited_counts = match vendor {
        Vendor::PagerDuty => vec![(
            "all endpoints".to_string(),
            delta("api_requests"),
            u64::from(scenario.sandbox_limit),
        )],
        Vendor::PandaDoc => per("api_requests_by_operation")
            .into_iter()
            .map(|(op, n)| {
                let limit = if op.starts_with("details") && op != "detailsCurrentMember" {
                    PANDADOC_DETAILS_PER_MINUTE
                } else {
                    PANDADOC_LIST_PER_MINUTE
                };
                (op, n, limit)
            })
            .collect(),
        Vendor::SendGrid => per("by_path")
            .into_iter()
            .map(|(path, n)| (path, n, u64::from(scenario.sandbox_limit)))
            .collect(),
    };
    let figures = Figures {
        events: field("events"),
        api_requests: delta("api_requests"),
        rate_limited: delta("rate_limited"),
        limited_counts,
        sync: Duration::from_millis(field("sync_ms")),
        process,
        ddb_busy: Duration::from_millis(field("ddb_busy_ms")),
        ddb_items_written: field("ddb_items_written"),
        ddb_write: Duration::from_millis(field("ddb_write_ms")),
        // Linux reports ru_maxrss in KiB.
        peak_rss_kb: usage.ru_maxrss.max(0) as u64,
        cpu_sync: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        cpu_sandbox: sandbox_cpu1.saturating_sub(sandbox_cpu0),
        cpu_dynamodb: ddb_cpu1.saturating_sub(ddb_cpu0),
        script: None,
    };
    // The comparison script: same sandbox process (its data is fixed when it starts;
    // primed before Seatscope's run, so Seatscope left no rendered entries behind that
    // it did not find; the limit is off, so its requests left no budget spent), same
    // DynamoDB Local, its own table.
    let figures = match script {
        Some(script) if scenario.compare => {
            let s = run_script(
                script,
                scenario,
                &sandbox_url,
                sandbox_pid,
                &stack.aws.dynamodb.endpoint,
                ddb_pid,
                index,
            )
            .await?;
            if s.line.events != figures.events {
                bail!(
                    "the comparison script counted {} events, Seatscope {}: both must count the \
                     same log entries (the five user actions by a user, over the same days)",
                    s.line.events,
                    figures.events
                );
            }
            Figures {
                script: Some(s),
                ..figures
            }
        }
        _ => figures,
    };
    drop(stack);
    drop(sandbox);
    Ok(figures)
}

/// Runs the comparison script against the scenario's sandbox and DynamoDB Local.
async fn run_script(
    script: &Script,
    scenario: &Scenario,
    sandbox_url: &str,
    sandbox_pid: u32,
    dynamodb_endpoint: &str,
    ddb_pid: u32,
    index: usize,
) -> anyhow::Result<ScriptFigures> {
    let before = sandbox_stats(sandbox_url).await?;
    let (sandbox_cpu0, ddb_cpu0) = (cpu_time(sandbox_pid), cpu_time(ddb_pid));
    let table = format!("script-bench-{index}");
    let mut cmd = script.command(&script_bench::Target {
        pagerduty_url: sandbox_url,
        api_key: API_KEY,
        days: scenario.days,
        dynamodb_endpoint,
        table: &table,
    });
    eprintln!(
        "  the comparison script ({}, its own process; table {table})…",
        script_bench::SCRIPT
    );
    let run = measured(&mut cmd, "the comparison script", sandbox_url, &before).await?;
    let after = sandbox_stats(sandbox_url).await?;
    let (sandbox_cpu1, ddb_cpu1) = (cpu_time(sandbox_pid), cpu_time(ddb_pid));
    if !run.succeeded() {
        bail!(
            "the comparison script failed (wait status {}): {}",
            run.status,
            run.stdout
        );
    }
    let delta = |k: &str| {
        after[k]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[k].as_u64().unwrap_or(0))
    };
    if delta("rate_limited") > 0 {
        eprintln!(
            "  note: the sandbox answered the script {} 429s",
            delta("rate_limited")
        );
    }
    Ok(ScriptFigures {
        line: ScriptLine::parse(&run.stdout)?,
        api_requests: delta("api_requests"),
        wall: run.wall,
        peak_rss_kb: run.usage.ru_maxrss.max(0) as u64,
        cpu: timeval(run.usage.ru_utime) + timeval(run.usage.ru_stime),
        cpu_sandbox: sandbox_cpu1.saturating_sub(sandbox_cpu0),
        cpu_dynamodb: ddb_cpu1.saturating_sub(ddb_cpu0),
    })
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn share(part: Duration, whole: Duration) -> String {
    if whole.is_zero() {
        return "–".into();
    }
    format!("{:.0} %", 100.0 * part.as_secs_f64() / whole.as_secs_f64())
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn tables(scenarios: &[Scenario], results: &[Figures]) -> String {
    let mut rate = String::new();
    let mut throughput = String::new();
    let mut comparison = String::new();
    for (s, f) in scenarios.iter().zip(results) {
        if let Some(script) = &f.script {
            comparison.push_str(&comparison_rows(&s.label, f, script));
        }
        let cpu = format!(
            "{:.1} / {:.1} / {:.1} s",
            f.cpu_sync.as_secs_f64(),
            f.cpu_sandbox.as_secs_f64(),
            f.cpu_dynamodb.as_secs_f64()
        );
        if s.client_limit.is_none() {
            let data = match s.vendor {
                Vendor::PagerDuty => format!(
                    "{} users × {} days, {} events",
                    s.users,
                    s.days,
                    thousands(f.events)
                ),
                Vendor::PandaDoc => format!(
                    "{} users × {} days, {} documents a day, {} events",
                    s.users,
                    s.days,
                    s.events_per_day,
                    thousands(f.events)
                ),
                Vendor::SendGrid => format!("{} days of daily stats", thousands(u64::from(s.days))),
            };
            let (bound, busiest) = busiest_bound(&f.limited_counts);
            let busiest = busiest.map_or("–".to_string(), |(name, n, limit)| {
                format!("{name}: {} at {limit}/min", thousands(*n))
            });
            let ratio = if bound == 0 {
                "–".to_string()
            } else {
                format!("{:.2}×", f.sync.as_secs_f64() / bound as f64)
            };
            rate.push_str(&format!(
                "| {} | {} | {data} | {} | {busiest} | **{}** | {} | {bound} s | **{ratio}** | {} | {cpu} |\n",
                s.vendor.name(),
                s.vendor.limit_label(),
                thousands(f.api_requests),
                f.rate_limited,
                secs(f.sync),
                secs(f.ddb_busy),
            ));
        } else {
            let data = format!(
                "{} users × {} days, {} events",
                s.users,
                s.days,
                thousands(f.events)
            );
            let per_sec = per_second(f.events, f.sync);
            throughput.push_str(&format!(
                "| {} | {data} | {} | {} | {} | {} | {} ({}) | **{:.1} MB** | {cpu} |\n",
                s.label,
                thousands(f.api_requests),
                secs(f.sync),
                thousands(per_sec.round() as u64),
                thousands(f.ddb_items_written),
                share(f.ddb_busy, f.sync),
                share(f.ddb_write, f.sync),
                f.peak_rss_kb as f64 / 1024.0,
            ));
        }
    }
    let mut out = String::new();
    if !rate.is_empty() {
        out.push_str(
            "Sync wall time vs each vendor's rate-limit bound (the client on its production \
             budget; bound = (⌈requests ÷ limit⌉ − 1) × 60 s for the busiest independently \
             limited operation or endpoint, since a window admits its whole limit at once; \
             429s counted by the sandbox)\n\n\
             | vendor | sandbox's limit | data set | API requests | busiest (requests at its limit) | 429s | sync wall | bound | wall ÷ bound | DynamoDB busy | CPU sync / sandbox / DynamoDB Local |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        out.push_str(&rate);
        out.push('\n');
    }
    if !throughput.is_empty() {
        out.push_str(
            "Throughput and memory, every limit off (DynamoDB share: time with a DynamoDB call in \
             flight ÷ sync wall; in parentheses, write calls only)\n\n\
             | events | data set | API requests | sync wall | events/s | DynamoDB items written | DynamoDB share | peak RSS (sync process) | CPU sync / sandbox / DynamoDB Local |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        out.push_str(&throughput);
    }
    if !comparison.is_empty() {
        out.push_str(&format!(
            "\nSeatscope vs the comparison script ({}: PagerDuty's Python client, one UTC day \
             of log entries per query, counts in a dict, one item per user and day with boto3's \
             batch writer), on the same sandbox process (every entry rendered before either \
             ran), data set and DynamoDB Local, every limit off, the script after Seatscope; \
             both counted the same events. Wall: each \
             process from spawn to exit (so Seatscope's here includes its start-up, unlike the \
             sync wall above); events/s = events ÷ that wall\n\n\
             | events | run | API requests | wall | events/s | DynamoDB items written | peak RSS | CPU process / sandbox / DynamoDB Local | Seatscope ÷ script (events/s) |\n\
             |---|---|---|---|---|---|---|---|---|\n",
            script_bench::SCRIPT
        ));
        out.push_str(&comparison);
    }
    out
}

/// events ÷ wall, per second.
fn per_second(events: u64, wall: Duration) -> f64 {
    events as f64 / wall.as_secs_f64().max(1e-3)
}

/// One size's pair of rows: Seatscope, then the comparison script.
fn comparison_rows(label: &str, f: &Figures, s: &ScriptFigures) -> String {
    let cpu = |process: Duration, sandbox: Duration, dynamodb: Duration| {
        format!(
            "{:.1} / {:.1} / {:.1} s",
            process.as_secs_f64(),
            sandbox.as_secs_f64(),
            dynamodb.as_secs_f64()
        )
    };
    let (ours, theirs) = (
        per_second(f.events, f.process),
        per_second(s.line.events, s.wall),
    );
    let ratio = if theirs > 0.0 {
        format!("**{:.1}×**", ours / theirs)
    } else {
        "–".into()
    };
    format!(
        "| {label} | Seatscope (bench-sync) | {} | {} | {} | {} | {:.1} MB | {} | {ratio} |\n\
         | {label} | script (listing {}, writing {}) | {} | {} | {} | {} | {:.1} MB | {} | |\n",
        thousands(f.api_requests),
        secs(f.process),
        thousands(ours.round() as u64),
        thousands(f.ddb_items_written),
        f.peak_rss_kb as f64 / 1024.0,
        cpu(f.cpu_sync, f.cpu_sandbox, f.cpu_dynamodb),
        secs(s.line.fetch),
        secs(s.line.write),
        thousands(s.api_requests),
        secs(s.wall),
        thousands(theirs.round() as u64),
        thousands(s.line.items),
        s.peak_rss_kb as f64 / 1024.0,
        cpu(s.cpu, s.cpu_sandbox, s.cpu_dynamodb),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_bound_counts_whole_windows_after_the_first_burst() {
        // One window's worth goes at once.
        assert_eq!(rate_bound_secs(0, 960), 0);
        assert_eq!(rate_bound_secs(960, 960), 0);
        // One more request waits for the second window.
        assert_eq!(rate_bound_secs(961, 960), 60);
        assert_eq!(rate_bound_secs(1_920, 960), 60);
        assert_eq!(rate_bound_secs(2_500, 960), 120);
        assert_eq!(rate_bound_secs(2_881, 960), 180);
    }

    #[test]
    fn the_busiest_operation_decides_the_bound() {
        let counts = vec![
            ("listDocuments".to_string(), 30, 2000),
            ("detailsDocument".to_string(), 1_500, 600),
            ("detailsTemplate".to_string(), 90, 600),
        ];
        let (bound, busiest) = busiest_bound(&counts);
        assert_eq!(bound, 120);
        assert_eq!(busiest.unwrap().0, "detailsDocument");
        assert_eq!(busiest_bound(&[]).0, 0);
    }

    #[test]
    fn rate_vendors_are_chosen_by_id() {
        let o = parse(&["--rate-vendors".into(), "sendgrid,pagerduty".into()]).unwrap();
        assert_eq!(o.rate_vendors, vec![Vendor::SendGrid, Vendor::PagerDuty]);
        assert_eq!(parse(&[]).unwrap().rate_vendors, Vendor::ALL.to_vec());
        assert!(parse(&["--rate-vendors".into(), "slack".into()]).is_err());
    }

    #[test]
    fn no_script_skips_the_comparison() {
        assert!(parse(&[]).unwrap().script);
        assert!(!parse(&["--no-script".into()]).unwrap().script);
    }

    #[test]
    fn the_comparison_rows_show_the_ratio_of_events_per_second() {
        let f = Figures {
            events: 100_000,
            process: Duration::from_secs(10),
            ..Figures::default()
        };
        let s = ScriptFigures {
            line: ScriptLine {
                events: 100_000,
                items: 24_854,
                fetch: Duration::from_secs(12),
                write: Duration::from_secs(7),
            },
            api_requests: 2_700,
            wall: Duration::from_secs(20),
            peak_rss_kb: 80 * 1024,
            cpu: Duration::ZERO,
            cpu_sandbox: Duration::ZERO,
            cpu_dynamodb: Duration::ZERO,
        };
        let rows = comparison_rows("100k", &f, &s);
        assert!(rows.contains("| 10,000 |"), "{rows}");
        assert!(rows.contains("| 5,000 |"), "{rows}");
        assert!(rows.contains("**2.0×**"), "{rows}");
        assert!(rows.contains("| 24,854 | 80.0 MB |"), "{rows}");
    }

    #[test]
    fn sizes_and_labels() {
        let o = parse(&["--sizes".into(), "10_000,1000000".into()]).unwrap();
        assert_eq!(o.sizes, vec![10_000, 1_000_000]);
        assert!(parse(&["--sizes".into(), "none".into()])
            .unwrap()
            .sizes
            .is_empty());
        assert_eq!(human(100_000), "100k");
        assert_eq!(human(1_000_000), "1M");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
