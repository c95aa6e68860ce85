//! An app's numbers for one UTC day: what the dashboard's charts read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the dashboard reads: one app's numbers for one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyRollup {
    pub date: String,
    pub seats: u32,
    /// Absent where the vendor reports no per-seat activity (nothing is invented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dau: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wau: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mau: Option<u32>,
    /// Feature totals of the day: summed over seats, or account-level where the
    /// vendor has no per-seat activity.
    pub features: BTreeMap<String, u64>,
    pub as_of: String,
}
