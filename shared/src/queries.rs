//! The dashboard's reads, always scoped to the caller's org. Every number says
//! what it is (see `metrics` for definitions) and carries its as-of time.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use time::{Date, Duration, OffsetDateTime};

use crate::app::App;
use crate::audit::Admin;
use crate::catalog::{AuthMode, Pricing, Provider};
use crate::domain::{
    day, keys, parse_day, Caller, Connection, DailyRollup, PlanItem, Seat, SeatStatus, SyncSummary,
};
use crate::error::{Error, Result};
use crate::usage::{self, AppSettings, Summary, SummaryItem, TierHint};

pub const DEFAULT_INACTIVE_DAYS: u32 = 30;
const MAX_RANGE_DAYS: i64 = 366;

#[derive(Debug, Serialize)]
pub struct ConnectionView {
    /// not_connected · connected · needs_reconnect · error · disconnected
    pub status: String,
    pub status_reason: Option<String>,
    pub vendor_account: Option<String>,
    pub connected_at: Option<String>,
    /// The dashboard user who connected it, or for an invite link the vendor account
    /// that consented.
    pub connected_by: Option<String>,
    /// The dashboard user who sent the invite link it came through.
    pub invited_by: Option<String>,
    /// What the grant allows (OAuth scopes, or the scopes checked on an API key).
    pub scopes: Option<Vec<String>>,
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
                connected_by: None,
                invited_by: None,
                scopes: None,
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
                connected_by: Some(c.connected_by.clone()),
                invited_by: c.invited_by.clone(),
                scopes: c.scopes.clone(),
                last_sync_at: c.last_sync_at.clone(),
                last_sync: c.last_sync_summary.clone(),
                syncing: c.lease_expires_at.is_some_and(|e| e > now.unix_timestamp()),
            },
        }
    }
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
            source: Self::SOURCE,
        }
    }

    const SOURCE: &'static str = "/v3/user/credits (used vs total of the plan period)";
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

/// What Connect can offer for an app now: OAuth only where a client is configured.
fn auth_modes(app: &App, provider: &Provider) -> Vec<AuthMode> {
    provider
        .auth_modes
        .iter()
        .copied()
        .filter(|m| *m != AuthMode::Oauth2 || app.config.oauth_clients.contains_key(&provider.id))
        .collect()
}

/// Which vendor data each number comes from.
pub fn sources(provider: &Provider) -> BTreeMap<&'static str, String> {
    let mut s = BTreeMap::from([("seats", provider.seat_source.clone())]);
    let features = provider
        .features
        .iter()
        .map(|f| match provider.feature_sources.get(f) {
            Some(src) => format!("{f}: {src}"),
            None => f.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    s.insert(
        if provider.per_seat_activity {
            "activity"
        } else {
            "account_usage"
        },
        features,
    );
    if provider.pricing == Pricing::Usage {
        s.insert("plan", PlanView::SOURCE.to_string());
    }
    s
}

#[derive(Debug, Serialize)]
pub struct AppSummary {
    pub provider: String,
    pub name: String,
    pub auth_modes: Vec<AuthMode>,
    pub pricing: Pricing,
    pub connection: ConnectionView,
    /// As of `as_of_date` (the latest rollup day) and `computed_at`.
    #[serde(flatten)]
    pub summary: Summary,
    /// False where the vendor reports no per-seat activity.
    pub per_seat_activity: bool,
    /// Says plainly what cannot be known for this app (None when all can).
    pub activity_note: Option<String>,
    /// Plan credits used ÷ included, percent (usage-priced apps only).
    pub plan_utilization_percent: Option<f64>,
    pub sources: BTreeMap<&'static str, String>,
}

/// Sums over the connected apps; an unknown number is left out of its sum.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub seats: u32,
    pub active_30d: u32,
    pub inactive_seats: u32,
    pub monthly_cost: f64,
    pub potential_savings: f64,
}

