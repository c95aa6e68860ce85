//! The audit trail's records: what one change attempt was (who, what, which app,
//! when, the outcome), and the admin capability that carries the attempt's identity.
//!
//! Every change attempt is one [`AuditEntry`], keyed by its request (so an outcome
//! recorded after the change, see `audit_trail`, lands on the same entry). A change's
//! entry is written in the same DynamoDB transaction as the change (`store::audit`):
//! a change whose entry cannot be written is not made. Never a secret: details hold
//! ids, names and settings values only.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::caller::{Caller, Role};
use crate::domain::org::OrgId;
use crate::domain::time::rfc3339;
use crate::error::{Error, Result};

/// How long entries are kept (DynamoDB TTL on `expires_at`).
pub const RETENTION_DAYS: i64 = 400;

/// What was attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A first connect through the vendor's consent screen.
    Connect,
    /// A connect (OAuth or API key) over an existing connection record.
    Reconnect,
    /// A first connect with an API key.
    ApiKey,
    InviteCreated,
    /// An invite link used by the app's admin (the Continue button, or a pasted key).
    InviteUsed,
    InviteRevoked,
    Disconnect,
    /// A disconnect that deletes the synced data too.
    Purge,
    /// The app's settings saved (the entry holds the old and new values).
    Settings,
    SyncNow,
    /// An admin's choice on a connect that landed on another vendor account: switch and
    /// keep the old account's data apart, switch and purge it, or keep the old account.
    AccountChange,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Connect,
        Action::Reconnect,
        Action::ApiKey,
        Action::InviteCreated,
        Action::InviteUsed,
        Action::InviteRevoked,
        Action::Disconnect,
        Action::Purge,
        Action::Settings,
        Action::SyncNow,
        Action::AccountChange,
    ];

    /// The stored (serde) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Connect => "connect",
            Action::Reconnect => "reconnect",
            Action::ApiKey => "api_key",
            Action::InviteCreated => "invite_created",
            Action::InviteUsed => "invite_used",
            Action::InviteRevoked => "invite_revoked",
            Action::Disconnect => "disconnect",
            Action::Purge => "purge",
            Action::Settings => "settings",
            Action::SyncNow => "sync_now",
            Action::AccountChange => "account_change",
        }
    }

    pub fn parse(value: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == value)
    }

    /// What a refusal names: "disconnecting needs the admin role".
    pub fn describe(self) -> &'static str {
        match self {
            Action::Connect => "connecting",
            Action::Reconnect => "reconnecting",
            Action::ApiKey => "connecting with an API key",
            Action::InviteCreated => "creating an invite link",
            Action::InviteUsed => "using an invite link",
            Action::InviteRevoked => "revoking an invite link",
            Action::Disconnect => "disconnecting",
            Action::Purge => "purging",
            Action::Settings => "saving settings",
            Action::SyncNow => "sync now",
            Action::AccountChange => "deciding an account change",
        }
    }
}

/// How the attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The change was made.
    Done,
    /// Not allowed or not valid (a 4xx: the viewer role, bad input, a key the vendor
    /// refused, consent denied): nothing was changed.
    Refused,
    /// A fault (ours or the vendor's) stopped it.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    /// The outcome of an attempt that ended in `error`.
    pub fn of_error(error: &Error) -> Outcome {
        if error.status() < 500 {
            Outcome::Refused
        } else {
            Outcome::Failed
        }
    }
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A signed-in member of the org (subject and email from the verified token).
    Member,
    /// The app's admin holding an invite link: no dashboard identity; the subject is
    /// the vendor account that consented (or "invited admin" before it is known).
    Invitee,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A member's role when acting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
}

impl Actor {
    pub fn member(caller: &Caller) -> Actor {
        Actor {
            kind: ActorKind::Member,
            subject: caller.user.clone(),
            email: caller.email.clone(),
            role: Some(caller.role),
        }
    }

    pub fn invitee(vendor_account: Option<&str>) -> Actor {
        Actor {
            kind: ActorKind::Invitee,
            subject: vendor_account.unwrap_or(INVITED_ADMIN).to_string(),
            email: None,
            role: None,
        }
    }
}

/// The subject of an invitee whose vendor account is not known (yet).
pub const INVITED_ADMIN: &str = "invited admin";

/// Free-form facts of an entry (ids, names, settings values; never a secret).
pub type Details = BTreeMap<String, serde_json::Value>;

/// One change attempt's identity: its entry's key and who, what, which app, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditScope {
    pub org: OrgId,
    pub request_id: String,
    pub at: OffsetDateTime,
    pub action: Action,
    /// An app of the catalog (None when the request named none or an unknown one).
    pub provider: Option<String>,
    pub actor: Actor,
}

