//! A connection: one org's link to one SaaS app (how it authenticates, where its
//! credentials are, its sync schedule and checkpoints). Stored by `store::connections`.

use serde::{Deserialize, Serialize};

use crate::domain::catalog::AuthMode;
use crate::domain::org::OrgId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    Connected,
    NeedsReconnect,
    Error,
    Disconnected,
}

impl ConnectionStatus {
    /// The stored (serde) name, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::NeedsReconnect => "needs_reconnect",
            ConnectionStatus::Error => "error",
            ConnectionStatus::Disconnected => "disconnected",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSummary {
    pub seats: u32,
    pub activity_events: u64,
    pub days_written: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connection {
    pub org_id: OrgId,
    pub provider: String,
    pub status: ConnectionStatus,
    pub auth_mode: AuthMode,
    pub secret_name: String,
    pub connected_by: String,
    pub connected_at: String,
    /// The dashboard user who sent the invite link this connection came through;
    /// `connected_by` is then the vendor account that consented (or "invited admin").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_account: Option<String>,
    /// What the grant allows: the OAuth token's scopes, or the scopes checked on an
    /// API key (absent where the vendor tells none, or for records older than this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_summary: Option<SyncSummary>,
    /// Epoch seconds; the DueIndex sort key.
    pub next_sync_at: i64,
    /// Present while the connection is scheduled; absent takes it out of DueIndex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_shard: Option<String>,
    /// Checkpoint of the activity stream: events before this instant are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_synced_until: Option<String>,
    /// When a sync's seats stream last read the vendor's seats (every part of a sync
    /// reads them; the seats are written once, when the sync finishes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats_synced_at: Option<String>,
    /// Set when a sync writes its seats, removed when one finishes: the seats' last
    /// activity may lag the day counts written from this instant on (a run that
    /// paused or died wrote days but not yet the seats).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity_pending_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<i64>,
    /// Held (epoch seconds) while one caller refreshes the OAuth token set, so
    /// concurrent users of the connection never refresh twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_lock_until: Option<i64>,
    #[serde(default)]
    pub consecutive_failures: u32,
}
