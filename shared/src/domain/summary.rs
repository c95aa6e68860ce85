//! An app's headline numbers, as stored (so the overview reads one item per app) and
//! served. Computed by `domain::rules::summarize`.

use serde::{Deserialize, Serialize};

use crate::domain::settings::BillingPeriod;

/// The headline numbers of one app, as stored (SUMMARY item) and served.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The latest synced day (today's when the app synced today: its numbers are
    /// partial); seats are counted as of the sync that wrote it.
    pub as_of_date: Option<String>,
    /// The last complete UTC day (yesterday when the app synced today): the day
    /// `dau`, `active_30d`, `utilization_percent` and `cost_per_active_user` are
    /// for. None until a synced day is complete.
    #[serde(default)]
    pub headline_day: Option<String>,
    pub seats: Option<u32>,
    /// DAU of `headline_day`.
    pub dau: Option<u32>,
    /// MAU of `headline_day`: distinct seats active in the 30 days ending it.
    pub active_30d: Option<u32>,
    pub utilization_percent: Option<f64>,
    pub inactive_days: u32,
    /// Inactive under the settings (threshold, grace period, exemptions).
    pub inactive_seats: Option<u32>,
    pub seat_price: Option<f64>,
    /// seat_price × seats, per month.
    pub monthly_cost: Option<f64>,
    pub cost_per_active_user: Option<f64>,
    /// inactive_seats × seat_price, per month.
    pub potential_savings: Option<f64>,
    /// When these were computed.
    pub computed_at: Option<String>,
    /// The prices' currency (the app's settings).
    #[serde(default)]
    pub currency: Option<String>,
    /// The costs per license type, where the app is priced per seat and reports
    /// per-seat activity.
    #[serde(default)]
    pub by_license: Vec<LicenseCost>,
    /// Seats that could move to a cheaper license (the provider's downgrade rule;
    /// None where it has none).
    pub downgradable_seats: Option<u32>,
    /// What moving them saves per month: None while one of them has no saving known.
    pub downgrade_savings: Option<f64>,
    /// The next renewal, where the app's settings have a renewal date.
    #[serde(default)]
    pub renewal: Option<Renewal>,
}

/// The seats of one license type and what they cost per month.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LicenseCost {
    /// The vendor's name of the license; None for seats it reports none for.
    pub license: Option<String>,
    pub seats: u32,
    /// Seats with activity in the 30 days ending the summary's day.
    pub active_30d: u32,
    /// Inactive under the settings (as `inactive_seats`).
    pub inactive_seats: u32,
    /// The license's price per seat per month (or the seat price).
    pub price: Option<f64>,
    /// price × seats.
    pub monthly_cost: Option<f64>,
    /// monthly_cost ÷ active_30d.
    pub cost_per_active_user: Option<f64>,
    /// price × inactive_seats.
    pub potential_savings: Option<f64>,
}

/// The app's next renewal and what reclaiming the inactive seats before it saves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Renewal {
    /// YYYY-MM-DD: the renewal date moved forward by whole billing periods.
    pub date: String,
    pub billing_period: BillingPeriod,
    pub seats: Option<u32>,
    pub inactive_seats: Option<u32>,
    pub monthly_cost: Option<f64>,
    /// potential_savings × the months one billing period pays for (1 or 12): what the
    /// inactive seats would cost in the period the renewal starts.
    pub saving_if_reclaimed: Option<f64>,
    /// The downgradable seats (as the summary's).
    pub downgradable_seats: Option<u32>,
    /// downgrade_savings × the months one billing period pays for.
    pub saving_if_downgraded: Option<f64>,
}
