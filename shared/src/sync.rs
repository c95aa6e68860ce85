//! Syncing (DESIGN §5). The EventBridge tick claims every due connection and sends
//! one SQS message each (`enqueue_due`); the worker syncs one connection per
//! message (`work`): lease → credentials (refreshed when about to expire, or once
//! on a 401) → the seats stream → the activity stream window by window from its
//! checkpoint, each window's absolute day counts, seats' last activity and the
//! rollups of its days written before the checkpoint moves past it → the run
//! recorded, the lease released, the next sync scheduled. A run that nears the
//! Lambda deadline stops between windows (or abandons the window in flight),
//! releases the lease and re-enqueues itself; the next part resumes from the
//! checkpoints, as does a run that takes over a crashed run's expired lease.

use std::collections::{BTreeMap, HashMap, VecDeque};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime, Time};

use crate::app::App;
use crate::catalog::Provider;
use crate::connectors::{AccountDay, Connector, SeatRecord};
use crate::domain::{
    day, keys, parse_day, rfc3339, Connection, ConnectionStatus, DailyRollup, OnCall, PlanItem,
    RequestCounts, RunSoFar, RunStatus, Seat, SeatDay, SeatStatus, SyncRun, SyncSummary,
};
use crate::error::{Error, Result};
use crate::metrics;
use crate::oauth;
use crate::store::{Checkpoint, SyncOutcome};
use crate::vault::Credentials;
use secrecy::{ExposeSecret, SecretString};

/// Refresh an OAuth token this long before it expires.
pub const REFRESH_MARGIN: Duration = Duration::minutes(5);
/// Sync runs are kept as a short history.
const RUN_HISTORY: Duration = Duration::days(90);
/// A failed run is retried sooner than the normal interval, but not at once.
const RETRY_AFTER_FAILURE: Duration = Duration::minutes(15);
/// On call in the window = on call at some time from this long before a sync to this
/// long after it (`/oncalls`): a weekly or monthly rotation's members all fall in it.
pub const ON_CALL_WINDOW: Duration = Duration::days(30);

/// One SQS message: sync this connection. Only names, never a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub org: String,
    pub provider: String,
    /// 0 from the tick; n for the n-th continuation after a deadline.
    #[serde(default)]
    pub continuation: u32,
    /// The tick that enqueued it (epoch seconds), kept by its continuations: the next
    /// sync is scheduled from the connection's slot at or before this instant
    /// ([`next_due`]), however long the message waited in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
    /// On a continuation: what the run's earlier parts did, so the run is recorded
    /// once with the whole of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub so_far: Option<RunSoFar>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunResult {
    Synced(SyncSummary),
    /// The deadline came first: what was fetched is written and checkpointed, the
    /// lease released; the rest needs another run (`work` re-enqueues it).
    Paused(SyncSummary),
    /// Another run holds the lease (or the connection is not scheduled).
    Skipped,
    Failed {
        code: String,
        message: String,
    },
}

/// What a tick (and, locally, the worker draining the queue after it) did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickReport {
    /// Due connections found in DueIndex.
    pub due: usize,
    /// Claimed and sent to the queue.
    pub enqueued: usize,
    pub synced: usize,
    /// Claimed by an earlier tick, or (worker) another run held the lease.
    pub skipped: usize,
    /// Messages not sent (tick), runs that failed (worker).
    pub failed: usize,
    /// Runs paused at the deadline and re-enqueued.
    #[serde(default)]
    pub continued: usize,
}

impl TickReport {
    pub fn count(&mut self, result: &RunResult) {
        match result {
            RunResult::Synced(_) => self.synced += 1,
            RunResult::Paused(_) => self.continued += 1,
            RunResult::Skipped => self.skipped += 1,
            RunResult::Failed { .. } => self.failed += 1,
        }
    }

    pub fn add(&mut self, other: &TickReport) {
        self.due += other.due;
        self.enqueued += other.enqueued;
        self.synced += other.synced;
        self.skipped += other.skipped;
        self.failed += other.failed;
        self.continued += other.continued;
    }
}

fn run_id() -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn start_of_day(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_time(Time::MIDNIGHT)
}

