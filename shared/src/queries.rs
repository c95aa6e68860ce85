//! The dashboard's reads, always scoped to the caller's org. Every number says
//! what it is (see `metrics` for definitions) and carries its as-of time.

use std::collections::BTreeMap;

use serde::Serialize;
use time::{Date, Duration, OffsetDateTime};

use crate::app::App;
use crate::catalog::Provider;
use crate::domain::{
    day, keys, parse_day, Caller, Connection, DailyRollup, PlanItem, Seat, SeatStatus, SyncSummary,
};
use crate::error::{Error, Result};
use crate::metrics;

pub const DEFAULT_INACTIVE_DAYS: u32 = 30;
const MAX_RANGE_DAYS: i64 = 366;

#[derive(Debug, Serialize)]
pub struct ConnectionView {
    /// not_connected · connected · needs_reconnect · error · disconnected
    pub status: String,
    pub status_reason: Option<String>,
    pub vendor_account: Option<String>,
    pub connected_at: Option<String>,
    pub last_sync_at: Option<String>,
    pub last_sync: Option<SyncSummary>,
    /// A run holds the lease right now.
    pub syncing: bool,
}

impl ConnectionView {
    fn of(c: Option<&Connection>, now: OffsetDateTime) -> ConnectionView {
        match c {
            None => ConnectionView {
                status: "not_connected".into(),
                status_reason: None,
                vendor_account: None,
                connected_at: None,
                last_sync_at: None,
                last_sync: None,
                syncing: false,
            },
            Some(c) => ConnectionView {
                status: serde_json::to_value(c.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                status_reason: c.status_reason.clone(),
                vendor_account: c.vendor_account.clone(),
                connected_at: Some(c.connected_at.clone()),
                last_sync_at: c.last_sync_at.clone(),
                last_sync: c.last_sync_summary.clone(),
                syncing: c.lease_expires_at.is_some_and(|e| e > now.unix_timestamp()),
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AppSummary {
    pub provider: String,
    pub name: String,
    pub connection: ConnectionView,
    /// Numbers of the latest rollup day (None before the first sync).
    pub as_of_date: Option<String>,
    pub seats: Option<u32>,
    pub dau: Option<u32>,
    pub mau: Option<u32>,
    /// MAU ÷ seats, percent.
    pub utilization_percent: Option<f64>,
    /// False where the vendor reports no per-seat activity.
    pub per_seat_activity: bool,
    /// Says plainly what cannot be known for this app (None when all can).
    pub activity_note: Option<String>,
    /// Plan credits used ÷ included, percent (usage-priced apps only).
    pub plan_utilization_percent: Option<f64>,
}

/// Plan credits of a usage-priced app, with their as-of time.
#[derive(Debug, Serialize)]
pub struct PlanView {
    pub total: i64,
    pub used: i64,
    pub remain: i64,
    pub utilization_percent: Option<f64>,
    pub next_reset: Option<String>,
    pub reset_frequency: Option<String>,
    pub as_of: String,
    pub source: &'static str,
}

impl PlanView {
    fn of(item: PlanItem) -> PlanView {
        let p = item.plan;
        PlanView {
            utilization_percent: (p.total > 0)
                .then(|| (p.used as f64 * 1000.0 / p.total as f64).round() / 10.0),
            total: p.total,
            used: p.used,
            remain: p.remain,
            next_reset: p.next_reset,
            reset_frequency: p.reset_frequency,
            as_of: item.as_of,
            source: "/v3/user/credits (used vs total of the plan period)",
        }
    }
}

/// What the dashboard must say instead of inventing per-seat numbers.
pub fn activity_note(provider: &Provider) -> Option<String> {
    (!provider.per_seat_activity).then(|| {
        format!(
            "{} reports no per-seat activity: active users (DAU/WAU/MAU), utilization and \
             inactive seats cannot be known. Usage shown is account-level ({}).",
            provider.name,
            provider.features.join(", ")
        )
    })
}

async fn plan(app: &App, pk: &str) -> Result<Option<PlanView>> {
    Ok(app
        .store
        .get::<PlanItem>(pk, keys::PLAN_SK)
        .await?
        .map(PlanView::of))
}

#[derive(Debug, Serialize)]
pub struct Overview {
    pub org: String,
    pub generated_at: String,
    pub apps: Vec<AppSummary>,
}

pub async fn overview(app: &App, caller: &Caller) -> Result<Overview> {
    let now = OffsetDateTime::now_utc();
    let connections = app.store.connections(&caller.org).await?;
    let mut apps = Vec::new();
    for provider in app.config.catalog.providers() {
        let connection = connections.iter().find(|c| c.provider == provider.id);
        let latest: Option<DailyRollup> = match connection {
            Some(_) => {
                app.store
                    .last_with_prefix(&keys::app(&caller.org, &provider.id), keys::ROLLUP_PREFIX)
                    .await?
            }
            None => None,
        };
        let plan = match connection {
            Some(_) => plan(app, &keys::app(&caller.org, &provider.id)).await?,
            None => None,
        };
        apps.push(AppSummary {
            provider: provider.id.clone(),
            name: provider.name.clone(),
            connection: ConnectionView::of(connection, now),
            as_of_date: latest.as_ref().map(|r| r.date.clone()),
            seats: latest.as_ref().map(|r| r.seats),
            dau: latest.as_ref().and_then(|r| r.dau),
            mau: latest.as_ref().and_then(|r| r.mau),
            utilization_percent: latest
                .as_ref()
                .and_then(|r| metrics::utilization_percent(r.mau?, r.seats)),
            per_seat_activity: provider.per_seat_activity,
            activity_note: activity_note(provider),
            plan_utilization_percent: plan.and_then(|p| p.utilization_percent),
        });
    }
    Ok(Overview {
        org: caller.org.clone(),
        generated_at: crate::domain::rfc3339(now),
        apps,
    })
}

/// Query parameters of the app pages, validated.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: Date,
    pub to: Date,
}

impl Range {
    /// `from`/`to` as YYYY-MM-DD; defaults to the 30 days ending today (UTC).
    pub fn parse(from: Option<&str>, to: Option<&str>, today: Date) -> Result<Range> {
        let parse = |name: &str, v: &str| {
            parse_day(v).ok_or_else(|| {
                Error::bad_request(
                    "invalid_date",
                    format!("{name} must be a date like 2026-10-31, got '{v}'"),
                )
            })
        };
        let to = to.map(|v| parse("to", v)).transpose()?.unwrap_or(today);
        let from = from
            .map(|v| parse("from", v))
            .transpose()?
            .unwrap_or(to - Duration::days(29));
        if from > to {
            return Err(Error::bad_request(
                "invalid_range",
                "from must not be after to",
            ));
        }
        if (to - from).whole_days() >= MAX_RANGE_DAYS {
            return Err(Error::bad_request(
                "invalid_range",
                format!("a range covers at most {MAX_RANGE_DAYS} days"),
            ));
        }
        Ok(Range { from, to })
    }
}

pub fn parse_inactive_days(v: Option<&str>) -> Result<u32> {
    match v {
        None => Ok(DEFAULT_INACTIVE_DAYS),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=365).contains(d))
            .ok_or_else(|| {
                Error::bad_request(
                    "invalid_inactive_days",
                    "inactive_days must be a number from 1 to 365",
                )
            }),
    }
}

#[derive(Debug, Serialize)]
pub struct DailyPoint {
    pub date: String,
    pub seats: u32,
    /// Absent where the vendor reports no per-seat activity.
    pub dau: Option<u32>,
    pub wau: Option<u32>,
    pub mau: Option<u32>,
    /// Account-level metrics of the day (apps without per-seat activity).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub account: BTreeMap<String, u64>,
    pub as_of: String,
}

#[derive(Debug, Serialize)]
pub struct FeatureTotal {
    pub feature: String,
    pub total: u64,
    /// Which vendor data defines this feature.
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeatView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub license: Option<String>,
    pub status: SeatStatus,
    pub first_seen_at: String,
    pub last_activity_on: Option<String>,
    /// No activity in the last `inactive_days` days; None where the vendor reports
    /// no per-seat activity (unknown, not "active").
    pub inactive: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct AppDetail {
    pub provider: String,
    pub name: String,
    pub connection: ConnectionView,
    pub from: String,
    pub to: String,
    pub per_seat_activity: bool,
    pub activity_note: Option<String>,
    /// Plan credits (usage-priced apps).
    pub plan: Option<PlanView>,
    pub daily: Vec<DailyPoint>,
    pub features: Vec<FeatureTotal>,
    pub inactive_days: u32,
    pub seats: Vec<SeatView>,
    pub inactive_seats: Vec<SeatView>,
    pub definitions: BTreeMap<&'static str, &'static str>,
}

pub fn definitions() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            "dau",
            "distinct seats with at least one activity event on the day (UTC)",
        ),
        (
            "wau",
            "distinct seats active in the 7 days ending on the day",
        ),
        (
            "mau",
            "distinct seats active in the 30 days ending on the day",
        ),
        ("utilization_percent", "MAU ÷ seats × 100"),
        (
            "plan_utilization_percent",
            "plan credits used ÷ credits included in the period × 100 (usage-priced apps)",
        ),
        (
            "inactive",
            "a seat with no activity in the last N days (never active counts)",
        ),
        (
            "seats",
            "seats the vendor reports now (removed seats excluded)",
        ),
    ])
}

