//! Connecting by OAuth 2.0: start (state + PKCE + the browser binding → the vendor's
//! consent page) and finish (consume the state once → exchange the code → identity →
//! secret → connection).

use secrecy::SecretString;
use time::OffsetDateTime;

use crate::connectors;
use crate::deps::Deps;
use crate::domain::audit::{Action, Actor, ActorKind, Admin, AuditScope, Details, Outcome};
use crate::domain::caller::Role;
use crate::domain::catalog::{AuthMode, Provider};
use crate::domain::oauth_state::OAuthState;
use crate::domain::org::OrgId;
use crate::domain::time::rfc3339;
use crate::error::{Error, Result};
use crate::oauth_client;
use crate::ops::audit_trail::{record, settle};
use crate::store::ConnectionGrant;
use crate::vault::Credentials;

use super::*;

/// The code of a callback finished in another browser than the one that started it.
pub const BROWSER_MISMATCH: &str = "browser_mismatch";

/// The OAuth providers this deployment can connect (a client is configured).
pub(super) fn oauth_ready(deps: &Deps, provider: &Provider) -> bool {
    provider.supports(AuthMode::Oauth2) && deps.config.oauth_clients.contains_key(&provider.id)
}

pub async fn start_oauth_connect(
    deps: &Deps,
    caller: &Admin,
    provider_id: &str,
    return_to: Option<&str>,
) -> Result<StartedConnect> {
    let provider = deps.config.catalog.get(provider_id)?;
    if !provider.supports(AuthMode::Oauth2) {
        return Err(Error::bad_request(
            "auth_mode_unsupported",
            format!("{} connects with an API key, not OAuth", provider.name),
        ));
    }
    let return_to = resolve_return_to(return_to, &deps.config.catalog);
    let binding = BrowserBinding::new();
    let authorize_url = begin_oauth(
        deps,
        provider,
        (&caller.org, &caller.user, caller.email.clone()),
        return_to,
        None,
        &binding,
    )
    .await?;
    tracing::info!(org = %caller.org, provider = %provider.id, "oauth connect started");
    Ok(StartedConnect {
        authorize_url,
        binding,
    })
}

/// Stores a fresh single-use state (bound to org, user and provider) and returns
/// the vendor's authorize URL.
pub(super) async fn begin_oauth(
    deps: &Deps,
    provider: &Provider,
    (org, user, user_email): (&OrgId, &str, Option<String>),
    return_to: String,
    invited_by: Option<String>,
    binding: &BrowserBinding,
) -> Result<String> {
    let authorization = oauth_client::authorization(deps, provider).await?;
    let now = deps.config.clock.now();
    let state = OAuthState {
        org_id: org.clone(),
        user_id: user.to_string(),
        user_email,
        provider: provider.id.clone(),
        pkce_verifier: authorization.pkce_verifier,
        return_to,
        invited_by,
        browser_hash: Some(binding.hash()),
        created_at: rfc3339(now),
        expires_at: (now + STATE_TTL).unix_timestamp(),
    };
    deps.store
        .put_oauth_state(&state_hash(&authorization.state), &state)
        .await?;
    Ok(authorization.url)
}

/// The query of the vendor's redirect to `/oauth/callback`, and the browser's
/// binding cookie. `Debug` never shows the code, the state or the nonce (each is
/// part of a connect).
#[derive(Default, Clone)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The nonce of the browser's binding cookie ([`oauth_cookie`]).
    pub browser_nonce: Option<SecretString>,
    /// The callback request's id (its audit entry's key).
    pub request_id: String,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("CallbackParams")
            .field("code", &redacted(&self.code))
            .field("state", &redacted(&self.state))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
            .field(
                "browser_nonce",
                &self.browser_nonce.as_ref().map(|_| "[REDACTED]"),
            )
            .field("request_id", &self.request_id)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    Connected {
        provider: String,
        return_to: String,
        /// Came through an invite link: end on a page, not the dashboard.
        invited: bool,
    },
    /// The state was valid but the connect did not happen (denied, exchange failed…).
    NotConnected {
        provider: String,
        return_to: String,
        reason: String,
        message: String,
        invited: bool,
    },
}

