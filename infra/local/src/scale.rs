//! `cargo xtask scale`: the hourly tick's fan-out, run for real at small scale, and a
//! model of it at 10,000 orgs × 3 apps on AWS built from what the run measured.
//!
//! **The run.** The local stack (DynamoDB Local, moto's SQS and Secrets Manager, the
//! PagerDuty, PandaDoc and SendGrid sandboxes) with `--connections N` (2,000) API-key
//! connections spread over the three providers, each connected through the API
//! (`POST /api/connections/{provider}/api-key`) with a little data (a few seats, two
//! days). Then one EventBridge tick (the scheduled-sync handler claims every due
//! connection and sends one SQS message each) and the queue drained as Lambda's event
//! source mapping would, with as many invocations at once as template.yaml's
//! `ScalingConfig.MaximumConcurrency` allows, `BatchSize` messages each
//! (`LocalSyncWorker::drain_concurrently`). Every DynamoDB write is counted per
//! second (an SDK interceptor on the functions' client), every AWS call per operation
//! (the IAM recorder), every vendor request by the sandboxes. Afterwards every
//! connection is checked in DynamoDB: exactly one recorded run, succeeded, and its next
//! sync before the next tick. A connection lost or synced twice fails the command;
//! times are printed, never asserted.
//!
//! **The model.** Per-connection figures from the run (writes, DueIndex writes, AWS
//! calls, vendor requests) times 30,000 connections an hour, against AWS's quotas and
//! prices (`aws` below), with the sync's duration on AWS estimated from the measured call
//! counts and documented round-trip times. It prints which limit is hit first and what
//! moves it.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use aws_sdk_dynamodb::config::{ConfigBag, RuntimeComponents};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use seatscope_core::config::Config;
use seatscope_core::store::keys;
use seatscope_core::Deps;
use seatscope_local::gateway::{self, Function};
use seatscope_local::services::local_sdk_config;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_local::worker::DrainMeter;
use seatscope_sandbox::pandadoc::PandaDocConfig;
use seatscope_sandbox::sendgrid::SendGridConfig;
use seatscope_sandbox::PagerDutyConfig;

const USAGE: &str = "usage: cargo xtask scale [--connections N (2000)] [--concurrency N]

  Connects N API-key connections (PagerDuty, PandaDoc, SendGrid in turn) on the local
  stack, fires one tick and drains the SQS queue with template.yaml's
  MaximumConcurrency invocations at once (--concurrency overrides it), then prints the
  run (tick → all synced, messages, peak workers, DynamoDB writes/s at the peak, vendor
  requests per connection, lost, duplicated) and a model of the hourly tick at 10,000
  orgs × 3 apps on AWS, as Markdown. Fails if a connection was lost or synced twice.";

const PROVIDERS: [&str; 3] = ["pagerduty", "pandadoc", "sendgrid"];
/// The sandboxes' one account key per vendor, shared by every org (one rate subject,
/// so their limits are lifted: this run is about the fan-out, not a vendor's budget).
const PAGERDUTY_KEY: &str = "pd-scale-account-key";
const PANDADOC_KEY: &str = "pandadoc-scale-api-key";
const UNLIMITED: u32 = 1_000_000_000;

/// AWS quotas and prices the model uses (us-east-1). Each with where it comes from;
/// prices are list prices as of 2026-11 (check them before relying on the totals).
pub mod aws {
    /// Lambda: concurrent executions per account and region, default (adjustable).
    /// docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
    pub const ACCOUNT_CONCURRENCY: f64 = 1_000.0;
    /// An SQS event source's most concurrent batches (and ScalingConfig.MaximumConcurrency's
    /// upper bound); it starts at 5 and adds up to 300 a minute.
    /// docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
    pub const ESM_MAX_CONCURRENCY: f64 = 1_000.0;
    pub const ESM_START_CONCURRENCY: f64 = 5.0;
    pub const ESM_SCALE_UP_PER_MINUTE: f64 = 300.0;
    /// Lambda arm64 price per GB-second and per request. aws.amazon.com/lambda/pricing
    pub const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// SQS standard: per request (a batch of up to 10 is one request); in-flight
    /// messages per queue. aws.amazon.com/sqs/pricing, docs.aws.amazon.com/AWSSimpleQueueService/
    /// latest/SQSDeveloperGuide/quotas-messages.html
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    pub const SQS_IN_FLIGHT: f64 = 120_000.0;
    /// DynamoDB on-demand: write and read request units (prices since 2024-11-01); one
    /// partition's write throughput; a table's on-demand write throughput, default
    /// (adjustable). aws.amazon.com/dynamodb/pricing/on-demand,
    /// docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html
    pub const DDB_WRITE_UNIT: f64 = 0.625 / 1e6;
    pub const DDB_READ_UNIT: f64 = 0.125 / 1e6;
    pub const DDB_PARTITION_WCU: f64 = 1_000.0;
    pub const DDB_TABLE_WCU: f64 = 40_000.0;
    /// Secrets Manager: per secret-month and per 10,000 calls; GetSecretValue 10,000/s
    /// (since 2025-03), PutSecretValue (with UpdateSecret …) 50/s, not adjustable.
    /// aws.amazon.com/secrets-manager/pricing, docs.aws.amazon.com/secretsmanager/latest/
    /// userguide/reference_limits.html
    pub const SECRET_MONTH: f64 = 0.40;
    pub const SECRETS_CALL: f64 = 0.05 / 10_000.0;
    pub const GET_SECRET_PER_SECOND: f64 = 10_000.0;
    pub const PUT_SECRET_PER_SECOND: f64 = 50.0;
    /// Hours in a month (AWS bills 730).
    pub const HOURS_PER_MONTH: f64 = 730.0;
    /// Round trips from a Lambda in the region, assumed (not measured here): a vendor's
    /// HTTPS API (a few hundred ms is typical of SaaS APIs; connection reuse inside a
    /// run), a DynamoDB call, a Secrets Manager or SQS call.
    pub const VENDOR_RTT_S: f64 = 0.25;
    pub const DDB_RTT_S: f64 = 0.008;
    pub const SM_RTT_S: f64 = 0.02;
    pub const SQS_RTT_S: f64 = 0.015;
}

