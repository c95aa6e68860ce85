//! Sync runs: what a run (all its parts) did, and what a continuation carries.

use serde::{Deserialize, Serialize};

use crate::domain::connection::SyncSummary;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
}

/// One recorded run: a tick's sync and its continuations (parts paused at a Lambda
/// deadline) together, from the first part's start to the last part's end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncRun {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub status: RunStatus,
    /// Seats as the last part left them; events and days summed over the parts.
    pub summary: SyncSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The vendor requests of every part (absent on runs recorded before they were).
    #[serde(default)]
    pub requests: RequestCounts,
    /// Invocations the run took: 1, plus one per continuation (0: recorded before).
    #[serde(default)]
    pub parts: u32,
    /// TTL: runs are a short history.
    pub expires_at: i64,
}

/// Vendor requests of a run: sent (retries included), retried, answered 429.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
}

impl std::ops::AddAssign for RequestCounts {
    fn add_assign(&mut self, other: RequestCounts) {
        self.requests += other.requests;
        self.retries += other.retries;
        self.rate_limited += other.rate_limited;
    }
}

/// What the parts of a run before this one did: carried by a continuation's message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSoFar {
    /// The first part's start (RFC 3339).
    pub started_at: String,
    pub parts: u32,
    pub activity_events: u64,
    pub days_written: u32,
    pub requests: RequestCounts,
}

/// A new run's id (also its lease owner): 24 random hex characters.
pub fn new_run_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
