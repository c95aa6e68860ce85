//! An app's headline numbers, as stored (so the overview reads one item per app) and
//! served. Computed by `domain::rules::summarize`.

use serde::{Deserialize, Serialize};

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
}
