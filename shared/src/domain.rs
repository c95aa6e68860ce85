//! Domain records as they are stored: one DynamoDB table, every key prefixed by the
//! org (DESIGN §4). Items are (de)serialized with serde_dynamo; optional fields are
//! omitted rather than written as NULL (a NULL GSI key attribute is rejected).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::catalog::AuthMode;

/// Key layout. Partition keys start with the org so tenants cannot collide.
pub mod keys {
    use time::Date;

    pub fn org(org: &str) -> String {
        format!("ORG#{org}")
    }
    pub fn connection_sk(provider: &str) -> String {
        format!("CONN#{provider}")
    }
    pub const CONNECTION_PREFIX: &str = "CONN#";
    /// Partition of everything synced for one app of one org.
    pub fn app(org: &str, provider: &str) -> String {
        format!("ORG#{org}#APP#{provider}")
    }
    pub fn seat_sk(seat_id: &str) -> String {
        format!("SEAT#{seat_id}")
    }
    pub const SEAT_PREFIX: &str = "SEAT#";
    pub fn seat_day_sk(date: Date, seat_id: &str) -> String {
        format!("DAY#{}#SEAT#{seat_id}", super::day(date))
    }
    pub fn seat_day_prefix(date: Date) -> String {
        format!("DAY#{}#", super::day(date))
    }
    pub fn rollup_sk(date: Date) -> String {
        format!("ROLLUP#{}", super::day(date))
    }
    pub const ROLLUP_PREFIX: &str = "ROLLUP#";
    pub fn run_sk(started: &str, run_id: &str) -> String {
        format!("RUN#{started}#{run_id}")
    }
    pub const RUN_PREFIX: &str = "RUN#";
    pub const PLAN_SK: &str = "PLAN";
    /// The org's settings of one app (threshold, grace period, exemptions, price).
    pub const SETTINGS_SK: &str = "SETTINGS";
    /// The app's headline numbers, computed when a sync finishes or settings change.
    pub const SUMMARY_SK: &str = "SUMMARY";
    /// The parts of the seat-list snapshot written with the summary.
    pub const SEAT_SNAPSHOT_PREFIX: &str = "SEATLIST#";
    /// OAuth state is keyed by the SHA-256 of the state value, not the value itself.
    pub fn oauth_state(state_hash: &str) -> String {
        format!("OAUTH_STATE#{state_hash}")
    }
    pub const OAUTH_STATE_SK: &str = "OAUTH_STATE";
    /// Sharded partition of the DueIndex GSI so the scheduler's reads spread out.
    pub fn due_shard(org: &str, provider: &str, shards: u32) -> String {
        let h = org
            .bytes()
            .chain(provider.bytes())
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        format!("DUE#{}", h % shards)
    }
    pub const DUE_SHARDS: u32 = 4;
    /// The org's audit trail: one partition per org (a few writes a day).
    pub fn audit(org: &str) -> String {
        format!("ORG#{org}#AUDIT")
    }
    pub const AUDIT_PREFIX: &str = "AUDIT#";
    /// An attempt's entry: the time (fixed width, so the sort key orders entries by
    /// time) and the request id.
    pub fn audit_sk(at: time::OffsetDateTime, request_id: &str) -> String {
        let at = at.to_offset(time::UtcOffset::UTC);
        format!(
            "AUDIT#{}T{:02}:{:02}:{:02}.{:06}Z#{request_id}",
            super::day(at.date()),
            at.hour(),
            at.minute(),
            at.second(),
            at.microsecond()
        )
    }
}

pub fn day(date: Date) -> String {
    let (y, m, d) = (date.year(), date.month() as u8, date.day());
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn parse_day(s: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &format).ok()
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Who is calling, from the JWT claims API Gateway's authorizer verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub org: String,
    pub user: String,
    /// From the configured role claim (`ROLE_CLAIM`, `ADMIN_VALUES`); every member
    /// is an admin when no role claim is configured.
    pub role: Role,
    /// What grants the admin role, for refusals ("the 'groups' claim containing
    /// seatscope-admins"); empty when roles are off.
    pub admin_grant: String,
    /// The `email` claim, where the token has one (the audit trail shows it).
    pub email: Option<String>,
    /// The id of the request being served (API Gateway's), keying its audit entry.
    pub request_id: String,
}

/// The two roles: an admin may change things, a viewer reads everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Viewer,
}

