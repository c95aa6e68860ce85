//! Connecting an app (DESIGN §5) and managing the connection: start an OAuth
//! connect (state + PKCE → the vendor's consent page) and finish it (consume the
//! state once → exchange the code → identity → secret → connection); connect with
//! an API key (checked against the vendor first); invite links for an app's admin;
//! Reconnect (any connect over an existing connection keeps its history); and
//! disconnect (optionally purging the synced data). Nothing partial is left
//! behind when a step fails, and no token or key leaves a `secrecy` type except
//! on its way to the vendor or Secrets Manager.

use base64::Engine as _;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::app::App;
use crate::audit::{Action, Actor, ActorKind, Admin, AuditScope, Details, Outcome};
use crate::audit_trail::{record, settle};
use crate::catalog::{AuthMode, Catalog, Provider};
use crate::connectors::{Connector, Verified};
use crate::domain::{
    invite_id, invite_pk, keys, rfc3339, Caller, Invite, OAuthState, Role, INVITE_MAX_REFUSED_KEYS,
    INVITE_SK,
};
use crate::error::{Error, Result};
use crate::oauth;
pub use crate::oauth::TOKEN_REFUSED;
use crate::store::ConnectionGrant;
use crate::vault::Credentials;

pub const STATE_TTL: Duration = Duration::minutes(10);
/// How long an invite link can be used.
pub const INVITE_TTL: Duration = Duration::days(7);
/// Longer than any vendor's keys; a bound so nobody posts megabytes at a vendor.
pub const MAX_API_KEY_LEN: usize = 512;
/// `connected_by` of an invite connect when the vendor did not say who consented.
pub const INVITED_ADMIN: &str = crate::audit::INVITED_ADMIN;
const DEFAULT_RETURN_TO: &str = "/connections";

#[derive(Debug, serde::Serialize)]
pub struct StartedConnect {
    pub authorize_url: String,
    /// Goes to the browser as a cookie, never in the body.
    #[serde(skip)]
    pub binding: BrowserBinding,
}

/// Name of the cookie that binds an OAuth state to the browser that started the
/// connect (RFC 9700 §4.7.1): `__Host-` prefixed and `Secure` when served over
/// https (`OAUTH_COOKIE_SECURE`, default true), plain over the local http stack.
pub fn oauth_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-seatscope_oauth"
    } else {
        "seatscope_oauth"
    }
}

/// How long the binding cookie lives: as long as the state.
const COOKIE_MAX_AGE: i64 = STATE_TTL.whole_seconds();

/// A fresh random nonce (32 bytes, base64url) for the browser's cookie; only its
/// SHA-256 is stored with the state. `Debug` never shows it.
pub struct BrowserBinding {
    nonce: SecretString,
}

impl std::fmt::Debug for BrowserBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BrowserBinding([REDACTED])")
    }
}

impl BrowserBinding {
    fn new() -> BrowserBinding {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        BrowserBinding {
            nonce: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(bytes)
                .into(),
        }
    }

    fn hash(&self) -> String {
        state_hash(self.nonce.expose_secret())
    }

    /// The `Set-Cookie` value: `HttpOnly; SameSite=Lax; Path=/; Max-Age=600`, plus
    /// `Secure` (and the `__Host-` name) when `secure`.
    pub fn set_cookie(&self, secure: bool) -> String {
        format!(
            "{}={}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax{}",
            oauth_cookie_name(secure),
            self.nonce.expose_secret(),
            if secure { "; Secure" } else { "" }
        )
    }
}

/// The `Set-Cookie` value that deletes the binding cookie (the callback is done with it).
pub fn clear_oauth_cookie(secure: bool) -> String {
    format!(
        "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        oauth_cookie_name(secure),
        if secure { "; Secure" } else { "" }
    )
}

/// The binding nonce from a request's `Cookie` header values, if present and well formed.
pub fn oauth_cookie<'a>(
    cookie_headers: impl IntoIterator<Item = &'a str>,
    secure: bool,
) -> Option<SecretString> {
    let name = oauth_cookie_name(secure);
    cookie_headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(|v| SecretString::from(v.to_string()))
}

