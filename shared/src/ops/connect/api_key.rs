//! Connecting with an API key: checked against the vendor first, stored only then.

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::connectors::{self, Verified};
use crate::deps::Deps;
use crate::domain::audit::Admin;
use crate::domain::catalog::{AuthMode, Provider};
use crate::error::{Error, Result};
use crate::store::ConnectionGrant;
use crate::vault::Credentials;

use super::*;

// --- API keys ------------------------------------------------------------------

/// The answer to an API-key connect: never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connected {
    pub provider: String,
    /// `connected`, or `account_change_pending` when the key is of another vendor
    /// account than the connection's (the card then asks an admin to choose).
    pub status: &'static str,
    pub vendor_account: Option<String>,
    /// What to do next, when the key is held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Connected {
    /// 200 connected, 202 held for an admin's choice.
    pub fn http_status(&self) -> u16 {
        if self.message.is_some() {
            202
        } else {
            200
        }
    }
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

pub(super) fn api_key_provider<'a>(deps: &'a Deps, provider_id: &str) -> Result<&'a Provider> {
    let provider = deps.config.catalog.get(provider_id)?;
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
pub(super) async fn verify_api_key(
    deps: &Deps,
    provider: &Provider,
    key: SecretString,
) -> Result<(Credentials, Verified)> {
    validate_api_key(&key)?;
    let credentials = Credentials::ApiKey(key);
    let verified = connectors::for_provider(provider, deps.http()?, &credentials)?
        .verify()
        .await
        .map_err(|e| crate::connectors::refused(&provider.name, e))?;
    Ok((credentials, verified))
}

/// `POST /api/connections/{provider}/api-key`: checked with the vendor, then the
/// secret, then the connection. Nothing is stored when the key is refused.
pub async fn connect_api_key(
    deps: &Deps,
    caller: &Admin,
    provider_id: &str,
    key: SecretString,
) -> Result<Connected> {
    let provider = api_key_provider(deps, provider_id)?;
    let (credentials, verified) = verify_api_key(deps, provider, key).await?;
    let account = verified.account_label;
    let stored = store_connection(
        deps,
        caller.audit(),
        &ConnectionGrant {
            org: &caller.org,
            provider: &provider.id,
            auth_mode: AuthMode::ApiKey,
            secret_name: &deps.vault.secret_name(&caller.org, &provider.id),
            connected_by: &caller.user,
            invited_by: None,
            vendor_account: account.as_deref(),
            vendor_account_id: verified.account_id.as_deref(),
            scopes: checked_key_scopes(provider),
            now: deps.config.clock.now(),
        },
        &credentials,
    )
    .await?;
    let message = match stored {
        Stored::Connected => {
            tracing::info!(org = %caller.org, provider = %provider.id, "connected with an API key");
            None
        }
        Stored::AwaitingChoice { message } => Some(message),
    };
    Ok(Connected {
        provider: provider.id.clone(),
        status: if message.is_some() {
            "account_change_pending"
        } else {
            "connected"
        },
        vendor_account: account,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
