//! An app's current seats under its settings: the seat list and its exports.

use serde::Serialize;
use time::Date;

use crate::config::Config;
use crate::domain::caller::Caller;
use std::collections::BTreeSet;

use crate::domain::catalog::Provider;
use crate::domain::rules::{downgrade_hint, seat_flags, DowngradeHint};
use crate::domain::seat::{Seat, SeatStatus};
use crate::domain::settings::AppSettings;
use crate::error::{Error, Result};
use crate::store::DynamoDbStore;

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
    /// Could move to a cheaper license (the provider's downgrade rule): the license
    /// and the monthly saving. None where the rule does not apply.
    pub downgrade: Option<DowngradeHint>,
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

fn seat_views(
    seats: Vec<Seat>,
    settings: &AppSettings,
    today: Date,
    provider: &Provider,
) -> Vec<SeatView> {
    let per_seat_activity = provider.per_seat_activity;
    let licenses: BTreeSet<String> = seats.iter().filter_map(|s| s.license.clone()).collect();
    let licenses: Vec<&str> = licenses.iter().map(String::as_str).collect();
    seats
        .into_iter()
        .filter(|s| s.status != SeatStatus::Removed)
        .map(|s| {
            let flags = seat_flags(&s, settings, today, per_seat_activity);
            let downgrade = provider
                .downgrade
                .as_ref()
                .and_then(|rule| downgrade_hint(rule, &s, &flags, settings, today, &licenses));
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
                downgrade,
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

/// The app's current seats under its settings (`inactive_days` overrides the
/// stored threshold for this answer only).
pub async fn seats(
    store: &DynamoDbStore,
    config: &Config,
    caller: &Caller,
    provider_id: &str,
    inactive_days: Option<u32>,
    filter: SeatFilter,
) -> Result<SeatsList> {
    let now = config.clock.now();
    let provider = config.catalog.get(provider_id)?;
    let data = store.app_data(&caller.org, &provider.id);
    let (settings, summary) = tokio::try_join!(data.settings(), data.summary())?;
    let mut settings = settings.unwrap_or_default();
    let stored = data.current_seats(summary.as_ref()).await?;
    if let Some(d) = inactive_days {
        settings.inactive_days = d;
    }
    let all = seat_views(stored, &settings, now.date(), provider);
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
