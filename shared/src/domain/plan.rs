//! Plan credits of a usage-priced app (SendGrid).

use serde::{Deserialize, Serialize};

/// Plan credits of a usage-priced app (SendGrid), as of the last sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    pub plan: PlanUsage,
    pub as_of: String,
}

/// Plan credits: how much of what the plan includes is used this period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanUsage {
    pub total: i64,
    pub used: i64,
    pub remain: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_reset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_frequency: Option<String>,
}
