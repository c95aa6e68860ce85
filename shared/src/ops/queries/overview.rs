//! The overview: every app of the catalog with its connection and stored summary,
//! and the org's totals.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::{activity_note, auth_modes, definitions, sources, DEFAULT_INACTIVE_DAYS};
use crate::config::Config;
use crate::domain::caller::Caller;
use crate::domain::catalog::{AuthMode, Pricing, Provider};
use crate::domain::connection::{ArchivedAccount, Connection, SyncSummary};
use crate::domain::org::OrgId;
use crate::domain::plan::{CreditProjection, PlanItem};
use crate::domain::settings::DEFAULT_CURRENCY;
use crate::domain::summary::{Renewal, Summary};
use crate::domain::time::parse_day;
use crate::error::Result;
use crate::store::DynamoDbStore;

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
    /// The vendor account's identity (`Connection::vendor_account_id`).
    pub vendor_account_id: Option<String>,
    /// A connect that landed on another vendor account, waiting for an admin's choice.
    pub pending_account_change: Option<PendingAccountChangeView>,
    /// Earlier vendor accounts whose data was kept apart, oldest first.
    pub archives: Vec<ArchivedAccount>,
}

/// What the card shows of a held connect (never where its credentials are).
#[derive(Debug, Serialize)]
pub struct PendingAccountChangeView {
    pub vendor_account_id: String,
    pub vendor_account: Option<String>,
    pub connected_by: String,
    pub requested_at: String,
    /// The account the connection holds data of.
    pub current_account_id: Option<String>,
}

impl ConnectionView {
    pub(crate) fn of(c: Option<&Connection>, now: OffsetDateTime) -> ConnectionView {
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
                vendor_account_id: None,
                pending_account_change: None,
                archives: Vec::new(),
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
                vendor_account_id: c.vendor_account_id.clone(),
                pending_account_change: c.pending_account_change.as_ref().map(|p| {
                    PendingAccountChangeView {
                        vendor_account_id: p.vendor_account_id.clone(),
                        vendor_account: p.vendor_account.clone(),
                        connected_by: p.connected_by.clone(),
                        requested_at: p.requested_at.clone(),
                        current_account_id: c.vendor_account_id.clone(),
                    }
                }),
                archives: c.archives.clone(),
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
    /// At the last 30 complete days' pace: the day the credits run out before the
    /// reset, or the share left unused at it (the app page only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projection: Option<CreditProjection>,
}

impl PlanView {
    pub(crate) fn of(item: PlanItem) -> PlanView {
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
            projection: None,
        }
    }

    pub(crate) const SOURCE: &'static str = "/v3/user/credits (used vs total of the plan period)";
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

/// Sums over the connected apps; an unknown number is left out of its sum, and so
/// are the costs of apps priced in another currency than the overview's.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub seats: u32,
    pub active_30d: u32,
    pub inactive_seats: u32,
    pub monthly_cost: f64,
    pub potential_savings: f64,
    /// Connected apps whose costs are in another currency (left out of the sums).
    pub apps_in_other_currencies: Vec<String>,
}

/// An app renewing in the next [`RENEWAL_HORIZON_DAYS`] days.
#[derive(Debug, Serialize)]
pub struct RenewalView {
    pub provider: String,
    pub name: String,
    /// Days from today (UTC) to the renewal.
    pub days_until: i64,
    pub currency: Option<String>,
    #[serde(flatten)]
    pub renewal: Renewal,
}

#[derive(Debug, Serialize)]
pub struct Overview {
    pub org: OrgId,
    pub generated_at: String,
    /// The currency of the totals: the one most connected apps' prices are in.
    pub currency: String,
    pub apps: Vec<AppSummary>,
    pub totals: Totals,
    /// Renewals in the next 90 days, soonest first.
    pub renewals: Vec<RenewalView>,
    pub definitions: BTreeMap<&'static str, &'static str>,
}