fn seat_views(
    seats: Vec<Seat>,
    today: Date,
    inactive_days: u32,
    per_seat_activity: bool,
) -> Vec<SeatView> {
    seats
        .into_iter()
        .filter(|s| s.status != SeatStatus::Removed)
        .map(|s| {
            let last = s.last_activity_on.as_deref().and_then(parse_day);
            SeatView {
                inactive: per_seat_activity
                    .then(|| metrics::is_inactive(last, today, inactive_days)),
                id: s.seat_id,
                email: s.email,
                name: s.name,
                role: s.role,
                license: s.license,
                status: s.status,
                first_seen_at: s.first_seen_at,
                last_activity_on: s.last_activity_on,
            }
        })
        .collect()
}

async fn provider_and_connection<'a>(
    app: &'a App,
    caller: &Caller,
    provider_id: &str,
) -> Result<(&'a Provider, Option<Connection>)> {
    let provider = app.config.catalog.get(provider_id)?;
    let connection = app.store.connection(&caller.org, &provider.id).await?;
    Ok((provider, connection))
}

pub async fn app_detail(
    app: &App,
    caller: &Caller,
    provider_id: &str,
    range: Range,
    inactive_days: u32,
) -> Result<AppDetail> {
    let now = OffsetDateTime::now_utc();
    let (provider, connection) = provider_and_connection(app, caller, provider_id).await?;
    let pk = keys::app(&caller.org, &provider.id);
    let rollups: Vec<DailyRollup> = app
        .store
        .query_between(
            &pk,
            &keys::rollup_sk(range.from),
            &keys::rollup_sk(range.to),
        )
        .await?;
    let mut totals: BTreeMap<String, u64> =
        provider.features.iter().map(|f| (f.clone(), 0)).collect();
    for r in &rollups {
        for (f, c) in &r.features {
            *totals.entry(f.clone()).or_default() += c;
        }
    }
    let seats = seat_views(
        app.store
            .query_prefix::<Seat>(&pk, keys::SEAT_PREFIX)
            .await?,
        now.date(),
        inactive_days,
        provider.per_seat_activity,
    );
    let inactive_seats = seats
        .iter()
        .filter(|s| s.inactive == Some(true))
        .cloned()
        .collect();
    let plan = plan(app, &pk).await?;
    Ok(AppDetail {
        provider: provider.id.clone(),
        name: provider.name.clone(),
        connection: ConnectionView::of(connection.as_ref(), now),
        from: day(range.from),
        to: day(range.to),
        per_seat_activity: provider.per_seat_activity,
        activity_note: activity_note(provider),
        plan,
        daily: rollups
            .into_iter()
            .map(|r| DailyPoint {
                date: r.date,
                seats: r.seats,
                dau: r.dau,
                wau: r.wau,
                mau: r.mau,
                account: if provider.per_seat_activity {
                    BTreeMap::new()
                } else {
                    r.features
                },
                as_of: r.as_of,
            })
            .collect(),
        features: totals
            .into_iter()
            .map(|(feature, total)| FeatureTotal {
                source: provider.feature_sources.get(&feature).cloned(),
                feature,
                total,
            })
            .collect(),
        inactive_days,
        seats,
        inactive_seats,
        definitions: definitions(),
    })
}