#[derive(Debug, Serialize)]
pub struct Overview {
    pub org: String,
    pub generated_at: String,
    /// Seat prices are entered by the org in this currency.
    pub currency: &'static str,
    pub apps: Vec<AppSummary>,
    pub totals: Totals,
    pub definitions: BTreeMap<&'static str, &'static str>,
}

pub const CURRENCY: &str = "USD";

/// One Query for the org's connections and two BatchGetItems (summaries, plans)
/// whatever the number of apps.
pub async fn overview(app: &App, caller: &Caller) -> Result<Overview> {
    let now = app.config.clock.now();
    let connections = app.store.connections(&caller.org).await?;
    let connected: Vec<&Provider> = app
        .config
        .catalog
        .providers()
        .iter()
        .filter(|p| connections.iter().any(|c| c.provider == p.id))
        .collect();
    let keys_of = |sk: &str| -> Vec<(String, String)> {
        connected
            .iter()
            .map(|p| (keys::app(&caller.org, &p.id), sk.to_string()))
            .collect()
    };
    let (summary_keys, plan_keys) = (keys_of(keys::SUMMARY_SK), keys_of(keys::PLAN_SK));
    let (summaries, plans) = tokio::try_join!(
        app.store.get_many::<SummaryItem>(&summary_keys),
        app.store.get_many::<PlanItem>(&plan_keys),
    )?;
    let mut summaries: HashMap<String, Summary> =
        summaries.into_iter().map(|i| (i.pk, i.summary)).collect();
    let mut plans: HashMap<String, PlanItem> =
        plans.into_iter().map(|i| (i.pk.clone(), i)).collect();
    let mut totals = Totals::default();
    let mut apps = Vec::new();
    for provider in app.config.catalog.providers() {
        let pk = keys::app(&caller.org, &provider.id);
        let connection = connections.iter().find(|c| c.provider == provider.id);
        let summary = summaries.remove(&pk).unwrap_or_else(|| Summary {
            inactive_days: DEFAULT_INACTIVE_DAYS,
            ..Summary::default()
        });
        if connection.is_some() {
            totals.seats += summary.seats.unwrap_or(0);
            totals.active_30d += summary.active_30d.unwrap_or(0);
            totals.inactive_seats += summary.inactive_seats.unwrap_or(0);
            totals.monthly_cost += summary.monthly_cost.unwrap_or(0.0);
            totals.potential_savings += summary.potential_savings.unwrap_or(0.0);
        }
        apps.push(AppSummary {
            provider: provider.id.clone(),
            name: provider.name.clone(),
            auth_modes: auth_modes(app, provider),
            pricing: provider.pricing,
            connection: ConnectionView::of(connection, now),
            summary,
            per_seat_activity: provider.per_seat_activity,
            activity_note: activity_note(provider),
            plan_utilization_percent: plans
                .remove(&pk)
                .and_then(|p| PlanView::of(p).utilization_percent),
            sources: sources(provider),
        });
    }
    totals.monthly_cost = (totals.monthly_cost * 100.0).round() / 100.0;
    totals.potential_savings = (totals.potential_savings * 100.0).round() / 100.0;
    Ok(Overview {
        org: caller.org.clone(),
        generated_at: crate::domain::rfc3339(now),
        currency: CURRENCY,
        apps,
        totals,
        definitions: definitions(),
    })
}

/// Query parameters of the app pages, validated.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub from: Date,
    pub to: Date,
}

/// The earliest day a range may start: long before any data Seatscope can hold.
pub const MIN_DAY: Date = time::macros::date!(2000 - 01 - 01);
/// How far past today a range may end (a page that looks a little ahead).
const MAX_DAYS_AHEAD: i64 = 366;

