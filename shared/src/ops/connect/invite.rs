//! Invite links: an admin asks the app's admin (who has no dashboard account) to
//! connect the app for the org, by OAuth or by pasting a key into the link.

use base64::Engine as _;
use rand::RngCore;
use secrecy::SecretString;
use serde::Serialize;
use time::OffsetDateTime;

use crate::deps::Deps;
use crate::domain::audit::{Action, Actor, Admin, AuditScope, Details, Outcome};
use crate::domain::caller::Caller;
use crate::domain::catalog::{AuthMode, Provider};
use crate::domain::invite::{invite_id, Invite, INVITE_MAX_REFUSED_KEYS};
use crate::domain::time::rfc3339;
use crate::error::{Error, Result};
use crate::ops::audit_trail::{record, settle};
use crate::store::ConnectionGrant;

use super::*;

// --- invite links --------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct CreatedInvite {
    /// The id the list shows and a revoke takes (not the token).
    pub id: String,
    /// `<public base>/connect/invite/<token>`: the token is the capability; it is
    /// stored only as its SHA-256.
    pub url: String,
    pub expires_at: String,
}

/// Where the API is served, from the exact OAuth redirect URI: its origin (plus
/// any base path in front of `/oauth/callback`, e.g. a custom domain mapping).
pub fn public_base(redirect_uri: &url::Url) -> String {
    let origin = redirect_uri.origin().ascii_serialization();
    let path = redirect_uri
        .path()
        .strip_suffix("/oauth/callback")
        .unwrap_or("")
        .trim_end_matches('/');
    format!("{origin}{path}")
}

pub(super) fn new_invite_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// How an invite for this provider connects on this deployment: the vendor's
/// consent screen when OAuth is configured, else an API-key form.
pub(super) fn invite_mode(deps: &Deps, provider: &Provider) -> Result<AuthMode> {
    if oauth_ready(deps, provider) {
        Ok(AuthMode::Oauth2)
    } else if provider.supports(AuthMode::ApiKey) {
        Ok(AuthMode::ApiKey)
    } else {
        Err(Error::bad_request(
            "auth_mode_unsupported",
            format!(
                "{} connects through OAuth, and no OAuth client is configured for it on this \
                 deployment ({}_CLIENT_ID)",
                provider.name,
                provider.env_prefix()
            ),
        ))
    }
}

/// `POST /api/connections/{provider}/invites`: a single-use link for the app's
/// admin, valid for 7 days.
pub async fn create_invite(
    deps: &Deps,
    caller: &Admin,
    provider_id: &str,
) -> Result<CreatedInvite> {
    let provider = deps.config.catalog.get(provider_id)?;
    invite_mode(deps, provider)?;
    let token = new_invite_token();
    let hash = state_hash(&token);
    let now = deps.config.clock.now();
    let expires = now + INVITE_TTL;
    let invite = Invite {
        org_id: caller.org.clone(),
        provider: provider.id.clone(),
        created_by: caller.user.clone(),
        created_at: rfc3339(now),
        expires_at: expires.unix_timestamp(),
    };
    let mut details = Details::new();
    details.insert("invite_id".into(), invite_id(&hash).into());
    details.insert("expires_at".into(), rfc3339(expires).into());
    deps.store
        .create_invite(&invite, &hash, &caller.audit().done(details))
        .await?;
    tracing::info!(org = %caller.org, provider = %provider.id, "invite link created");
    Ok(CreatedInvite {
        id: invite_id(&hash),
        url: format!(
            "{}/connect/invite/{token}",
            public_base(&deps.config.oauth_redirect_uri)
        ),
        expires_at: rfc3339(expires),
    })
}

/// A pending invite as listed: never its token (nor the token's hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingInvite {
    /// Non-secret id (the first 16 hex characters of the token's SHA-256), for revoking.
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    /// The dashboard user who created the link.
    pub invited_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingInvites {
    pub invites: Vec<PendingInvite>,
}

/// `GET /api/connections/{provider}/invites`: the caller's org's invites of the app
/// that can still be used (not expired, not used, not burnt, not revoked), oldest first.
pub async fn list_invites(
    deps: &Deps,
    caller: &Caller,
    provider_id: &str,
) -> Result<PendingInvites> {
    let provider = deps.config.catalog.get(provider_id)?;
    let now = deps.config.clock.now();
    let mut invites = Vec::new();
    for (id, entry) in deps.store.invite_entries(&caller.org, &provider.id).await? {
        if entry.expires_at <= now.unix_timestamp() {
            continue;
        }
        // The index is kept best effort: the invite itself says whether it is usable.
        let usable = deps
            .store
            .invite(&entry.token_hash, now)
            .await?
            .is_some_and(|i| i.org_id == caller.org && i.provider == provider.id);
        if usable {
            invites.push(PendingInvite {
                id,
                created_at: entry.created_at,
                expires_at: OffsetDateTime::from_unix_timestamp(entry.expires_at)
                    .map(rfc3339)
                    .unwrap_or_default(),
                invited_by: entry.created_by,
            });
        }
    }
    invites.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(PendingInvites { invites })
}

