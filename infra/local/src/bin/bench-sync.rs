//! `cargo xtask bench`'s measured process: syncs one connection, like `sync-one`
//! (same environment: the functions' variables plus `SEATSCOPE_LOCAL_DYNAMODB` and
//! `SEATSCOPE_LOCAL_MOTO`), with a DynamoDB client that meters its own calls, and
//! prints one line of `key=value` figures on stdout:
//!
//! `bench result=synced events=N seats=N days=N sync_ms=N ddb_calls=N ddb_busy_ms=N
//! ddb_write_calls=N ddb_items_written=N ddb_write_ms=N`
//!
//! `ddb_busy_ms` is the time at least one DynamoDB call was in flight; `ddb_write_ms`
//! the summed duration of the write calls (BatchWriteItem, PutItem, UpdateItem);
//! `ddb_items_written` the items those calls carried.
//!
//! Usage: `bench-sync <org> <provider> [--client-rate-limit N]`; the flag replaces the
//! provider's client-side budget (requests per minute and burst) for the
//! throughput runs, where the sandbox's limit is off too.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::get_item::GetItemInput;
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use seatscope_core::config::Config;
use seatscope_core::domain::catalog::Catalog;
use seatscope_core::ops::sync::{self, RunResult};
use seatscope_core::Deps;
use seatscope_local::services::local_sdk_config;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `BENCH_SYNC_TRACE=1`: every DynamoDB call on stderr (start since launch, duration,
/// operation, items written), to see where a sync's time goes.
static TRACE: std::sync::LazyLock<Option<Instant>> =
    std::sync::LazyLock::new(|| std::env::var_os("BENCH_SYNC_TRACE").map(|_| Instant::now()));

/// When a call started, and how many items it writes (None: not a write).
#[derive(Debug, Clone)]
struct CallStart {
    at: Instant,
    writes: Option<u64>,
    op: &'static str,
}

impl Storable for CallStart {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug, Default)]
struct Tally {
    calls: u64,
    write_calls: u64,
    items_written: u64,
    write_time: Duration,
    busy: Duration,
    in_flight: u32,
    busy_since: Option<Instant>,
}

/// Counts the DynamoDB client's calls (an SDK interceptor).
#[derive(Debug, Clone, Default)]
struct Meter(Arc<Mutex<Tally>>);

impl Meter {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "BenchMeter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let writes = if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            Some(
                batch
                    .request_items()
                    .map(|m| m.values().map(|v| v.len() as u64).sum())
                    .unwrap_or(0),
            )
        } else if input.downcast_ref::<PutItemInput>().is_some()
            || input.downcast_ref::<UpdateItemInput>().is_some()
        {
            Some(1)
        } else {
            None
        };
        let op = if input.downcast_ref::<BatchWriteItemInput>().is_some() {
            "BatchWriteItem"
        } else if input.downcast_ref::<PutItemInput>().is_some() {
            "PutItem"
        } else if input.downcast_ref::<UpdateItemInput>().is_some() {
            "UpdateItem"
        } else if input.downcast_ref::<QueryInput>().is_some() {
            "Query"
        } else if input.downcast_ref::<GetItemInput>().is_some() {
            "GetItem"
        } else {
            "other"
        };
        let at = Instant::now();
        {
            let mut t = self.tally();
            if t.in_flight == 0 {
                t.busy_since = Some(at);
            }
            t.in_flight += 1;
        }
        cfg.interceptor_state()
            .store_put(CallStart { at, writes, op });
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let now = Instant::now();
        let start = cfg.load::<CallStart>().cloned();
        if let (Some(s), Some(origin)) = (&start, *TRACE) {
            eprintln!(
                "ddb {:>7.1} ms {:>6.1} ms {} {}",
                (s.at - origin).as_secs_f64() * 1e3,
                (now - s.at).as_secs_f64() * 1e3,
                s.op,
                s.writes.map(|n| format!("{n} items")).unwrap_or_default()
            );
        }
        let mut t = self.tally();
        t.calls += 1;
        t.in_flight = t.in_flight.saturating_sub(1);
        if t.in_flight == 0 {
            if let Some(since) = t.busy_since.take() {
                t.busy += now - since;
            }
        }
        if let Some(CallStart {
            at,
            writes: Some(items),
            ..
        }) = start
        {
            t.write_calls += 1;
            t.items_written += items;
            t.write_time += now - at;
        }
        Ok(())
    }
}

/// The catalog with `provider`'s client-side budget replaced (the catalog has no
/// setter: it is rebuilt from its own serialized providers).
fn with_budget(catalog: &Catalog, provider: &str, per_minute: u32) -> anyhow::Result<Catalog> {
    let mut providers = catalog.providers().to_vec();
    let p = providers
        .iter_mut()
        .find(|p| p.id == provider)
        .with_context(|| format!("no provider {provider}"))?;
    p.rate_limit_per_minute = per_minute;
    p.rate_burst = per_minute;
    p.rate_classes.clear();
    let value = serde_json::json!({ "provider": providers });
    Ok(serde_json::from_value(value)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(org), Some(provider)) = (args.first(), args.get(1)) else {
        anyhow::bail!("usage: bench-sync <org> <provider> [--client-rate-limit N]");
    };
    let client_rate_limit: Option<u32> = match args.iter().position(|a| a == "--client-rate-limit")
    {
        Some(i) => Some(
            args.get(i + 1)
                .context("--client-rate-limit needs a value")?
                .parse()?,
        ),
        None => None,
    };
    let endpoint = |k: &str| std::env::var(k).with_context(|| format!("{k} is required"));
    let meter = Meter::default();
    std::sync::LazyLock::force(&TRACE);
    let sdk = local_sdk_config(&endpoint("SEATSCOPE_LOCAL_DYNAMODB")?).await;
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(meter.clone())
            .build(),
    );
    let secrets = aws_sdk_secretsmanager::Client::new(
        &local_sdk_config(&endpoint("SEATSCOPE_LOCAL_MOTO")?).await,
    );
    let mut config = Config::from_env()?;
    if let Some(per_minute) = client_rate_limit {
        config.catalog = with_budget(&config.catalog, provider, per_minute)?;
    }
    let deps = Deps::from_clients(config, dynamodb, secrets)?;
    let started = Instant::now();
    let result = sync::sync_connection(
        &deps,
        &seatscope_core::domain::OrgId::parse(org)?,
        provider,
        deps.config.clock.now(),
    )
    .await?;
    let sync_ms = started.elapsed().as_millis();
    let (name, summary) = match result {
        RunResult::Synced(s) => ("synced", s),
        RunResult::Paused(s) => ("paused", s),
        RunResult::Skipped => ("skipped", Default::default()),
        RunResult::Failed { code, message } => {
            anyhow::bail!("the sync failed: {code}: {message}")
        }
    };
    let t = meter.tally();
    println!(
        "bench result={name} events={} seats={} days={} sync_ms={sync_ms} ddb_calls={} \
         ddb_busy_ms={} ddb_write_calls={} ddb_items_written={} ddb_write_ms={}",
        summary.activity_events,
        summary.seats,
        summary.days_written,
        t.calls,
        t.busy.as_millis(),
        t.write_calls,
        t.items_written,
        t.write_time.as_millis(),
    );
    Ok(())
}