impl Range {
    /// `from`/`to` as YYYY-MM-DD between 2000-01-01 and a year after `today`;
    /// defaults to the 30 days ending today (UTC). Every failure is a 400.
    pub fn parse(from: Option<&str>, to: Option<&str>, today: Date) -> Result<Range> {
        let latest = today
            .checked_add(Duration::days(MAX_DAYS_AHEAD))
            .unwrap_or(Date::MAX);
        let parse = |name: &str, v: &str| {
            let shown: String = v.chars().take(40).collect();
            let day = parse_day(v).ok_or_else(|| {
                Error::bad_request(
                    "invalid_date",
                    format!("{name} must be a date like 2026-10-31, got '{shown}'"),
                )
            })?;
            if day < MIN_DAY || day > latest {
                return Err(Error::bad_request(
                    "date_out_of_range",
                    format!("{name} must be a day from {MIN_DAY} to {latest}, got '{shown}'"),
                ));
            }
            Ok(day)
        };
        let to = to.map(|v| parse("to", v)).transpose()?.unwrap_or(today);
        let from = match from {
            Some(v) => parse("from", v)?,
            None => to
                .checked_sub(Duration::days(29))
                .map_or(MIN_DAY, |d| d.max(MIN_DAY)),
        };
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

pub fn parse_inactive_days(v: Option<&str>) -> Result<Option<u32>> {
    match v {
        None => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=365).contains(d))
            .ok_or_else(|| {
                Error::bad_request(
                    "invalid_inactive_days",
                    "inactive_days must be a number from 1 to 365",
                )
            })
            .map(Some),
    }
}

/// One synced day. Days without synced data have no point (never a 0).
#[derive(Debug, Serialize)]
pub struct DailyPoint {
    pub date: String,
    /// The day was not over when its numbers were computed (today's point, "so
    /// far"): its counts will still grow.
    pub partial: bool,
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
    /// Days with activity in the 30 days ending the last sync; None where the
    /// vendor reports no per-seat activity.
    pub active_days_30: Option<u32>,
    /// Inactive under the app's settings; None where the vendor reports no
    /// per-seat activity (unknown, not "active").
    pub inactive: Option<bool>,
    pub exempt: bool,
    pub in_grace: bool,
    /// On call at the last sync (now, or on a schedule or escalation policy in the
    /// on-call window): never reclaimable. None when not on call, or the vendor has
    /// no on-call schedules.
    pub on_call: Option<OnCallView>,
}

/// Where a seat is on call, and whether it is "on call, quiet".
#[derive(Debug, Clone, Serialize)]
pub struct OnCallView {
    /// On call at the last sync's instant.
    pub now: bool,
    /// The schedule's name; None where an escalation rule targets the seat directly.
    pub schedule: Option<String>,
    pub escalation_policy: String,
    /// No activity in the app's threshold: what would make it inactive off call.
    pub quiet: bool,
}

#[derive(Debug, Serialize)]
pub struct AppDetail {
    pub provider: String,
    pub name: String,
    pub auth_modes: Vec<AuthMode>,
    pub pricing: Pricing,
    pub connection: ConnectionView,
    pub from: String,
    pub to: String,
    pub per_seat_activity: bool,
    pub activity_note: Option<String>,
    pub summary: Summary,
    pub settings: AppSettings,
    /// Plan credits (usage-priced apps).
    pub plan: Option<PlanView>,
    pub daily: Vec<DailyPoint>,
    pub features: Vec<FeatureTotal>,
    pub tier_hint: Option<TierHint>,
    pub sources: BTreeMap<&'static str, String>,
    pub definitions: BTreeMap<&'static str, &'static str>,
}

