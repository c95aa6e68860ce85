//! A connection's credentials, ready to use: an OAuth token set refreshed under the
//! connection's refresh lock when it is about to expire (or the vendor refused it).

use secrecy::{ExposeSecret, SecretString};
use time::Duration;

use crate::deps::Deps;
use crate::domain::catalog::Provider;
use crate::domain::connection::Connection;
use crate::domain::run::new_run_id;
use crate::error::{Error, Result};
use crate::oauth_client;
use crate::store::ConnectionLock;
use crate::vault::Credentials;

/// Refresh an OAuth token this long before it expires.
pub const REFRESH_MARGIN: Duration = Duration::minutes(5);
/// How long one refresh may hold the connection's refresh lock.
const REFRESH_LOCK_TTL: Duration = Duration::seconds(30);
/// How long a caller waits for another caller's refresh before giving up (transient).
const REFRESH_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
const REFRESH_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// The connection's credentials, ready to use: an OAuth token set that expires
/// within 5 minutes (or whose access token the vendor just refused, `rejected`) is
/// refreshed first. Exactly one caller refreshes: it takes the connection's refresh
/// lock, re-reads the secret (someone may have refreshed meanwhile), refreshes and
/// stores the new set before anyone uses it; every other caller waits until the
/// stored access token changes and uses the new one. PagerDuty rotates refresh
/// tokens, so a second refresh with the old one would fail with `invalid_grant`
/// and lose the connection.
pub async fn usable_credentials(
    deps: &Deps,
    provider: &Provider,
    connection: &Connection,
    rejected: Option<&SecretString>,
) -> Result<Credentials> {
    let credentials = deps.vault.credentials(&connection.secret_name).await?;
    let Credentials::OAuth2(tokens) = &credentials else {
        return Ok(credentials);
    };
    let stale: SecretString = match rejected {
        // Someone already replaced the refused token: use theirs.
        Some(r) if r.expose_secret() != tokens.access_token.expose_secret() => {
            return Ok(credentials)
        }
        Some(r) => r.clone(),
        None if tokens.due_for_refresh(deps.config.clock.now(), REFRESH_MARGIN) => {
            tokens.access_token.clone()
        }
        None => return Ok(credentials),
    };
    let is_stale = |c: &Credentials| match c {
        Credentials::OAuth2(t) => t.access_token.expose_secret() == stale.expose_secret(),
        Credentials::ApiKey(_) => false,
    };
    let (org, provider_id) = (&connection.org_id, &connection.provider);
    let owner = new_run_id();
    let deadline = tokio::time::Instant::now() + REFRESH_WAIT;
    loop {
        let now = deps.config.clock.now();
        if deps
            .store
            .take_lock(
                ConnectionLock::Refresh,
                (org, provider_id),
                &owner,
                now,
                REFRESH_LOCK_TTL,
            )
            .await?
        {
            let refreshed = async {
                // Re-read under the lock: the previous holder may have refreshed already.
                let current = deps.vault.credentials(&connection.secret_name).await?;
                match current {
                    Credentials::OAuth2(tokens)
                        if tokens.access_token.expose_secret() == stale.expose_secret() =>
                    {
                        let fresh = Credentials::OAuth2(
                            oauth_client::refresh(deps, provider, &tokens).await?,
                        );
                        // Stored before use: the vendor may already have invalidated the
                        // old refresh token.
                        // `update` never revives a secret a disconnect deleted meanwhile.
                        deps.vault.update(&connection.secret_name, &fresh).await?;
                        tracing::info!(org = %org, provider = %provider_id, "token refreshed");
                        Ok(fresh)
                    }
                    other => Ok(other),
                }
            }
            .await;
            if let Err(e) = deps
                .store
                .release_refresh_lock(org, provider_id, &owner)
                .await
            {
                // It expires by itself after REFRESH_LOCK_TTL.
                tracing::warn!(org = %org, provider = %provider_id, error = %e.chain(), "refresh lock not released");
            }
            return refreshed;
        }
        // Another caller is refreshing: wait for the new set it stores.
        tokio::time::sleep(REFRESH_POLL).await;
        let current = deps.vault.credentials(&connection.secret_name).await?;
        if !is_stale(&current) {
            return Ok(current);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::vendor(
                provider_id,
                "the access token is being refreshed by another run that did not finish; retrying later",
            ));
        }
    }
}
