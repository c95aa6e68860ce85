//! Connecting an app (DESIGN §5): start (state + PKCE → the vendor's consent page)
//! and finish (consume the state once → exchange the code → identity → secret →
//! connection). Nothing partial is left behind when a step fails.

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::app::App;
use crate::catalog::AuthMode;
use crate::connectors::Connector;
use crate::domain::{keys, rfc3339, Caller, OAuthState};
use crate::error::{Error, Result};
use crate::oauth;
use crate::vault::Credentials;

pub const STATE_TTL: Duration = Duration::minutes(10);
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

/// Only same-origin relative paths: `/x`, never `//host`, `/\host` or a scheme.
pub fn validate_return_to(return_to: Option<&str>) -> Result<String> {
    let Some(r) = return_to.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(DEFAULT_RETURN_TO.to_string());
    };
    let ok = r.starts_with('/')
        && !r.starts_with("//")
        && !r.contains('\\')
        && !r.chars().any(|c| c.is_control())
        && r.len() <= 512;
    if ok {
        Ok(r.to_string())
    } else {
        Err(Error::bad_request(
            "invalid_return_to",
            "return_to must be a relative path on this site, like /connections",
        ))
    }
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
    let return_to = validate_return_to(return_to)?;
    let authorization = oauth::authorization(app, provider).await?;
    let now = OffsetDateTime::now_utc();
    let state = OAuthState {
        pk: keys::oauth_state(&state_hash(&authorization.state)),
        sk: keys::OAUTH_STATE_SK.to_string(),
        org_id: caller.org.clone(),
        user_id: caller.user.clone(),
        provider: provider.id.clone(),
        pkce_verifier: authorization.pkce_verifier,
        return_to,
        created_at: rfc3339(now),
        expires_at: (now + STATE_TTL).unix_timestamp(),
    };
    app.store.put_oauth_state(&state).await?;
    tracing::info!(org = %caller.org, provider = %provider.id, "oauth connect started");
    Ok(StartedConnect {
        authorize_url: authorization.url,
    })
}

/// The query of the vendor's redirect to `/oauth/callback`.
#[derive(Debug, Default, Clone)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    Connected {
        provider: String,
        return_to: String,
    },
    /// The state was valid but the connect did not happen (denied, exchange failed…).
    NotConnected {
        provider: String,
        return_to: String,
        reason: String,
        message: String,
    },
}

impl CallbackOutcome {
    /// Where the browser goes next: the card's page with the outcome in the query.
    pub fn location(&self) -> String {
        let (return_to, pairs) = match self {
            CallbackOutcome::Connected {
                provider,
                return_to,
            } => (
                return_to,
                vec![("provider", provider.as_str()), ("result", "connected")],
            ),
            CallbackOutcome::NotConnected {
                provider,
                return_to,
                reason,
                message,
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
        let base = url::Url::parse("http://local.invalid/").expect("static URL parses");
        let mut url = base.join(return_to).unwrap_or_else(|_| base.clone());
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
    let now = OffsetDateTime::now_utc();
    let state = app
        .store
        .consume_oauth_state(&state_hash(state_value), now)
        .await?
        .ok_or_else(invalid_state)?;
    let not_connected = |reason: String, message: String| CallbackOutcome::NotConnected {
        provider: state.provider.clone(),
        return_to: state.return_to.clone(),
        reason,
        message,
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
                return_to: state.return_to.clone(),
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
    let account = Connector::new(provider, &app.http, &credentials)?
        .account_label()
        .await?;
    let secret_name = app.vault.secret_name(&state.org_id, &provider.id);
    // The secret first: a connection record never points at a missing secret.
    app.vault.put(&secret_name, &credentials).await?;
    app.store
        .save_connected(
            &state.org_id,
            &provider.id,
            AuthMode::Oauth2,
            &secret_name,
            &state.user_id,
            account.as_deref(),
            now,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_accepts_only_same_origin_paths() {
        assert_eq!(validate_return_to(None).unwrap(), "/connections");
        assert_eq!(
            validate_return_to(Some("/apps/pagerduty?x=1")).unwrap(),
            "/apps/pagerduty?x=1"
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "connections",
            "/a\nb",
        ] {
            assert!(validate_return_to(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn outcome_location_keeps_the_path_and_adds_the_result() {
        let o = CallbackOutcome::NotConnected {
            provider: "pagerduty".into(),
            return_to: "/connections?tab=all".into(),
            reason: "access_denied".into(),
            message: "Access was denied.".into(),
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

    #[test]
    fn state_hash_is_hex_sha256() {
        assert_eq!(state_hash("abc").len(), 64);
        assert_ne!(state_hash("abc"), state_hash("abd"));
    }
}