/// The model's scale: 10,000 orgs × 3 apps, one sync an hour.
const ORGS: f64 = 10_000.0;
const APPS: f64 = 3.0;

struct Options {
    connections: usize,
    concurrency: Option<usize>,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        connections: 2_000,
        concurrency: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse::<usize>()
                .map_err(|_| anyhow::anyhow!("{name}: not a number"))
        };
        match arg.as_str() {
            "--connections" => options.connections = value("--connections")?.max(3),
            "--concurrency" => options.concurrency = Some(value("--concurrency")?.max(1)),
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    Ok(options)
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    crate::prerequisites::for_dev()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(scale(options))
}

// --- DynamoDB writes per second ------------------------------------------------------

/// Counts the write request units of every DynamoDB write the functions make (an item
/// under 1 KB is one unit: PutItem, UpdateItem, DeleteItem one each, BatchWriteItem one
/// per item, TransactWriteItems two per item), per second since `start`, and the
/// DueIndex writes per shard (an update that changes `next_sync_at` or `due_shard`,
/// the index's keys, deletes and puts the index entry: two units).
#[derive(Debug, Clone, Default)]
struct WriteMeter {
    log: Arc<Mutex<WriteLog>>,
}

#[derive(Debug, Clone, Default)]
struct WriteLog {
    start: Option<Instant>,
    per_second: Vec<u64>,
    due_index_per_second: Vec<[u64; keys::DUE_SHARDS as usize]>,
    /// The tick's claims (`SET next_sync_at = :later`): how many, and when the last
    /// one was sent (seconds since `start`).
    claims: u64,
    last_claim_secs: f64,
}

impl WriteMeter {
    fn start(&self) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        *log = WriteLog {
            start: Some(Instant::now()),
            ..WriteLog::default()
        };
    }

    fn stop(&self) -> WriteLog {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let taken = log.clone();
        log.start = None;
        taken
    }

    fn claim(&self) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let Some(start) = log.start else { return };
        log.claims += 1;
        log.last_claim_secs = start.elapsed().as_secs_f64();
    }

    fn add(&self, units: u64, due_shard: Option<usize>) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        let Some(start) = log.start else { return };
        let second = start.elapsed().as_secs() as usize;
        if log.per_second.len() <= second {
            log.per_second.resize(second + 1, 0);
            log.due_index_per_second
                .resize(second + 1, [0; keys::DUE_SHARDS as usize]);
        }
        log.per_second[second] += units;
        if let Some(shard) = due_shard {
            log.due_index_per_second[second][shard] += 2;
        }
    }
}

/// The DueIndex shard of a connection item's key (`ORG#<org>`, `CONN#<provider>`).
fn shard_of(key: Option<&std::collections::HashMap<String, AttributeValue>>) -> Option<usize> {
    let key = key?;
    let (org, provider) =
        keys::connection_of(key.get("pk")?.as_s().ok()?, key.get("sk")?.as_s().ok()?)?;
    let shard = keys::due_shard(&org, &provider, keys::DUE_SHARDS);
    shard.strip_prefix("DUE#")?.parse().ok()
}