impl CallbackOutcome {
    /// The connect started from an invite link: the admin who consented has no
    /// dashboard account, so the flow ends on a plain page instead of a redirect.
    pub fn invited(&self) -> bool {
        match self {
            CallbackOutcome::Connected { invited, .. }
            | CallbackOutcome::NotConnected { invited, .. } => *invited,
        }
    }

    pub fn provider(&self) -> &str {
        match self {
            CallbackOutcome::Connected { provider, .. }
            | CallbackOutcome::NotConnected { provider, .. } => provider,
        }
    }

    /// Where the browser goes next: the card's page with the outcome in the query.
    pub fn location(&self) -> String {
        let (return_to, pairs) = match self {
            CallbackOutcome::Connected {
                provider,
                return_to,
                ..
            } => (
                return_to,
                vec![("provider", provider.as_str()), ("result", "connected")],
            ),
            CallbackOutcome::NotConnected {
                provider,
                return_to,
                reason,
                message,
                ..
            } => (
                return_to,
                vec![
                    ("provider", provider.as_str()),
                    ("result", "error"),
                    ("reason", reason.as_str()),
                    ("message", message.as_str()),
                ],
            ),
        };
        // `return_to` was resolved to a dashboard route; a URL is built only to
        // append the query pairs with proper encoding. Whatever happens, the
        // result stays a same-origin path.
        let Ok(base) = url::Url::parse("http://local.invalid/") else {
            return DEFAULT_RETURN_TO.to_string();
        };
        let mut url = base.join(return_to).unwrap_or(base);
        if !is_same_origin_path(url.path()) {
            url.set_path(DEFAULT_RETURN_TO);
        }
        url.query_pairs_mut().extend_pairs(pairs);
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }
}

/// Vendor-supplied error codes are echoed only if they look like OAuth error codes.
pub(super) fn safe_reason(error: &str) -> String {
    if !error.is_empty()
        && error.len() <= 64
        && error.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    {
        error.to_string()
    } else {
        "vendor_error".to_string()
    }
}

pub async fn finish_oauth_connect(deps: &Deps, params: CallbackParams) -> Result<CallbackOutcome> {
    let invalid_state = || {
        Error::bad_request(
            "invalid_state",
            "This connection link is unknown, expired or was already used. \
             Start again from the Connections page.",
        )
    };
    let state_value = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(invalid_state)?;
    if state_value.len() > 256 {
        return Err(invalid_state());
    }
    let now = deps.config.clock.now();
    let state = deps
        .store
        .consume_oauth_state(&state_hash(state_value), now)
        .await?
        .ok_or_else(invalid_state)?;
    // From here the org is known: the attempt is recorded, whatever its end.
    let scope = callback_scope(deps, &state, &params.request_id, now).await?;
    let outcome = finish_consumed(deps, &state, &params, &scope, now).await;
    settle(deps, &scope, outcome).await
}

