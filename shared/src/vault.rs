//! Secrets Manager adapter: one secret per connection, named
//! `<prefix>/<org>/<provider>`, holding the token set or the API key as JSON.
//! Values stay in `secrecy` types from the moment they are read.

use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::aws::LazyClient;
use crate::error::{Error, Result};

/// What a connection authenticates with.
#[derive(Debug, Clone)]
pub enum Credentials {
    OAuth2(TokenSet),
    ApiKey(SecretString),
}

#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    /// Epoch seconds; None when the vendor did not say.
    pub expires_at: Option<i64>,
    pub scope: Option<String>,
    /// Epoch seconds when this access token was obtained (None for sets stored
    /// before this field existed).
    pub obtained_at: Option<i64>,
}

impl TokenSet {
    /// Time to refresh: the token expires within `margin`, or within half its
    /// lifetime where that is shorter — so a vendor whose tokens live less than
    /// the margin does not get a refresh for every use of a token just obtained.
    pub fn due_for_refresh(&self, now: OffsetDateTime, margin: time::Duration) -> bool {
        let margin = match (self.obtained_at, self.expires_at) {
            (Some(obtained), Some(expires)) if expires > obtained => {
                margin.min(time::Duration::seconds((expires - obtained) / 2))
            }
            _ => margin,
        };
        self.expires_within(now, margin)
    }

    /// True when the token expires within `margin` of `now`.
    pub fn expires_within(&self, now: OffsetDateTime, margin: time::Duration) -> bool {
        self.expires_at
            .is_some_and(|at| at <= (now + margin).unix_timestamp())
    }
}

/// The JSON stored in the secret (plain strings only inside this module).
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredSecret {
    Oauth2 {
        access_token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refresh_token: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_at: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        obtained_at: Option<i64>,
    },
    ApiKey {
        api_key: String,
    },
}

impl Credentials {
    fn to_json(&self) -> Result<String> {
        let stored = match self {
            Credentials::OAuth2(t) => StoredSecret::Oauth2 {
                access_token: t.access_token.expose_secret().to_string(),
                refresh_token: t
                    .refresh_token
                    .as_ref()
                    .map(|r| r.expose_secret().to_string()),
                expires_at: t.expires_at,
                scope: t.scope.clone(),
                obtained_at: t.obtained_at,
            },
            Credentials::ApiKey(k) => StoredSecret::ApiKey {
                api_key: k.expose_secret().to_string(),
            },
        };
        serde_json::to_string(&stored).map_err(|e| Error::internal("encoding a secret", e))
    }

    fn from_json(raw: &str) -> Result<Credentials> {
        let stored: StoredSecret = serde_json::from_str(raw).map_err(|_| Error::Internal {
            context: "a connection secret is not in the expected format".into(),
            source: None,
        })?;
        Ok(match stored {
            StoredSecret::Oauth2 {
                access_token,
                refresh_token,
                expires_at,
                scope,
                obtained_at,
            } => Credentials::OAuth2(TokenSet {
                access_token: access_token.into(),
                refresh_token: refresh_token.map(Into::into),
                expires_at,
                scope,
                obtained_at,
            }),
            StoredSecret::ApiKey { api_key } => Credentials::ApiKey(api_key.into()),
        })
    }
}

/// Days a disconnected connection's secret stays recoverable by a Reconnect.
pub const RECOVERY_WINDOW_DAYS: i64 = 7;

#[derive(Clone)]
pub struct SecretsManagerVault {
    client: LazyClient<Client>,
    prefix: String,
}

impl SecretsManagerVault {
    pub fn new(client: impl Into<LazyClient<Client>>, prefix: impl Into<String>) -> Self {
        SecretsManagerVault {
            client: client.into(),
            prefix: prefix.into(),
        }
    }

    pub fn secret_name(&self, org: &str, provider: &str) -> String {
        format!("{}/{org}/{provider}", self.prefix)
    }