impl Intercept for WriteMeter {
    fn name(&self) -> &'static str {
        "seatscope xtask scale: DynamoDB write meter"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation::{
            batch_write_item::BatchWriteItemInput, delete_item::DeleteItemInput,
            put_item::PutItemInput, transact_write_items::TransactWriteItemsInput,
            update_item::UpdateItemInput,
        };
        let input = context.input();
        if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            let moves_due = update
                .update_expression
                .as_deref()
                .is_some_and(|e| e.contains("next_sync_at") || e.contains("due_shard"));
            let shard = if moves_due {
                shard_of(update.key.as_ref())
            } else {
                None
            };
            self.add(1, shard);
            if update
                .update_expression
                .as_deref()
                .is_some_and(|e| e.starts_with("SET next_sync_at = :later"))
            {
                self.claim();
            }
        } else if input.downcast_ref::<PutItemInput>().is_some()
            || input.downcast_ref::<DeleteItemInput>().is_some()
        {
            self.add(1, None);
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            let items = batch
                .request_items
                .as_ref()
                .map_or(0, |m| m.values().map(|v| v.len() as u64).sum());
            self.add(items, None);
        } else if let Some(tx) = input.downcast_ref::<TransactWriteItemsInput>() {
            self.add(
                2 * tx.transact_items.as_ref().map_or(0, |v| v.len() as u64),
                None,
            );
        }
        Ok(())
    }
}

// --- the run -----------------------------------------------------------------------

/// What the run measured.
struct Measured {
    connections: usize,
    concurrency_allowed: usize,
    batch_size: usize,
    connect_secs: f64,
    tick_secs: f64,
    drain_secs: f64,
    messages: usize,
    batches: usize,
    /// Runs skipped (another run held the lease: a message delivered twice).
    skipped: usize,
    peak_workers: usize,
    writes: WriteLog,
    /// AWS operations by the sync function (tick and worker), action → count.
    calls: BTreeMap<String, u64>,
    /// provider → (connections, vendor requests during the drain).
    vendor: BTreeMap<&'static str, (usize, u64)>,
    /// Sum of the invocations' wall time (what Lambda bills), seconds.
    busy_secs: f64,
    synced_once: usize,
    lost: usize,
    duplicated: usize,
    not_before_next_tick: usize,
    next_due_seconds: usize,
    next_due_busiest: usize,
    /// The same under the rule before deterministic slots (next = the run's start +
    /// the interval), from each run's recorded start.
    old_rule_by_next_tick: usize,
    old_rule_seconds: usize,
    old_rule_busiest: usize,
    queue_left: (u64, u64),
}