impl Caller {
    /// A member of `org` with roles off (every member an admin): for tools and
    /// tests that act outside a request.
    pub fn member(org: &str, user: &str) -> Caller {
        Caller {
            org: org.to_string(),
            user: user.to_string(),
            email: None,
            role: Role::Admin,
            admin_grant: String::new(),
            request_id: new_request_id(),
        }
    }
}

/// A request id for work no API Gateway request carries (tools, hand-made events):
/// `seatscope-` and 16 random hex characters.
pub fn new_request_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("seatscope-{hex}")
}

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
    pub pk: String,
    pub sk: String,
    pub org_id: String,
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
    /// Checkpoint of the seats stream: when seats were last written. Later than
    /// `last_sync_at` while a sync is under way (paused at a deadline, or crashed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats_synced_at: Option<String>,
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
    pub pk: String,
    pub sk: String,
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
    pub pk: String,
    pub sk: String,
    pub date: String,
    pub seat_id: String,
    pub features: BTreeMap<String, u32>,
    pub total: u32,
}

/// What the dashboard reads: one app's numbers for one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyRollup {
    pub pk: String,
    pub sk: String,
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

/// Plan credits of a usage-priced app (SendGrid), as of the last sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanItem {
    pub pk: String,
    pub sk: String,
    pub plan: crate::connectors::PlanUsage,
    pub as_of: String,
}

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
    pub pk: String,
    pub sk: String,
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

/// A pending OAuth authorization: single use (consumed by a conditional delete),
/// expires 10 minutes after creation. `Debug` never shows the PKCE verifier.
#[derive(Clone, Serialize, Deserialize)]
pub struct OAuthState {
    pub pk: String,
    pub sk: String,
    pub org_id: String,
    pub user_id: String,
    /// The member's email claim, for the audit entry the callback writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    pub provider: String,
    /// The PKCE verifier: useless without the authorization code, which only the
    /// registered redirect URI receives; deleted with the state on first use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce_verifier: Option<String>,
    pub return_to: String,
    /// Set when the connect started from an invite link (the user who sent it):
    /// the callback then records who consented and ends on a page, not the dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_by: Option<String>,
    /// Hex SHA-256 of the browser nonce (RFC 9700 §4.7.1): the callback is finished
    /// only by the browser holding the nonce in its cookie. Absent (a state stored
    /// by an older version) is refused like a mismatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_hash: Option<String>,
    pub created_at: String,
    /// TTL attribute (epoch seconds) and the expiry the consume checks.
    pub expires_at: i64,
}

impl std::fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthState")
            .field("pk", &self.pk)
            .field("sk", &self.sk)
            .field("org_id", &self.org_id)
            .field("user_id", &self.user_id)
            .field("user_email", &self.user_email)
            .field("provider", &self.provider)
            .field(
                "pkce_verifier",
                &self.pkce_verifier.as_ref().map(|_| "[REDACTED]"),
            )
            .field("return_to", &self.return_to)
            .field("invited_by", &self.invited_by)
            .field("browser_hash", &self.browser_hash)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Invite links: keyed by the SHA-256 of the token, never the token itself.
pub fn invite_pk(token_hash: &str) -> String {
    format!("INVITE#{token_hash}")
}
pub const INVITE_SK: &str = "INVITE";
/// The org's pending invites of one app, listed without a Scan: one item under the
/// org's partition whose `invites` map holds, per invite id, what the list shows
/// and the token hash (never the token).
pub fn invites_index_sk(provider: &str) -> String {
    format!("INVITES#{provider}")
}
/// An API-key invite is burnt by this many refused keys (it is not a free oracle
/// for testing stolen vendor keys). The count is the invite item's `refused_keys`.
pub const INVITE_MAX_REFUSED_KEYS: u32 = 5;

/// The non-secret id of an invite, as listed and revoked: the first 16 hex
/// characters of the token's SHA-256 (64 bits; a token is 256).
pub fn invite_id(token_hash: &str) -> String {
    token_hash.chars().take(16).collect()
}

/// One entry of the invites index (see [`invites_index_sk`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteEntry {
    pub token_hash: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: i64,
}

/// An invite link for an app's admin (who has no dashboard account) to connect
/// the app for the org: single use (consumed by a conditional delete), expires
/// after 7 days (also the TTL attribute).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invite {
    pub pk: String,
    pub sk: String,
    pub org_id: String,
    pub provider: String,
    pub created_by: String,
    pub created_at: String,
    /// TTL attribute (epoch seconds) and the expiry every use checks.
    pub expires_at: i64,
}
