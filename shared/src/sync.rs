//! Syncing one connection (DESIGN §5): lease → credentials (refreshed when about
//! to expire, or once on a 401) → seats → activity since the checkpoint, counted
//! per seat per UTC day → absolute day counts → rollups of the touched days →
//! the run recorded, the lease released, the next sync scheduled.

use std::collections::{BTreeMap, HashMap};

use rand::RngCore;
use time::{Date, Duration, OffsetDateTime, Time};

use crate::app::App;
use crate::catalog::Provider;
use crate::connectors::{AccountDay, Connector, SeatRecord};
use crate::domain::{
    day, keys, parse_day, rfc3339, Connection, ConnectionStatus, DailyRollup, PlanItem, RunStatus,
    Seat, SeatDay, SeatStatus, SyncRun, SyncSummary,
};
use crate::error::{Error, Result};
use crate::metrics;
use crate::oauth;
use crate::store::SyncOutcome;
use crate::vault::Credentials;
use secrecy::{ExposeSecret, SecretString};

/// Longer than any Lambda run: a crashed run's lease frees itself after this.
pub const LEASE_TTL: Duration = Duration::minutes(15);
/// Refresh an OAuth token this long before it expires.
pub const REFRESH_MARGIN: Duration = Duration::minutes(5);
/// Sync runs are kept as a short history.
const RUN_HISTORY: Duration = Duration::days(90);
/// A failed run is retried sooner than the normal interval, but not at once.
const RETRY_AFTER_FAILURE: Duration = Duration::minutes(15);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunResult {
    Synced(SyncSummary),
    /// Another run holds the lease (or the connection is not scheduled).
    Skipped,
    Failed {
        code: String,
        message: String,
    },
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TickReport {
    pub due: usize,
    pub synced: usize,
    pub skipped: usize,
    pub failed: usize,
}

fn run_id() -> String {
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn start_of_day(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_time(Time::MIDNIGHT)
}

/// The EventBridge tick: every due connection, one after another. (The SQS
/// fan-out replaces the loop with one message per connection; `sync_connection`
/// is the unit of work either way.)
pub async fn run_due(app: &App, now: OffsetDateTime) -> Result<TickReport> {
    let due = app.store.due_connections(now).await?;
    let mut report = TickReport {
        due: due.len(),
        ..TickReport::default()
    };
    for (org, provider) in due {
        match sync_connection(app, &org, &provider, now).await {
            Ok(RunResult::Synced(_)) => report.synced += 1,
            Ok(RunResult::Skipped) => report.skipped += 1,
            Ok(RunResult::Failed { .. }) => report.failed += 1,
            Err(e) => {
                report.failed += 1;
                tracing::error!(org = %org, provider = %provider, error = %e.chain(), "sync could not run");
            }
        }
    }
    Ok(report)
}

pub async fn sync_connection(
    app: &App,
    org: &str,
    provider_id: &str,
    now: OffsetDateTime,
) -> Result<RunResult> {
    let owner = run_id();
    if !app
        .store
        .acquire_lease(org, provider_id, &owner, now, LEASE_TTL)
        .await?
    {
        tracing::info!(
            org,
            provider = provider_id,
            "sync skipped: another run holds the lease"
        );
        return Ok(RunResult::Skipped);
    }
    let connection = app
        .store
        .connection(org, provider_id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("connection to {provider_id}")))?;
    let started = OffsetDateTime::now_utc();
    let result = run(app, &connection, now).await;
    let finished = OffsetDateTime::now_utc();
    let interval = Duration::minutes(i64::from(app.config.sync_interval_minutes));
    let (outcome, run_result, error) = match &result {
        Ok((summary, until)) => (
            SyncOutcome {
                status: ConnectionStatus::Connected,
                status_reason: None,
                summary: Some(summary.clone()),
                finished_at: finished,
                next_sync_at: now + interval,
                activity_synced_until: Some(rfc3339(*until)),
                consecutive_failures: 0,
            },
            RunResult::Synced(summary.clone()),
            None,
        ),
        Err(e) => {
            let status = match e {
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
                    activity_synced_until: None,
                    consecutive_failures: connection.consecutive_failures + 1,
                },
                RunResult::Failed {
                    code: e.code().to_string(),
                    message: e.public_message(),
                },
                Some(e.public_message()),
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
        return Ok(RunResult::Skipped);
    }
    let run = SyncRun {
        pk: keys::app(org, provider_id),
        sk: keys::run_sk(&rfc3339(started), &owner),
        run_id: owner,
        started_at: rfc3339(started),
        finished_at: rfc3339(finished),
        status: if error.is_none() {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        },
        summary: outcome.summary.clone().unwrap_or_default(),
        error,
        expires_at: (finished + RUN_HISTORY).unix_timestamp(),
    };
    app.store.put(&run).await?;
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
    Ok(run_result)
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
        None if tokens.expires_within(OffsetDateTime::now_utc(), REFRESH_MARGIN) => {
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
        let now = OffsetDateTime::now_utc();
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

async fn run(
    app: &App,
    connection: &Connection,
    now: OffsetDateTime,
) -> Result<(SyncSummary, OffsetDateTime)> {
    let provider = app.config.catalog.get(&connection.provider)?;
    let credentials = usable_credentials(app, provider, connection, None).await?;
    match pull(app, provider, connection, &credentials, now).await {
        Err(Error::VendorAuth {
            provider: p,
            message,
        }) => match &credentials {
            // Once on a 401: refresh (unless someone already did) and try again.
            Credentials::OAuth2(t) if t.refresh_token.is_some() => {
                let rejected = t.access_token.clone();
                let credentials =
                    usable_credentials(app, provider, connection, Some(&rejected)).await?;
                pull(app, provider, connection, &credentials, now)
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
    connection
        .activity_synced_until
        .as_deref()
        .and_then(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
        .map(|t| start_of_day(t).max(horizon))
        .unwrap_or(horizon)
}

async fn pull(
    app: &App,
    provider: &Provider,
    connection: &Connection,
    credentials: &Credentials,
    now: OffsetDateTime,
) -> Result<(SyncSummary, OffsetDateTime)> {
    let org = &connection.org_id;
    let app_pk = keys::app(org, &provider.id);
    let connector = Connector::new(provider, &app.http, credentials)?;

    let records = connector.seats().await?;

    let since = window_start(connection, app.config.sync_history_days, now);
    let until = now;
    let touched = metrics::days_between(since.date(), until.date());
    let mut counts: HashMap<(String, Date), BTreeMap<String, u32>> = HashMap::new();
    let mut events = 0;
    let mut account_days = Vec::new();
    if provider.per_seat_activity {
        events = connector
            .activity(since, until, &mut |event| {
                *counts
                    .entry((event.seat_id, event.at.date()))
                    .or_default()
                    .entry(event.feature.to_string())
                    .or_default() += 1;
            })
            .await?;
    } else {
        account_days = connector.account_usage(since, until).await?;
    }
    let plan = connector.plan_usage().await?;

    let seats = merge_seats(app, &app_pk, records, &counts, now).await?;
    let seat_count = seats
        .iter()
        .filter(|s| s.status != SeatStatus::Removed)
        .count() as u32;
    app.store.put_all(&seats).await?;

    let rollups = if provider.per_seat_activity {
        let seat_days: Vec<SeatDay> = counts
            .iter()
            .map(|((seat, date), features)| SeatDay {
                pk: app_pk.clone(),
                sk: keys::seat_day_sk(*date, seat),
                date: day(*date),
                seat_id: seat.clone(),
                total: features.values().sum(),
                features: features.clone(),
            })
            .collect();
        app.store.put_all(&seat_days).await?;
        rebuild_rollups(app, &app_pk, &touched, &seat_days, seat_count, now).await?
    } else {
        account_rollups(&app_pk, &touched, account_days, seat_count, now)
    };
    app.store.put_all(&rollups).await?;
    if let Some(plan) = plan {
        app.store
            .put(&PlanItem {
                pk: app_pk.clone(),
                sk: keys::PLAN_SK.to_string(),
                plan,
                as_of: rfc3339(now),
            })
            .await?;
    }

    Ok((
        SyncSummary {
            seats: seat_count,
            activity_events: events,
            days_written: rollups.len() as u32,
        },
        until,
    ))
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
/// the vendor no longer reports are kept as removed.
async fn merge_seats(
    app: &App,
    app_pk: &str,
    records: Vec<SeatRecord>,
    counts: &HashMap<(String, Date), BTreeMap<String, u32>>,
    now: OffsetDateTime,
) -> Result<Vec<Seat>> {
    let mut existing: HashMap<String, Seat> = app
        .store
        .query_prefix::<Seat>(app_pk, keys::SEAT_PREFIX)
        .await?
        .into_iter()
        .map(|s| (s.seat_id.clone(), s))
        .collect();
    let mut last_activity: HashMap<&str, Date> = HashMap::new();
    for ((seat, date), features) in counts {
        if features.values().any(|c| *c > 0) {
            let e = last_activity.entry(seat.as_str()).or_insert(*date);
            *e = (*e).max(*date);
        }
    }
    let now_s = rfc3339(now);
    let mut seats = Vec::with_capacity(records.len());
    for r in records {
        let before = existing.remove(&r.id);
        let previous_activity = before
            .as_ref()
            .and_then(|s| s.last_activity_on.as_deref())
            .and_then(parse_day);
        let latest = match (previous_activity, last_activity.get(r.id.as_str()).copied()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        seats.push(Seat {
            pk: app_pk.to_string(),
            sk: keys::seat_sk(&r.id),
            first_seen_at: before
                .map(|s| s.first_seen_at)
                .unwrap_or_else(|| now_s.clone()),
            last_seen_at: now_s.clone(),
            last_activity_on: latest.map(day),
            status: if r.invited {
                SeatStatus::Invited
            } else {
                SeatStatus::Active
            },
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
    Ok(seats)
}

/// Rollups for the touched days, from this run's day counts plus the stored ones
/// of the 29 days before (for WAU/MAU).
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
    let lookback_from = *first - Duration::days(metrics::MAU_DAYS - 1);
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
            status_reason: None,
            last_sync_at: None,
            last_sync_summary: None,
            next_sync_at: 0,
            due_shard: None,
            activity_synced_until: until.map(str::to_string),
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
}
