//! One app's page: summary, settings, plan, the daily points and feature totals of a
//! range, the tier hint; and the trends export.

use std::collections::BTreeMap;

use serde::Serialize;
use time::Date;

use super::overview::{ConnectionView, PlanView};
use super::{activity_note, auth_modes, definitions, rollup_query_bounds, sources, Range};
use crate::config::Config;
use crate::domain::caller::Caller;
use crate::domain::catalog::{AuthMode, Pricing, Provider};
use crate::domain::rollup::DailyRollup;
use crate::domain::rules::{rollup_complete, tier_hint, TierHint};
use crate::domain::settings::AppSettings;
use crate::domain::summary::Summary;
use crate::domain::time::day;
use crate::error::Result;
use crate::store::AppData;
use crate::store::DynamoDbStore;

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

/// The rollups of `range`, in date order.
async fn rollups_between(data: &AppData<'_>, range: Range) -> Result<Vec<DailyRollup>> {
    let parts = futures::future::try_join_all(
        rollup_query_bounds(range)
            .into_iter()
            .map(|(a, b)| data.rollups(a, b)),
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
            partial: !rollup_complete(&r),
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
    crate::domain::metrics::days_between(range.from, range.to.min(today))
}

/// The daily points of `range` alone (the trends export).
pub async fn trends(
    store: &DynamoDbStore,
    config: &Config,
    caller: &Caller,
    provider_id: &str,
    range: Range,
) -> Result<Trends> {
    let provider = config.catalog.get(provider_id)?;
    let rollups = rollups_between(&store.app_data(&caller.org, &provider.id), range).await?;
    Ok(Trends {
        days: range_days(range, config.clock.now().date()),
        daily: daily_points(provider, rollups),
    })
}

/// The complete days whose pace projects a usage-priced plan's credits.
const PACE_DAYS: usize = 30;

/// The app page: summary, settings, plan, the daily points and feature totals of
/// `range`, the tier hint. Seats come from `seats` (they can be many).
pub async fn app_detail(
    store: &DynamoDbStore,
    config: &Config,
    caller: &Caller,
    provider_id: &str,
    range: Range,
) -> Result<AppDetail> {
    let now = config.clock.now();
    let provider = config.catalog.get(provider_id)?;
    let data = store.app_data(&caller.org, &provider.id);
    // Usage-priced apps: the last 31 rollups, for the credits' pace (30 complete days).
    let recent = async {
        match provider.plan_metric {
            Some(_) => data.latest_rollups(PACE_DAYS as i32 + 1).await,
            None => Ok(Vec::new()),
        }
    };
    let (connection, rollups, settings, plan, summary, recent) = tokio::try_join!(
        store.connection(&caller.org, &provider.id),
        rollups_between(&data, range),
        data.settings(),
        data.plan(),
        data.summary(),
        recent,
    )?;
    let settings = settings.unwrap_or_default();
    let plan = plan.map(|item| {
        let spent: Vec<u64> = recent
            .iter()
            .filter(|r| rollup_complete(r))
            .take(PACE_DAYS)
            .map(|r| {
                let metric = provider.plan_metric.as_deref().unwrap_or_default();
                r.features.get(metric).copied().unwrap_or(0)
            })
            .collect();
        let projection = item.plan.project(&spent, now.date());
        PlanView {
            projection,
            ..PlanView::of(item)
        }
    });
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
        .then(|| tier_hint(provider, &totals, summary.active_30d, (&from, &to)))
        .flatten();
    Ok(AppDetail {
        provider: provider.id.clone(),
        name: provider.name.clone(),
        auth_modes: auth_modes(config, provider),
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