fn parse_instant(s: Option<&str>) -> Option<OffsetDateTime> {
    s.and_then(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
}

fn lease_ttl(app: &App) -> Duration {
    Duration::seconds(i64::from(app.config.sync_lease_seconds))
}

/// The EventBridge tick: every due connection (DueIndex, never a scan) is claimed
/// — its `next_sync_at` moved one lease time ahead, so a second tick before the
/// worker runs does not send it again — and sent to the queue, one message each.
pub async fn enqueue_due(app: &App, now: OffsetDateTime) -> Result<TickReport> {
    let queue = app.sync_queue()?;
    let hold = lease_ttl(app);
    let due = interleave_shards(app.store.due_connections(now).await?);
    let mut report = TickReport {
        due: due.len(),
        ..TickReport::default()
    };
    let mut claimed = Vec::with_capacity(due.len());
    for (org, provider) in due {
        if app.store.claim_due(&org, &provider, now, hold).await? {
            claimed.push(SyncRequest {
                org,
                provider,
                continuation: 0,
                due_at: Some(now.unix_timestamp()),
                so_far: None,
            });
        } else {
            report.skipped += 1;
        }
    }
    let unsent = queue.send_all(&claimed).await?;
    for request in &unsent {
        tracing::error!(org = %request.org, provider = %request.provider, "sync request not enqueued; due again");
        app.store
            .release_claim(&request.org, &request.provider, now, hold)
            .await?;
    }
    report.enqueued = claimed.len() - unsent.len();
    report.failed = unsent.len();
    Ok(report)
}

/// The due connections in the order the tick claims them: DueIndex returns them shard
/// by shard, and each claim moves `next_sync_at`, an index key (two index writes), so
/// claiming in that order puts every write of the moment on one shard's partition
/// (`cargo xtask scale` measured 782 of a partition's 1,000 WCU/s locally). Taking
/// the shards in turn spreads them over all of them.
pub fn interleave_shards(due: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut by_shard: BTreeMap<String, VecDeque<(String, String)>> = BTreeMap::new();
    for (org, provider) in due {
        by_shard
            .entry(keys::due_shard(&org, &provider, keys::DUE_SHARDS))
            .or_default()
            .push_back((org, provider));
    }
    let mut order = Vec::with_capacity(by_shard.values().map(VecDeque::len).sum());
    while !by_shard.is_empty() {
        by_shard.retain(|_, queue| {
            if let Some(next) = queue.pop_front() {
                order.push(next);
            }
            !queue.is_empty()
        });
    }
    order
}

/// One SQS message: syncs the connection until done or until shortly before
/// `deadline` (the Lambda context's), and re-enqueues the rest if the deadline came
/// first. An `Err` means the message should be delivered again (after N receives it
/// goes to the DLQ); a failed run is recorded on the connection and is not an `Err`.
pub async fn work(
    app: &App,
    request: &SyncRequest,
    deadline: Option<OffsetDateTime>,
) -> Result<RunResult> {
    let now = app.config.clock.now();
    let due_at = request
        .due_at
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    // Boxed, here and below: a sync's nested state machines are large, and a debug
    // build polls them on a 2 MiB worker stack.
    let (result, so_far) = Box::pin(run_part(
        app,
        (&request.org, &request.provider),
        now,
        deadline,
        due_at,
        request.so_far.as_ref(),
    ))
    .await?;
    if let RunResult::Paused(summary) = &result {
        if request.continuation > 0 && summary.days_written == 0 {
            // Not even one window fits between the start and the deadline margin:
            // re-enqueuing would loop. Delivered again, and after N receives in the DLQ.
            return Err(Error::Internal {
                context: "a continuation wrote nothing before the deadline".into(),
                source: None,
            });
        }
        let next = SyncRequest {
            continuation: request.continuation + 1,
            so_far,
            ..request.clone()
        };
        let unsent = app
            .sync_queue()?
            .send_all(std::slice::from_ref(&next))
            .await?;
        if !unsent.is_empty() {
            // The message is delivered again and resumes from the checkpoints.
            return Err(Error::Internal {
                context: "the continuation of a paused sync could not be enqueued".into(),
                source: None,
            });
        }
        tracing::info!(
            org = %request.org,
            provider = %request.provider,
            continuation = next.continuation,
            events = summary.activity_events,
            "sync paused before the deadline; continuation enqueued"
        );
    }
    Ok(result)
}

/// Syncs without a deadline (tests, tools).
pub async fn sync_connection(
    app: &App,
    org: &str,
    provider_id: &str,
    now: OffsetDateTime,
) -> Result<RunResult> {
    sync_connection_within(app, org, provider_id, now, None).await
}

/// Syncs one connection under its lease, stopping `SYNC_DEADLINE_MARGIN_SECONDS`
/// before `deadline` if there is one.
pub async fn sync_connection_within(
    app: &App,
    org: &str,
    provider_id: &str,
    now: OffsetDateTime,
    deadline: Option<OffsetDateTime>,
) -> Result<RunResult> {
    sync_connection_scheduled(app, org, provider_id, now, deadline, None).await
}

/// Each connection's own second within the sync interval: a stable hash (FNV-1a) of
/// org and provider, so connections made at the same moment are not all due in the
/// same second of every later interval.
pub fn schedule_phase(org: &str, provider: &str, interval: Duration) -> i64 {
    let period = interval.whole_seconds().max(1) as u64;
    let hash = org
        .bytes()
        .chain([0u8])
        .chain(provider.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    (hash % period) as i64
}

/// When a connection is due after a successful run: one interval after its slot, the
/// latest instant at or before `due_at` (the tick that sent the run) that is its phase
/// within the interval ([`schedule_phase`]). A run the queue delayed keeps its place,
/// so the schedule does not drift by the time each message waited (which, with a tick
/// every interval, used to push a connection to every other tick), and connections
/// made at the same moment spread over the interval instead of all coming due in the
/// same second. Never sooner than a sixth of the interval after `now`: a slot closer
/// than that (a first sync, or a run that waited long) moves by that sixth, which keeps
/// it before the next tick when the tick runs once an interval.
pub fn next_due(
    org: &str,
    provider: &str,
    due_at: OffsetDateTime,
    now: OffsetDateTime,
    interval: Duration,
) -> OffsetDateTime {
    let period = interval.whole_seconds().max(1);
    let min_gap = (period / 6).max(1);
    let phase = schedule_phase(org, provider, interval);
    let t = due_at.unix_timestamp();
    let earliest = now.unix_timestamp() + min_gap;
    let slot = t - (t - phase).rem_euclid(period);
    let mut next = slot + period;
    if next < earliest {
        next += min_gap;
    }
    OffsetDateTime::from_unix_timestamp(next.max(earliest)).unwrap_or(now + interval)
}

/// Like [`sync_connection_within`], for a run sent by the tick at `due_at` (None: a
/// run started now, by a tool or a test): the next sync is scheduled by [`next_due`].
pub async fn sync_connection_scheduled(
    app: &App,
    org: &str,
    provider_id: &str,
    now: OffsetDateTime,
    deadline: Option<OffsetDateTime>,
    due_at: Option<OffsetDateTime>,
) -> Result<RunResult> {
    Ok(Box::pin(run_part(
        app,
        (org, provider_id),
        now,
        deadline,
        due_at,
        None,
    ))
    .await?
    .0)
}

/// One part of a run (the whole run, when no deadline comes first), after the parts
/// `so_far` describes. A paused part returns what the run has done so far, for the
/// continuation to carry; the last part records the run with all its parts.
async fn run_part(
    app: &App,
    (org, provider_id): (&str, &str),
    now: OffsetDateTime,
    deadline: Option<OffsetDateTime>,
    due_at: Option<OffsetDateTime>,
    so_far: Option<&RunSoFar>,
) -> Result<(RunResult, Option<RunSoFar>)> {
    let owner = run_id();
    let ttl = lease_ttl(app);
    if !app
        .store
        .acquire_lease(org, provider_id, &owner, now, ttl)
        .await?
    {
        tracing::info!(
            org,
            provider = provider_id,
            "sync skipped: another run holds the lease"
        );
        return Ok((RunResult::Skipped, None));
    }
    let connection = app
        .store
        .connection(org, provider_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("connection to {provider_id}")))?;
    let margin = Duration::seconds(i64::from(app.config.sync_deadline_margin_seconds));
    let run = Run {
        owner: owner.clone(),
        now,
        stop_at: deadline.map(|d| d - margin),
        lease_ttl: ttl,
    };
    let started = app.config.clock.now();
    let mut requests = RequestCounts::default();
    let result = Box::pin(sync_streams(app, &connection, &run, &mut requests)).await;
    let finished = app.config.clock.now();
    // The run so far, this part included.
    let before = so_far.cloned().unwrap_or_else(|| RunSoFar {
        started_at: rfc3339(started),
        ..RunSoFar::default()
    });
    let with_this = |part: &SyncSummary| RunSoFar {
        started_at: before.started_at.clone(),
        parts: before.parts + 1,
        activity_events: before.activity_events + part.activity_events,
        days_written: before.days_written + part.days_written,
        requests: {
            let mut r = before.requests;
            r += requests;
            r
        },
    };
    let interval = Duration::minutes(i64::from(app.config.sync_interval_minutes));
    let (outcome, run_result) = match result {
        Ok(Pulled::Paused(summary)) => {
            if !app
                .store
                .pause_run(org, provider_id, &owner, finished + ttl)
                .await?
            {
                tracing::warn!(
                    org,
                    provider = provider_id,
                    "lease was lost before the run paused"
                );
                return Ok((RunResult::Skipped, None));
            }
            let so_far = with_this(&summary);
            return Ok((RunResult::Paused(summary), Some(so_far)));
        }
        Err(Error::Conflict(reason)) => {
            tracing::warn!(
                org,
                provider = provider_id,
                reason,
                "the run stopped: its lease was lost"
            );
            return Ok((RunResult::Skipped, None));
        }
        Ok(Pulled::Done(part)) => {
            // The whole run: seats as now, events and days of every part.
            let whole = with_this(&part);
            let summary = SyncSummary {
                seats: part.seats,
                activity_events: whole.activity_events,
                days_written: whole.days_written,
            };
            (
                SyncOutcome {
                    status: ConnectionStatus::Connected,
                    status_reason: None,
                    summary: Some(summary.clone()),
                    finished_at: finished,
                    next_sync_at: next_due(org, provider_id, due_at.unwrap_or(now), now, interval),
                    consecutive_failures: 0,
                },
                RunResult::Synced(summary),
            )
        }
        Err(e) => {
            let status = match &e {
                Error::NeedsReconnect { .. } => ConnectionStatus::NeedsReconnect,
                // Transient trouble keeps the connection connected; it retries later.
                e if e.is_transient() => ConnectionStatus::Connected,
                _ => ConnectionStatus::Error,
            };
            tracing::warn!(org, provider = provider_id, error = %e.chain(), "sync failed");
            (
                SyncOutcome {
                    status,
                    status_reason: Some(e.public_message()),
                    summary: None,
                    finished_at: finished,
                    next_sync_at: now + interval.min(RETRY_AFTER_FAILURE),
                    consecutive_failures: connection.consecutive_failures + 1,
                },
                RunResult::Failed {
                    code: e.code().to_string(),
                    message: e.public_message(),
                },
            )
        }
    };
    if !app
        .store
        .finish_run(org, provider_id, &owner, &outcome)
        .await?
    {
        // Disconnected, or the lease expired and another run took over: that run
        // (or nobody) owns the connection's record now.
        tracing::warn!(
            org,
            provider = provider_id,
            "lease was lost before the run finished; the run is not recorded"
        );
        return Ok((RunResult::Skipped, None));
    }
    // Recorded under the first part's start (the run's), with every part's requests.
    let whole = with_this(&SyncSummary::default());
    let run = SyncRun {
        pk: keys::app(org, provider_id),
        sk: keys::run_sk(&whole.started_at, &owner),
        run_id: owner,
        started_at: whole.started_at.clone(),
        finished_at: rfc3339(finished),
        status: match run_result {
            RunResult::Failed { .. } => RunStatus::Failed,
            _ => RunStatus::Succeeded,
        },
        summary: outcome.summary.clone().unwrap_or_default(),
        error: outcome.status_reason.clone(),
        requests: whole.requests,
        parts: whole.parts,
        expires_at: (finished + RUN_HISTORY).unix_timestamp(),
    };
    app.store.put(&run).await?;
    if needs_attention(
        connection.status,
        outcome.status,
        outcome.consecutive_failures,
    ) {
        // The template's metric filter on the sync log group matches `alert` and alarms
        // to the ops topic. Only public fields: the reason is the user-facing message.
        tracing::error!(
            alert = "connection_needs_attention",
            org,
            provider = provider_id,
            status = outcome.status.as_str(),
            consecutive_failures = outcome.consecutive_failures,
            reason = outcome.status_reason.as_deref().unwrap_or(""),
            "connection needs attention"
        );
    }
    if let RunResult::Synced(s) = &run_result {
        tracing::info!(
            org,
            provider = provider_id,
            seats = s.seats,
            events = s.activity_events,
            days = s.days_written,
            elapsed_ms = (finished - started).whole_milliseconds() as u64,
            "sync finished"
        );
    }
    Ok((run_result, None))
}

/// Whether a finished run calls for an operator alert: the connection has just turned
/// `needs_reconnect` (someone must reconnect it), or a healthy connection has just failed
/// (its first failed run; a vendor error that a retry inside the run got past is not a
/// failed run). Transitions only, so a connection that stays broken alerts once, not
/// every run.
pub fn needs_attention(
    before: ConnectionStatus,
    after: ConnectionStatus,
    consecutive_failures: u32,
) -> bool {
    let turned_needs_reconnect =
        after == ConnectionStatus::NeedsReconnect && before != ConnectionStatus::NeedsReconnect;
    turned_needs_reconnect || consecutive_failures == 1
}

/// How long one refresh may hold the connection's refresh lock.
const REFRESH_LOCK_TTL: Duration = Duration::seconds(30);
/// How long a caller waits for another caller's refresh before giving up (transient).
const REFRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
const REFRESH_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// The connection's credentials, ready to use: an OAuth token set that expires
/// within 5 minutes (or whose access token the vendor just refused, `rejected`) is
/// refreshed first. Exactly one caller refreshes: it takes the connection's refresh
/// lock, re-reads the secret (someone may have refreshed meanwhile), refreshes and
/// stores the new set before anyone uses it; every other caller waits until the
/// stored access token changes and uses the new one. PagerDuty rotates refresh
/// tokens, so a second refresh with the old one would fail with `invalid_grant`
/// and lose the connection.
pub async fn usable_credentials(
    app: &App,
    provider: &Provider,
    connection: &Connection,
    rejected: Option<&SecretString>,
) -> Result<Credentials> {
    let credentials = app.vault.credentials(&connection.secret_name).await?;
    let Credentials::OAuth2(tokens) = &credentials else {
        return Ok(credentials);
    };
    let stale: SecretString = match rejected {
        // Someone already replaced the refused token: use theirs.
        Some(r) if r.expose_secret() != tokens.access_token.expose_secret() => {
            return Ok(credentials)
        }
        Some(r) => r.clone(),
        None if tokens.due_for_refresh(app.config.clock.now(), REFRESH_MARGIN) => {
            tokens.access_token.clone()
        }
        None => return Ok(credentials),
    };
    let is_stale = |c: &Credentials| match c {
        Credentials::OAuth2(t) => t.access_token.expose_secret() == stale.expose_secret(),
        Credentials::ApiKey(_) => false,
    };
    let (org, provider_id) = (&connection.org_id, &connection.provider);
    let owner = run_id();
    let deadline = tokio::time::Instant::now() + REFRESH_WAIT;
    loop {
        let now = app.config.clock.now();
        if app
            .store
            .acquire_refresh_lock(org, provider_id, &owner, now, REFRESH_LOCK_TTL)
            .await?
        {
            let refreshed = async {
                // Re-read under the lock: the previous holder may have refreshed already.
                let current = app.vault.credentials(&connection.secret_name).await?;
                match current {
                    Credentials::OAuth2(tokens)
                        if tokens.access_token.expose_secret() == stale.expose_secret() =>
                    {
                        let fresh =
                            Credentials::OAuth2(oauth::refresh(app, provider, &tokens).await?);
                        // Stored before use: the vendor may already have invalidated the
                        // old refresh token.
                        // `update` never revives a secret a disconnect deleted meanwhile.
                        app.vault.update(&connection.secret_name, &fresh).await?;
                        tracing::info!(org = %org, provider = %provider_id, "token refreshed");
                        Ok(fresh)
                    }
                    other => Ok(other),
                }
            }
            .await;
            if let Err(e) = app
                .store
                .release_refresh_lock(org, provider_id, &owner)
                .await
            {
                // It expires by itself after REFRESH_LOCK_TTL.
                tracing::warn!(org = %org, provider = %provider_id, error = %e.chain(), "refresh lock not released");
            }
            return refreshed;
        }
        // Another caller is refreshing: wait for the new set it stores.
        tokio::time::sleep(REFRESH_POLL).await;
        let current = app.vault.credentials(&connection.secret_name).await?;
        if !is_stale(&current) {
            return Ok(current);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::vendor(
                provider_id,
                "the access token is being refreshed by another run that did not finish; retrying later",
            ));
        }
    }
}