/// How far ahead the overview lists renewals.
pub const RENEWAL_HORIZON_DAYS: i64 = 90;

/// One Query for the org's connections and two BatchGetItems (summaries, plans)
/// whatever the number of apps.
pub async fn overview(store: &DynamoDbStore, config: &Config, caller: &Caller) -> Result<Overview> {
    let now = config.clock.now();
    let connections = store.connections(&caller.org).await?;
    let connected: Vec<&Provider> = config
        .catalog
        .providers()
        .iter()
        .filter(|p| connections.iter().any(|c| c.provider == p.id))
        .collect();
    let connected_ids: Vec<&str> = connected.iter().map(|p| p.id.as_str()).collect();
    let (mut summaries, mut plans) = store
        .summaries_and_plans(&caller.org, &connected_ids)
        .await?;
    let currency = totals_currency(connected_ids.iter().filter_map(|p| summaries.get(*p)));
    let today = now.date();
    let mut totals = Totals::default();
    let mut renewals = Vec::new();
    let mut apps = Vec::new();
    for provider in config.catalog.providers() {
        let connection = connections.iter().find(|c| c.provider == provider.id);
        let summary = summaries.remove(&provider.id).unwrap_or_else(|| Summary {
            inactive_days: DEFAULT_INACTIVE_DAYS,
            ..Summary::default()
        });
        if connection.is_some() {
            totals.seats += summary.seats.unwrap_or(0);
            totals.active_30d += summary.active_30d.unwrap_or(0);
            totals.inactive_seats += summary.inactive_seats.unwrap_or(0);
            let priced = summary.monthly_cost.is_some();
            if !priced || summary.currency.as_deref().unwrap_or(DEFAULT_CURRENCY) == currency {
                totals.monthly_cost += summary.monthly_cost.unwrap_or(0.0);
                totals.potential_savings += summary.potential_savings.unwrap_or(0.0);
            } else {
                totals.apps_in_other_currencies.push(provider.id.clone());
            }
            if let Some(renewal) = &summary.renewal {
                let days_until = parse_day(&renewal.date).map(|d| (d - today).whole_days());
                if let Some(days_until) =
                    days_until.filter(|d| (0..=RENEWAL_HORIZON_DAYS).contains(d))
                {
                    renewals.push(RenewalView {
                        provider: provider.id.clone(),
                        name: provider.name.clone(),
                        days_until,
                        currency: summary.currency.clone(),
                        renewal: renewal.clone(),
                    });
                }
            }
        }
        apps.push(AppSummary {
            provider: provider.id.clone(),
            name: provider.name.clone(),
            auth_modes: auth_modes(config, provider),
            pricing: provider.pricing,
            connection: ConnectionView::of(connection, now),
            summary,
            per_seat_activity: provider.per_seat_activity,
            activity_note: activity_note(provider),
            plan_utilization_percent: plans
                .remove(&provider.id)
                .and_then(|p| PlanView::of(p).utilization_percent),
            sources: sources(provider),
        });
    }
    totals.monthly_cost = (totals.monthly_cost * 100.0).round() / 100.0;
    totals.potential_savings = (totals.potential_savings * 100.0).round() / 100.0;
    renewals.sort_by_key(|r| (r.days_until, r.provider.clone()));
    Ok(Overview {
        org: caller.org.clone(),
        generated_at: crate::domain::rfc3339(now),
        currency,
        apps,
        totals,
        renewals,
        definitions: definitions(),
    })
}

/// The currency most priced apps use (the default where none is priced; ties go to
/// the first in alphabetical order).
fn totals_currency<'a>(summaries: impl Iterator<Item = &'a Summary>) -> String {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for s in summaries.filter(|s| s.monthly_cost.is_some()) {
        *count
            .entry(s.currency.as_deref().unwrap_or(DEFAULT_CURRENCY))
            .or_default() += 1;
    }
    count
        .iter()
        .max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c)))
        .map_or(DEFAULT_CURRENCY, |(c, _)| *c)
        .to_string()
}
