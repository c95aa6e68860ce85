//! Vendor connectors: one file per provider. What differs between vendors as data
//! lives in the catalog; the code here only does what must be code (paths, shapes,
//! paging rules). `http` holds the shared request loop (auth header, rate-limit
//! headers, retries with jitter).

pub mod http;
pub mod pagerduty;

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
            other => Err(Error::Config(format!(
                "no connector for provider '{other}'"
            ))),
        }
    }

    /// A label for the vendor account the credentials belong to (shown on the card).
    pub async fn account_label(&self) -> Result<Option<String>> {
        match self {
            Connector::PagerDuty(api) => api.account_label().await,
        }
    }

    pub async fn seats(&self) -> Result<Vec<SeatRecord>> {
        match self {
            Connector::PagerDuty(api) => api.seats().await,
        }
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
        }
    }
}