    /// Where a connect that landed on another vendor account keeps its credentials
    /// until an admin chooses (`ops::connect::account_change`); after a switch the
    /// connection goes on using it. Named by a hash of the account's identity (any
    /// vendor's id fits Secrets Manager's name rules), so a switch back to an account
    /// finds its earlier secret.
    pub fn account_secret_name(&self, org: &str, provider: &str, account_id: &str) -> String {
        use sha2::{Digest, Sha256};
        let hash: String = Sha256::digest(account_id.as_bytes())
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{}/acct-{hash}", self.secret_name(org, provider))
    }

    /// Connection secrets share the prefix with the OAuth client secrets
    /// (`<prefix>/oauth-clients/<provider>`): an org named "oauth-clients" must never
    /// write or delete those (IAM denies it in AWS too).
    fn writable(&self, name: &str) -> Result<()> {
        if name.starts_with(&format!("{}/oauth-clients/", self.prefix)) {
            return Err(Error::bad_request(
                "reserved_org",
                "this org id is reserved and cannot hold connections",
            ));
        }
        Ok(())
    }

    /// Stores a connect's credentials (OAuth, API key, invite): a new version of
    /// the existing secret, a new secret if there is none, and a secret scheduled
    /// for deletion by a disconnect is restored first (Reconnect).
    ///
    /// DescribeSecret first rather than PutSecretValue: Secrets Manager refuses
    /// PutSecretValue on a secret scheduled for deletion, but moto accepts it and
    /// leaves the secret deleted, so only an explicit check behaves the same on both.
    pub async fn put(&self, name: &str, credentials: &Credentials) -> Result<()> {
        self.writable(name)?;
        let value = SecretString::from(credentials.to_json()?);
        let described = self
            .client
            .get()
            .await
            .describe_secret()
            .secret_id(name)
            .send()
            .await;
        match described {
            Ok(d) => {
                if d.deleted_date().is_some() {
                    self.restore(name).await?;
                }
                self.put_value(name, &value).await
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                self.create(name, &value).await
            }
            Err(e) => Err(Error::internal("secretsmanager DescribeSecret failed", e)),
        }
    }

    /// Writes a refreshed token set as a new version of the connection's existing
    /// secret: PutSecretValue only (no CreateSecret on this path), and never
    /// revives a secret a disconnect scheduled for deletion — that is NotFound.
    pub async fn update(&self, name: &str, credentials: &Credentials) -> Result<()> {
        self.writable(name)?;
        let value = SecretString::from(credentials.to_json()?);
        self.put_value(name, &value).await
    }

    /// Schedules the secret's deletion with a 7-day recovery window (a Reconnect
    /// within it restores the secret). Already gone or already scheduled is fine.
    pub async fn delete(&self, name: &str) -> Result<()> {
        self.writable(name)?;
        let result = self
            .client
            .get()
            .await
            .delete_secret()
            .secret_id(name)
            .recovery_window_in_days(RECOVERY_WINDOW_DAYS)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if secret_gone(&e) => Ok(()),
            Err(e) => Err(Error::internal("secretsmanager DeleteSecret failed", e)),
        }
    }

    async fn create(&self, name: &str, value: &SecretString) -> Result<()> {
        let created = self
            .client
            .get()
            .await
            .create_secret()
            .name(name)
            .description("Seatscope connection credentials")
            .secret_string(value.expose_secret())
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // Created concurrently since the check: a new version instead.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                self.put_value(name, value).await
            }
            // Scheduled for deletion since the check.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_invalid_request_exception()) =>
            {
                self.restore(name).await?;
                self.put_value(name, value).await
            }
            Err(e) => Err(Error::internal("secretsmanager CreateSecret failed", e)),
        }
    }

    async fn restore(&self, name: &str) -> Result<()> {
        self.client
            .get()
            .await
            .restore_secret()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| Error::internal("secretsmanager RestoreSecret failed", e))?;
        Ok(())
    }

    async fn put_value(&self, name: &str, value: &SecretString) -> Result<()> {
        let result = self
            .client
            .get()
            .await
            .put_secret_value()
            .secret_id(name)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if secret_gone(&e) => Err(Error::NotFound(format!(
                "secret {name} (deleted or scheduled for deletion)"
            ))),
            Err(e) => Err(Error::internal("secretsmanager PutSecretValue failed", e)),
        }
    }

    pub async fn credentials(&self, name: &str) -> Result<Credentials> {
        Credentials::from_json(self.plain(name).await?.expose_secret())
    }

    /// A secret's raw string (e.g. an OAuth client secret).
    pub async fn plain(&self, name: &str) -> Result<SecretString> {
        let out = self
            .client
            .get()
            .await
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| {
                // InvalidRequest: scheduled for deletion by a disconnect.
                if e.as_service_error().is_some_and(|e| {
                    e.is_resource_not_found_exception() || e.is_invalid_request_exception()
                }) {
                    Error::NotFound(format!("secret {name}"))
                } else {
                    Error::internal("secretsmanager GetSecretValue failed", e)
                }
            })?;
        out.secret_string
            .map(SecretString::from)
            .ok_or_else(|| Error::Internal {
                context: format!("secret {name} has no string value"),
                source: None,
            })
    }
}

