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
use crate::catalog::{AuthMode, Catalog, Provider};
use crate::connectors::{Connector, Verified};
use crate::domain::{invite_pk, keys, rfc3339, Caller, Invite, OAuthState, INVITE_SK};
use crate::error::{Error, Result};
use crate::oauth;
use crate::store::ConnectionGrant;
use crate::vault::Credentials;

pub const STATE_TTL: Duration = Duration::minutes(10);
/// How long an invite link can be used.
pub const INVITE_TTL: Duration = Duration::days(7);
/// Longer than any vendor's keys; a bound so nobody posts megabytes at a vendor.
pub const MAX_API_KEY_LEN: usize = 512;
/// `connected_by` of an invite connect when the vendor did not say who consented.
pub const INVITED_ADMIN: &str = "invited admin";
const DEFAULT_RETURN_TO: &str = "/connections";

#[derive(Debug, serde::Serialize)]
pub struct StartedConnect {
    pub authorize_url: String,
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
    caller: &Caller,
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
    let authorize_url =
        begin_oauth(app, provider, &caller.org, &caller.user, return_to, None).await?;
    tracing::info!(org = %caller.org, provider = %provider.id, "oauth connect started");
    Ok(StartedConnect { authorize_url })
}

/// Stores a fresh single-use state (bound to org, user and provider) and returns
/// the vendor's authorize URL.
async fn begin_oauth(
    app: &App,
    provider: &Provider,
    org: &str,
    user: &str,
    return_to: String,
    invited_by: Option<String>,
) -> Result<String> {
    let authorization = oauth::authorization(app, provider).await?;
    let now = app.config.clock.now();
    let state = OAuthState {
        pk: keys::oauth_state(&state_hash(&authorization.state)),
        sk: keys::OAUTH_STATE_SK.to_string(),
        org_id: org.to_string(),
        user_id: user.to_string(),
        provider: provider.id.clone(),
        pkce_verifier: authorization.pkce_verifier,
        return_to,
        invited_by,
        created_at: rfc3339(now),
        expires_at: (now + STATE_TTL).unix_timestamp(),
    };
    app.store.put_oauth_state(&state).await?;
    Ok(authorization.url)
}

/// The query of the vendor's redirect to `/oauth/callback`. `Debug` never shows
/// the code or the state (either one is half of a connect).
#[derive(Default, Clone)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("CallbackParams")
            .field("code", &redacted(&self.code))
            .field("state", &redacted(&self.state))
            .field("error", &self.error)
            .field("error_description", &self.error_description)
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
        return Ok(not_connected(reason, message));
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        return Ok(not_connected(
            "invalid_request".into(),
            "The vendor sent no authorization code.".into(),
        ));
    };
    match complete(app, &state, code, now).await {
        Ok(()) => {
            tracing::info!(org = %state.org_id, provider = %state.provider, "connected");
            Ok(CallbackOutcome::Connected {
                provider: state.provider.clone(),
                return_to,
                invited,
            })
        }
        Err(e) => {
            tracing::warn!(org = %state.org_id, provider = %state.provider, error = %e.chain(), "oauth connect failed");
            Ok(not_connected(e.code().to_string(), e.public_message()))
        }
    }
}

async fn complete(app: &App, state: &OAuthState, code: &str, now: OffsetDateTime) -> Result<()> {
    let provider = app.config.catalog.get(&state.provider)?;
    let tokens = oauth::exchange_code(app, provider, code, state.pkce_verifier.as_deref()).await?;
    let credentials = Credentials::OAuth2(tokens);
    let account = Connector::new(provider, app.http()?, &credentials)?
        .verify()
        .await?
        .account_label;
    // Through an invite, the dashboard user only sent the link: the one who
    // connected is the vendor account that consented.
    let connected_by = match &state.invited_by {
        Some(_) => account.as_deref().unwrap_or(INVITED_ADMIN),
        None => state.user_id.as_str(),
    };
    store_connection(
        app,
        &state.org_id,
        provider,
        AuthMode::Oauth2,
        &credentials,
        connected_by,
        state.invited_by.as_deref(),
        account.as_deref(),
        now,
    )
    .await
}