/// `DELETE /api/connections/{provider}/invites/{id}`: the link stops working at
/// once. An id the caller's org does not have (another org's included) is 404.
pub async fn revoke_invite(deps: &Deps, caller: &Admin, provider_id: &str, id: &str) -> Result<()> {
    let provider = deps.config.catalog.get(provider_id)?;
    let not_found = || Error::NotFound(format!("invite '{id}' of {}", provider.name));
    let well_formed = id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let mut details = Details::new();
    details.insert("invite_id".into(), id.into());
    if !well_formed
        || !deps
            .store
            .revoke_invite(&caller.org, &provider.id, id, &caller.audit().done(details))
            .await?
    {
        return Err(not_found());
    }
    tracing::info!(org = %caller.org, provider = %provider.id, "invite link revoked");
    Ok(())
}

pub(super) fn invite_unusable() -> Error {
    Error::Gone {
        code: "invite_unusable",
        message: "This invite link cannot be used: it is unknown, has expired (links last 7 \
                  days) or was already used. Ask the person who sent it for a new link."
            .into(),
    }
}

/// The hash of a well-formed token; anything else cannot be one of ours.
pub(super) fn invite_hash(token: &str) -> Result<String> {
    let well_formed = (32..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed {
        Ok(state_hash(token))
    } else {
        Err(invite_unusable())
    }
}

/// The API-key form of an invite: what the page shows (nothing secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyForm {
    pub provider_name: String,
    /// Who asked: the org and the dashboard user who created the link.
    pub asked_by: AskedBy,
    /// Scopes the key must carry, where the vendor can tell (SendGrid).
    pub required_scopes: Vec<String>,
    /// Why the last key was not accepted.
    pub problem: Option<String>,
}

/// The organization and the dashboard user (email or subject) behind an invite:
/// the invite pages name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskedBy {
    pub org: String,
    pub user: String,
}

impl AskedBy {
    fn of(invite: &Invite) -> AskedBy {
        AskedBy {
            org: invite.org_id.to_string(),
            user: invite.created_by.clone(),
        }
    }
}