impl AuditScope {
    /// The attempt of a signed-in member, in the request `caller` made.
    pub fn member(
        caller: &Caller,
        action: Action,
        provider: Option<String>,
        at: OffsetDateTime,
    ) -> AuditScope {
        AuditScope {
            org: caller.org.clone(),
            request_id: caller.request_id.clone(),
            at,
            action,
            provider,
            actor: Actor::member(caller),
        }
    }

    /// The attempt of a tool or test acting outside a request (`seatscope-tools`) at
    /// `at` (the functions' clock): e.g. `AuditScope::tool("acme", Action::SyncNow, now)`.
    pub fn tool(org: &OrgId, action: Action, at: OffsetDateTime) -> AuditScope {
        AuditScope::member(&Caller::member(org, "seatscope-tools"), action, None, at)
    }

    pub fn entry(
        &self,
        outcome: Outcome,
        error_code: Option<&str>,
        details: Details,
    ) -> AuditEntry {
        AuditEntry {
            org_id: self.org.clone(),
            at: rfc3339(self.at),
            request_id: self.request_id.clone(),
            action: self.action,
            provider: self.provider.clone(),
            outcome,
            actor: self.actor.clone(),
            error_code: error_code.map(str::to_string),
            details,
            expires_at: (self.at + time::Duration::days(RETENTION_DAYS)).unix_timestamp(),
        }
    }

    /// The entry of the change made: what the change's transaction writes.
    pub fn done(&self, details: Details) -> AuditEntry {
        self.entry(Outcome::Done, None, details)
    }

    /// The same attempt, recorded as another action (a connect that turns out to be
    /// a Reconnect).
    pub fn as_action(&self, action: Action) -> AuditScope {
        AuditScope {
            action,
            ..self.clone()
        }
    }

    pub fn by(&self, actor: Actor) -> AuditScope {
        AuditScope {
            actor,
            ..self.clone()
        }
    }
}

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub org_id: OrgId,
    pub at: String,
    pub request_id: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub outcome: Outcome,
    pub actor: Actor,
    /// The error's code, for refused and failed attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Always stored (empty or not): outcomes learnt later are set inside it.
    #[serde(default)]
    pub details: Details,
    /// TTL (epoch seconds): [`RETENTION_DAYS`] after the attempt.
    pub expires_at: i64,
}

/// Proof that the caller holds the admin role, carrying the attempt's audit identity.
/// Only [`Caller::admin`] makes one (the fields are private), and every write
/// operation takes `&Admin`, so no change can be made without the check, nor without
/// the scope its entry is written under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    caller: Caller,
    audit: AuditScope,
}

impl Admin {
    pub fn audit(&self) -> &AuditScope {
        &self.audit
    }
}

impl std::ops::Deref for Admin {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl Caller {
    /// The one check before any change: the capability every write operation takes.
    /// A viewer is refused with 403 `admin_role_required`, naming the action and
    /// what grants the role.
    pub fn admin(&self, audit: AuditScope) -> Result<Admin> {
        match self.role {
            Role::Admin => Ok(Admin {
                caller: self.clone(),
                audit,
            }),
            Role::Viewer => Err(Error::Forbidden {
                code: "admin_role_required",
                message: format!(
                    "{} needs the admin role: a token with {}; ask your identity provider's admin",
                    audit.action.describe(),
                    self.admin_grant
                ),
            }),
        }
    }

    /// For tools and tests acting outside a request: the check, with a scope at the
    /// system clock's now.
    pub fn admin_for(&self, action: Action) -> Result<Admin> {
        self.admin(AuditScope::member(
            self,
            action,
            None,
            OffsetDateTime::now_utc(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_parses_back_from_its_stored_name() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(
                serde_json::to_value(a).unwrap(),
                serde_json::json!(a.as_str())
            );
        }
        assert_eq!(Action::parse("drop_table"), None);
    }

    #[test]
    fn an_entry_is_keyed_by_its_request_and_kept_400_days() {
        let caller = Caller::member(&OrgId::parse("acme").unwrap(), "u-1");
        let at = time::macros::datetime!(2026-11-23 10:00:00.5 UTC);
        let scope = AuditScope::member(&caller, Action::SyncNow, Some("pagerduty".into()), at);
        let e = scope.done(Details::new());
        assert_eq!(
            (e.org_id.as_str(), e.at.as_str()),
            ("acme", "2026-11-23T10:00:00.5Z")
        );
        assert_eq!(e.request_id, caller.request_id);
        assert_eq!(e.expires_at - at.unix_timestamp(), 400 * 86_400);
        // A later outcome of the same attempt lands on the same item.
        let failed = scope.as_action(Action::Reconnect).entry(
            Outcome::Failed,
            Some("internal"),
            Details::new(),
        );
        assert_eq!((failed.at, failed.request_id), (e.at, e.request_id));
    }
}
