//! The streams of one run: seats (with who is on call), then activity window by window
//! from its checkpoint (several windows fetched at once, and the ones fetched written
//! together while the next are fetched), then the seats' last activity, plan credits
//! and the app's summary. A window's day counts and rollups are written before the
//! checkpoint moves past it.

use std::collections::{BTreeMap, HashMap};

use futures::StreamExt as _;

use time::{Date, Duration, OffsetDateTime, Time};

use super::rollups::{
    account_rollups, rebuild_rollups, update_seat_activity, LastDays, RecentDays,
};
use crate::connectors::{self, Connector, SeatRecord};
use crate::deps::Deps;
use crate::domain::catalog::Provider;
use crate::domain::connection::{Connection, SyncSummary};
use crate::domain::metrics;
use crate::domain::plan::PlanItem;
use crate::domain::run::RequestCounts;
use crate::domain::seat::{OnCall, Seat, SeatDay, SeatStatus};
use crate::domain::time::{day, rfc3339};
use crate::error::{Error, Result};
use crate::ops::credentials::usable_credentials;
use crate::store::{AppData, Checkpoint};
use crate::vault::Credentials;

/// On call in the window = on call at some time from this long before a sync to this
/// long after it (`/oncalls`): a weekly or monthly rotation's members all fall in it.
pub const ON_CALL_WINDOW: Duration = Duration::days(30);

pub(super) fn lease_ttl(deps: &Deps) -> Duration {
    Duration::seconds(i64::from(deps.config.sync_lease_seconds))
}

fn start_of_day(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_time(Time::MIDNIGHT)
}