/// The callback's attempt: a Connect, or a Reconnect over an existing connection,
/// by the member who started it (or, through an invite link, the app's admin).
pub(super) async fn callback_scope(
    deps: &Deps,
    state: &OAuthState,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<AuditScope> {
    let existing = deps
        .store
        .connection(&state.org_id, &state.provider)
        .await?;
    Ok(AuditScope {
        org: state.org_id.clone(),
        request_id: request_id.to_string(),
        at: now,
        action: if existing.is_some() {
            Action::Reconnect
        } else {
            Action::Connect
        },
        provider: Some(state.provider.clone()),
        actor: match &state.invited_by {
            Some(_) => Actor::invitee(None),
            None => Actor {
                kind: ActorKind::Member,
                subject: state.user_id.clone(),
                email: state.user_email.clone(),
                role: Some(Role::Admin),
            },
        },
    })
}

pub(super) async fn finish_consumed(
    deps: &Deps,
    state: &OAuthState,
    params: &CallbackParams,
    scope: &AuditScope,
    now: OffsetDateTime,
) -> Result<CallbackOutcome> {
    // The state is consumed either way: a refused attempt cannot be retried.
    if !same_browser(state.browser_hash.as_deref(), params.browser_nonce.as_ref()) {
        tracing::warn!(org = %state.org_id, provider = %state.provider, cookie = params.browser_nonce.is_some(), "oauth callback from another browser refused");
        return Err(Error::bad_request(
            BROWSER_MISMATCH,
            "Nothing was connected: this connection was started in another browser (or this \
             browser did not send back its connection cookie, which lasts 10 minutes). Start \
             the connection again, and finish it in the browser you start it in.",
        ));
    }
    let invited = state.invited_by.is_some();
    // Resolved again: a state stored by an older version may hold any path.
    let return_to = resolve_return_to(Some(&state.return_to), &deps.config.catalog);
    let not_connected = |reason: String, message: String| CallbackOutcome::NotConnected {
        provider: state.provider.clone(),
        return_to: return_to.clone(),
        reason,
        message,
        invited,
    };
    if let Some(error) = params.error.as_deref() {
        let reason = safe_reason(error);
        let message = if reason == "access_denied" {
            "Access was denied at the vendor's consent screen.".to_string()
        } else {
            format!("The vendor refused the connection ({reason}).")
        };
        tracing::info!(org = %state.org_id, provider = %state.provider, reason = %reason, "oauth connect not completed");
        record(deps, scope, Outcome::Refused, &reason, Details::new()).await;
        return Ok(not_connected(reason, message));
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        record(
            deps,
            scope,
            Outcome::Refused,
            "invalid_request",
            Details::new(),
        )
        .await;
        return Ok(not_connected(
            "invalid_request".into(),
            "The vendor sent no authorization code.".into(),
        ));
    };
    match complete(deps, state, scope, code, now).await {
        Ok(Stored::AwaitingChoice { message }) => {
            Ok(not_connected(ACCOUNT_CHANGED.to_string(), message))
        }
        Ok(Stored::Connected) => {
            tracing::info!(org = %state.org_id, provider = %state.provider, "connected");
            Ok(CallbackOutcome::Connected {
                provider: state.provider.clone(),
                return_to,
                invited,
            })
        }
        // A token the vendor granted other than asked (scope, type): a page, not the card.
        Err(e) if e.code() == oauth_client::TOKEN_REFUSED => {
            tracing::warn!(org = %state.org_id, provider = %state.provider, error = %e, "oauth token refused");
            Err(e)
        }
        Err(e) => {
            tracing::warn!(org = %state.org_id, provider = %state.provider, error = %e.chain(), "oauth connect failed");
            record(deps, scope, Outcome::of_error(&e), e.code(), Details::new()).await;
            Ok(not_connected(e.code().to_string(), e.public_message()))
        }
    }
}

pub(super) async fn complete(
    deps: &Deps,
    state: &OAuthState,
    scope: &AuditScope,
    code: &str,
    now: OffsetDateTime,
) -> Result<Stored> {
    let provider = deps.config.catalog.get(&state.provider)?;
    let tokens =
        oauth_client::exchange_code(deps, provider, code, state.pkce_verifier.as_deref()).await?;
    let scopes = granted_scopes(tokens.scope.as_deref(), provider);
    let credentials = Credentials::OAuth2(tokens);
    let verified = connectors::for_provider(provider, deps.http()?, &credentials)?
        .verify()
        .await?;
    let account = verified.account_label;
    // Through an invite, the dashboard user only sent the link: the one who
    // connected is the vendor account that consented.
    let (connected_by, scope) = match &state.invited_by {
        Some(_) => (
            account.as_deref().unwrap_or(INVITED_ADMIN),
            scope.by(Actor::invitee(account.as_deref())),
        ),
        None => (state.user_id.as_str(), scope.clone()),
    };
    store_connection(
        deps,
        &scope,
        &ConnectionGrant {
            org: &state.org_id,
            provider: &provider.id,
            auth_mode: AuthMode::Oauth2,
            secret_name: &deps.vault.secret_name(&state.org_id, &provider.id),
            connected_by,
            invited_by: state.invited_by.as_deref(),
            vendor_account: account.as_deref(),
            vendor_account_id: verified.account_id.as_deref(),
            scopes: Some(&scopes),
            now,
        },
        &credentials,
    )
    .await
}

/// The secret first, then the connection with its audit entry (one transaction): a
/// connection record never points at a missing secret. Over an existing connection
/// this is a Reconnect, and the entry says so.
///
/// Secrets Manager cannot join a DynamoDB transaction: if the transaction fails, the
/// secret written stays (for a first connect nothing points at it; for a Reconnect
/// the connection's secret now holds the new grant, which the vendor just issued).
pub(super) async fn store_connection(
    deps: &Deps,
    scope: &AuditScope,
    grant: &ConnectionGrant<'_>,
    credentials: &Credentials,
) -> Result<Stored> {
    let provider = deps.config.catalog.get(grant.provider)?;
    let existing = deps.store.connection(grant.org, grant.provider).await?;
    let scope = if existing.is_some() {
        scope.as_action(Action::Reconnect)
    } else {
        scope.clone()
    };
    let secret_name = grant_secret_name(deps, existing.as_ref(), grant.org, grant.provider);
    let grant = ConnectionGrant {
        secret_name: &secret_name,
        ..grant.clone()
    };
    commit_grant(
        deps,
        &scope,
        provider,
        existing.as_ref(),
        &grant,
        credentials,
    )
    .await
}

pub(super) fn granted_scopes(scope: Option<&str>, provider: &Provider) -> Vec<String> {
    match scope.map(str::split_whitespace) {
        Some(granted) => granted.map(str::to_string).collect(),
        None => provider
            .oauth2
            .as_ref()
            .map(|o| o.scopes.clone())
            .unwrap_or_default(),
    }
}

/// The scopes an accepted API key was checked to carry (SendGrid's `GET /v3/scopes`);
/// None where the vendor's keys have no scopes to check.
pub(super) fn checked_key_scopes(provider: &Provider) -> Option<&[String]> {
    provider
        .api_key
        .as_ref()
        .map(|k| k.required_scopes.as_slice())
        .filter(|s| !s.is_empty())
}

/// What a connect's entry records: how, which vendor account, through whose invite.
pub(super) fn connect_details(grant: &ConnectionGrant<'_>) -> Details {
    let mut d = Details::new();
    let mode = match grant.auth_mode {
        AuthMode::Oauth2 => "oauth2",
        AuthMode::ApiKey => "api_key",
    };
    d.insert("auth_mode".into(), mode.into());
    if let Some(a) = grant.vendor_account {
        d.insert("vendor_account".into(), a.into());
    }
    if let Some(by) = grant.invited_by {
        d.insert("invited_by".into(), by.into());
    }
    d
}

/// The title of the page a refused callback ends on (the message says the rest).
pub fn refusal_title(e: &Error) -> &'static str {
    match e.code() {
        BROWSER_MISMATCH => "This connection was started in another browser",
        oauth_client::TOKEN_REFUSED => "The vendor granted other access than asked",
        _ => "This connection link cannot be used",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_code_the_state_or_the_verifier() {
        let params = CallbackParams {
            code: Some("code-SECRET-1".into()),
            state: Some("state-SECRET-2".into()),
            error: Some("access_denied".into()),
            error_description: None,
            browser_nonce: Some("nonce-SECRET-4".to_string().into()),
            request_id: "r-1".into(),
        };
        let shown = format!("{params:?} {params:#?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("access_denied") && shown.contains("REDACTED"));
        let state = OAuthState {
            org_id: OrgId::parse("acme").unwrap(),
            user_id: "u".into(),
            user_email: None,
            provider: "pagerduty".into(),
            pkce_verifier: Some("verifier-SECRET-3".into()),
            return_to: "/connections".into(),
            invited_by: None,
            browser_hash: Some("hash".into()),
            created_at: "t".into(),
            expires_at: 0,
        };
        let shown = format!("{state:?} {state:#?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("pagerduty") && shown.contains("REDACTED"));
    }

    #[test]
    fn outcome_location_keeps_the_path_and_adds_the_result() {
        let o = CallbackOutcome::NotConnected {
            provider: "pagerduty".into(),
            return_to: "/connections?tab=all".into(),
            reason: "access_denied".into(),
            message: "Access was denied.".into(),
            invited: false,
        };
        assert_eq!(
            o.location(),
            "/connections?tab=all&provider=pagerduty&result=error&reason=access_denied&message=Access+was+denied."
        );
    }

    #[test]
    fn vendor_error_codes_are_not_echoed_blindly() {
        assert_eq!(safe_reason("access_denied"), "access_denied");
        assert_eq!(safe_reason("<script>"), "vendor_error");
    }
}