async fn scale(options: Options) -> anyhow::Result<()> {
    let n = options.connections;
    eprintln!("starting the local stack…");
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            api_token: Some(PAGERDUTY_KEY.into()),
            rate_limit_per_minute: UNLIMITED,
            users: 3,
            days: 2,
            events_per_day: 8,
            ..PagerDutyConfig::default()
        },
        pandadoc: PandaDocConfig {
            api_key: Some(PANDADOC_KEY.into()),
            users: 3,
            days: 2,
            events_per_day: 4,
            list_rate_per_minute: UNLIMITED,
            details_rate_per_minute: UNLIMITED,
            ..PandaDocConfig::default()
        },
        sendgrid: SendGridConfig {
            teammates: 3,
            pending_invites: 1,
            days: 2,
            emails_per_day: 100,
            rate_limit_per_minute: UNLIMITED,
            ..SendGridConfig::default()
        },
        history_days: 3,
        ..StackOptions::default()
    })
    .await?;

    // The functions' client with the write meter beside the IAM recorder; the same
    // configuration as the stack's app.
    let meter = WriteMeter::default();
    let sdk = local_sdk_config(&stack.aws.dynamodb.endpoint).await;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(stack.calls.clone())
            .interceptor(meter.clone())
            .build(),
    );
    let config = Config::from_lookup(|k| stack.env.get(k).cloned())?;
    let deps = Arc::new(
        Deps::from_clients(config, dynamodb, stack.secrets.clone())?
            .with_queue(stack.worker.client.clone()),
    );

    // Connect through the API, 16 at a time.
    let sendgrid_key = seatscope_sandbox::SendGridSandboxKey::full().key;
    let orgs: Vec<(String, &'static str)> = (0..n)
        .map(|i| (format!("scale{i:05}"), PROVIDERS[i % 3]))
        .collect();
    let started = Instant::now();
    let http = reqwest::Client::new();
    let api = stack.api_url();
    let mut done = 0usize;
    let mut last_line = Instant::now();
    for chunk in orgs.chunks(16) {
        let calls = chunk.iter().map(|(org, provider)| {
            let key = match *provider {
                "pagerduty" => PAGERDUTY_KEY.to_string(),
                "pandadoc" => PANDADOC_KEY.to_string(),
                _ => sendgrid_key.clone(),
            };
            let request = http
                .post(format!("{api}/api/connections/{provider}/api-key"))
                .bearer_auth(stack.token(org, &format!("admin@{org}.example")))
                .json(&serde_json::json!({ "api_key": key }));
            async move {
                let response = request.send().await?;
                let status = response.status();
                if !status.is_success() {
                    bail!(
                        "connecting {org} to {provider}: {status} {}",
                        response.text().await.unwrap_or_default()
                    );
                }
                anyhow::Ok(())
            }
        });
        for outcome in futures::future::join_all(calls).await {
            outcome?;
        }
        done += chunk.len();
        if last_line.elapsed() >= Duration::from_secs(5) {
            eprintln!("  connected {done}/{n}");
            last_line = Instant::now();
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    eprintln!("{n} connections in {connect_secs:.1} s");

    // The tick, then the drain, measured.
    let calls_before = stack.calls.snapshot();
    let vendor_before = vendor_requests(&stack);
    let concurrency_allowed = options
        .concurrency
        .or(stack.worker.spec.maximum_concurrency)
        .unwrap_or(aws::ESM_MAX_CONCURRENCY as usize);
    meter.start();
    let tick_at = deps.config.clock.now();
    let started = Instant::now();
    let tick = gateway::enqueue_tick(&deps).await?;
    let tick_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "tick: {} due, {} enqueued in {tick_secs:.1} s; draining with {concurrency_allowed} invocations at once…",
        tick.due, tick.enqueued
    );
    if tick.enqueued != n {
        bail!(
            "the tick enqueued {} of {n} connections: {tick:?}",
            tick.enqueued
        );
    }
    let drain_meter = Arc::new(DrainMeter::default());
    let progress = {
        let drain_meter = drain_meter.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                eprintln!(
                    "  {:>5.0} s: synced {}/{n}, {} invocations running (peak {})",
                    started.elapsed().as_secs_f64(),
                    drain_meter.synced.load(SeqCst),
                    drain_meter.in_flight.load(SeqCst),
                    drain_meter.peak.load(SeqCst),
                );
            }
        })
    };
    let drain_started = Instant::now();
    let drained = stack
        .worker
        .drain_concurrently(&deps, concurrency_allowed, &drain_meter)
        .await;
    progress.abort();
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let writes = meter.stop();
    let drained = drained?;

    eprintln!("drained in {drain_secs:.1} s: {drained:?}");
    let calls_after = stack.calls.snapshot();
    let vendor_after = vendor_requests(&stack);

    let before = calls_before
        .get(&Function::ScheduledSync)
        .cloned()
        .unwrap_or_default();
    let calls: BTreeMap<String, u64> = calls_after
        .get(&Function::ScheduledSync)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|(action, count)| {
            let was = before.get(&action).copied().unwrap_or(0);
            (action, count - was)
        })
        .filter(|(_, count)| *count > 0)
        .collect();
    let mut vendor = BTreeMap::new();
    for (i, provider) in PROVIDERS.iter().enumerate() {
        let connections = orgs.iter().filter(|(_, p)| p == provider).count();
        vendor.insert(*provider, (connections, vendor_after[i] - vendor_before[i]));
    }

    // Count, do not assume: every connection's runs and schedule, from DynamoDB.
    eprintln!("checking every connection in DynamoDB…");
    let interval = time::Duration::minutes(i64::from(deps.config.sync_interval_minutes));
    let next_tick = (tick_at + interval).unix_timestamp();
    let mut synced_once = 0;
    let mut lost = 0;
    let mut duplicated = 0;
    let mut not_before_next_tick = 0;
    let mut next_due: BTreeMap<i64, usize> = BTreeMap::new();
    let mut old_rule: BTreeMap<i64, usize> = BTreeMap::new();
    for chunk in orgs.chunks(32) {
        let checks = chunk
            .iter()
            .map(|(org, provider)| check_connection(&stack, org, provider));
        for outcome in futures::future::join_all(checks).await {
            let (runs, succeeded, next, started) = outcome?;
            if let Some(started) = started {
                *old_rule
                    .entry(started + interval.whole_seconds())
                    .or_default() += 1;
            }
            match runs {
                0 => lost += 1,
                1 if succeeded => synced_once += 1,
                1 => lost += 1,
                _ => duplicated += 1,
            }
            if next > next_tick || next <= tick_at.unix_timestamp() {
                not_before_next_tick += 1;
            }
            *next_due.entry(next).or_default() += 1;
        }
    }
    let measured = Measured {
        connections: n,
        concurrency_allowed,
        batch_size: stack.worker.spec.batch_size,
        connect_secs,
        tick_secs,
        drain_secs,
        messages: drain_meter.messages.load(SeqCst),
        batches: drain_meter.batches.load(SeqCst),
        skipped: drained.skipped,
        peak_workers: drain_meter.peak.load(SeqCst),
        writes,
        calls,
        vendor,
        busy_secs: drain_meter.busy_ms.load(SeqCst) as f64 / 1000.0,
        synced_once,
        lost,
        duplicated,
        not_before_next_tick,
        next_due_seconds: next_due.len(),
        next_due_busiest: next_due.values().max().copied().unwrap_or(0),
        old_rule_by_next_tick: old_rule.range(..=next_tick).map(|(_, c)| c).sum(),
        old_rule_seconds: old_rule.len(),
        old_rule_busiest: old_rule.values().max().copied().unwrap_or(0),
        queue_left: stack.worker.depth().await?,
    };
    print_run(&measured);
    print_model(&measured);
    if lost > 0 || duplicated > 0 || measured.queue_left != (0, 0) {
        bail!(
            "{lost} connections lost, {duplicated} synced more than once, queue/DLQ left {:?}",
            measured.queue_left
        );
    }
    Ok(())
}

