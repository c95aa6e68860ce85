//! Seats (one per vendor user) and their per-day feature counts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatStatus {
    Active,
    Invited,
    /// No longer reported by the vendor; kept so its history stays readable.
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    pub seat_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    pub status: SeatStatus,
    pub first_seen_at: String,
    pub last_seen_at: String,
    /// Last UTC day with any activity event, YYYY-MM-DD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity_on: Option<String>,
    /// Last UTC day with a responder action (the provider's downgrade rule's
    /// `responder_features`, e.g. PagerDuty's acknowledge, resolve, reassign,
    /// escalate), YYYY-MM-DD; None when none was seen or the vendor has no such rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_response_on: Option<String>,
    /// Days with activity in the 30 days ending the last sync's day (per-seat vendors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_days_30: Option<u32>,
    /// First reported after the app's first import, so `first_seen_at` is when the
    /// seat was added (seats of the first import existed before; no grace period).
    #[serde(default)]
    pub added_after_import: bool,
    /// On call at the last sync (PagerDuty `/oncalls`): now, or on a schedule or
    /// escalation policy in the on-call window. Such a seat is never reclaimable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_call: Option<OnCall>,
}

/// Where a seat is on call, as the vendor reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCall {
    /// On call at the sync's instant.
    pub now: bool,
    /// The schedule's name; None where an escalation rule targets the user directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The escalation policy's name.
    pub escalation_policy: String,
}

/// Absolute feature counts of one seat on one UTC day (rewritten whole on re-sync).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatDay {
    pub date: String,
    pub seat_id: String,
    pub features: BTreeMap<String, u32>,
    pub total: u32,
}

#[cfg(test)]
impl Seat {
    /// A seat for tests: active, seen first at `first_seen`, last active on `last`.
    pub(crate) fn sample(id: &str, last: Option<&str>, first_seen: &str, added: bool) -> Seat {
        Seat {
            seat_id: id.into(),
            email: format!("{id}@x.example"),
            name: id.into(),
            role: "user".into(),
            license: None,
            status: SeatStatus::Active,
            first_seen_at: first_seen.into(),
            last_seen_at: first_seen.into(),
            last_activity_on: last.map(str::to_string),
            active_days_30: None,
            last_response_on: None,
            added_after_import: added,
            on_call: None,
        }
    }
}
