//! A pending OAuth authorization, between connect-start and the callback.

use serde::{Deserialize, Serialize};

use crate::domain::org::OrgId;

/// A pending OAuth authorization: single use (consumed by a conditional delete),
/// expires 10 minutes after creation. `Debug` never shows the PKCE verifier.
#[derive(Clone, Serialize, Deserialize)]
pub struct OAuthState {
    pub org_id: OrgId,
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