/// API requests each sandbox has received, in PROVIDERS order.
fn vendor_requests(stack: &Stack) -> [u64; 3] {
    [
        stack.sandbox.api_requests(),
        stack.pandadoc.api_requests(),
        stack.sendgrid.api_requests(),
    ]
}

/// A connection's recorded runs, whether the one run succeeded, its next_sync_at and
/// when the first run started (epoch seconds).
async fn check_connection(
    stack: &Stack,
    org: &str,
    provider: &str,
) -> anyhow::Result<(usize, bool, i64, Option<i64>)> {
    let org_id = seatscope_core::domain::OrgId::parse(org)?;
    let runs = stack
        .dynamodb
        .query()
        .table_name(&stack.table_name)
        .key_condition_expression("pk = :pk AND begins_with(sk, :run)")
        .expression_attribute_values(":pk", AttributeValue::S(keys::app(&org_id, provider)))
        .expression_attribute_values(":run", AttributeValue::S(keys::RUN_PREFIX.into()))
        .consistent_read(true)
        .send()
        .await
        .with_context(|| format!("reading {org}/{provider}'s runs"))?;
    let items = runs.items.unwrap_or_default();
    let succeeded = items.len() == 1
        && items[0]
            .get("status")
            .and_then(|s| s.as_s().ok())
            .map(String::as_str)
            == Some("succeeded");
    let connection = stack
        .dynamodb
        .get_item()
        .table_name(&stack.table_name)
        .key("pk", AttributeValue::S(keys::org(&org_id)))
        .key("sk", AttributeValue::S(keys::connection_sk(provider)))
        .consistent_read(true)
        .send()
        .await
        .with_context(|| format!("reading {org}/{provider}'s connection"))?
        .item
        .with_context(|| format!("{org}/{provider}: no connection item"))?;
    let next = connection
        .get("next_sync_at")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let started = items
        .first()
        .and_then(|run| run.get("started_at"))
        .and_then(|v| v.as_s().ok())
        .and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| t.unix_timestamp());
    Ok((items.len(), succeeded, next, started))
}

fn calls_per(m: &Measured, prefix: &str, per: f64) -> f64 {
    m.calls
        .iter()
        .filter(|(a, _)| a.starts_with(prefix))
        .map(|(_, c)| *c as f64)
        .sum::<f64>()
        / per
}

fn call(m: &Measured, action: &str) -> f64 {
    m.calls.get(action).copied().unwrap_or(0) as f64
}

fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn print_run(m: &Measured) {
    let n = m.connections as f64;
    let peak_second = m
        .writes
        .per_second
        .iter()
        .enumerate()
        .max_by_key(|(_, w)| **w)
        .map(|(s, w)| (s, *w))
        .unwrap_or((0, 0));
    let total_writes: u64 = m.writes.per_second.iter().sum();
    let due_index: u64 = m.writes.due_index_per_second.iter().flatten().sum();
    let due_index_peak = m
        .writes
        .due_index_per_second
        .iter()
        .flatten()
        .max()
        .copied()
        .unwrap_or(0);
    println!("\n### Local run: {} connections, one tick\n", thousands(n));
    println!("| measure | value |\n|---|---|");
    println!(
        "| tick → all synced | **{:.1} s** (tick {:.1} s: {} claims, the last sent at {:.1} s, then the SendMessageBatch calls; drain {:.1} s) |",
        m.tick_secs + m.drain_secs,
        m.tick_secs,
        thousands(m.writes.claims as f64),
        m.writes.last_claim_secs,
        m.drain_secs
    );
    println!(
        "| SQS messages | {} received in {} invocations (BatchSize {}); {} delivered twice, skipped by the lease |",
        thousands(m.messages as f64),
        thousands(m.batches as f64),
        m.batch_size,
        m.skipped
    );
    println!(
        "| peak concurrent workers | {} (MaximumConcurrency {}) |",
        m.peak_workers, m.concurrency_allowed
    );
    println!(
        "| DynamoDB writes/s at the peak | **{}** (second {} after the tick; {} write units in all, {:.1} per connection) |",
        thousands(peak_second.1 as f64),
        peak_second.0,
        thousands(total_writes as f64),
        total_writes as f64 / n
    );
    println!(
        "| DueIndex writes | {:.1} per connection; busiest shard-second {} (of {} WCU/s a partition) |",
        due_index as f64 / n,
        due_index_peak,
        aws::DDB_PARTITION_WCU
    );
    for (provider, (count, requests)) in &m.vendor {
        println!(
            "| vendor requests per connection: {provider} | {:.2} ({} connections) |",
            *requests as f64 / (*count).max(1) as f64,
            thousands(*count as f64)
        );
    }
    println!(
        "| AWS calls per connection | DynamoDB {:.1}, Secrets Manager {:.2} (GetSecretValue {:.2}, PutSecretValue {:.2}), SQS {:.2} (send {:.2}, receive {:.2} of which {:.2} brought messages, delete {:.2}) |",
        calls_per(m, "dynamodb:", n),
        calls_per(m, "secretsmanager:", n),
        call(m, "secretsmanager:GetSecretValue") / n,
        call(m, "secretsmanager:PutSecretValue") / n,
        calls_per(m, "sqs:", n),
        call(m, "sqs:SendMessage") / n,
        call(m, "sqs:ReceiveMessage") / n,
        m.batches as f64 / n,
        call(m, "sqs:DeleteMessage") / n
    );
    println!(
        "| invocation time per connection | {:.0} ms (sum of invocations' wall time ÷ connections) |",
        m.busy_secs * 1000.0 / n
    );
    println!(
        "| synced exactly once | **{} of {}**: {} lost, {} duplicated (RUN# items per connection); queue/DLQ left {}/{} |",
        thousands(m.synced_once as f64),
        thousands(n),
        m.lost,
        m.duplicated,
        m.queue_left.0,
        m.queue_left.1
    );
    println!(
        "| next sync | {} due by the next tick ({} not); spread over {} distinct seconds, at most {} in one |",
        thousands((m.connections - m.not_before_next_tick) as f64),
        m.not_before_next_tick,
        thousands(m.next_due_seconds as f64),
        m.next_due_busiest
    );
    println!(
        "| next sync, the rule before (run start + interval) | {} due by the next tick; {} distinct seconds, at most {} in one |",
        thousands(m.old_rule_by_next_tick as f64),
        thousands(m.old_rule_seconds as f64),
        m.old_rule_busiest
    );
    println!(
        "\n(connecting the {} took {:.0} s, not part of the tick)",
        thousands(n),
        m.connect_secs
    );
}