/// Whether Secrets Manager answered that the secret is gone, or scheduled for
/// deletion (an invalid request on such a secret).
fn secret_gone<E, R>(e: &aws_sdk_secretsmanager::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ResourceNotFoundException" || c == "InvalidRequestException")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_set_round_trips_through_the_stored_json() {
        let c = Credentials::OAuth2(TokenSet {
            access_token: "a".to_string().into(),
            refresh_token: Some("r".to_string().into()),
            expires_at: Some(10),
            scope: Some("read".into()),
            obtained_at: Some(5),
        });
        let json = c.to_json().unwrap();
        match Credentials::from_json(&json).unwrap() {
            Credentials::OAuth2(t) => {
                assert_eq!(t.access_token.expose_secret(), "a");
                assert_eq!(t.refresh_token.unwrap().expose_secret(), "r");
                assert_eq!(t.expires_at, Some(10));
                assert_eq!(t.obtained_at, Some(5));
            }
            Credentials::ApiKey(_) => panic!("wrong kind"),
        }
    }

    #[test]
    fn debug_output_never_shows_a_token() {
        let c = Credentials::ApiKey("super-secret-key".to_string().into());
        assert!(!format!("{c:?}").contains("super-secret-key"));
    }

    #[test]
    fn expiry_margin_is_inclusive() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        let t = TokenSet {
            access_token: "a".to_string().into(),
            refresh_token: None,
            expires_at: Some(1_300),
            scope: None,
            obtained_at: None,
        };
        assert!(t.expires_within(now, time::Duration::minutes(5)));
        assert!(!t.expires_within(now, time::Duration::minutes(4)));
    }

    #[test]
    fn a_short_lived_token_is_refreshed_at_half_its_life_not_on_every_use() {
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        let margin = time::Duration::minutes(5);
        // Lives 120 s, obtained at 1000: fine until 1060, due from then on.
        let short = TokenSet {
            access_token: "a".to_string().into(),
            refresh_token: None,
            expires_at: Some(1_120),
            scope: None,
            obtained_at: Some(1_000),
        };
        assert!(!short.due_for_refresh(at(1_000), margin));
        assert!(!short.due_for_refresh(at(1_059), margin));
        assert!(short.due_for_refresh(at(1_060), margin));
        // A long-lived token keeps the 5-minute margin.
        let long = TokenSet {
            expires_at: Some(1_000 + 3_600),
            ..short.clone()
        };
        assert!(!long.due_for_refresh(at(4_299), margin));
        assert!(long.due_for_refresh(at(4_300), margin));
        // Unknown age (stored before obtained_at existed): the margin alone.
        let legacy = TokenSet {
            obtained_at: None,
            ..short
        };
        assert!(legacy.due_for_refresh(at(1_000), margin));
    }
}