pub fn definitions() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            "dau",
            "distinct seats with at least one activity event on the day (UTC); the headline DAU is of the headline day",
        ),
        (
            "headline_day",
            "the last complete UTC day (yesterday when the app synced today): the day the headline DAU, \
             active (30 d), utilization and cost per active user are for; today's unfinished day never is",
        ),
        (
            "partial",
            "a day that was not over when its numbers were computed (today, \"so far\"): its counts \
             still grow; drawn apart in the charts",
        ),
        (
            "no_data",
            "a day without synced data (before the first synced day, or after today): a gap in the \
             charts, absent from the API's daily points, an empty cell in the trends CSV; never 0",
        ),
        (
            "wau",
            "distinct seats active in the 7 days ending on the day",
        ),
        (
            "mau",
            "distinct seats active in the 30 days ending on the day",
        ),
        (
            "active_30d",
            "distinct seats with at least one activity event in the 30 days ending on the headline day (the MAU of that day)",
        ),
        ("utilization_percent", "active (30 d) ÷ seats × 100"),
        (
            "plan_utilization_percent",
            "plan credits used ÷ credits included in the period × 100 (usage-priced apps)",
        ),
        (
            "inactive",
            "a seat with no activity in the app's threshold (30/60/90 days; never active counts), \
             unless it is exempt, was added less than the grace period ago, or is on call",
        ),
        (
            "inactive_seats",
            "seats counted inactive under the app's threshold, grace period and exemptions",
        ),
        (
            "seats",
            "seats the vendor reports now, including pending invitations (removed seats excluded)",
        ),
        (
            "active_days_30",
            "days on which the seat had at least one activity event, in the 30 days ending the last sync's day",
        ),
        (
            "in_grace",
            "added after the app's first import, less than the grace period ago: not counted inactive yet",
        ),
        (
            "on_call",
            "on call at the last sync, or on an on-call schedule or escalation policy from 30 days before \
             it to 30 days after (PagerDuty /oncalls): never reclaimable, whatever its activity; \
             \"on call, quiet\" when it has no activity in the threshold",
        ),
        (
            "seat_price",
            "what the org pays per seat per month, entered on the app page (never guessed)",
        ),
        ("monthly_cost", "seat price × seats"),
        (
            "cost_per_active_user",
            "seat price × seats ÷ active (30 d)",
        ),
        (
            "potential_savings",
            "inactive seats × seat price, per month",
        ),
        (
            "feature_total",
            "activity events of the feature in the selected range, summed over seats",
        ),
    ])
}