/// The nonce's hash equals the state's, compared without an early exit.
fn same_browser(stored: Option<&str>, nonce: Option<&SecretString>) -> bool {
    let (Some(stored), Some(nonce)) = (stored, nonce) else {
        return false;
    };
    let given = state_hash(nonce.expose_secret());
    stored.len() == given.len()
        && stored
            .bytes()
            .zip(given.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Hex SHA-256 of a state value: what the table stores instead of the value.
pub fn state_hash(state: &str) -> String {
    Sha256::digest(state.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Longest `return_to` looked at; anything longer falls back to the default.
const MAX_RETURN_TO_LEN: usize = 512;

/// Where the browser may be sent back to after the consent screen: one of the
/// dashboard's own routes (`/`, `/connections`, `/apps/{provider}` for a catalog
/// provider), optionally with a query of plain characters. The path is resolved
/// first (percent-decoded, dot segments removed), so `/.//host`, `/%2e//host`,
/// `/a/..//host`, `/%2f/host` or `/\host` cannot become `//host` later; anything
/// that is not a dashboard route falls back to `/connections`.
pub fn resolve_return_to(return_to: Option<&str>, catalog: &Catalog) -> String {
    return_to
        .and_then(|r| dashboard_route(r, catalog))
        .unwrap_or_else(|| DEFAULT_RETURN_TO.to_string())
}

fn dashboard_route(raw: &str, catalog: &Catalog) -> Option<String> {
    // Browsers drop tabs and newlines inside URLs: refuse every control or space.
    if raw.is_empty()
        || raw.len() > MAX_RETURN_TO_LEN
        || raw
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '#')
    {
        return None;
    }
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    let decoded = percent_decode(path);
    // Encoded twice (`%252e`) or into anything but plain path characters: not ours.
    if decoded.contains('%')
        || decoded.contains('\\')
        || !decoded
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '?' && c != '#')
    {
        return None;
    }
    let path = remove_dot_segments(&decoded)?;
    let canonical = match path.as_str() {
        "/" | "/connections" => path,
        _ => {
            let provider = path.strip_prefix("/apps/")?;
            catalog.get(provider).ok()?;
            path
        }
    };
    match query {
        None | Some("") => Some(canonical),
        Some(q)
            if q.len() <= 256
                && q.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, '-' | '_' | '.' | '~' | '=' | '&' | '+' | ',')
                }) =>
        {
            Some(format!("{canonical}?{q}"))
        }
        Some(_) => None,
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3986 §5.2.4 on an absolute path; None if it does not start with `/`.
/// Empty segments are kept (`/a//b` stays so), which no dashboard route has.
fn remove_dot_segments(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." | ".." => {
                if *seg == ".." {
                    out.pop();
                }
                // A trailing dot segment leaves a directory path (`/a/.` → `/a/`).
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    Some(format!("/{}", out.join("/")))
}

/// A path that stays on this origin: one `/` followed by anything but `/` or `\`.
pub fn is_same_origin_path(location: &str) -> bool {
    let mut chars = location.chars();
    chars.next() == Some('/') && !matches!(chars.next(), Some('/' | '\\'))
}

/// The OAuth providers this deployment can connect (a client is configured).
fn oauth_ready(app: &App, provider: &Provider) -> bool {
    provider.supports(AuthMode::Oauth2) && app.config.oauth_clients.contains_key(&provider.id)
}

pub async fn start_oauth_connect(
    app: &App,
    caller: &Admin,
    provider_id: &str,
    return_to: Option<&str>,
) -> Result<StartedConnect> {
    let provider = app.config.catalog.get(provider_id)?;
    if !provider.supports(AuthMode::Oauth2) {
        return Err(Error::bad_request(
            "auth_mode_unsupported",
            format!("{} connects with an API key, not OAuth", provider.name),
        ));
    }
    let return_to = resolve_return_to(return_to, &app.config.catalog);
    let binding = BrowserBinding::new();
    let authorize_url = begin_oauth(
        app,
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
async fn begin_oauth(
    app: &App,
    provider: &Provider,
    (org, user, user_email): (&str, &str, Option<String>),
    return_to: String,
    invited_by: Option<String>,
    binding: &BrowserBinding,
) -> Result<String> {
    let authorization = oauth::authorization(app, provider).await?;
    let now = app.config.clock.now();
    let state = OAuthState {
        pk: keys::oauth_state(&state_hash(&authorization.state)),
        sk: keys::OAUTH_STATE_SK.to_string(),
        org_id: org.to_string(),
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
    app.store.put_oauth_state(&state).await?;
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
fn safe_reason(error: &str) -> String {
    if !error.is_empty()
        && error.len() <= 64
        && error.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    {
        error.to_string()
    } else {
        "vendor_error".to_string()
    }
}

pub async fn finish_oauth_connect(app: &App, params: CallbackParams) -> Result<CallbackOutcome> {
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
    let now = app.config.clock.now();
    let state = app
        .store
        .consume_oauth_state(&state_hash(state_value), now)
        .await?
        .ok_or_else(invalid_state)?;
    // From here the org is known: the attempt is recorded, whatever its end.
    let scope = callback_scope(app, &state, &params.request_id, now).await?;
    let outcome = finish_consumed(app, &state, &params, &scope, now).await;
    settle(app, &scope, outcome).await
}

/// The callback's attempt: a Connect, or a Reconnect over an existing connection,
/// by the member who started it (or, through an invite link, the app's admin).
async fn callback_scope(
    app: &App,
    state: &OAuthState,
    request_id: &str,
    now: OffsetDateTime,
) -> Result<AuditScope> {
    let existing = app.store.connection(&state.org_id, &state.provider).await?;
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

async fn finish_consumed(
    app: &App,
    state: &OAuthState,
    params: &CallbackParams,
    scope: &AuditScope,
    now: OffsetDateTime,
) -> Result<CallbackOutcome> {
    // The state is consumed either way: a refused attempt cannot be retried.
    if !same_browser(state.browser_hash.as_deref(), params.browser_nonce.as_ref()) {
        tracing::warn!(org = %state.org_id, provider = %state.provider, cookie = params.browser_nonce.is_some(), "oauth callback from another browser refused");
        return Err(Error::bad_request(
            "browser_mismatch",
            "Nothing was connected: this connection was started in another browser (or this \
             browser did not send back its connection cookie, which lasts 10 minutes). Start \
             the connection again, and finish it in the browser you start it in.",
        ));
    }
    let invited = state.invited_by.is_some();
    // Resolved again: a state stored by an older version may hold any path.
    let return_to = resolve_return_to(Some(&state.return_to), &app.config.catalog);
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
        record(app, scope, Outcome::Refused, &reason, Details::new()).await;
        return Ok(not_connected(reason, message));
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        record(
            app,
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
    match complete(app, state, scope, code, now).await {
        Ok(()) => {
            tracing::info!(org = %state.org_id, provider = %state.provider, "connected");
            Ok(CallbackOutcome::Connected {
                provider: state.provider.clone(),
                return_to,
                invited,
            })
        }
        // A token the vendor granted other than asked (scope, type): a page, not the card.
        Err(e) if e.code() == oauth::TOKEN_REFUSED => {
            tracing::warn!(org = %state.org_id, provider = %state.provider, error = %e, "oauth token refused");
            Err(e)
        }
        Err(e) => {
            tracing::warn!(org = %state.org_id, provider = %state.provider, error = %e.chain(), "oauth connect failed");
            record(app, scope, Outcome::of_error(&e), e.code(), Details::new()).await;
            Ok(not_connected(e.code().to_string(), e.public_message()))
        }
    }
}

async fn complete(
    app: &App,
    state: &OAuthState,
    scope: &AuditScope,
    code: &str,
    now: OffsetDateTime,
) -> Result<()> {
    let provider = app.config.catalog.get(&state.provider)?;
    let tokens = oauth::exchange_code(app, provider, code, state.pkce_verifier.as_deref()).await?;
    let scopes = granted_scopes(tokens.scope.as_deref(), provider);
    let credentials = Credentials::OAuth2(tokens);
    let account = Connector::new(provider, app.http()?, &credentials)?
        .verify()
        .await?
        .account_label;
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
        app,
        &scope,
        &ConnectionGrant {
            org: &state.org_id,
            provider: &provider.id,
            auth_mode: AuthMode::Oauth2,
            secret_name: &app.vault.secret_name(&state.org_id, &provider.id),
            connected_by,
            invited_by: state.invited_by.as_deref(),
            vendor_account: account.as_deref(),
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
async fn store_connection(
    app: &App,
    scope: &AuditScope,
    grant: &ConnectionGrant<'_>,
    credentials: &Credentials,
) -> Result<()> {
    let reconnect = app
        .store
        .connection(grant.org, grant.provider)
        .await?
        .is_some();
    let scope = if reconnect {
        scope.as_action(Action::Reconnect)
    } else {
        scope.clone()
    };
    app.vault.put(grant.secret_name, credentials).await?;
    app.store
        .save_connection(grant, &scope.done(connect_details(grant)))
        .await
}

/// The scopes an OAuth grant holds: the token response's `scope` (RFC 6749 §5.1), or
/// what was asked where the vendor did not repeat it (it granted exactly that).
fn granted_scopes(scope: Option<&str>, provider: &Provider) -> Vec<String> {
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
fn checked_key_scopes(provider: &Provider) -> Option<&[String]> {
    provider
        .api_key
        .as_ref()
        .map(|k| k.required_scopes.as_slice())
        .filter(|s| !s.is_empty())
}

/// What a connect's entry records: how, which vendor account, through whose invite.
fn connect_details(grant: &ConnectionGrant<'_>) -> Details {
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

// --- API keys ------------------------------------------------------------------

/// The answer to an API-key connect: never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connected {
    pub provider: String,
    pub status: &'static str,
    pub vendor_account: Option<String>,
}

/// Says what is wrong with a pasted key without ever repeating it.
pub fn validate_api_key(key: &SecretString) -> Result<()> {
    let key = key.expose_secret();
    let bad = |message: &str| Err(Error::bad_request("invalid_api_key", message.to_string()));
    if key.is_empty() {
        return bad("The API key is empty: paste the key from the vendor's settings.");
    }
    if key.chars().count() > MAX_API_KEY_LEN {
        return bad(&format!(
            "The API key is longer than {MAX_API_KEY_LEN} characters: paste only the key."
        ));
    }
    if key.chars().any(char::is_whitespace) {
        return bad(
            "The API key contains spaces or line breaks: paste only the key, without spaces.",
        );
    }
    if key.chars().any(char::is_control) {
        return bad("The API key contains control characters: paste only the key.");
    }
    if !key.chars().all(|c| c.is_ascii_graphic()) {
        return bad("The API key contains characters no vendor key has (only ASCII letters, digits and punctuation are possible).");
    }
    Ok(())
}

fn api_key_provider<'a>(app: &'a App, provider_id: &str) -> Result<&'a Provider> {
    let provider = app.config.catalog.get(provider_id)?;
    if !provider.supports(AuthMode::ApiKey) {
        return Err(Error::bad_request(
            "auth_mode_unsupported",
            format!(
                "{} connects through its consent screen, not with an API key",
                provider.name
            ),
        ));
    }
    Ok(provider)
}

/// The key's format, then a cheap vendor call: a refusal is a 422 naming the
/// vendor's reason (for SendGrid, the missing scopes).
async fn verify_api_key(
    app: &App,
    provider: &Provider,
    key: SecretString,
) -> Result<(Credentials, Verified)> {
    validate_api_key(&key)?;
    let credentials = Credentials::ApiKey(key);
    let verified = Connector::new(provider, app.http()?, &credentials)?
        .verify()
        .await
        .map_err(|e| crate::connectors::refused(&provider.name, e))?;
    Ok((credentials, verified))
}

/// `POST /api/connections/{provider}/api-key`: checked with the vendor, then the
/// secret, then the connection. Nothing is stored when the key is refused.
pub async fn connect_api_key(
    app: &App,
    caller: &Admin,
    provider_id: &str,
    key: SecretString,
) -> Result<Connected> {
    let provider = api_key_provider(app, provider_id)?;
    let (credentials, verified) = verify_api_key(app, provider, key).await?;
    let account = verified.account_label;
    store_connection(
        app,
        caller.audit(),
        &ConnectionGrant {
            org: &caller.org,
            provider: &provider.id,
            auth_mode: AuthMode::ApiKey,
            secret_name: &app.vault.secret_name(&caller.org, &provider.id),
            connected_by: &caller.user,
            invited_by: None,
            vendor_account: account.as_deref(),
            scopes: checked_key_scopes(provider),
            now: app.config.clock.now(),
        },
        &credentials,
    )
    .await?;
    tracing::info!(org = %caller.org, provider = %provider.id, "connected with an API key");
    Ok(Connected {
        provider: provider.id.clone(),
        status: "connected",
        vendor_account: account,
    })
}

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

fn new_invite_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// How an invite for this provider connects on this deployment: the vendor's
/// consent screen when OAuth is configured, else an API-key form.
fn invite_mode(app: &App, provider: &Provider) -> Result<AuthMode> {
    if oauth_ready(app, provider) {
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
pub async fn create_invite(app: &App, caller: &Admin, provider_id: &str) -> Result<CreatedInvite> {
    let provider = app.config.catalog.get(provider_id)?;
    invite_mode(app, provider)?;
    let token = new_invite_token();
    let hash = state_hash(&token);
    let now = app.config.clock.now();
    let expires = now + INVITE_TTL;
    let invite = Invite {
        pk: invite_pk(&hash),
        sk: INVITE_SK.to_string(),
        org_id: caller.org.clone(),
        provider: provider.id.clone(),
        created_by: caller.user.clone(),
        created_at: rfc3339(now),
        expires_at: expires.unix_timestamp(),
    };
    let mut details = Details::new();
    details.insert("invite_id".into(), invite_id(&hash).into());
    details.insert("expires_at".into(), rfc3339(expires).into());
    app.store
        .create_invite(&invite, &hash, &caller.audit().done(details))
        .await?;
    tracing::info!(org = %caller.org, provider = %provider.id, "invite link created");
    Ok(CreatedInvite {
        id: invite_id(&hash),
        url: format!(
            "{}/connect/invite/{token}",
            public_base(&app.config.oauth_redirect_uri)
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
pub async fn list_invites(app: &App, caller: &Caller, provider_id: &str) -> Result<PendingInvites> {
    let provider = app.config.catalog.get(provider_id)?;
    let now = app.config.clock.now();
    let mut invites = Vec::new();
    for (id, entry) in app.store.invite_entries(&caller.org, &provider.id).await? {
        if entry.expires_at <= now.unix_timestamp() {
            continue;
        }
        // The index is kept best effort: the invite itself says whether it is usable.
        let usable = app
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
pub async fn revoke_invite(app: &App, caller: &Admin, provider_id: &str, id: &str) -> Result<()> {
    let provider = app.config.catalog.get(provider_id)?;
    let not_found = || Error::NotFound(format!("invite '{id}' of {}", provider.name));
    let well_formed = id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let mut details = Details::new();
    details.insert("invite_id".into(), id.into());
    if !well_formed
        || !app
            .store
            .revoke_invite(&caller.org, &provider.id, id, &caller.audit().done(details))
            .await?
    {
        return Err(not_found());
    }
    tracing::info!(org = %caller.org, provider = %provider.id, "invite link revoked");
    Ok(())
}

fn invite_unusable() -> Error {
    Error::bad_request(
        "invite_unusable",
        "This invite link cannot be used: it is unknown, has expired (links last 7 days) or \
         was already used. Ask the person who sent it for a new link.",
    )
}

/// The hash of a well-formed token; anything else cannot be one of ours.
fn invite_hash(token: &str) -> Result<String> {
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
            org: invite.org_id.clone(),
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
async fn pending_invite<'a>(app: &'a App, token: &str) -> Result<(String, Invite, &'a Provider)> {
    let hash = invite_hash(token)?;
    let invite = app
        .store
        .invite(&hash, app.config.clock.now())
        .await?
        .ok_or_else(invite_unusable)?;
    let provider = app.config.catalog.get(&invite.provider)?;
    Ok((hash, invite, provider))
}

/// `GET /connect/invite/{token}` (no dashboard sign-in: the token is the
/// capability). Unknown, expired or used → `invite_unusable`.
pub async fn open_invite(app: &App, token: &str) -> Result<InviteLanding> {
    let (_, invite, provider) = pending_invite(app, token).await?;
    match invite_mode(app, provider)? {
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
pub async fn continue_invite(app: &App, token: &str, request_id: &str) -> Result<StartedConnect> {
    let (hash, invite, provider) = pending_invite(app, token).await?;
    let scope = invite_scope(app, &invite, request_id);
    let started = continue_pending_invite(app, &hash, provider, &scope).await;
    settle(app, &scope, started).await
}

/// An attempt through an invite link: by the app's admin who holds it, in the org
/// that created it.
fn invite_scope(app: &App, invite: &Invite, request_id: &str) -> AuditScope {
    AuditScope {
        org: invite.org_id.clone(),
        request_id: request_id.to_string(),
        at: app.config.clock.now(),
        action: Action::InviteUsed,
        provider: Some(invite.provider.clone()),
        actor: Actor::invitee(None),
    }
}

/// What an invite's use records: the link and the member who created it.
fn invite_details(invite: &Invite, hash: &str) -> Details {
    let mut d = Details::new();
    d.insert("invite_id".into(), invite_id(hash).into());
    d.insert("invited_by".into(), invite.created_by.clone().into());
    d
}

async fn continue_pending_invite(
    app: &App,
    hash: &str,
    provider: &Provider,
    scope: &AuditScope,
) -> Result<StartedConnect> {
    if invite_mode(app, provider)? != AuthMode::Oauth2 {
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
    let invite = app
        .store
        .use_invite(hash, app.config.clock.now(), Vec::new(), |invite| {
            let mut details = invite_details(invite, hash);
            details.insert("auth_mode".into(), "oauth2".into());
            scope.done(details)
        })
        .await?
        .ok_or_else(invite_unusable)?;
    let binding = BrowserBinding::new();
    let authorize_url = begin_oauth(
        app,
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
    /// The key was not accepted; the invite is still usable. `status` is the
    /// HTTP status for the re-shown form (400 malformed, 422 refused, 502 vendor down).
    Retry { status: u16, form: KeyForm },
}

/// `POST /connect/invite/{token}` with the key: the key is checked first, then
/// the invite is used up, then the secret and the connection are stored. A
/// refused key leaves the invite usable, up to [`INVITE_MAX_REFUSED_KEYS`]
/// refusals: the last one burns it (`invite_unusable`, saying why).
pub async fn submit_invite_key(
    app: &App,
    token: &str,
    key: SecretString,
    request_id: &str,
) -> Result<InviteKeyOutcome> {
    let (hash, invite, _) = pending_invite(app, token).await?;
    let scope = invite_scope(app, &invite, request_id);
    let outcome = submit_pending_invite_key(app, &hash, &invite, key, &scope).await;
    settle(app, &scope, outcome).await
}

async fn submit_pending_invite_key(
    app: &App,
    hash: &str,
    invite: &Invite,
    key: SecretString,
    scope: &AuditScope,
) -> Result<InviteKeyOutcome> {
    let provider = api_key_provider(app, &invite.provider)?;
    let (credentials, verified) = match verify_api_key(app, provider, key).await {
        Ok(v) => v,
        // The vendor being down is not the key's fault: not counted.
        Err(e) if matches!(e, Error::Vendor { .. }) => {
            tracing::info!(org = %invite.org_id, provider = %provider.id, code = e.code(), "invite key not checked");
            record(
                app,
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
            let now = app.config.clock.now();
            let refused = app
                .store
                .record_refused_key(hash, now)
                .await?
                .ok_or_else(invite_unusable)?;
            tracing::info!(org = %invite.org_id, provider = %provider.id, code = e.code(), refused, "invite key not accepted");
            if refused >= INVITE_MAX_REFUSED_KEYS {
                app.store
                    .delete_invite(&invite.org_id, &invite.provider, hash)
                    .await?;
                tracing::warn!(org = %invite.org_id, provider = %provider.id, "invite burnt by refused keys");
                return Err(Error::bad_request(
                    "invite_unusable",
                    format!(
                        "The key was not accepted, and this invite link has now refused \
                         {INVITE_MAX_REFUSED_KEYS} keys, so it is no longer valid. Ask the \
                         person who sent it for a new link."
                    ),
                ));
            }
            let mut details = invite_details(invite, hash);
            details.insert("refused_keys".into(), refused.into());
            record(app, scope, Outcome::Refused, e.code(), details).await;
            return Ok(InviteKeyOutcome::Retry {
                status: e.status(),
                form: KeyForm::of(provider, invite, Some(e.public_message())),
            });
        }
        Err(e) => return Err(e),
    };
    let now = app.config.clock.now();
    let account = verified.account_label;
    let grant = ConnectionGrant {
        org: &invite.org_id,
        provider: &provider.id,
        auth_mode: AuthMode::ApiKey,
        secret_name: &app.vault.secret_name(&invite.org_id, &provider.id),
        connected_by: account.as_deref().unwrap_or(INVITED_ADMIN),
        invited_by: Some(&invite.created_by),
        vendor_account: account.as_deref(),
        scopes: checked_key_scopes(provider),
        now,
    };
    let reconnect = app
        .store
        .connection(grant.org, grant.provider)
        .await?
        .is_some();
    app.vault.put(grant.secret_name, &credentials).await?;
    // The invite used up, the connection and the entry: one transaction.
    let write = app.store.connection_grant(&grant).await?;
    let scope = scope.by(Actor::invitee(account.as_deref()));
    app.store
        .use_invite(hash, now, vec![write], |invite| {
            let mut details = connect_details(&grant);
            details.extend(invite_details(invite, hash));
            details.insert("reconnect".into(), reconnect.into());
            scope.done(details)
        })
        .await?
        .ok_or_else(invite_unusable)?;
    tracing::info!(org = %invite.org_id, provider = %provider.id, "connected through an invite (API key)");
    Ok(InviteKeyOutcome::Connected {
        provider_name: provider.name.clone(),
        vendor_account: account,
    })
}

// --- disconnect ----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disconnected {
    pub provider: String,
    /// `disconnected` (data kept) or `not_connected` (purged).
    pub status: &'static str,
    pub purged_items: usize,
}

/// `?purge=` of a disconnect: absent or `false` keeps the data, `true` deletes it.
pub fn parse_purge(value: Option<&str>) -> Result<bool> {
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(Error::bad_request(
            "invalid_purge",
            "purge must be 'true' or 'false'",
        )),
    }
}

/// `DELETE /api/connections/{provider}`: unscheduled first (out of the DueIndex,
/// lease dropped so a run in flight writes nothing on the connection), then the
/// secret is scheduled for deletion (recoverable by a Reconnect for 7 days).
/// The synced data stays unless `purge`, which deletes the app's whole partition
/// and the connection item.
pub async fn disconnect(
    app: &App,
    caller: &Admin,
    provider_id: &str,
    purge: bool,
) -> Result<Disconnected> {
    let provider = app.config.catalog.get(provider_id)?;
    let now = app.config.clock.now();
    let mut details = Details::new();
    details.insert("purge".into(), purge.into());
    let entry = caller.audit().done(details);
    let connection = app
        .store
        .mark_disconnected(&caller.org, &provider.id, &caller.user, now, &entry)
        .await?
        .ok_or_else(|| Error::NotFound(format!("connection to {}", provider.name)))?;
    app.vault.delete(&connection.secret_name).await?;
    let mut purged_items = 0;
    if purge {
        purged_items += app
            .store
            .delete_partition(&keys::app(&caller.org, &provider.id))
            .await?;
        if app
            .store
            .delete_connection(&caller.org, &provider.id)
            .await?
        {
            purged_items += 1;
        }
        let count = i64::try_from(purged_items).unwrap_or(i64::MAX);
        if let Err(e) = app
            .store
            .annotate_entry(&entry, "purged_items", count)
            .await
        {
            tracing::warn!(error = %e.chain(), "the purge's item count was not added to its audit entry");
        }
    }
    tracing::info!(org = %caller.org, provider = %provider.id, purge, purged_items, "disconnected");
    Ok(Disconnected {
        provider: provider.id.clone(),
        status: if purge {
            "not_connected"
        } else {
            "disconnected"
        },
        purged_items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::load(|_| None).unwrap()
    }

    /// Every way found to smuggle another origin through `return_to`.
    const HOSTILE_RETURN_TO: &[&str] = &[
        "/.//evil.example/x",
        "/%2e//evil.example/x",
        "/%2E//evil.example/x",
        "/a/..//evil.example/x",
        "/apps/..//evil.example/x",
        "/connections/../..//evil.example/x",
        "/%2e%2e//evil.example/x",
        "/%2f/evil.example/x",
        "/%2F%2Fevil.example/x",
        "/%5cevil.example/x",
        "/%5C%5Cevil.example",
        "/\\evil.example",
        "/\\/evil.example",
        "\\\\evil.example",
        "//evil.example",
        "//evil.example/x",
        "///evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r//evil.example",
        "/%09/evil.example",
        "/%0a/evil.example",
        "https://evil.example",
        "https://evil.example/connections",
        "http:evil.example",
        "javascript:alert(1)",
        "evil.example",
        "connections",
        "/%252e//evil.example/x",
        "/apps/%2e%2e/%2e%2e//evil.example",
        "/connections?x=1#//evil.example",
        "/connections?next=//evil.example",
        "/connections?x=%0d%0aSet-Cookie:a",
        "/apps/unknown-app",
        "/apps/pagerduty/../../..//evil.example",
        "/a\nb",
    ];

    #[test]
    fn return_to_resolves_to_a_dashboard_route_or_the_default() {
        let c = catalog();
        assert_eq!(resolve_return_to(None, &c), "/connections");
        assert_eq!(resolve_return_to(Some(""), &c), "/connections");
        for (given, want) in [
            ("/", "/"),
            ("/connections", "/connections"),
            ("/apps/pagerduty", "/apps/pagerduty"),
            ("/apps/pagerduty?x=1", "/apps/pagerduty?x=1"),
            ("/apps/./pagerduty", "/apps/pagerduty"),
            ("/apps/sendgrid/../pandadoc", "/apps/pandadoc"),
            ("/%63onnections", "/connections"),
            (
                "/connections?tab=all&sort=name",
                "/connections?tab=all&sort=name",
            ),
        ] {
            assert_eq!(resolve_return_to(Some(given), &c), want, "{given}");
        }
        for bad in HOSTILE_RETURN_TO {
            assert_eq!(resolve_return_to(Some(bad), &c), "/connections", "{bad:?}");
        }
    }

    #[test]
    fn no_return_to_leaves_the_origin_on_approve_or_deny() {
        let c = catalog();
        for bad in HOSTILE_RETURN_TO {
            let return_to = resolve_return_to(Some(bad), &c);
            for outcome in [
                CallbackOutcome::Connected {
                    provider: "pagerduty".into(),
                    return_to: return_to.clone(),
                    invited: false,
                },
                CallbackOutcome::NotConnected {
                    provider: "pagerduty".into(),
                    return_to: return_to.clone(),
                    reason: "access_denied".into(),
                    message: "denied".into(),
                    invited: false,
                },
            ] {
                let to = outcome.location();
                assert!(
                    to.starts_with("/connections?provider=pagerduty&result="),
                    "{bad:?} → {to}"
                );
            }
        }
        // Even an unresolved stored path cannot leave the origin.
        let o = CallbackOutcome::Connected {
            provider: "pagerduty".into(),
            return_to: "/.//evil.example/x".into(),
            invited: false,
        };
        assert!(is_same_origin_path(&o.location()), "{}", o.location());
        assert!(!is_same_origin_path("//evil.example"));
        assert!(!is_same_origin_path("/\\evil.example"));
        assert!(!is_same_origin_path("https://evil.example"));
        assert!(is_same_origin_path("/connections"));
    }

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
            pk: "OAUTH_STATE#hash".into(),
            sk: "STATE".into(),
            org_id: "acme".into(),
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

    fn key(s: &str) -> SecretString {
        s.to_string().into()
    }

    #[test]
    fn malformed_api_keys_are_refused_without_echoing_them() {
        assert!(validate_api_key(&key("SG.abc-DEF_123.xyz")).is_ok());
        for (bad, says) in [
            ("", "empty"),
            ("sekrit-value with-space", "spaces"),
            ("sekrit-value\n", "spaces"),
            ("sekrit\u{7}value", "control"),
            ("sekrit-välue", "ASCII"),
        ] {
            let e = validate_api_key(&key(bad)).unwrap_err();
            assert_eq!((e.status(), e.code()), (400, "invalid_api_key"), "{bad:?}");
            assert!(e.public_message().contains(says), "{bad:?}: {e}");
            assert!(bad.is_empty() || !e.public_message().contains("sekrit"));
        }
        let long = "k".repeat(MAX_API_KEY_LEN + 1);
        let e = validate_api_key(&key(&long)).unwrap_err();
        assert!(e.public_message().contains("512"), "{e}");
        assert!(validate_api_key(&key(&"k".repeat(MAX_API_KEY_LEN))).is_ok());
    }

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

    #[test]
    fn purge_is_true_false_or_absent() {
        assert!(!parse_purge(None).unwrap());
        assert!(!parse_purge(Some("false")).unwrap());
        assert!(parse_purge(Some("true")).unwrap());
        for bad in ["1", "yes", "TRUE", ""] {
            assert_eq!(parse_purge(Some(bad)).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn the_binding_cookie_is_host_prefixed_secure_httponly_lax_and_ten_minutes() {
        let b = BrowserBinding::new();
        let secure = b.set_cookie(true);
        assert!(secure.starts_with("__Host-seatscope_oauth="), "{secure}");
        for part in [
            "; Path=/",
            "; Max-Age=600",
            "; HttpOnly",
            "; SameSite=Lax",
            "; Secure",
        ] {
            assert!(secure.contains(part), "{secure} lacks {part}");
        }
        assert!(!secure.contains("Domain"));
        let local = b.set_cookie(false);
        assert!(
            local.starts_with("seatscope_oauth=") && !local.contains("Secure"),
            "{local}"
        );
        assert!(!format!("{b:?}").contains(b.nonce.expose_secret()));
        // Read back from a Cookie header among others, by the configured name only.
        let nonce = b.nonce.expose_secret().to_string();
        let header = format!("a=1; seatscope_oauth={nonce}; b=2");
        let read = oauth_cookie([header.as_str()], false).unwrap();
        assert!(same_browser(Some(&b.hash()), Some(&read)));
        assert!(oauth_cookie([header.as_str()], true).is_none());
        assert!(!same_browser(
            Some(&b.hash()),
            Some(&BrowserBinding::new().nonce)
        ));
        assert!(!same_browser(None, Some(&read)));
        assert!(!same_browser(Some(&b.hash()), None));
        assert!(oauth_cookie(["seatscope_oauth=a;b"], false).is_some());
        assert!(oauth_cookie(["seatscope_oauth=<x>"], false).is_none());
    }

    #[test]
    fn state_hash_is_hex_sha256() {
        assert_eq!(state_hash("abc").len(), 64);
        assert_ne!(state_hash("abc"), state_hash("abd"));
    }
}
