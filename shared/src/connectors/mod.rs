//! Vendor connectors: one file per provider. What differs between vendors as data
//! lives in the catalog; the code here only does what must be code (paths, shapes,
//! paging rules). `http` holds the shared request loop (auth header, rate-limit
//! headers, retries with jitter).

pub mod http;
pub mod pagerduty;
pub mod pandadoc;
pub mod sendgrid;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::catalog::Provider;
use crate::error::{Error, Result};
use crate::vault::Credentials;

/// A seat as the vendor reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRecord {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub license: Option<String>,
    /// An invitation not yet accepted.
    pub invited: bool,
}

/// One use of one feature by one seat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityEvent {
    pub seat_id: String,
    pub at: OffsetDateTime,
    pub feature: &'static str,
}

/// One day of account-level usage (vendors without per-seat activity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDay {
    pub date: time::Date,
    /// Catalog feature name → count for the day.
    pub metrics: std::collections::BTreeMap<String, u64>,
}

/// Plan credits: how much of what the plan includes is used this period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanUsage {
    pub total: i64,
    pub used: i64,
    pub remain: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_reset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_frequency: Option<String>,
}

/// What a credentials check learned about the vendor account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// A label for the account (shown on the card), e.g. the owner's email.
    pub account_label: Option<String>,
}

/// A vendor's refusal of credentials being connected, as a 422 naming its reason.
pub fn refused(vendor_name: &str, e: Error) -> Error {
    match e {
        Error::VendorAuth { message, .. } => Error::unprocessable(
            "credentials_refused",
            format!("{vendor_name} refused the credentials: {message}"),
        ),
        Error::Vendor { message, .. } if message.contains(" 403") => Error::unprocessable(
            "credentials_refused",
            format!(
                "{vendor_name} refused the credentials ({message}); check the key's permissions"
            ),
        ),
        other => other,
    }
}

/// "First Last" from whichever of the two the vendor gave.
fn full_name(first: Option<String>, last: Option<String>) -> String {
    [first, last]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Authorization header value for these credentials at this provider.
pub fn authorization(provider: &Provider, credentials: &Credentials) -> Result<SecretString> {
    match credentials {
        Credentials::OAuth2(t) => Ok(format!("Bearer {}", t.access_token.expose_secret()).into()),
        Credentials::ApiKey(key) => {
            let spec = provider.api_key.as_ref().ok_or_else(|| {
                Error::bad_request(
                    "auth_mode_unsupported",
                    format!("{} does not take API keys", provider.name),
                )
            })?;
            Ok(spec.header.replace("{key}", key.expose_secret()).into())
        }
    }
}

/// The connector for a catalog provider.
pub enum Connector {
    PagerDuty(pagerduty::PagerDutyApi),
    PandaDoc(pandadoc::PandaDocApi),
    SendGrid(sendgrid::SendGridApi),
}

impl Connector {
    pub fn new(
        provider: &Provider,
        http: &reqwest::Client,
        credentials: &Credentials,
    ) -> Result<Connector> {
        let api = http::VendorHttp::new(
            provider,
            http.clone(),
            authorization(provider, credentials)?,
        );
        match provider.id.as_str() {
            "pagerduty" => Ok(Connector::PagerDuty(pagerduty::PagerDutyApi::new(
                api,
                provider.page_size,
                provider.max_offset.unwrap_or(10_000),
            ))),
            "pandadoc" => Ok(Connector::PandaDoc(pandadoc::PandaDocApi::new(
                api,
                provider.page_size,
            ))),
            "sendgrid" => Ok(Connector::SendGrid(sendgrid::SendGridApi::new(
                api,
                provider.page_size,
                provider
                    .api_key
                    .as_ref()
                    .map(|k| k.required_scopes.clone())
                    .unwrap_or_default(),
            ))),
            other => Err(Error::Config(format!(
                "no connector for provider '{other}'"
            ))),
        }
    }

    /// What the request loop did so far (requests, retries, 429s, time waited).
    pub fn http_stats(&self) -> http::HttpStats {
        match self {
            Connector::PagerDuty(api) => api.http().stats(),
            Connector::PandaDoc(api) => api.http().stats(),
            Connector::SendGrid(api) => api.http().stats(),
        }
    }

    /// Checks freshly supplied credentials with a cheap vendor call (and the key's
    /// scopes where the vendor exposes them). A refusal is a 422 with the vendor's
    /// reason (`Error::Unprocessable`); the credentials never appear in it.
    pub async fn verify(&self) -> Result<Verified> {
        match self {
            Connector::PagerDuty(api) => api.verify().await,
            Connector::PandaDoc(api) => api.verify().await,
            Connector::SendGrid(api) => api.verify().await,
        }
    }

    pub async fn seats(&self) -> Result<Vec<SeatRecord>> {
        match self {
            Connector::PagerDuty(api) => api.seats().await,
            Connector::PandaDoc(api) => api.seats().await,
            Connector::SendGrid(api) => api.seats().await,
        }
    }

    /// Who is on call at some time in `[since, until]`, by seat id (PagerDuty's
    /// `/oncalls`); None for vendors without on-call schedules.
    pub async fn on_calls(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<std::collections::HashMap<String, crate::domain::OnCall>>> {
        match self {
            Connector::PagerDuty(api) => api.on_calls(since, until, now).await.map(Some),
            Connector::PandaDoc(_) | Connector::SendGrid(_) => Ok(None),
        }
    }

    /// Account-level usage per day in `[since, until)` (vendors without per-seat
    /// activity); empty for the others.
    pub async fn account_usage(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<AccountDay>> {
        match self {
            Connector::SendGrid(api) => api.account_usage(since, until).await,
            Connector::PagerDuty(_) | Connector::PandaDoc(_) => Ok(Vec::new()),
        }
    }

    /// Plan credits used vs included, where the vendor prices by usage.
    pub async fn plan_usage(&self) -> Result<Option<PlanUsage>> {
        match self {
            Connector::SendGrid(api) => api.plan_usage().await.map(Some),
            Connector::PagerDuty(_) | Connector::PandaDoc(_) => Ok(None),
        }
    }

    /// Whether asking for activity window by window costs about the same as asking
    /// once: PagerDuty filters log entries by time (`since`/`until`). PandaDoc lists
    /// what was *modified* since a time, in no time order, and every listed document
    /// costs a details call, so its activity is read in one pass over the range.
    pub fn activity_by_window(&self) -> bool {
        matches!(self, Connector::PagerDuty(_))
    }

    /// Streams every activity event in `[since, until)` into `sink`; returns how many.
    pub async fn activity(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        sink: &mut (dyn FnMut(ActivityEvent) + Send),
    ) -> Result<u64> {
        match self {
            Connector::PagerDuty(api) => api.activity(since, until, sink).await,
            Connector::PandaDoc(api) => api.activity(since, until, sink).await,
            // SendGrid has no per-seat activity: nothing is attributed to a seat.
            Connector::SendGrid(_) => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_what_is_there() {
        assert_eq!(
            full_name(Some("Ada".into()), Some("Lovelace".into())),
            "Ada Lovelace"
        );
        assert_eq!(full_name(None, Some("Lovelace".into())), "Lovelace");
        assert_eq!(full_name(Some(String::new()), None), "");
    }
}
