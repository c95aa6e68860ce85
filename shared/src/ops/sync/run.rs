//! One run of a connection's sync: its lease, the streams, the outcome recorded on the
//! connection and as a run, the next sync scheduled, and an operator alert when a
//! connection turns unhealthy.

use time::{Duration, OffsetDateTime};

use super::streams::{lease_ttl, sync_streams, Pulled, Run};
use super::RunResult;
use crate::deps::Deps;
use crate::domain::connection::{ConnectionStatus, SyncSummary};
use crate::domain::org::OrgId;
use crate::domain::run::{new_run_id, RequestCounts, RunSoFar, RunStatus, SyncRun};
use crate::domain::time::rfc3339;
use crate::error::{Error, Result};
use crate::store::{ConnectionLock, SyncOutcome};

/// Sync runs are kept as a short history.
const RUN_HISTORY: Duration = Duration::days(90);
/// A failed run is retried sooner than the normal interval, but not at once.
const RETRY_AFTER_FAILURE: Duration = Duration::minutes(15);

/// Syncs without a deadline (tests, tools).
pub async fn sync_connection(
    deps: &Deps,
    org: &OrgId,
    provider_id: &str,
    now: OffsetDateTime,
) -> Result<RunResult> {
    sync_connection_within(deps, org, provider_id, now, None).await
}

/// Syncs one connection under its lease, stopping `SYNC_DEADLINE_MARGIN_SECONDS`
/// before `deadline` if there is one.
pub async fn sync_connection_within(
    deps: &Deps,
    org: &OrgId,
    provider_id: &str,
    now: OffsetDateTime,
    deadline: Option<OffsetDateTime>,
) -> Result<RunResult> {
    sync_connection_scheduled(deps, org, provider_id, now, deadline, None).await
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
    deps: &Deps,
    org: &OrgId,
    provider_id: &str,
    now: OffsetDateTime,
    deadline: Option<OffsetDateTime>,
    due_at: Option<OffsetDateTime>,
) -> Result<RunResult> {
    Ok(Box::pin(run_part(
        deps,
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
pub(super) async fn run_part(
    deps: &Deps,
    (org, provider_id): (&OrgId, &str),
    now: OffsetDateTime,
    deadline: Option<OffsetDateTime>,
    due_at: Option<OffsetDateTime>,
    so_far: Option<&RunSoFar>,
) -> Result<(RunResult, Option<RunSoFar>)> {
    let owner = new_run_id();
    let ttl = lease_ttl(deps);
    if !deps
        .store
        .take_lock(ConnectionLock::Lease, (org, provider_id), &owner, now, ttl)
        .await?
    {
        tracing::info!(
            org = %org,
            provider = provider_id,
            "sync skipped: another run holds the lease"
        );
        return Ok((RunResult::Skipped, None));
    }
    let connection = deps
        .store
        .connection(org, provider_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("connection to {provider_id}")))?;
    let margin = Duration::seconds(i64::from(deps.config.sync_deadline_margin_seconds));
    let run = Run {
        owner: owner.clone(),
        now,
        stop_at: deadline.map(|d| d - margin),
        lease_ttl: ttl,
    };
    let started = deps.config.clock.now();
    let mut requests = RequestCounts::default();
    let result = Box::pin(sync_streams(deps, &connection, &run, &mut requests)).await;
    let finished = deps.config.clock.now();
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
    let interval = Duration::minutes(i64::from(deps.config.sync_interval_minutes));
    let (outcome, run_result) = match result {
        Ok(Pulled::Paused(summary)) => {
            if !deps
                .store
                .pause_run(org, provider_id, &owner, finished + ttl)
                .await?
            {
                tracing::warn!(
                    org = %org,
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
                org = %org,
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
            tracing::warn!(org = %org, provider = provider_id, error = %e.chain(), "sync failed");
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
    if !deps
        .store
        .finish_run(org, provider_id, &owner, &outcome)
        .await?
    {
        // Disconnected, or the lease expired and another run took over: that run
        // (or nobody) owns the connection's record now.
        tracing::warn!(
            org = %org,
            provider = provider_id,
            "lease was lost before the run finished; the run is not recorded"
        );
        return Ok((RunResult::Skipped, None));
    }
    // Recorded under the first part's start (the run's), with every part's requests.
    let whole = with_this(&SyncSummary::default());
    let run = SyncRun {
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
    deps.store.app_data(org, provider_id).put_run(&run).await?;
    if needs_attention(
        connection.status,
        outcome.status,
        outcome.consecutive_failures,
    ) {
        // The template's metric filter on the sync log group matches `alert` and alarms
        // to the ops topic. Only public fields: the reason is the user-facing message.
        tracing::error!(
            alert = "connection_needs_attention",
            org = %org,
            provider = provider_id,
            status = outcome.status.as_str(),
            consecutive_failures = outcome.consecutive_failures,
            reason = outcome.status_reason.as_deref().unwrap_or(""),
            "connection needs attention"
        );
    }
    if let RunResult::Synced(s) = &run_result {
        tracing::info!(
            org = %org,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

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
