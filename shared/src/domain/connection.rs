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
    /// The vendor account's identity (PagerDuty subdomain, PandaDoc workspace id,
    /// SendGrid username): a connect that lands on another one waits for an admin's
    /// choice ([`PendingAccountChange`]). Absent where the vendor tells none (an
    /// account-level PagerDuty key, a SendGrid key without `user.username.read`) and on
    /// records older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_account_id: Option<String>,
    /// A connect (OAuth, API key or invite) that landed on another vendor account than
    /// this connection's: the connection keeps syncing the old account until an admin
    /// keeps its data apart or purges it (or cancels the change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_account_change: Option<PendingAccountChange>,
    /// Earlier vendor accounts whose data an admin kept apart when the connection moved
    /// to another account, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archives: Vec<ArchivedAccount>,
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

/// A connect waiting for an admin's choice because it landed on another vendor account.
/// Its credentials are in Secrets Manager under `secret_name` (never in the table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAccountChange {
    pub vendor_account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_account: Option<String>,
    pub auth_mode: AuthMode,
    /// Where the new credentials wait (the connection's secret name + `/pending`).
    pub secret_name: String,
    pub connected_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    pub requested_at: String,
    /// Set when an admin's choice starts moving the old data: a retry after a fault
    /// moves the rest into the same archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_id: Option<String>,
    /// The admin's choice once made: a retry after a fault finishes that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_data: Option<OldData>,
}

/// What happens to the old account's data when a connection moves to another account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OldData {
    /// Moved into an archive of its own, listed on the connection (`archives`).
    KeepApart,
    /// Deleted.
    Purge,
}

impl OldData {
    pub fn as_str(self) -> &'static str {
        match self {
            OldData::KeepApart => "keep_apart",
            OldData::Purge => "purge",
        }
    }
}

/// An earlier vendor account's synced data, kept apart from the connection's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedAccount {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_account: Option<String>,
    /// When the archived account was connected, and when and by whom it was archived.
    pub connected_at: String,
    pub archived_at: String,
    pub archived_by: String,
    /// Items moved into the archive.
    pub items: u64,
}

/// The account a connect lands on differs from the connection's: `(from, to)`. Only
/// when both identities are known; a vendor that tells none cannot be compared.
pub fn account_change<'a>(
    existing: Option<&'a Connection>,
    new_account_id: Option<&'a str>,
) -> Option<(&'a str, &'a str)> {
    let from = existing?.vendor_account_id.as_deref()?;
    let to = new_account_id?;
    (from != to).then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(account: Option<&str>) -> Connection {
        serde_json::from_value(serde_json::json!({
            "org_id": "acme", "provider": "pagerduty", "status": "connected",
            "auth_mode": "oauth2", "secret_name": "s", "connected_by": "u",
            "connected_at": "2026-11-01T00:00:00Z", "next_sync_at": 0,
            "vendor_account_id": account,
        }))
        .unwrap()
    }

    #[test]
    fn an_account_change_needs_both_identities_and_a_difference() {
        let a = connection(Some("acme"));
        assert_eq!(
            account_change(Some(&a), Some("globex")),
            Some(("acme", "globex"))
        );
        assert_eq!(account_change(Some(&a), Some("acme")), None);
        // A vendor that tells no identity (an account-level key) cannot be compared.
        assert_eq!(account_change(Some(&a), None), None);
        // A record from before identities were kept, or no connection at all.
        assert_eq!(
            account_change(Some(&connection(None)), Some("globex")),
            None
        );
        assert_eq!(account_change(None, Some("globex")), None);
    }
}
