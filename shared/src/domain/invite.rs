//! Invite links: an app's admin (who has no dashboard account) connects the app for
//! the org through a single-use link.

use serde::{Deserialize, Serialize};

use crate::domain::org::OrgId;

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
    pub org_id: OrgId,
    pub provider: String,
    pub created_by: String,
    pub created_at: String,
    /// TTL attribute (epoch seconds) and the expiry every use checks.
    pub expires_at: i64,
}