fn parse_instant(s: Option<&str>) -> Option<OffsetDateTime> {
    s.and_then(|s| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
}

/// One run's identity and limits.
pub(super) struct Run {
    pub(super) owner: String,
    /// The tick's (or the message's) time: the activity stream runs up to it.
    pub(super) now: OffsetDateTime,
    /// Stop fetching at this instant (the deadline minus the margin).
    pub(super) stop_at: Option<OffsetDateTime>,
    pub(super) lease_ttl: Duration,
}

impl Run {
    fn out_of_time(&self) -> bool {
        self.stop_at
            .is_some_and(|stop| OffsetDateTime::now_utc() >= stop)
    }
}

pub(super) enum Pulled {
    Done(SyncSummary),
    Paused(SyncSummary),
}

/// What this run has written so far; survives the retry after a 401.
struct Progress {
    /// The app's seats after the seats stream (or as stored, when resuming).
    seats: Option<Vec<Seat>>,
    /// Activity before this instant is written.
    activity_from: OffsetDateTime,
    /// Where this run's activity stream started.
    run_from: OffsetDateTime,
    /// Each seat's last active (and responding) day in the windows this run wrote.
    latest: LastDays,
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

pub(super) async fn sync_streams(
    deps: &Deps,
    connection: &Connection,
    run: &Run,
    requests: &mut RequestCounts,
) -> Result<Pulled> {
    let provider = deps.config.catalog.get(&connection.provider)?;
    let activity_from = window_start(connection, deps.config.sync_history_days, run.now);
    let mut progress = Progress {
        seats: None,
        activity_from,
        run_from: activity_from,
        latest: LastDays::responding_by(
            provider
                .downgrade
                .as_ref()
                .map_or(&[][..], |d| d.responder_features.as_slice()),
        ),
        events: 0,
        days_written: 0,
    };
    let credentials = usable_credentials(deps, provider, connection, None).await?;
    let part = Part {
        deps,
        provider,
        connection,
        run,
    };
    match pull(&part, &credentials, &mut progress, requests).await {
        Err(Error::VendorAuth {
            provider: p,
            message,
        }) => match &credentials {
            // Once on a 401: refresh (unless someone already did) and go on from
            // what is written.
            Credentials::OAuth2(t) if t.refresh_token.is_some() => {
                let rejected = t.access_token.clone();
                let credentials =
                    usable_credentials(deps, provider, connection, Some(&rejected)).await?;
                pull(&part, &credentials, &mut progress, requests)
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
pub(super) fn window_days(from: OffsetDateTime, to: OffsetDateTime) -> Vec<Date> {
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
    connector: &dyn Connector,
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
    let fetch = connector.activity((from, to), &mut count);
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
    deps: &Deps,
    connection: &Connection,
    run: &Run,
    checkpoint: Checkpoint,
) -> Result<()> {
    let saved = deps
        .store
        .save_checkpoint(
            &connection.org_id,
            &connection.provider,
            &run.owner,
            checkpoint,
            deps.config.clock.now() + run.lease_ttl,
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

/// What one pass of a run works on.
struct Part<'a> {
    deps: &'a Deps,
    provider: &'a Provider,
    connection: &'a Connection,
    run: &'a Run,
}

async fn pull(
    part: &Part<'_>,
    credentials: &Credentials,
    progress: &mut Progress,
    requests: &mut RequestCounts,
) -> Result<Pulled> {
    let Part {
        deps,
        provider,
        connection,
        run,
    } = *part;
    let connector = connectors::for_provider(provider, deps.http()?, credentials)?;
    let pulled = Box::pin(pull_with(
        deps,
        connector.as_ref(),
        provider,
        connection,
        run,
        progress,
    ))
    .await;
    // Whatever the ending, the run's record counts the requests it made.
    let stats = connector.http().stats();
    *requests += RequestCounts {
        requests: stats.requests,
        retries: stats.retries,
        rate_limited: stats.rate_limited,
    };
    pulled
}

async fn pull_with(
    deps: &Deps,
    connector: &dyn Connector,
    provider: &Provider,
    connection: &Connection,
    run: &Run,
    progress: &mut Progress,
) -> Result<Pulled> {
    let org = &connection.org_id;
    let data = deps.store.app_data(org, &provider.id);
    let now = run.now;

    // Seats stream: fetched by each part of a sync (a few requests), merged with the
    // stored seats in memory, and written once, when the sync finishes, with the last
    // activity the windows moved.
    if progress.seats.is_none() {
        let stored: Vec<Seat> = data.seats().await?;
        let records = connector.seats().await?;
        let on_call = connector
            .on_calls(now - ON_CALL_WINDOW, now + ON_CALL_WINDOW, now)
            .await?;
        let seats = merge_seats(stored, records, on_call.as_ref(), now);
        let checkpoint = Checkpoint::Seats {
            at: now,
            activity_from: progress.activity_from,
        };
        save_checkpoint(deps, connection, run, checkpoint).await?;
        progress.seats = Some(seats);
    }
    let seat_count = progress.summary().seats;
    let mut recent = RecentDays::default();

    if !provider.per_seat_activity {
        // Account-level usage: a number per day, read in one pass.
        let (since, until) = (progress.activity_from, now);
        if since < until {
            let days = connector.account_usage(since, until).await?;
            let rollups = account_rollups(&window_days(since, until), days, seat_count, now);
            data.put_rollups(&rollups).await?;
            progress.days_written += rollups.len() as u32;
            save_checkpoint(deps, connection, run, Checkpoint::ActivityUntil(until)).await?;
            progress.activity_from = until;
        }
    } else {
        let window_len = connector
            .activity_by_window()
            .then_some(deps.config.sync_window_days);
        // Pipelined: windows are fetched `parallel` at once (sharing the connection's
        // rate budget), in a stream that starts the next one as soon as one is done,
        // while a writer writes the fetched ones in order, all that have arrived at
        // once; the checkpoint moves only after a window is written.
        let parallel = if window_len.is_some() {
            deps.config.sync_parallel_windows.max(1) as usize
        } else {
            1
        };
        let mut windows = Vec::new();
        let mut from = progress.activity_from;
        while let Some(w) = next_window(from, now, window_len) {
            from = w.1;
            windows.push(w);
        }
        let (fetched_tx, mut fetched_rx) = tokio::sync::mpsc::channel::<Window>(parallel);
        let fetch = async move {
            let mut fetching = futures::stream::iter(windows)
                .map(|w| async move {
                    if run.out_of_time() {
                        Ok(Fetched::OutOfTime)
                    } else {
                        fetch_window(connector, Some(w), run.stop_at).await
                    }
                })
                .buffered(parallel);
            while let Some(fetched) = fetching.next().await {
                match fetched? {
                    Fetched::Window {
                        from,
                        to,
                        counts,
                        events,
                    } => {
                        let window = Window {
                            span: (from, to),
                            counts,
                            events,
                            seat_count,
                        };
                        if fetched_tx.send(window).await.is_err() {
                            // The writer stopped (its error is the run's).
                            break;
                        }
                    }
                    // Windows not written are fetched again by the next run: the
                    // checkpoint has not moved past them.
                    Fetched::OutOfTime => return Ok(true),
                    Fetched::Nothing => {}
                }
            }
            Ok::<_, Error>(false)
        };
        let latest = &mut progress.latest;
        let recent = &mut recent;
        let (activity_from, days_written, events) = (
            &mut progress.activity_from,
            &mut progress.days_written,
            &mut progress.events,
        );
        let data = &data;
        // Owns the receiver: when it stops (on an error), the fetcher's next send fails.
        let write = async move {
            while let Some(first) = fetched_rx.recv().await {
                let mut pending = vec![first];
                while let Ok(more) = fetched_rx.try_recv() {
                    pending.push(more);
                }
                let fetched_events: u64 = pending.iter().map(|w| w.events).sum();
                let written =
                    write_windows(deps, data, connection, run, pending, recent, latest).await;
                match written {
                    Ok(Some((to, days))) => {
                        *activity_from = to;
                        *days_written += days;
                        *events += fetched_events;
                    }
                    Ok(None) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, Error>(())
        };
        let (paused, written) = tokio::join!(fetch, write);
        written?;
        if paused? {
            return Ok(Pulled::Paused(progress.summary()));
        }
    }

    let seats = progress.seats.as_mut().ok_or_else(|| Error::Internal {
        context: "the sync finished without its seats stream".into(),
        source: None,
    })?;
    if provider.per_seat_activity {
        // The seats' last activity lags the day counts from the first window a part of
        // this sync wrote (an earlier part may have paused or died).
        let pending_from = parse_instant(connection.last_activity_pending_from.as_deref())
            .map(start_of_day)
            .unwrap_or(progress.run_from)
            .min(progress.run_from);
        update_seat_activity(
            &data,
            &mut recent,
            seats,
            std::mem::take(&mut progress.latest),
            (pending_from.date(), progress.run_from.date()),
            now.date(),
        )
        .await?;
    }
    let (seats_written, plan) = tokio::join!(data.put_seats(seats), connector.plan_usage());
    seats_written?;

    if let Some(plan) = plan? {
        data.put_plan(&PlanItem {
            plan,
            as_of: rfc3339(now),
        })
        .await?;
    }
    // The seats this sync wrote (last activity and active days moved in memory too).
    crate::ops::summary::refresh_summary_in(
        &deps.store,
        Some(&deps.config.catalog),
        org,
        provider,
        progress.seats.as_deref(),
        now,
    )
    .await?;
    Ok(Pulled::Done(progress.summary()))
}

/// A fetched window, to be written.
struct Window {
    span: (OffsetDateTime, OffsetDateTime),
    counts: WindowCounts,
    /// The events counted in it.
    events: u64,
    seat_count: u32,
}

/// Writes the fetched windows (consecutive, oldest first) together: their days'
/// absolute counts (each day whole) and their rollups (each window's computed with the
/// ones before it, held in `recent`), all in one round of batch writes; then one
/// checkpoint at the last window's end. The seats' last active days move in `latest`
/// (written to the seats when the sync finishes). Returns the new checkpoint and how
/// many rollups were written; None when there was nothing to write.
async fn write_windows(
    deps: &Deps,
    data: &AppData<'_>,
    connection: &Connection,
    run: &Run,
    windows: Vec<Window>,
    recent: &mut RecentDays,
    latest: &mut LastDays,
) -> Result<Option<(OffsetDateTime, u32)>> {
    let Some(until) = windows.last().map(|w| w.span.1) else {
        return Ok(None);
    };
    let (mut all_days, mut all_counts, mut all_rollups) = (Vec::new(), Vec::new(), Vec::new());
    for window in windows {
        let (from, to) = window.span;
        let days = window_days(from, to);
        let seat_days: Vec<SeatDay> = window
            .counts
            .into_iter()
            .map(|((seat, date), features)| SeatDay {
                date: day(date),
                seat_id: seat,
                total: features.values().sum(),
                features,
            })
            .collect();
        let rollups =
            rebuild_rollups(data, recent, &days, &seat_days, window.seat_count, run.now).await?;
        recent.written(&days, &seat_days);
        latest.note(&seat_days);
        all_days.extend(days);
        all_counts.extend(seat_days);
        all_rollups.extend(rollups);
    }
    let (counts_written, rollups_written) = tokio::join!(
        data.put_seat_days(&all_days, &all_counts, &run.owner),
        data.put_rollups(&all_rollups)
    );
    counts_written?;
    rollups_written?;
    save_checkpoint(deps, connection, run, Checkpoint::ActivityUntil(until)).await?;
    Ok(Some((until, all_rollups.len() as u32)))
}

/// Seats as reported now, keeping first-seen and last-activity from before; seats
/// the vendor no longer reports are kept as removed. (Last activity moves as the
/// activity windows are written.) `on_call`: who is on call now, by seat id, for
/// vendors with on-call schedules (None: the vendor has none).
fn merge_seats(
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
            first_seen_at: before
                .as_ref()
                .map(|s| s.first_seen_at.clone())
                .unwrap_or_else(|| now_s.clone()),
            last_seen_at: now_s.clone(),
            added_after_import: before
                .as_ref()
                .map_or(!first_import, |s| s.added_after_import),
            active_days_30: before.as_ref().and_then(|s| s.active_days_30),
            last_response_on: before.as_ref().and_then(|s| s.last_response_on.clone()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::AuthMode;
    use crate::domain::connection::ConnectionStatus;
    use crate::domain::org::OrgId;

    fn connection(until: Option<&str>) -> Connection {
        Connection {
            org_id: OrgId::parse("o").unwrap(),
            provider: "pagerduty".into(),
            status: ConnectionStatus::Connected,
            auth_mode: AuthMode::Oauth2,
            secret_name: "s".into(),
            connected_by: "u".into(),
            connected_at: "2026-11-01T00:00:00Z".into(),
            invited_by: None,
            vendor_account: None,
            vendor_account_id: None,
            pending_account_change: None,
            archives: Vec::new(),
            scopes: None,
            status_reason: None,
            last_sync_at: None,
            last_sync_summary: None,
            next_sync_at: 0,
            due_shard: None,
            activity_synced_until: until.map(str::to_string),
            seats_synced_at: None,
            last_activity_pending_from: None,
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
}