/// One run's identity and limits.
struct Run {
    owner: String,
    /// The tick's (or the message's) time: the activity stream runs up to it.
    now: OffsetDateTime,
    /// Stop fetching at this instant (the deadline minus the margin).
    stop_at: Option<OffsetDateTime>,
    lease_ttl: Duration,
}

impl Run {
    fn out_of_time(&self) -> bool {
        self.stop_at
            .is_some_and(|stop| OffsetDateTime::now_utc() >= stop)
    }
}

enum Pulled {
    Done(SyncSummary),
    Paused(SyncSummary),
}

/// What this run has written so far; survives the retry after a 401.
struct Progress {
    /// The app's seats after the seats stream (or as stored, when resuming).
    seats: Option<Vec<Seat>>,
    /// Activity before this instant is written.
    activity_from: OffsetDateTime,
    events: u64,
    days_written: u32,
}

impl Progress {
    fn summary(&self) -> SyncSummary {
        SyncSummary {
            seats: self
                .seats
                .iter()
                .flatten()
                .filter(|s| s.status != SeatStatus::Removed)
                .count() as u32,
            activity_events: self.events,
            days_written: self.days_written,
        }
    }
}

async fn sync_streams(
    app: &App,
    connection: &Connection,
    run: &Run,
    requests: &mut RequestCounts,
) -> Result<Pulled> {
    let provider = app.config.catalog.get(&connection.provider)?;
    let mut progress = Progress {
        seats: None,
        activity_from: window_start(connection, app.config.sync_history_days, run.now),
        events: 0,
        days_written: 0,
    };
    let credentials = usable_credentials(app, provider, connection, None).await?;
    match pull(
        app,
        provider,
        connection,
        &credentials,
        run,
        &mut progress,
        requests,
    )
    .await
    {
        Err(Error::VendorAuth {
            provider: p,
            message,
        }) => match &credentials {
            // Once on a 401: refresh (unless someone already did) and go on from
            // what is written.
            Credentials::OAuth2(t) if t.refresh_token.is_some() => {
                let rejected = t.access_token.clone();
                let credentials =
                    usable_credentials(app, provider, connection, Some(&rejected)).await?;
                pull(
                    app,
                    provider,
                    connection,
                    &credentials,
                    run,
                    &mut progress,
                    requests,
                )
                .await
                .map_err(|e| match e {
                    Error::VendorAuth { provider, message } => Error::NeedsReconnect {
                        provider,
                        reason: message,
                    },
                    other => other,
                })
            }
            _ => Err(Error::NeedsReconnect {
                provider: p,
                reason: message,
            }),
        },
        other => other,
    }
}