fn seat_views(
    seats: Vec<Seat>,
    settings: &AppSettings,
    today: Date,
    per_seat_activity: bool,
) -> Vec<SeatView> {
    seats
        .into_iter()
        .filter(|s| s.status != SeatStatus::Removed)
        .map(|s| {
            let flags = usage::seat_flags(&s, settings, today, per_seat_activity);
            SeatView {
                inactive: flags.inactive,
                exempt: flags.exempt,
                in_grace: flags.in_grace,
                on_call: s.on_call.map(|o| OnCallView {
                    now: o.now,
                    schedule: o.schedule,
                    escalation_policy: o.escalation_policy,
                    quiet: flags.on_call_quiet,
                }),
                active_days_30: if per_seat_activity {
                    Some(s.active_days_30.unwrap_or(0))
                } else {
                    None
                },
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

/// Days per rollup query: a year is read as four queries at once, which the table
/// serves in parallel (one query would page through it alone).
const ROLLUP_DAYS_PER_QUERY: i64 = 92;

/// `range` cut into contiguous pieces of at most `ROLLUP_DAYS_PER_QUERY` days.
fn rollup_query_bounds(range: Range) -> Vec<(Date, Date)> {
    let mut bounds = Vec::new();
    let mut from = range.from;
    while from <= range.to {
        let to = from
            .checked_add(Duration::days(ROLLUP_DAYS_PER_QUERY - 1))
            .map_or(range.to, |d| d.min(range.to));
        bounds.push((from, to));
        match to.next_day() {
            Some(next) => from = next,
            None => break,
        }
    }
    bounds
}

/// The rollups of `range`, in date order.
async fn rollups_between(app: &App, pk: &str, range: Range) -> Result<Vec<DailyRollup>> {
    let bounds: Vec<(String, String)> = rollup_query_bounds(range)
        .into_iter()
        .map(|(a, b)| (keys::rollup_sk(a), keys::rollup_sk(b)))
        .collect();
    let parts = futures::future::try_join_all(
        bounds
            .iter()
            .map(|(a, b)| app.store.query_between::<DailyRollup>(pk, a, b)),
    )
    .await?;
    Ok(parts.into_iter().flatten().collect())
}

/// The rollups as the page's daily points: account-level metrics only for apps
/// without per-seat activity.
fn daily_points(provider: &Provider, rollups: Vec<DailyRollup>) -> Vec<DailyPoint> {
    rollups
        .into_iter()
        .map(|r| DailyPoint {
            partial: !usage::rollup_complete(&r),
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
        .collect()
}

/// The trends export: every day of the range up to today, and the synced ones' points.
#[derive(Debug)]
pub struct Trends {
    /// From `from` to the earlier of `to` and today (UTC): days after today hold nothing.
    pub days: Vec<Date>,
    /// The synced days among them; a day without one is a gap, never a 0.
    pub daily: Vec<DailyPoint>,
}

/// The days of `range` up to `today`.
pub fn range_days(range: Range, today: Date) -> Vec<Date> {
    crate::metrics::days_between(range.from, range.to.min(today))
}

/// The daily points of `range` alone (the trends export).
pub async fn trends(app: &App, caller: &Caller, provider_id: &str, range: Range) -> Result<Trends> {
    let provider = app.config.catalog.get(provider_id)?;
    let rollups = rollups_between(app, &keys::app(&caller.org, &provider.id), range).await?;
    Ok(Trends {
        days: range_days(range, app.config.clock.now().date()),
        daily: daily_points(provider, rollups),
    })
}

/// The app page: summary, settings, plan, the daily points and feature totals of
/// `range`, the tier hint. Seats come from `seats` (they can be many).
pub async fn app_detail(
    app: &App,
    caller: &Caller,
    provider_id: &str,
    range: Range,
) -> Result<AppDetail> {
    let now = app.config.clock.now();
    let provider = app.config.catalog.get(provider_id)?;
    let pk = keys::app(&caller.org, &provider.id);
    let (connection, rollups, settings, plan, summary) = tokio::try_join!(
        app.store.connection(&caller.org, &provider.id),
        rollups_between(app, &pk, range),
        usage::settings(app, &caller.org, &provider.id),
        plan(app, &pk),
        app.store.get::<SummaryItem>(&pk, keys::SUMMARY_SK),
    )?;
    let summary = summary.map(|i| i.summary).unwrap_or_else(|| Summary {
        inactive_days: settings.inactive_days,
        ..Summary::default()
    });
    let mut totals: BTreeMap<String, u64> =
        provider.features.iter().map(|f| (f.clone(), 0)).collect();
    for r in &rollups {
        for (f, c) in &r.features {
            *totals.entry(f.clone()).or_default() += c;
        }
    }
    let (from, to) = (day(range.from), day(range.to));
    let tier_hint = provider
        .per_seat_activity
        .then(|| usage::tier_hint(provider, &totals, summary.active_30d, (&from, &to)))
        .flatten();
    Ok(AppDetail {
        provider: provider.id.clone(),
        name: provider.name.clone(),
        auth_modes: auth_modes(app, provider),
        pricing: provider.pricing,
        connection: ConnectionView::of(connection.as_ref(), now),
        from,
        to,
        per_seat_activity: provider.per_seat_activity,
        activity_note: activity_note(provider),
        summary,
        settings,
        plan,
        daily: daily_points(provider, rollups),
        features: totals
            .into_iter()
            .map(|(feature, total)| FeatureTotal {
                source: provider.feature_sources.get(&feature).cloned(),
                feature,
                total,
            })
            .collect(),
        tier_hint,
        sources: sources(provider),
        definitions: definitions(),
    })
}

#[derive(Debug, Serialize)]
pub struct SeatsList {
    pub provider: String,
    pub inactive_days: u32,
    pub grace_days: u32,
    /// The latest rollup day (the last sync's view of activity).
    pub as_of_date: Option<String>,
    pub total: usize,
    pub inactive: usize,
    pub seats: Vec<SeatView>,
}

/// Which seats a list or export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatFilter {
    All,
    Inactive,
}

impl SeatFilter {
    pub fn parse(v: Option<&str>) -> Result<SeatFilter> {
        match v {
            None | Some("all") => Ok(SeatFilter::All),
            Some("inactive") => Ok(SeatFilter::Inactive),
            Some(_) => Err(Error::bad_request(
                "invalid_only",
                "only must be 'all' or 'inactive'",
            )),
        }
    }
}

/// The seats as of the last summary, from its snapshot (a few items), or from the
/// seat items where there is no usable snapshot.
async fn current_seats(app: &App, pk: &str, summary: Option<&SummaryItem>) -> Result<Vec<Seat>> {
    if let Some((parts, version)) =
        summary.and_then(|s| Some((s.seat_snapshot_parts?, s.summary.computed_at.clone()?)))
    {
        let keys: Vec<(String, String)> = (0..parts)
            .map(|p| (pk.to_string(), usage::snapshot_part_sk(p)))
            .collect();
        let found = app.store.get_many::<usage::SeatSnapshotPart>(&keys).await?;
        if let Some(seats) = usage::seats_from_snapshot(found, parts, &version)? {
            return Ok(seats);
        }
    }
    app.store.query_prefix::<Seat>(pk, keys::SEAT_PREFIX).await
}

/// The app's current seats under its settings (`inactive_days` overrides the
/// stored threshold for this answer only).
pub async fn seats(
    app: &App,
    caller: &Caller,
    provider_id: &str,
    inactive_days: Option<u32>,
    filter: SeatFilter,
) -> Result<SeatsList> {
    let now = app.config.clock.now();
    let provider = app.config.catalog.get(provider_id)?;
    let pk = keys::app(&caller.org, &provider.id);
    let (mut settings, summary) = tokio::try_join!(
        usage::settings(app, &caller.org, &provider.id),
        app.store.get::<SummaryItem>(&pk, keys::SUMMARY_SK),
    )?;
    let stored = current_seats(app, &pk, summary.as_ref()).await?;
    if let Some(d) = inactive_days {
        settings.inactive_days = d;
    }
    let all = seat_views(stored, &settings, now.date(), provider.per_seat_activity);
    let total = all.len();
    let inactive = all.iter().filter(|s| s.inactive == Some(true)).count();
    Ok(SeatsList {
        provider: provider.id.clone(),
        inactive_days: settings.inactive_days,
        grace_days: settings.grace_days,
        as_of_date: summary.and_then(|s| s.summary.as_of_date),
        total,
        inactive,
        seats: all
            .into_iter()
            .filter(|s| filter == SeatFilter::All || s.inactive == Some(true))
            .collect(),
    })
}

/// "Sync now": the connection becomes due at once; the next tick runs it.
pub async fn request_sync(app: &App, caller: &Admin, provider_id: &str) -> Result<()> {
    let provider = app.config.catalog.get(provider_id)?;
    app.store
        .make_due(
            &caller.org,
            &provider.id,
            app.config.clock.now(),
            &caller.audit().done(crate::audit::Details::new()),
        )
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
    fn a_year_of_rollups_is_read_in_four_contiguous_queries() {
        let r = Range::parse(
            Some("2025-11-24"),
            Some("2026-11-23"),
            date!(2026 - 11 - 23),
        )
        .unwrap();
        let b = rollup_query_bounds(r);
        assert_eq!(b.len(), 4);
        assert_eq!((b[0].0, b[3].1), (r.from, r.to));
        for w in b.windows(2) {
            assert_eq!(w[1].0, w[0].1 + Duration::days(1));
        }
        let one_day = Range::parse(
            Some("2026-11-23"),
            Some("2026-11-23"),
            date!(2026 - 11 - 23),
        )
        .unwrap();
        assert_eq!(rollup_query_bounds(one_day), vec![(r.to, r.to)]);
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
        for (from, to) in [
            (None, Some("9999-12-31")),
            (Some("-9999-01-01"), None),
            (Some("-9999-01-01"), Some("-9999-01-01")),
            (Some("9999-12-31"), Some("9999-12-31")),
            (Some("1999-12-31"), Some("2000-01-05")),
            (Some("+10000-01-01"), None),
            (Some("2026-02-30"), None),
            (Some("2026-11-01T00:00:00Z"), None),
            (Some(""), None),
        ] {
            let e = Range::parse(from, to, today).unwrap_err();
            assert_eq!(e.status(), 400, "{from:?} {to:?}");
        }
        // The edges of the accepted span still parse, with checked defaults.
        let r = Range::parse(None, Some("2000-01-10"), today).unwrap();
        assert_eq!((r.from, r.to), (MIN_DAY, date!(2000 - 01 - 10)));
        let r = Range::parse(None, None, Date::MAX).unwrap();
        assert_eq!(rollup_query_bounds(r).last().unwrap().1, Date::MAX);
        assert_eq!(parse_inactive_days(Some("0")).unwrap_err().status(), 400);
        assert_eq!(parse_inactive_days(Some("x")).unwrap_err().status(), 400);
        assert_eq!(parse_inactive_days(None).unwrap(), None);
        assert_eq!(parse_inactive_days(Some("60")).unwrap(), Some(60));
        for bad in ["99999999999999999999", "-1", "366", "1e3", "NaN", " 30"] {
            assert_eq!(parse_inactive_days(Some(bad)).unwrap_err().status(), 400);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_range_query_is_a_range_or_a_client_error(
            from in proptest::option::of(proptest::prelude::any::<String>()),
            to in proptest::option::of(proptest::prelude::any::<String>()),
            today_offset in -800_000i32..=800_000,
        ) {
            let today = Date::from_julian_day(2_460_000 + today_offset).unwrap_or(Date::MAX);
            match Range::parse(from.as_deref(), to.as_deref(), today) {
                Ok(r) => {
                    proptest::prop_assert!(r.from <= r.to);
                    let bounds = rollup_query_bounds(r);
                    proptest::prop_assert_eq!(bounds.first().map(|b| b.0), Some(r.from));
                    proptest::prop_assert_eq!(bounds.last().map(|b| b.1), Some(r.to));
                }
                Err(e) => proptest::prop_assert_eq!(e.status(), 400),
            }
        }

        #[test]
        fn date_like_queries_near_the_edges_never_panic(
            y in -9999i32..=9999, m in 1u8..=12, d in 1u8..=31,
            y2 in -9999i32..=9999, m2 in 1u8..=12, d2 in 1u8..=31,
        ) {
            let from = format!("{y:04}-{m:02}-{d:02}");
            let to = format!("{y2:04}-{m2:02}-{d2:02}");
            let today = date!(2026 - 11 - 23);
            for (f, t) in [(Some(&from), Some(&to)), (Some(&from), None), (None, Some(&to))] {
                if let Err(e) = Range::parse(f.map(String::as_str), t.map(String::as_str), today) {
                    proptest::prop_assert_eq!(e.status(), 400);
                }
            }
        }

        #[test]
        fn any_inactive_days_query_is_a_number_or_a_client_error(v in proptest::prelude::any::<String>()) {
            if let Err(e) = parse_inactive_days(Some(&v)) {
                proptest::prop_assert_eq!(e.status(), 400);
            }
        }
    }
}
