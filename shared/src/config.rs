//! Typed configuration, read once at cold start. Required values have no silent
//! defaults; environment variables carry secret *names*, never secret values.

use std::collections::BTreeMap;

use url::Url;

use crate::domain::catalog::Catalog;
use crate::domain::time::Clock;
use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub client_id: String,
    /// Name (or ARN) of the Secrets Manager secret holding the client secret.
    pub client_secret_name: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SignIn {
    pub issuer: String,
    pub client_id: String,
    pub scope: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    pub stage: String,
    /// Every connection's secret is named `<secret_prefix>/<org>/<provider>`.
    pub secret_prefix: String,
    /// The JWT claim that names the caller's org.
    pub org_claim: String,
    /// ROLE_CLAIM and ADMIN_VALUES: which claim says who is an admin (unset: every
    /// member is).
    pub roles: crate::domain::caller::RolePolicy,
    /// The exact redirect URI registered at every vendor.
    pub oauth_redirect_uri: Url,
    /// `OAUTH_COOKIE_SECURE` (`true`, the default, or `false`): the OAuth binding
    /// cookie is `__Host-` prefixed and `Secure`. Only the local http stack sets false;
    /// never guessed from a request.
    pub oauth_cookie_secure: bool,
    pub sync_interval_minutes: u32,
    pub sync_history_days: u32,
    /// The fan-out queue (SYNC_QUEUE_URL): the tick sends one message per due
    /// connection to it. Only the sync function needs it (`App::sync_queue`).
    pub sync_queue_url: Option<String>,
    /// How long a run's lease holds (SYNC_LEASE_SECONDS, default 900 = the sync
    /// function's timeout): a crashed run's lease frees itself after this.
    pub sync_lease_seconds: u32,
    /// Activity is fetched and written in windows of this many days
    /// (SYNC_WINDOW_DAYS, default 7); the checkpoint advances after each.
    pub sync_window_days: u32,
    /// How many activity windows are fetched at once (SYNC_PARALLEL_WINDOWS,
    /// default 3). They share the connection's rate budget; they are written, and
    /// the checkpoint moved, strictly in order.
    pub sync_parallel_windows: u32,
    /// A run stops this long before the Lambda deadline, saves its checkpoint and
    /// re-enqueues the rest (SYNC_DEADLINE_MARGIN_SECONDS, default 30).
    pub sync_deadline_margin_seconds: u32,
    /// The dashboard's sign-in (OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_SCOPE): what the
    /// page's OIDC client needs, served at `GET /api/config`. The same issuer and
    /// client id (the audience) configure API Gateway's JWT authorizer.
    pub sign_in: Option<SignIn>,
    /// OAuth clients by provider id (only those configured).
    pub oauth_clients: BTreeMap<String, OAuthClient>,
    pub catalog: Catalog,
    /// What "now" is (CLOCK_OFFSET_SECONDS, default 0: the system clock); see `clock`.
    pub clock: Clock,
}

