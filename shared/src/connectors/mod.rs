//! Vendor connectors: one file per provider. What differs between vendors as data
//! lives in the catalog; the code here only does what must be code (paths, shapes,
//! paging rules). `http` holds the shared request loop (auth header, rate-limit
//! headers, retries with jitter).

pub mod http;
pub mod pagerduty;
pub mod pandadoc;
pub mod sendgrid;

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::domain::catalog::Provider;
use crate::domain::plan::PlanUsage;
use crate::domain::seat::OnCall;
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

/// What a credentials check learned about the vendor account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// A label for the account (shown on the card), e.g. the owner's email.
    pub account_label: Option<String>,
    /// The vendor account's identity, the same whoever consents: PagerDuty's subdomain,
    /// PandaDoc's workspace id, SendGrid's account username. None where the vendor
    /// tells none. A connect that lands on another one than the connection's waits for
    /// an admin's choice (`ops::connect::account_change`).
    pub account_id: Option<String>,
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

/// The email and name fields PandaDoc's and SendGrid's user objects share.
#[derive(Debug, serde::Deserialize)]
struct Person {
    #[serde(default)]
    email: String,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
}

impl Person {
    fn name(&self) -> String {
        full_name(self.first_name.clone(), self.last_name.clone())
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

/// A time range `[since, until)`.
pub type Span = (OffsetDateTime, OffsetDateTime);

/// Where a connector streams the activity events it reads.
pub type EventSink<'a> = &'a mut (dyn FnMut(ActivityEvent) + Send);

/// What Seatscope reads from a vendor. One implementation per provider file; the
/// defaults are what a vendor without that kind of data answers.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The request loop, for its counters (requests, retries, 429s, time waited).
    fn http(&self) -> &http::VendorHttp;

    /// Checks freshly supplied credentials with a cheap vendor call (and the key's
    /// scopes where the vendor exposes them). A refusal is a 422 with the vendor's
    /// reason (`Error::Unprocessable`); the credentials never appear in it.
    async fn verify(&self) -> Result<Verified>;

    async fn seats(&self) -> Result<Vec<SeatRecord>>;

    /// Who is on call at some time in `[since, until]`, by seat id (PagerDuty's
    /// `/oncalls`); None for vendors without on-call schedules.
    async fn on_calls(
        &self,
        _since: OffsetDateTime,
        _until: OffsetDateTime,
        _now: OffsetDateTime,
    ) -> Result<Option<HashMap<String, OnCall>>> {
        Ok(None)
    }

    /// Account-level usage per day in `[since, until)` (vendors without per-seat
    /// activity); empty for the others.
    async fn account_usage(
        &self,
        _since: OffsetDateTime,
        _until: OffsetDateTime,
    ) -> Result<Vec<AccountDay>> {
        Ok(Vec::new())
    }

    /// Plan credits used vs included, where the vendor prices by usage.
    async fn plan_usage(&self) -> Result<Option<PlanUsage>> {
        Ok(None)
    }

    /// Whether asking for activity window by window costs about the same as asking
    /// once (the vendor filters by time). PandaDoc lists what was *modified* since a
    /// time, in no time order, and every listed document costs a details call, so its
    /// activity is read in one pass over the range.
    fn activity_by_window(&self) -> bool {
        false
    }

    /// Streams every activity event in `[since, until)` into `sink`; returns how many.
    /// A vendor without per-seat activity attributes nothing to a seat.
    async fn activity(&self, _span: Span, _sink: EventSink<'_>) -> Result<u64> {
        Ok(0)
    }
}

/// Makes a provider's connector around its request loop.
type MakeConnector = fn(&Provider, http::VendorHttp) -> Box<dyn Connector>;

/// One line per provider: the catalog id (`providers.toml`) and its connector.
const REGISTRY: [(&str, MakeConnector); 3] = [
    ("pagerduty", pagerduty::connector),
    ("pandadoc", pandadoc::connector),
    ("sendgrid", sendgrid::connector),
];

/// The ids the registry has a connector for.
pub fn registered() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|(id, _)| *id)
}

/// The connector of a catalog provider, authenticated with `credentials`.
pub fn for_provider(
    provider: &Provider,
    http: &reqwest::Client,
    credentials: &Credentials,
) -> Result<Box<dyn Connector>> {
    let make = REGISTRY
        .iter()
        .find(|(id, _)| *id == provider.id)
        .map(|(_, make)| make)
        .ok_or_else(|| Error::Config(format!("no connector for provider '{}'", provider.id)))?;
    let api = http::VendorHttp::new(
        provider,
        http.clone(),
        authorization(provider, credentials)?,
    );
    Ok(make(provider, api))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_provider_has_exactly_one_connector() {
        let catalog = crate::domain::catalog::Catalog::load(|_| None).unwrap();
        let mut ids: Vec<&str> = catalog.providers().iter().map(|p| p.id.as_str()).collect();
        let mut registered: Vec<&str> = registered().collect();
        ids.sort_unstable();
        registered.sort_unstable();
        assert_eq!(ids, registered);
    }

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