impl KeyForm {
    fn of(provider: &Provider, invite: &Invite, problem: Option<String>) -> KeyForm {
        KeyForm {
            provider_name: provider.name.clone(),
            asked_by: AskedBy::of(invite),
            required_scopes: provider
                .api_key
                .as_ref()
                .map(|k| k.required_scopes.clone())
                .unwrap_or_default(),
            problem,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteLanding {
    /// OAuth: a page with a "Continue to <vendor>" button that posts back to the
    /// link. Opening the link uses nothing up, so link previews (chat apps, mail
    /// scanners fetch links with GET) cannot burn it.
    Continue {
        provider_name: String,
        asked_by: AskedBy,
        /// Origin of the vendor's consent page (the form's redirect goes there).
        vendor_origin: String,
    },
    /// API key: a form posting the key back to the same link.
    KeyForm(KeyForm),
}

/// The still-usable invite behind a link token, with its token hash and provider.
/// Unknown, malformed, expired or used → `invite_unusable`.
pub(super) async fn pending_invite<'a>(
    deps: &'a Deps,
    token: &str,
) -> Result<(String, Invite, &'a Provider)> {
    let hash = invite_hash(token)?;
    let invite = deps
        .store
        .invite(&hash, deps.config.clock.now())
        .await?
        .ok_or_else(invite_unusable)?;
    let provider = deps.config.catalog.get(&invite.provider)?;
    Ok((hash, invite, provider))
}

/// `GET /connect/invite/{token}` (no dashboard sign-in: the token is the
/// capability). Unknown, expired or used → `invite_unusable`.
pub async fn open_invite(deps: &Deps, token: &str) -> Result<InviteLanding> {
    let (_, invite, provider) = pending_invite(deps, token).await?;
    match invite_mode(deps, provider)? {
        AuthMode::ApiKey => Ok(InviteLanding::KeyForm(KeyForm::of(provider, &invite, None))),
        AuthMode::Oauth2 => Ok(InviteLanding::Continue {
            provider_name: provider.name.clone(),
            asked_by: AskedBy::of(&invite),
            vendor_origin: provider
                .oauth2
                .as_ref()
                .and_then(|o| url::Url::parse(&o.authorize_url).ok())
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default(),
        }),
    }
}

/// `POST /connect/invite/{token}` without a key (the "Continue" button of an
/// OAuth invite): the invite is used up, the OAuth state created, and the
/// browser goes on to the vendor's consent page (the returned URL), carrying the
/// binding cookie: the connect can only be finished in this browser.
pub async fn continue_invite(deps: &Deps, token: &str, request_id: &str) -> Result<StartedConnect> {
    let (hash, invite, provider) = pending_invite(deps, token).await?;
    let scope = invite_scope(deps, &invite, request_id);
    let started = continue_pending_invite(deps, &hash, provider, &scope).await;
    settle(deps, &scope, started).await
}

/// An attempt through an invite link: by the app's admin who holds it, in the org
/// that created it.
pub(super) fn invite_scope(deps: &Deps, invite: &Invite, request_id: &str) -> AuditScope {
    AuditScope {
        org: invite.org_id.clone(),
        request_id: request_id.to_string(),
        at: deps.config.clock.now(),
        action: Action::InviteUsed,
        provider: Some(invite.provider.clone()),
        actor: Actor::invitee(None),
    }
}

/// What an invite's use records: the link and the member who created it.
pub(super) fn invite_details(invite: &Invite, hash: &str) -> Details {
    let mut d = Details::new();
    d.insert("invite_id".into(), invite_id(hash).into());
    d.insert("invited_by".into(), invite.created_by.clone().into());
    d
}

pub(super) async fn continue_pending_invite(
    deps: &Deps,
    hash: &str,
    provider: &Provider,
    scope: &AuditScope,
) -> Result<StartedConnect> {
    if invite_mode(deps, provider)? != AuthMode::Oauth2 {
        return Err(Error::bad_request(
            "api_key_required",
            format!(
                "{} connects with an API key: paste it in the form.",
                provider.name
            ),
        ));
    }
    // Single use: used up (with the expiry in the condition) before the state is
    // created; a concurrent use loses here.
    let invite = deps
        .store
        .use_invite(hash, deps.config.clock.now(), Vec::new(), |invite| {
            let mut details = invite_details(invite, hash);
            details.insert("auth_mode".into(), "oauth2".into());
            scope.done(details)
        })
        .await?
        .ok_or_else(invite_unusable)?;
    let binding = BrowserBinding::new();
    let authorize_url = begin_oauth(
        deps,
        provider,
        (&invite.org_id, &invite.created_by, None),
        DEFAULT_RETURN_TO.to_string(),
        Some(invite.created_by.clone()),
        &binding,
    )
    .await?;
    tracing::info!(org = %invite.org_id, provider = %provider.id, "invite used: oauth connect started");
    Ok(StartedConnect {
        authorize_url,
        binding,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InviteKeyOutcome {
    Connected {
        provider_name: String,
        vendor_account: Option<String>,
    },
    /// The key is of another vendor account than the connection's: held until an admin
    /// of the org chooses (`account_change`).
    Held {
        provider_name: String,
        message: String,
    },
    /// The key was not accepted; the invite is still usable. `status` is the
    /// HTTP status for the re-shown form (400 malformed, 422 refused, 502 vendor down).
    Retry { status: u16, form: KeyForm },
}

/// `POST /connect/invite/{token}` with the key: the key is checked first, then
/// the invite is used up, then the secret and the connection are stored. A
/// refused key leaves the invite usable, up to [`INVITE_MAX_REFUSED_KEYS`]
/// refusals: the last one burns it (`invite_unusable`, saying why).
pub async fn submit_invite_key(
    deps: &Deps,
    token: &str,
    key: SecretString,
    request_id: &str,
) -> Result<InviteKeyOutcome> {
    let (hash, invite, _) = pending_invite(deps, token).await?;
    let scope = invite_scope(deps, &invite, request_id);
    let outcome = submit_pending_invite_key(deps, &hash, &invite, key, &scope).await;
    settle(deps, &scope, outcome).await
}

pub(super) async fn submit_pending_invite_key(
    deps: &Deps,
    hash: &str,
    invite: &Invite,
    key: SecretString,
    scope: &AuditScope,
) -> Result<InviteKeyOutcome> {
    let provider = api_key_provider(deps, &invite.provider)?;
    let (credentials, verified) = match verify_api_key(deps, provider, key).await {
        Ok(v) => v,
        // The vendor being down is not the key's fault: not counted.
        Err(e) if matches!(e, Error::Vendor { .. }) => {
            tracing::info!(org = %invite.org_id, provider = %provider.id, code = e.code(), "invite key not checked");
            record(
                deps,
                scope,
                Outcome::Failed,
                e.code(),
                invite_details(invite, hash),
            )
            .await;
            return Ok(InviteKeyOutcome::Retry {
                status: e.status(),
                form: KeyForm::of(provider, invite, Some(e.public_message())),
            });
        }
        Err(e) if e.status() < 500 => {
            let now = deps.config.clock.now();
            let refused = deps
                .store
                .record_refused_key(hash, now)
                .await?
                .ok_or_else(invite_unusable)?;
            tracing::info!(org = %invite.org_id, provider = %provider.id, code = e.code(), refused, "invite key not accepted");
            if refused >= INVITE_MAX_REFUSED_KEYS {
                deps.store
                    .delete_invite(&invite.org_id, &invite.provider, hash)
                    .await?;
                tracing::warn!(org = %invite.org_id, provider = %provider.id, "invite burnt by refused keys");
                return Err(Error::Gone {
                    code: "invite_unusable",
                    message: format!(
                        "The key was not accepted, and this invite link has now refused \
                         {INVITE_MAX_REFUSED_KEYS} keys, so it is no longer valid. Ask the \
                         person who sent it for a new link."
                    ),
                });
            }
            let mut details = invite_details(invite, hash);
            details.insert("refused_keys".into(), refused.into());
            record(deps, scope, Outcome::Refused, e.code(), details).await;
            return Ok(InviteKeyOutcome::Retry {
                status: e.status(),
                form: KeyForm::of(provider, invite, Some(e.public_message())),
            });
        }
        Err(e) => return Err(e),
    };
    let now = deps.config.clock.now();
    let account = verified.account_label;
    let existing = deps.store.connection(&invite.org_id, &provider.id).await?;
    let secret_name = grant_secret_name(deps, existing.as_ref(), &invite.org_id, &provider.id);
    let grant = ConnectionGrant {
        org: &invite.org_id,
        provider: &provider.id,
        auth_mode: AuthMode::ApiKey,
        secret_name: &secret_name,
        connected_by: account.as_deref().unwrap_or(INVITED_ADMIN),
        invited_by: Some(&invite.created_by),
        vendor_account: account.as_deref(),
        vendor_account_id: verified.account_id.as_deref(),
        scopes: checked_key_scopes(provider),
        now,
    };
    let reconnect = existing.is_some();
    let mut details = connect_details(&grant);
    let change = crate::domain::connection::account_change(
        existing.as_ref(),
        verified.account_id.as_deref(),
    );
    // The invite used up, the connection (or the held change) and the entry: one
    // transaction.
    let write = match change {
        Some((_, to)) => account_change::hold(deps, &grant, &credentials, to, &mut details).await?,
        None => {
            deps.vault.put(grant.secret_name, &credentials).await?;
            deps.store.connection_grant(&grant).await?
        }
    };
    let scope = scope.by(Actor::invitee(account.as_deref()));
    deps.store
        .use_invite(hash, now, vec![write], |invite| {
            details.extend(invite_details(invite, hash));
            details.insert("reconnect".into(), reconnect.into());
            scope.done(details)
        })
        .await?
        .ok_or_else(invite_unusable)?;
    if let Some((from, to)) = change {
        account_change::drop_replaced_hold(deps, existing.as_ref(), &grant, to).await;
        tracing::info!(org = %invite.org_id, provider = %provider.id, "invite connect held: another vendor account");
        return Ok(InviteKeyOutcome::Held {
            provider_name: provider.name.clone(),
            message: held_message(provider, from, to),
        });
    }
    tracing::info!(org = %invite.org_id, provider = %provider.id, "connected through an invite (API key)");
    Ok(InviteKeyOutcome::Connected {
        provider_name: provider.name.clone(),
        vendor_account: account,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_links_live_where_the_callback_lives() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(
            public_base(&u(
                "https://abc.execute-api.us-east-1.amazonaws.com/oauth/callback"
            )),
            "https://abc.execute-api.us-east-1.amazonaws.com"
        );
        assert_eq!(
            public_base(&u("http://127.0.0.1:3000/oauth/callback")),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            public_base(&u("https://seatscope.example.com/api-v1/oauth/callback")),
            "https://seatscope.example.com/api-v1"
        );
    }

    #[test]
    fn invite_tokens_carry_256_bits_and_only_well_formed_ones_are_looked_up() {
        let t = new_invite_token();
        assert_eq!(t.len(), 43);
        assert_ne!(t, new_invite_token());
        assert_eq!(invite_hash(&t).unwrap(), state_hash(&t));
        for bad in [
            "",
            "short",
            "has/slash-and-enough-characters-to-be-long",
            &"x".repeat(200),
        ] {
            assert_eq!(
                invite_hash(bad).unwrap_err().code(),
                "invite_unusable",
                "{bad}"
            );
        }
    }
}