impl Config {
    pub fn from_env() -> Result<Config> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config> {
        let required = |k: &str| {
            lookup(k).ok_or_else(|| Error::Config(format!("environment variable {k} is required")))
        };
        let number = |k: &str, default: u32| -> Result<u32> {
            match lookup(k) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| Error::Config(format!("{k} must be a whole number, got '{v}'"))),
            }
        };
        let catalog = Catalog::load(&lookup)?;
        let redirect = required("OAUTH_REDIRECT_URI")?;
        let oauth_redirect_uri = Url::parse(&redirect)
            .map_err(|e| Error::Config(format!("OAUTH_REDIRECT_URI '{redirect}': {e}")))?;
        let mut oauth_clients = BTreeMap::new();
        for p in catalog.providers().iter().filter(|p| p.oauth2.is_some()) {
            let prefix = p.env_prefix();
            let id = lookup(&format!("{prefix}_CLIENT_ID"));
            let secret = lookup(&format!("{prefix}_CLIENT_SECRET_NAME"));
            match (id, secret) {
                (Some(client_id), Some(client_secret_name)) => {
                    oauth_clients.insert(
                        p.id.clone(),
                        OAuthClient {
                            client_id,
                            client_secret_name,
                        },
                    );
                }
                (None, None) => {}
                _ => {
                    return Err(Error::Config(format!(
                        "{prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET_NAME must be set together"
                    )))
                }
            }
        }
        let sign_in = match (lookup("OIDC_ISSUER"), lookup("OIDC_CLIENT_ID")) {
            (Some(issuer), Some(client_id)) => {
                Url::parse(&issuer)
                    .map_err(|e| Error::Config(format!("OIDC_ISSUER '{issuer}': {e}")))?;
                Some(SignIn {
                    issuer,
                    client_id,
                    scope: lookup("OIDC_SCOPE").unwrap_or_else(|| "openid profile email".into()),
                })
            }
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "OIDC_ISSUER and OIDC_CLIENT_ID must be set together".into(),
                ))
            }
        };
        let oauth_cookie_secure = match lookup("OAUTH_COOKIE_SECURE").as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(v) => {
                return Err(Error::Config(format!(
                    "OAUTH_COOKIE_SECURE must be 'true' or 'false', got '{v}'"
                )))
            }
        };
        let clock_offset = match lookup("CLOCK_OFFSET_SECONDS") {
            None => 0,
            Some(v) => v.parse::<i64>().ok().filter(|s| s.abs() <= 200 * 365 * 86_400).ok_or_else(|| {
                Error::Config(format!(
                    "CLOCK_OFFSET_SECONDS must be a whole number of seconds within 200 years, got '{v}'"
                ))
            })?,
        };
        Ok(Config {
            clock: Clock::offset_by(time::Duration::seconds(clock_offset)),
            sign_in,
            table_name: required("TABLE_NAME")?,
            stage: required("STAGE")?,
            secret_prefix: required("SECRET_PREFIX")?,
            org_claim: required("ORG_CLAIM")?,
            roles: crate::domain::caller::RolePolicy::new(
                lookup("ROLE_CLAIM"),
                lookup("ADMIN_VALUES").as_deref(),
            ),
            oauth_redirect_uri,
            oauth_cookie_secure,
            sync_interval_minutes: number("SYNC_INTERVAL_MINUTES", 60)?.max(1),
            sync_history_days: number("SYNC_HISTORY_DAYS", 90)?.clamp(1, 3650),
            sync_queue_url: lookup("SYNC_QUEUE_URL"),
            sync_lease_seconds: number("SYNC_LEASE_SECONDS", 900)?.max(1),
            sync_window_days: number("SYNC_WINDOW_DAYS", 7)?.clamp(1, 366),
            sync_parallel_windows: number("SYNC_PARALLEL_WINDOWS", 3)?.clamp(1, 16),
            sync_deadline_margin_seconds: number("SYNC_DEADLINE_MARGIN_SECONDS", 30)?,
            oauth_clients,
            catalog,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(k: &str) -> Option<String> {
        match k {
            "TABLE_NAME" => Some("t".into()),
            "STAGE" => Some("dev".into()),
            "SECRET_PREFIX" => Some("seatscope/dev".into()),
            "ORG_CLAIM" => Some("org_id".into()),
            "OAUTH_REDIRECT_URI" => Some("http://127.0.0.1:3000/oauth/callback".into()),
            _ => None,
        }
    }

    #[test]
    fn missing_required_value_names_the_variable() {
        let err =
            Config::from_lookup(|k| if k == "TABLE_NAME" { None } else { base(k) }).unwrap_err();
        assert!(err.to_string().contains("TABLE_NAME"), "{err}");
    }

    #[test]
    fn half_configured_oauth_client_is_refused() {
        let err = Config::from_lookup(|k| match k {
            "PAGERDUTY_CLIENT_ID" => Some("id".into()),
            other => base(other),
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("PAGERDUTY_CLIENT_SECRET_NAME"),
            "{err}"
        );
    }

    #[test]
    fn defaults_apply_to_optional_numbers() {
        let c = Config::from_lookup(base).unwrap();
        assert_eq!(c.sync_interval_minutes, 60);
        assert_eq!(c.sync_history_days, 90);
        assert_eq!(c.sync_lease_seconds, 900);
        assert_eq!(c.sync_window_days, 7);
        assert_eq!(c.sync_deadline_margin_seconds, 30);
        assert!(c.sync_queue_url.is_none());
        assert!(c.oauth_clients.is_empty());
        assert!(c.oauth_cookie_secure);
        assert_eq!(c.roles, crate::domain::caller::RolePolicy::default());
    }

    #[test]
    fn roles_are_read_from_role_claim_and_admin_values() {
        let c = Config::from_lookup(|k| match k {
            "ROLE_CLAIM" => Some("groups".into()),
            "ADMIN_VALUES" => Some("seatscope-admins,owners".into()),
            other => base(other),
        })
        .unwrap();
        assert_eq!(c.roles.claim.as_deref(), Some("groups"));
        assert_eq!(c.roles.admin_values, vec!["seatscope-admins", "owners"]);
    }

    #[test]
    fn the_oauth_cookie_is_secure_unless_configured_off() {
        let with = |v: &'static str| {
            Config::from_lookup(move |k| match k {
                "OAUTH_COOKIE_SECURE" => Some(v.into()),
                other => base(other),
            })
        };
        assert!(with("true").unwrap().oauth_cookie_secure);
        assert!(!with("false").unwrap().oauth_cookie_secure);
        let e = with("no").unwrap_err();
        assert!(e.to_string().contains("OAUTH_COOKIE_SECURE"), "{e}");
    }
}