/// Where this run's activity window starts: the start of the checkpoint's day
/// (whole days are recounted, so day counts stay absolute), or the history horizon.
fn window_start(connection: &Connection, history_days: u32, now: OffsetDateTime) -> OffsetDateTime {
    let horizon = start_of_day(now - Duration::days(i64::from(history_days)));
    parse_instant(connection.activity_synced_until.as_deref())
        .map(|t| start_of_day(t).max(horizon))
        .unwrap_or(horizon)
}

/// Whether the seats stream was already written by this sync: its checkpoint is
/// later than the last finished run (a run paused at a deadline, or one that
/// crashed after writing seats).
fn seats_written_this_sync(connection: &Connection) -> bool {
    match (
        parse_instant(connection.seats_synced_at.as_deref()),
        parse_instant(connection.last_sync_at.as_deref()),
    ) {
        (Some(seats), Some(finished)) => seats > finished,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The activity windows `[from, to)` from `from` to `until`: `days` long, aligned
/// to UTC days; the last one ends at `until`.
fn next_window(
    from: OffsetDateTime,
    until: OffsetDateTime,
    days: Option<u32>,
) -> Option<(OffsetDateTime, OffsetDateTime)> {
    if from >= until {
        return None;
    }
    let to = match days {
        Some(d) => (start_of_day(from) + Duration::days(i64::from(d.max(1)))).min(until),
        None => until,
    };
    Some((from, to))
}

/// The UTC days a window `[from, to)` covers.
fn window_days(from: OffsetDateTime, to: OffsetDateTime) -> Vec<Date> {
    if to <= from {
        return Vec::new();
    }
    metrics::days_between(from.date(), (to - Duration::NANOSECOND).date())
}

/// One window's counts: (seat, day) → feature → count. Bounded by seats × days
/// of the window × features, whatever the number of events.
type WindowCounts = HashMap<(String, Date), BTreeMap<String, u32>>;

enum Fetched {
    Window {
        from: OffsetDateTime,
        to: OffsetDateTime,
        counts: WindowCounts,
        events: u64,
    },
    /// The deadline came while fetching: the partial window is dropped.
    OutOfTime,
    /// Nothing left to fetch.
    Nothing,
}

async fn fetch_window(
    connector: &Connector,
    window: Option<(OffsetDateTime, OffsetDateTime)>,
    stop_at: Option<OffsetDateTime>,
) -> Result<Fetched> {
    let Some((from, to)) = window else {
        return Ok(Fetched::Nothing);
    };
    let mut counts = WindowCounts::new();
    let mut count = |event: crate::connectors::ActivityEvent| {
        *counts
            .entry((event.seat_id, event.at.date()))
            .or_default()
            .entry(event.feature.to_string())
            .or_default() += 1;
    };
    let fetch = connector.activity(from, to, &mut count);
    let events = match stop_at {
        None => fetch.await?,
        Some(stop) => {
            let left = (stop - OffsetDateTime::now_utc()).max(Duration::ZERO);
            let left = std::time::Duration::try_from(left).unwrap_or_default();
            match tokio::time::timeout(left, fetch).await {
                Ok(events) => events?,
                Err(_) => return Ok(Fetched::OutOfTime),
            }
        }
    };
    Ok(Fetched::Window {
        from,
        to,
        counts,
        events,
    })
}

async fn save_checkpoint(
    app: &App,
    connection: &Connection,
    run: &Run,
    checkpoint: Checkpoint,
) -> Result<()> {
    let saved = app
        .store
        .save_checkpoint(
            &connection.org_id,
            &connection.provider,
            &run.owner,
            checkpoint,
            app.config.clock.now() + run.lease_ttl,
        )
        .await?;
    if saved {
        Ok(())
    } else {
        Err(Error::Conflict(
            "the lease was taken over or the connection disconnected".into(),
        ))
    }
}

async fn pull(
    app: &App,
    provider: &Provider,
    connection: &Connection,
    credentials: &Credentials,
    run: &Run,
    progress: &mut Progress,
    requests: &mut RequestCounts,
) -> Result<Pulled> {
    let connector = Connector::new(provider, app.http()?, credentials)?;
    let pulled = Box::pin(pull_with(
        app, &connector, provider, connection, run, progress,
    ))
    .await;
    // Whatever the ending, the run's record counts the requests it made.
    let stats = connector.http_stats();
    *requests += RequestCounts {
        requests: stats.requests,
        retries: stats.retries,
        rate_limited: stats.rate_limited,
    };
    pulled
}

async fn pull_with(
    app: &App,
    connector: &Connector,
    provider: &Provider,
    connection: &Connection,
    run: &Run,
    progress: &mut Progress,
) -> Result<Pulled> {
    let org = &connection.org_id;
    let app_pk = keys::app(org, &provider.id);
    let now = run.now;

    // Seats stream: fetched once per sync; a resumed sync uses what it stored.
    if progress.seats.is_none() {
        let stored: Vec<Seat> = app
            .store
            .query_prefix::<Seat>(&app_pk, keys::SEAT_PREFIX)
            .await?;
        let seats = if seats_written_this_sync(connection) && !stored.is_empty() {
            stored
        } else {
            let records = connector.seats().await?;
            let on_call = connector
                .on_calls(now - ON_CALL_WINDOW, now + ON_CALL_WINDOW, now)
                .await?;
            let seats = merge_seats(&app_pk, stored, records, on_call.as_ref(), now);
            app.store.put_all(&seats).await?;
            save_checkpoint(app, connection, run, Checkpoint::Seats(now)).await?;
            seats
        };
        progress.seats = Some(seats);
    }
    let seat_count = progress.summary().seats;

    if !provider.per_seat_activity {
        // Account-level usage: a number per day, read in one pass.
        let (since, until) = (progress.activity_from, now);
        if since < until {
            let days = connector.account_usage(since, until).await?;
            let rollups =
                account_rollups(&app_pk, &window_days(since, until), days, seat_count, now);
            app.store.put_all(&rollups).await?;
            progress.days_written += rollups.len() as u32;
            save_checkpoint(app, connection, run, Checkpoint::ActivityUntil(until)).await?;
            progress.activity_from = until;
        }
    } else {
        let window_len = connector
            .activity_by_window()
            .then_some(app.config.sync_window_days);
        // Pipelined: the next windows are fetched (up to `parallel` at once, sharing
        // the connection's rate budget) while the last ones are written, in order;
        // the checkpoint moves only after a window is written.
        let parallel = if window_len.is_some() {
            app.config.sync_parallel_windows.max(1) as usize
        } else {
            1
        };
        let mut fetching_from = progress.activity_from;
        let mut to_write: VecDeque<(OffsetDateTime, OffsetDateTime, WindowCounts)> =
            VecDeque::new();
        loop {
            let mut windows = Vec::with_capacity(parallel);
            if !run.out_of_time() {
                let mut from = fetching_from;
                while windows.len() < parallel {
                    let Some(w) = next_window(from, now, window_len) else {
                        break;
                    };
                    from = w.1;
                    windows.push(w);
                }
            }
            let out_of_time = windows.is_empty() && fetching_from < now;
            let seats = progress.seats.as_mut().ok_or_else(|| Error::Internal {
                context: "the activity stream ran before the seats stream".into(),
                source: None,
            })?;
            let write = async {
                let mut written = Vec::new();
                while let Some((from, to, counts)) = to_write.pop_front() {
                    let days =
                        write_window(app, connection, run, &app_pk, (from, to), counts, seats)
                            .await?;
                    written.push((to, days));
                }
                Ok::<_, Error>(written)
            };
            let fetch = futures::future::join_all(
                windows
                    .iter()
                    .map(|w| fetch_window(connector, Some(*w), run.stop_at)),
            );
            let (fetched, written) = tokio::join!(fetch, write);
            for (to, days) in written? {
                progress.activity_from = to;
                progress.days_written += days;
            }
            if windows.is_empty() {
                if out_of_time {
                    return Ok(Pulled::Paused(progress.summary()));
                }
                break;
            }
            for fetched in fetched {
                match fetched? {
                    Fetched::Window {
                        from,
                        to,
                        counts,
                        events,
                    } => {
                        progress.events += events;
                        fetching_from = to;
                        to_write.push_back((from, to, counts));
                    }
                    // Windows fetched but not written are fetched again by the next
                    // run: the checkpoint has not moved past them.
                    Fetched::OutOfTime => return Ok(Pulled::Paused(progress.summary())),
                    Fetched::Nothing => {}
                }
            }
        }
    }

    if provider.per_seat_activity {
        if let Some(seats) = progress.seats.as_mut() {
            update_active_days(app, &app_pk, seats, now.date()).await?;
        }
    }

    if let Some(plan) = connector.plan_usage().await? {
        app.store
            .put(&PlanItem {
                pk: app_pk.clone(),
                sk: keys::PLAN_SK.to_string(),
                plan,
                as_of: rfc3339(now),
            })
            .await?;
    }
    // The seats this sync wrote (last activity and active days moved in memory too).
    crate::usage::refresh_summary(app, org, provider, progress.seats.as_deref(), now).await?;
    Ok(Pulled::Done(progress.summary()))
}

/// Each seat's active days in the 30 days ending `today`, from the stored day
/// counts; only seats whose number changed are written.
async fn update_active_days(
    app: &App,
    app_pk: &str,
    seats: &mut [Seat],
    today: Date,
) -> Result<()> {
    let from = today - Duration::days(metrics::MAU_DAYS - 1);
    let days: Vec<SeatDay> = app
        .store
        .query_between(
            app_pk,
            &keys::seat_day_prefix(from),
            &keys::seat_day_prefix(today + Duration::days(1)),
        )
        .await?;
    let mut active: HashMap<&str, u32> = HashMap::new();
    for d in days.iter().filter(|d| d.total > 0) {
        *active.entry(d.seat_id.as_str()).or_default() += 1;
    }
    let mut changed = Vec::new();
    for seat in seats.iter_mut().filter(|s| s.status != SeatStatus::Removed) {
        let n = Some(active.get(seat.seat_id.as_str()).copied().unwrap_or(0));
        if seat.active_days_30 != n {
            seat.active_days_30 = n;
            changed.push(seat.clone());
        }
    }
    app.store.put_all(&changed).await
}

/// Writes one fetched window: the absolute day counts, the seats whose last
/// activity moved, the rollups of the window's days; then the checkpoint. Returns
/// how many rollups were written.
async fn write_window(
    app: &App,
    connection: &Connection,
    run: &Run,
    app_pk: &str,
    (from, to): (OffsetDateTime, OffsetDateTime),
    counts: WindowCounts,
    seats: &mut [Seat],
) -> Result<u32> {
    let seat_days: Vec<SeatDay> = counts
        .into_iter()
        .map(|((seat, date), features)| SeatDay {
            pk: app_pk.to_string(),
            sk: keys::seat_day_sk(date, &seat),
            date: day(date),
            seat_id: seat,
            total: features.values().sum(),
            features,
        })
        .collect();
    app.store.put_all(&seat_days).await?;

    let mut latest: HashMap<&str, Date> = HashMap::new();
    for d in seat_days.iter().filter(|d| d.total > 0) {
        if let Some(date) = parse_day(&d.date) {
            let e = latest.entry(d.seat_id.as_str()).or_insert(date);
            *e = (*e).max(date);
        }
    }
    let mut moved = Vec::new();
    for seat in seats.iter_mut() {
        let Some(&date) = latest.get(seat.seat_id.as_str()) else {
            continue;
        };
        let before = seat.last_activity_on.as_deref().and_then(parse_day);
        if before.is_none_or(|b| b < date) {
            seat.last_activity_on = Some(day(date));
            moved.push(seat.clone());
        }
    }
    app.store.put_all(&moved).await?;

    let seat_count = seats
        .iter()
        .filter(|s| s.status != SeatStatus::Removed)
        .count() as u32;
    let rollups = rebuild_rollups(
        app,
        app_pk,
        &window_days(from, to),
        &seat_days,
        seat_count,
        run.now,
    )
    .await?;
    app.store.put_all(&rollups).await?;
    save_checkpoint(app, connection, run, Checkpoint::ActivityUntil(to)).await?;
    Ok(rollups.len() as u32)
}

/// Rollups of a vendor without per-seat activity: seats and the account-level
/// metrics of each day; DAU/WAU/MAU stay absent.
fn account_rollups(
    app_pk: &str,
    touched: &[Date],
    days: Vec<AccountDay>,
    seat_count: u32,
    now: OffsetDateTime,
) -> Vec<DailyRollup> {
    let mut by_day: HashMap<Date, BTreeMap<String, u64>> =
        days.into_iter().map(|d| (d.date, d.metrics)).collect();
    let as_of = rfc3339(now);
    touched
        .iter()
        .map(|date| DailyRollup {
            pk: app_pk.to_string(),
            sk: keys::rollup_sk(*date),
            date: day(*date),
            seats: seat_count,
            dau: None,
            wau: None,
            mau: None,
            features: by_day.remove(date).unwrap_or_default(),
            as_of: as_of.clone(),
        })
        .collect()
}

/// Seats as reported now, keeping first-seen and last-activity from before; seats
/// the vendor no longer reports are kept as removed. (Last activity moves as the
/// activity windows are written.) `on_call`: who is on call now, by seat id, for
/// vendors with on-call schedules (None: the vendor has none).
fn merge_seats(
    app_pk: &str,
    stored: Vec<Seat>,
    records: Vec<SeatRecord>,
    on_call: Option<&HashMap<String, OnCall>>,
    now: OffsetDateTime,
) -> Vec<Seat> {
    let first_import = stored.is_empty();
    let mut existing: HashMap<String, Seat> =
        stored.into_iter().map(|s| (s.seat_id.clone(), s)).collect();
    let now_s = rfc3339(now);
    let mut seats = Vec::with_capacity(records.len());
    for r in records {
        let before = existing.remove(&r.id);
        seats.push(Seat {
            pk: app_pk.to_string(),
            sk: keys::seat_sk(&r.id),
            first_seen_at: before
                .as_ref()
                .map(|s| s.first_seen_at.clone())
                .unwrap_or_else(|| now_s.clone()),
            last_seen_at: now_s.clone(),
            added_after_import: before
                .as_ref()
                .map_or(!first_import, |s| s.added_after_import),
            active_days_30: before.as_ref().and_then(|s| s.active_days_30),
            last_activity_on: before.and_then(|s| s.last_activity_on),
            status: if r.invited {
                SeatStatus::Invited
            } else {
                SeatStatus::Active
            },
            on_call: on_call.and_then(|o| o.get(&r.id).cloned()),
            seat_id: r.id,
            email: r.email,
            name: r.name,
            role: r.role,
            license: r.license,
        });
    }
    for (_, mut gone) in existing {
        if gone.status != SeatStatus::Removed {
            gone.status = SeatStatus::Removed;
            seats.push(gone);
        }
    }
    seats
}

/// Rollups for the touched days, from this window's day counts plus the stored
/// ones of the 29 days before (for WAU/MAU).
async fn rebuild_rollups(
    app: &App,
    app_pk: &str,
    touched: &[Date],
    fresh: &[SeatDay],
    seat_count: u32,
    now: OffsetDateTime,
) -> Result<Vec<DailyRollup>> {
    let (Some(first), Some(_)) = (touched.first(), touched.last()) else {
        return Ok(Vec::new());
    };
    let lookback_from = first
        .checked_sub(Duration::days(metrics::MAU_DAYS - 1))
        .unwrap_or(Date::MIN);
    let earlier: Vec<SeatDay> = app
        .store
        .query_between(
            app_pk,
            &keys::seat_day_prefix(lookback_from),
            &keys::seat_day_prefix(*first),
        )
        .await?;
    let activity = earlier
        .iter()
        .chain(fresh.iter())
        .filter_map(|d| parse_day(&d.date).map(|date| (d.seat_id.as_str(), date, &d.features)));
    let computed = metrics::daily_metrics(activity, touched);
    let as_of = rfc3339(now);
    Ok(computed
        .into_iter()
        .map(|(date, m)| DailyRollup {
            pk: app_pk.to_string(),
            sk: keys::rollup_sk(date),
            date: day(date),
            seats: seat_count,
            dau: Some(m.dau),
            wau: Some(m.wau),
            mau: Some(m.mau),
            features: m.features,
            as_of: as_of.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::AuthMode;

    #[test]
    fn turning_needs_reconnect_or_a_healthy_connections_first_failure_alerts_once() {
        use ConnectionStatus::{Connected, Error as Failed, NeedsReconnect};
        // Turns needs_reconnect: alert.
        assert!(needs_attention(Connected, NeedsReconnect, 1));
        // Already needed reconnecting: no new alert.
        assert!(!needs_attention(NeedsReconnect, NeedsReconnect, 3));
        // A healthy connection's first failed run alerts (the run already retried the
        // vendor's transient errors).
        assert!(needs_attention(Connected, Connected, 1));
        assert!(needs_attention(Connected, Failed, 1));
        // The second and later failures in a row do not repeat it.
        assert!(!needs_attention(Failed, Failed, 2));
        assert!(!needs_attention(Failed, Failed, 3));
        // A success resets the count and never alerts.
        assert!(!needs_attention(Failed, Connected, 0));
    }

    fn connection(until: Option<&str>) -> Connection {
        Connection {
            pk: "ORG#o".into(),
            sk: "CONN#pagerduty".into(),
            org_id: "o".into(),
            provider: "pagerduty".into(),
            status: ConnectionStatus::Connected,
            auth_mode: AuthMode::Oauth2,
            secret_name: "s".into(),
            connected_by: "u".into(),
            connected_at: "2026-11-01T00:00:00Z".into(),
            invited_by: None,
            vendor_account: None,
            scopes: None,
            status_reason: None,
            last_sync_at: None,
            last_sync_summary: None,
            next_sync_at: 0,
            due_shard: None,
            activity_synced_until: until.map(str::to_string),
            seats_synced_at: None,
            lease_owner: None,
            lease_expires_at: None,
            refresh_lock_until: None,
            consecutive_failures: 0,
        }
    }

    #[test]
    fn first_run_starts_at_the_history_horizon_and_later_runs_at_the_checkpoint_day() {
        let now = time::macros::datetime!(2026-11-23 10:30 UTC);
        assert_eq!(
            window_start(&connection(None), 90, now),
            time::macros::datetime!(2026-08-25 00:00 UTC)
        );
        assert_eq!(
            window_start(&connection(Some("2026-11-22T17:05:00Z")), 90, now),
            time::macros::datetime!(2026-11-22 00:00 UTC)
        );
    }

    #[test]
    fn windows_are_whole_utc_days_and_the_last_one_ends_now() {
        use time::macros::datetime;
        let now = datetime!(2026-11-23 10:30 UTC);
        let from = datetime!(2026-11-10 00:00 UTC);
        assert_eq!(
            next_window(from, now, Some(7)),
            Some((from, datetime!(2026-11-17 00:00 UTC)))
        );
        assert_eq!(
            next_window(datetime!(2026-11-17 00:00 UTC), now, Some(7)),
            Some((datetime!(2026-11-17 00:00 UTC), now))
        );
        assert_eq!(next_window(now, now, Some(7)), None);
        // One pass where the vendor cannot be asked window by window.
        assert_eq!(next_window(from, now, None), Some((from, now)));
        // A window ending at midnight does not touch the next day.
        assert_eq!(
            window_days(from, datetime!(2026-11-12 00:00 UTC)),
            vec![
                time::macros::date!(2026 - 11 - 10),
                time::macros::date!(2026 - 11 - 11)
            ]
        );
        assert_eq!(window_days(datetime!(2026-11-23 00:00 UTC), now).len(), 1);
    }

    #[test]
    fn seats_are_reused_only_while_a_sync_is_under_way() {
        let mut c = connection(None);
        assert!(!seats_written_this_sync(&c));
        c.seats_synced_at = Some("2026-11-23T10:00:00.5Z".into());
        assert!(seats_written_this_sync(&c), "written, no run finished yet");
        c.last_sync_at = Some("2026-11-23T10:00:01Z".into());
        assert!(
            !seats_written_this_sync(&c),
            "the last sync finished after it"
        );
        c.last_sync_at = Some("2026-11-23T10:00:00Z".into());
        assert!(
            seats_written_this_sync(&c),
            "compared as instants, not strings"
        );
    }

    #[test]
    fn sync_requests_carry_names_only() {
        let r = SyncRequest {
            org: "acme".into(),
            provider: "pagerduty".into(),
            continuation: 2,
            due_at: None,
            so_far: None,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"org": "acme", "provider": "pagerduty", "continuation": 2})
        );
        let from_tick: SyncRequest =
            serde_json::from_str(r#"{"org":"acme","provider":"pagerduty"}"#).unwrap();
        assert_eq!(from_tick.continuation, 0);
        assert_eq!(
            from_tick.due_at, None,
            "a message from before due_at still reads"
        );
        let from_tick = SyncRequest {
            due_at: Some(1_790_000_000),
            ..r
        };
        assert_eq!(
            serde_json::to_value(&from_tick).unwrap(),
            serde_json::json!({"org": "acme", "provider": "pagerduty", "continuation": 2, "due_at": 1_790_000_000})
        );
        // A continuation carries its run's earlier parts: counts and a time, no secret.
        let continued = SyncRequest {
            so_far: Some(RunSoFar {
                started_at: "2026-11-23T10:00:00Z".into(),
                parts: 1,
                activity_events: 40,
                days_written: 3,
                requests: RequestCounts {
                    requests: 7,
                    retries: 1,
                    rate_limited: 0,
                },
            }),
            ..from_tick
        };
        let json = serde_json::to_string(&continued).unwrap();
        assert_eq!(
            serde_json::from_str::<SyncRequest>(&json).unwrap(),
            continued
        );
    }

    #[test]
    fn the_tick_claims_the_shards_in_turn_and_every_due_connection_once() {
        // DueIndex's order: all of shard 0, then shard 1 …
        let mut due: Vec<(String, String)> = (0..400)
            .map(|i| (format!("org{i}"), "pagerduty".to_string()))
            .collect();
        let shard = |c: &(String, String)| keys::due_shard(&c.0, &c.1, keys::DUE_SHARDS);
        due.sort_by_key(shard);
        let order = interleave_shards(due.clone());
        let mut sorted = order.clone();
        sorted.sort();
        due.sort();
        assert_eq!(sorted, due, "each once");
        // Any DUE_SHARDS claims in a row (while every shard has some left) hit every shard.
        let shards: Vec<String> = order.iter().map(shard).collect();
        let smallest = (0..keys::DUE_SHARDS)
            .map(|s| shards.iter().filter(|x| **x == format!("DUE#{s}")).count())
            .min()
            .unwrap();
        assert!(smallest > 50, "{smallest}");
        for window in
            shards[..smallest * keys::DUE_SHARDS as usize].chunks(keys::DUE_SHARDS as usize)
        {
            let distinct: std::collections::BTreeSet<&String> = window.iter().collect();
            assert_eq!(distinct.len(), keys::DUE_SHARDS as usize, "{window:?}");
        }
    }

    const HOUR: Duration = Duration::hours(1);

    fn at(t: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(t).unwrap()
    }

    #[test]
    fn thirty_thousand_connections_made_in_the_same_second_are_spread_over_the_interval() {
        let tick = at(1_795_000_000);
        let mut per_second: BTreeMap<i64, u32> = BTreeMap::new();
        for org in 0..10_000 {
            for provider in ["pagerduty", "pandadoc", "sendgrid"] {
                // Synced by the tick that found them all due (they were connected together).
                let next = next_due(&format!("org{org:05}"), provider, tick, tick, HOUR);
                let from_tick = (next - tick).whole_seconds();
                assert!(
                    (600..=3600).contains(&from_tick),
                    "due in the next tick, not sooner than 10 min: {from_tick}"
                );
                *per_second.entry(next.unix_timestamp()).or_default() += 1;
            }
        }
        let busiest = per_second.values().max().copied().unwrap();
        eprintln!(
            "30,000 connections: due in {} distinct seconds, at most {busiest} in one",
            per_second.len()
        );
        // Before: all 30,000 in one second (tick + interval).
        assert!(per_second.len() > 2_500, "{}", per_second.len());
        assert!(busiest <= 60, "{busiest}");
    }

    #[test]
    fn the_schedule_is_deterministic_and_within_the_interval() {
        let phase = schedule_phase("acme", "pagerduty", HOUR);
        assert_eq!(phase, schedule_phase("acme", "pagerduty", HOUR));
        assert!((0..3600).contains(&phase));
        assert_ne!(phase, schedule_phase("acme", "pandadoc", HOUR));
        assert_ne!(
            schedule_phase("ab", "c", HOUR),
            schedule_phase("a", "bc", HOUR),
            "org and provider are hashed apart"
        );
        let t = at(1_795_000_000);
        assert_eq!(
            next_due("acme", "pagerduty", t, t, HOUR),
            next_due("acme", "pagerduty", t, t, HOUR)
        );
    }

    #[test]
    fn with_a_tick_every_interval_a_run_the_queue_delayed_is_due_at_the_next_tick() {
        // The template's schedule: a tick every SyncIntervalMinutes. Before, a run that
        // started d > 0 s after its tick was due at tick + interval + d: not at the next
        // tick, but at the one after (every connection synced every other hour).
        let tick = at(1_795_000_000);
        for org in 0..2_000 {
            let org = format!("org{org}");
            for lag in [0, 1, 59, 600, 1_200, 1_800] {
                let next = next_due(&org, "pagerduty", tick, tick + Duration::seconds(lag), HOUR);
                assert!(
                    next <= tick + HOUR,
                    "{org} synced {lag} s after the tick is due at the next tick"
                );
                assert!(next >= tick + Duration::seconds(lag) + Duration::minutes(10));
            }
        }
    }

    #[test]
    fn with_frequent_ticks_each_connection_keeps_its_own_second_exactly_one_interval_apart() {
        // A tick every 5 minutes, runs starting 40 s after their tick.
        let start = 1_795_000_000;
        for org in ["acme", "globex", "initech", "umbrella"] {
            let mut next = at(start);
            let mut synced = Vec::new();
            for k in 0..(12 * 8) {
                let tick = at(start + k * 300);
                if next <= tick {
                    synced.push(tick.unix_timestamp());
                    next = next_due(org, "sendgrid", tick, tick + Duration::seconds(40), HOUR);
                }
            }
            let gaps: Vec<i64> = synced.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(gaps.len() >= 6, "{org}: {gaps:?}");
            assert!(
                gaps[1..].iter().all(|g| *g == 3600),
                "{org}: once on its slot, one run an hour: {gaps:?}"
            );
            let phase = schedule_phase(org, "sendgrid", HOUR);
            let slot_tick = |t: i64| (t - phase).rem_euclid(3600);
            assert!(
                synced[1..].iter().all(|t| slot_tick(*t) < 300),
                "{org}: synced by the first tick after its slot"
            );
        }
    }
}