/// A limit: what 30,000 connections an hour need of it, and what it allows.
struct Limit {
    name: String,
    needed: f64,
    capacity: f64,
    unit: &'static str,
    setting: &'static str,
}

fn print_model(m: &Measured) {
    let n = m.connections as f64;
    let conns = ORGS * APPS;
    let interval_s = 3600.0;
    // Per connection, measured.
    let writes = m.writes.per_second.iter().sum::<u64>() as f64 / n;
    let due_index = m.writes.due_index_per_second.iter().flatten().sum::<u64>() as f64 / n;
    let ddb_calls = calls_per(m, "dynamodb:", n);
    let ddb_reads =
        call(m, "dynamodb:GetItem") + call(m, "dynamodb:Query") + call(m, "dynamodb:BatchGetItem");
    let ddb_reads = ddb_reads / n;
    let sm_get = call(m, "secretsmanager:GetSecretValue") / n;
    let sm_put = call(m, "secretsmanager:PutSecretValue") / n;
    let sm_calls = calls_per(m, "secretsmanager:", n);
    // What a connection costs in SQS requests: its share of SendMessageBatch, the
    // receive that brought it (one per batch) and its delete. The local pollers' empty
    // receives are left out: the event source's long polling is a fixed cost (README).
    let sqs_calls =
        (call(m, "sqs:SendMessage") + call(m, "sqs:DeleteMessage")) / n + m.batches as f64 / n;
    let vendor_total: u64 = m.vendor.values().map(|(_, r)| *r).sum();
    let vendor = vendor_total as f64 / n;
    let claim_calls = 1.0; // the tick's UpdateItem per due connection
                           // The tick: one invocation claims each connection (one UpdateItem) and sends
                           // batches of 10, one call after another.
    let tick_aws_s = conns * (claim_calls * aws::DDB_RTT_S + aws::SQS_RTT_S / 10.0);
    let tick_local_s = m.tick_secs / n * conns;
    // A sync on AWS: its calls one after another (a run fetches up to 3 activity
    // windows at once, so this is an upper bound), or the local time if longer.
    let sync_calls_s = vendor * aws::VENDOR_RTT_S
        + (ddb_calls - claim_calls).max(0.0) * aws::DDB_RTT_S
        + sm_calls * aws::SM_RTT_S;
    let local_sync_s = m.busy_secs / n;
    let sync_s = sync_calls_s.max(local_sync_s);
    let gb = 0.5; // template.yaml: MemorySize 512
    let gb_s_tick = conns * sync_s * gb + tick_aws_s * gb;
    let invocations = conns / m.batch_size as f64 + 1.0;
    let concurrency = m.concurrency_allowed as f64;
    // Average concurrency to finish the tick's work within the interval.
    let needed_concurrency = conns * sync_s / interval_s;
    // Drain at MaximumConcurrency, counting the event source's ramp from 5 (+300/min).
    let drain_s = drain_time(conns * sync_s, concurrency);
    let finishes_per_s = concurrency / sync_s;
    let peak_wcu = finishes_per_s * writes;
    let peak_due_shard = finishes_per_s * due_index / keys::DUE_SHARDS as f64;
    let peak_get = finishes_per_s * sm_get;
    let peak_put = finishes_per_s * sm_put;
    let month = aws::HOURS_PER_MONTH;
    let lambda_cost =
        month * (gb_s_tick * aws::LAMBDA_GB_SECOND + invocations * aws::LAMBDA_REQUEST);
    let sqs_cost = month * conns * sqs_calls * aws::SQS_REQUEST;
    let ddb_cost = month * conns * (writes * aws::DDB_WRITE_UNIT + ddb_reads * aws::DDB_READ_UNIT);
    let sm_cost = conns * aws::SECRET_MONTH + month * conns * sm_calls * aws::SECRETS_CALL;
    let total = lambda_cost + sqs_cost + ddb_cost + sm_cost;

    println!(
        "\n### Model: the hourly tick at {} orgs × {} apps = {} connections on AWS\n",
        thousands(ORGS),
        APPS,
        thousands(conns)
    );
    println!("Per connection, from the run: {writes:.1} write units ({due_index:.1} on DueIndex), {ddb_calls:.1} DynamoDB calls, {sm_get:.2} GetSecretValue + {sm_put:.2} PutSecretValue, {sqs_calls:.2} SQS requests, {vendor:.2} vendor requests. A sync on AWS ≈ {sync_s:.2} s (vendor {:.2} s at {} ms a request + AWS calls; local {:.0} ms).\n",
        vendor * aws::VENDOR_RTT_S, aws::VENDOR_RTT_S * 1000.0, local_sync_s * 1000.0);
    println!("| per hourly tick | figure | how |\n|---|---|---|");
    println!(
        "| tick invocation | {:.0} s (of 900 s timeout) | {} claims (UpdateItem) + {} SendMessageBatch one after another at {} / {} ms; locally the claims went at {:.0}/s and the whole tick would take {:.0} s (moto's SendMessageBatch slows as the queue grows) |",
        tick_aws_s,
        thousands(conns),
        thousands(conns / 10.0),
        aws::DDB_RTT_S * 1000.0,
        aws::SQS_RTT_S * 1000.0,
        m.writes.claims as f64 / m.writes.last_claim_secs.max(0.001),
        tick_local_s
    );
    println!(
        "| Lambda concurrency | {needed_concurrency:.0} on average to finish within the hour; {concurrency:.0} allowed (MaximumConcurrency) | {} × {sync_s:.2} s ÷ 3,600 s |",
        thousands(conns)
    );
    println!(
        "| tick → all synced | **{:.0} min** at {concurrency:.0} at once | the event source starts at 5 and adds 300 a minute |",
        drain_s / 60.0
    );
    println!(
        "| Lambda duration | {} GB-s, {} invocations | {} × {sync_s:.2} s × 0.5 GB + the tick |",
        thousands(gb_s_tick),
        thousands(invocations),
        thousands(conns)
    );
    println!(
        "| SQS | {} messages, {} requests; {:.0} messages/s out of the tick | {sqs_calls:.2} requests a connection (send, receive, delete) |",
        thousands(conns),
        thousands(conns * sqs_calls),
        conns / tick_aws_s.max(1.0)
    );
    println!(
        "| DynamoDB writes | {} WCU a tick; {} WCU/s while draining | {writes:.1} a connection × {finishes_per_s:.1} syncs/s |",
        thousands(conns * writes),
        thousands(peak_wcu)
    );
    println!(
        "| DueIndex hot key | {:.0} WCU/s a shard ({} shards) of {} | {due_index:.1} index writes a connection; the tick's claims add {:.0}/s a shard |",
        peak_due_shard,
        keys::DUE_SHARDS,
        thousands(aws::DDB_PARTITION_WCU),
        2.0 / aws::DDB_RTT_S / keys::DUE_SHARDS as f64
    );
    println!(
        "| Secrets Manager | {:.1} GetSecretValue/s of {}; {:.1} PutSecretValue/s of {} | {sm_get:.2} / {sm_put:.2} a connection × {finishes_per_s:.1} syncs/s |",
        peak_get,
        thousands(aws::GET_SECRET_PER_SECOND),
        peak_put,
        aws::PUT_SECRET_PER_SECOND
    );
    println!("\n| per month (730 ticks) | cost | how |\n|---|---|---|");
    println!(
        "| Lambda | ${:.2} | {} GB-s × ${} + {} requests × $0.20/M |",
        lambda_cost,
        thousands(gb_s_tick * month),
        aws::LAMBDA_GB_SECOND,
        thousands(invocations * month)
    );
    println!(
        "| SQS | ${:.2} | {} requests × $0.40/M |",
        sqs_cost,
        thousands(conns * sqs_calls * month)
    );
    println!(
        "| DynamoDB on-demand | ${:.2} | {} write units × $0.625/M + {} reads × $0.125/M |",
        ddb_cost,
        thousands(conns * writes * month),
        thousands(conns * ddb_reads * month)
    );
    println!(
        "| Secrets Manager | ${:.2} | {} secrets × $0.40 + {} calls × $0.05/10k |",
        sm_cost,
        thousands(conns),
        thousands(conns * sm_calls * month)
    );
    println!(
        "| **total** | **${:.0}** (${:.3} a connection) | storage, logs, network not included (README: Cost model) |",
        total,
        total / conns
    );

    // Each limit: what the hour needs of it, at the configured concurrency.
    let limits = [
        Limit {
            name: format!("SQS event source MaximumConcurrency ({concurrency:.0})"),
            needed: drain_s,
            capacity: interval_s,
            unit: "s to drain a tick",
            setting:
                "ScalingConfig.MaximumConcurrency (≤ 1,000) with reserved concurrency to match",
        },
        Limit {
            name: "Lambda account concurrency (1,000)".into(),
            needed: needed_concurrency.max(concurrency),
            capacity: aws::ACCOUNT_CONCURRENCY,
            unit: "concurrent executions",
            setting: "a quota increase; reserved concurrency keeps the API's share",
        },
        Limit {
            name: "tick invocation timeout (900 s)".into(),
            needed: tick_aws_s,
            capacity: 900.0,
            unit: "s to claim and send",
            setting:
                "claims in parallel, or a tick more often than the interval (jittered next_sync_at)",
        },
        Limit {
            name: "DueIndex partition (1,000 WCU/s a shard)".into(),
            needed: peak_due_shard + 2.0 / aws::DDB_RTT_S / keys::DUE_SHARDS as f64,
            capacity: aws::DDB_PARTITION_WCU,
            unit: "WCU/s on the busiest shard",
            setting: "DUE_SHARDS",
        },
        Limit {
            name: "DynamoDB table on-demand (40,000 WCU/s)".into(),
            needed: peak_wcu,
            capacity: aws::DDB_TABLE_WCU,
            unit: "WCU/s",
            setting: "MaximumConcurrency; a table quota increase",
        },
        Limit {
            name: "Secrets Manager GetSecretValue (10,000/s)".into(),
            needed: peak_get,
            capacity: aws::GET_SECRET_PER_SECOND,
            unit: "calls/s",
            setting: "MaximumConcurrency",
        },
        Limit {
            name: "Secrets Manager PutSecretValue (50/s)".into(),
            needed: peak_put,
            capacity: aws::PUT_SECRET_PER_SECOND,
            unit: "calls/s",
            setting: "fewer token refreshes (half-life rule); MaximumConcurrency",
        },
        Limit {
            name: "SQS in-flight messages (120,000)".into(),
            needed: concurrency * m.batch_size as f64,
            capacity: aws::SQS_IN_FLIGHT,
            unit: "messages received, not deleted",
            setting: "MaximumConcurrency × BatchSize",
        },
    ];
    let mut ranked: Vec<&Limit> = limits.iter().collect();
    ranked.sort_by(|a, b| {
        (b.needed / b.capacity)
            .partial_cmp(&(a.needed / a.capacity))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    println!("\n| limit (at {concurrency:.0} concurrent syncs) | needed | allows | used | setting that moves it |\n|---|---|---|---|---|");
    for l in &ranked {
        println!(
            "| {} | {} {} | {} | **{:.0} %** | {} |",
            l.name,
            thousands(l.needed),
            l.unit,
            thousands(l.capacity),
            100.0 * l.needed / l.capacity,
            l.setting
        );
    }
    let first = ranked[0];
    // A MaximumConcurrency that drains a tick in a quarter of the interval.
    let work = conns * sync_s;
    let mut fit = 10.0;
    while fit < aws::ESM_MAX_CONCURRENCY && drain_time(work, fit) > interval_s / 4.0 {
        fit += 10.0;
    }
    println!(
        "\nFirst limit hit: **{}** ({:.0} % of it: a tick takes {:.0} of the 60 minutes to drain, \
         and any growth in connections or in a sync's duration runs the ticks together). \
         MaximumConcurrency {:.0} (with ReservedConcurrentExecutions to match) drains it in {:.0} min at \
         {:.0} WCU/s and {:.0} GetSecretValue/s. Next: the tick's serial claims reach the 900 s \
         timeout at about {} connections (a tick more often than the interval, with the \
         jittered next_sync_at, divides that work), then the account's 1,000 concurrent executions.",
        first.name,
        100.0 * first.needed / first.capacity,
        drain_s / 60.0,
        fit,
        drain_time(work, fit) / 60.0,
        fit / sync_s * writes,
        fit / sync_s * sm_get,
        thousands(900.0 / (tick_aws_s / conns)),
    );
}

/// Seconds to do `work` seconds of syncs with at most `max` invocations at once, the
/// event source starting at 5 and adding 300 a minute.
fn drain_time(work: f64, max: f64) -> f64 {
    let mut done = 0.0;
    let mut t = 0.0;
    let mut c = aws::ESM_START_CONCURRENCY.min(max);
    while done < work {
        let step = 1.0;
        done += c * step;
        t += step;
        c = (c + aws::ESM_SCALE_UP_PER_MINUTE / 60.0 * step).min(max);
        if t > 1e7 {
            break;
        }
    }
    t
}