/// The secret first, then the connection: a connection record never points at
/// a missing secret. Over an existing connection this is a Reconnect.
#[allow(clippy::too_many_arguments)]
async fn store_connection(
    app: &App,
    org: &str,
    provider: &Provider,
    auth_mode: AuthMode,
    credentials: &Credentials,
    connected_by: &str,
    invited_by: Option<&str>,
    vendor_account: Option<&str>,
    now: OffsetDateTime,
) -> Result<()> {
    let secret_name = app.vault.secret_name(org, &provider.id);
    app.vault.put(&secret_name, credentials).await?;
    app.store
        .save_connection(&ConnectionGrant {
            org,
            provider: &provider.id,
            auth_mode,
            secret_name: &secret_name,
            connected_by,
            invited_by,
            vendor_account,
            now,
        })
        .await
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
    caller: &Caller,
    provider_id: &str,
    key: SecretString,
) -> Result<Connected> {
    let provider = api_key_provider(app, provider_id)?;
    let (credentials, verified) = verify_api_key(app, provider, key).await?;
    let account = verified.account_label;
    store_connection(
        app,
        &caller.org,
        provider,
        AuthMode::ApiKey,
        &credentials,
        &caller.user,
        None,
        account.as_deref(),
        app.config.clock.now(),
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
pub async fn create_invite(app: &App, caller: &Caller, provider_id: &str) -> Result<CreatedInvite> {
    let provider = app.config.catalog.get(provider_id)?;
    invite_mode(app, provider)?;
    let token = new_invite_token();
    let now = app.config.clock.now();
    let expires = now + INVITE_TTL;
    app.store
        .put_invite(&Invite {
            pk: invite_pk(&state_hash(&token)),
            sk: INVITE_SK.to_string(),
            org_id: caller.org.clone(),
            provider: provider.id.clone(),
            created_by: caller.user.clone(),
            created_at: rfc3339(now),
            expires_at: expires.unix_timestamp(),
        })
        .await?;
    tracing::info!(org = %caller.org, provider = %provider.id, "invite link created");
    Ok(CreatedInvite {
        url: format!(
            "{}/connect/invite/{token}",
            public_base(&app.config.oauth_redirect_uri)
        ),
        expires_at: rfc3339(expires),
    })
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
    /// Scopes the key must carry, where the vendor can tell (SendGrid).
    pub required_scopes: Vec<String>,
    /// Why the last key was not accepted.
    pub problem: Option<String>,
}

impl KeyForm {
    fn of(provider: &Provider, problem: Option<String>) -> KeyForm {
        KeyForm {
            provider_name: provider.name.clone(),
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
    let (_, _, provider) = pending_invite(app, token).await?;
    match invite_mode(app, provider)? {
        AuthMode::ApiKey => Ok(InviteLanding::KeyForm(KeyForm::of(provider, None))),
        AuthMode::Oauth2 => Ok(InviteLanding::Continue {
            provider_name: provider.name.clone(),
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
/// browser goes on to the vendor's consent page (the returned URL).
pub async fn continue_invite(app: &App, token: &str) -> Result<String> {
    let (hash, _, provider) = pending_invite(app, token).await?;
    if invite_mode(app, provider)? != AuthMode::Oauth2 {
        return Err(Error::bad_request(
            "api_key_required",
            format!(
                "{} connects with an API key: paste it in the form.",
                provider.name
            ),
        ));
    }
    // Single use: consumed (with the expiry in the condition) before the state is
    // created; a concurrent use loses here.
    let invite = app
        .store
        .consume_invite(&hash, app.config.clock.now())
        .await?
        .ok_or_else(invite_unusable)?;
    let authorize_url = begin_oauth(
        app,
        provider,
        &invite.org_id,
        &invite.created_by,
        DEFAULT_RETURN_TO.to_string(),
        Some(invite.created_by.clone()),
    )
    .await?;
    tracing::info!(org = %invite.org_id, provider = %provider.id, "invite used: oauth connect started");
    Ok(authorize_url)
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
/// refused key leaves the invite usable.
pub async fn submit_invite_key(
    app: &App,
    token: &str,
    key: SecretString,
) -> Result<InviteKeyOutcome> {
    let (hash, invite, _) = pending_invite(app, token).await?;
    let provider = api_key_provider(app, &invite.provider)?;
    let (credentials, verified) = match verify_api_key(app, provider, key).await {
        Ok(v) => v,
        Err(e) if e.status() < 500 || matches!(e, Error::Vendor { .. }) => {
            tracing::info!(org = %invite.org_id, provider = %provider.id, code = e.code(), "invite key not accepted");
            return Ok(InviteKeyOutcome::Retry {
                status: e.status(),
                form: KeyForm::of(provider, Some(e.public_message())),
            });
        }
        Err(e) => return Err(e),
    };
    let now = app.config.clock.now();
    let invite = app
        .store
        .consume_invite(&hash, now)
        .await?
        .ok_or_else(invite_unusable)?;
    let account = verified.account_label;
    store_connection(
        app,
        &invite.org_id,
        provider,
        AuthMode::ApiKey,
        &credentials,
        account.as_deref().unwrap_or(INVITED_ADMIN),
        Some(&invite.created_by),
        account.as_deref(),
        now,
    )
    .await?;
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
    caller: &Caller,
    provider_id: &str,
    purge: bool,
) -> Result<Disconnected> {
    let provider = app.config.catalog.get(provider_id)?;
    let now = app.config.clock.now();
    let connection = app
        .store
        .mark_disconnected(&caller.org, &provider.id, &caller.user, now)
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
        };
        let shown = format!("{params:?} {params:#?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("access_denied") && shown.contains("REDACTED"));
        let state = OAuthState {
            pk: "OAUTH_STATE#hash".into(),
            sk: "STATE".into(),
            org_id: "acme".into(),
            user_id: "u".into(),
            provider: "pagerduty".into(),
            pkce_verifier: Some("verifier-SECRET-3".into()),
            return_to: "/connections".into(),
            invited_by: None,
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
    fn state_hash_is_hex_sha256() {
        assert_eq!(state_hash("abc").len(), 64);
        assert_ne!(state_hash("abc"), state_hash("abd"));
    }
}