#[derive(Debug, Serialize)]
pub struct SeatsList {
    pub provider: String,
    pub inactive_days: u32,
    pub total: usize,
    pub inactive: usize,
    pub seats: Vec<SeatView>,
}

pub async fn seats(
    app: &App,
    caller: &Caller,
    provider_id: &str,
    inactive_days: u32,
    only_inactive: bool,
) -> Result<SeatsList> {
    let now = OffsetDateTime::now_utc();
    let provider = app.config.catalog.get(provider_id)?;
    let pk = keys::app(&caller.org, &provider.id);
    let all = seat_views(
        app.store
            .query_prefix::<Seat>(&pk, keys::SEAT_PREFIX)
            .await?,
        now.date(),
        inactive_days,
        provider.per_seat_activity,
    );
    let total = all.len();
    let inactive = all.iter().filter(|s| s.inactive == Some(true)).count();
    Ok(SeatsList {
        provider: provider.id.clone(),
        inactive_days,
        total,
        inactive,
        seats: all
            .into_iter()
            .filter(|s| !only_inactive || s.inactive == Some(true))
            .collect(),
    })
}

/// "Sync now": the connection becomes due at once; the next tick runs it.
pub async fn request_sync(app: &App, caller: &Caller, provider_id: &str) -> Result<()> {
    let provider = app.config.catalog.get(provider_id)?;
    app.store
        .make_due(&caller.org, &provider.id, OffsetDateTime::now_utc())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn range_defaults_to_thirty_days_ending_today() {
        let r = Range::parse(None, None, date!(2026 - 11 - 23)).unwrap();
        assert_eq!(
            (r.from, r.to),
            (date!(2026 - 10 - 25), date!(2026 - 11 - 23))
        );
    }

    #[test]
    fn bad_ranges_are_client_errors() {
        let today = date!(2026 - 11 - 23);
        assert_eq!(
            Range::parse(Some("2026-13-01"), None, today)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            Range::parse(Some("2026-11-02"), Some("2026-11-01"), today)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            Range::parse(Some("2024-01-01"), Some("2026-01-01"), today)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(parse_inactive_days(Some("0")).unwrap_err().status(), 400);
        assert_eq!(parse_inactive_days(Some("x")).unwrap_err().status(), 400);
        assert_eq!(parse_inactive_days(None).unwrap(), 30);
    }
}
