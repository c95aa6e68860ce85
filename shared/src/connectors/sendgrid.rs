//! Twilio SendGrid (Web API v3, API keys only: `Authorization: Bearer SG.…`).
//! Seats are the teammates (owner / admin / teammate) plus pending invitations.
//! SendGrid has no per-teammate activity of any kind, so nothing is attributed to
//! a seat: usage is account-level (emails requested and delivered per day from
//! `/v3/stats`) and plan credits (`/v3/user/credits`, used vs total).
//! Rate limits come from `X-RateLimit-*` headers (reset as an epoch), which
//! `VendorHttp` follows.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::{Date, Duration, OffsetDateTime};

use super::http::VendorHttp;
use super::{refused, AccountDay, Connector, SeatRecord, Verified};
use crate::domain::catalog::Provider;
use crate::domain::plan::PlanUsage;
use crate::error::{Error, Result};

/// `/v3/stats` is asked for at most this many days per request.
const STATS_CHUNK_DAYS: i64 = 90;

pub struct SendGridApi {
    http: VendorHttp,
    page_size: u32,
    required_scopes: Vec<String>,
}

#[derive(Deserialize)]
struct Scopes {
    #[serde(default)]
    scopes: Vec<String>,
}

#[derive(Deserialize)]
struct Username {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
struct Teammates {
    /// The API and its schema say `result`; the spec's example says `results`.
    #[serde(default, alias = "results")]
    result: Vec<Teammate>,
}

#[derive(Deserialize)]
struct Teammate {
    username: String,
    #[serde(flatten)]
    person: super::Person,
    #[serde(default)]
    user_type: Option<String>,
}

#[derive(Deserialize)]
struct Pending {
    #[serde(default, alias = "results")]
    result: Vec<PendingInvite>,
}

#[derive(Deserialize)]
struct PendingInvite {
    email: String,
}

#[derive(Deserialize)]
struct StatsDay {
    date: String,
    #[serde(default)]
    stats: Vec<StatsEntry>,
}

#[derive(Deserialize)]
struct StatsEntry {
    #[serde(default)]
    metrics: Metrics,
}

#[derive(Deserialize, Default)]
struct Metrics {
    #[serde(default)]
    requests: u64,
    #[serde(default)]
    delivered: u64,
}

#[derive(Deserialize)]
struct Credits {
    total: i64,
    used: i64,
    remain: i64,
    #[serde(default)]
    last_reset: Option<String>,
    #[serde(default)]
    next_reset: Option<String>,
    #[serde(default)]
    reset_frequency: Option<String>,
}

/// The required scopes the key does not carry, in the catalog's order.
pub fn missing_scopes(required: &[String], granted: &[String]) -> Vec<String> {
    required
        .iter()
        .filter(|r| !granted.contains(r))
        .cloned()
        .collect()
}

impl SendGridApi {
    pub fn new(http: VendorHttp, page_size: u32, required_scopes: Vec<String>) -> Self {
        SendGridApi {
            http,
            page_size: page_size.clamp(1, 500),
            required_scopes,
        }
    }

    fn provider(&self) -> &str {
        self.http.provider_id()
    }

    pub async fn credits(&self) -> Result<PlanUsage> {
        let c: Credits = self.http.get_json("/v3/user/credits", &[]).await?;
        Ok(PlanUsage {
            total: c.total,
            used: c.used,
            remain: c.remain,
            last_reset: c.last_reset,
            next_reset: c.next_reset,
            reset_frequency: c.reset_frequency,
        })
    }
}

/// The last whole or partial UTC day a window `[since, until)` touches.
pub fn last_day(until: OffsetDateTime) -> Date {
    (until - Duration::NANOSECOND).date()
}

/// Makes the connector of a catalog provider: its line in `connectors::REGISTRY`.
pub fn connector(provider: &Provider, http: VendorHttp) -> Box<dyn Connector> {
    Box::new(SendGridApi::new(
        http,
        provider.page_size,
        provider
            .api_key
            .as_ref()
            .map(|k| k.required_scopes.clone())
            .unwrap_or_default(),
    ))
}

#[async_trait::async_trait]
impl Connector for SendGridApi {
    /// The request loop, for its counters.
    fn http(&self) -> &VendorHttp {
        &self.http
    }

    /// `GET /v3/scopes`: the key is valid and carries every scope the sync needs.
    async fn verify(&self) -> Result<Verified> {
        let granted: Scopes = self
            .http
            .get_json("/v3/scopes", &[])
            .await
            .map_err(|e| refused(self.http.provider_name(), e))?;
        let missing = missing_scopes(&self.required_scopes, &granted.scopes);
        if !missing.is_empty() {
            return Err(Error::unprocessable(
                "missing_scopes",
                format!(
                    "The SendGrid API key lacks these permissions: {}. Create a key with read \
                     access to: {}.",
                    missing.join(", "),
                    self.required_scopes.join(", ")
                ),
            ));
        }
        let account_label = if granted.scopes.iter().any(|s| s == "user.username.read") {
            let me: Username = self.http.get_json("/v3/user/username", &[]).await?;
            Some(me.username).filter(|u| !u.is_empty())
        } else {
            None
        };
        Ok(Verified {
            account_id: account_label.clone(),
            account_label,
        })
    }

    async fn seats(&self) -> Result<Vec<SeatRecord>> {
        let mut seats = Vec::new();
        let mut offset = 0u32;
        loop {
            let page: Teammates = self
                .http
                .get_json(
                    "/v3/teammates",
                    &[
                        ("limit", self.page_size.to_string()),
                        ("offset", offset.to_string()),
                    ],
                )
                .await?;
            let n = page.result.len() as u32;
            seats.extend(page.result.into_iter().map(|t| SeatRecord {
                id: t.username,
                name: t.person.name(),
                email: t.person.email,
                role: t.user_type.unwrap_or_else(|| "teammate".into()),
                license: None,
                invited: false,
            }));
            if n < self.page_size {
                break;
            }
            offset += n;
        }
        let pending: Pending = self.http.get_json("/v3/teammates/pending", &[]).await?;
        seats.extend(pending.result.into_iter().map(|p| SeatRecord {
            // A pending invitation has no username yet: its email stands for it.
            id: p.email.clone(),
            name: p.email.clone(),
            email: p.email,
            role: "invited".into(),
            license: None,
            invited: true,
        }));
        Ok(seats)
    }

    /// Emails requested and delivered per UTC day of `[since, until)`.
    async fn account_usage(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<AccountDay>> {
        let first = since.date();
        let last = last_day(until);
        let mut days = Vec::new();
        let mut start = first;
        while start <= last {
            let end = (start + Duration::days(STATS_CHUNK_DAYS - 1)).min(last);
            let chunk: Vec<StatsDay> = self
                .http
                .get_json(
                    "/v3/stats",
                    &[
                        ("start_date", crate::domain::day(start)),
                        ("end_date", crate::domain::day(end)),
                        ("aggregated_by", "day".to_string()),
                    ],
                )
                .await?;
            for d in chunk {
                let date = crate::domain::parse_day(&d.date).ok_or_else(|| {
                    Error::vendor(
                        self.provider(),
                        format!("unreadable stats date '{}'", d.date),
                    )
                })?;
                if date < first || date > last {
                    continue;
                }
                let (requests, delivered) = d.stats.iter().fold((0, 0), |(r, dl), e| {
                    (r + e.metrics.requests, dl + e.metrics.delivered)
                });
                days.push(AccountDay {
                    date,
                    metrics: BTreeMap::from([
                        ("emails_requested".to_string(), requests),
                        ("emails_delivered".to_string(), delivered),
                    ]),
                });
            }
            let Some(next) = end.next_day() else { break };
            start = next;
        }
        Ok(days)
    }

    async fn plan_usage(&self) -> Result<Option<PlanUsage>> {
        self.credits().await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_scopes_keep_the_catalog_order() {
        let required = vec![
            "teammates.read".into(),
            "stats.read".into(),
            "user.credits.read".into(),
        ];
        let granted = vec!["user.credits.read".into(), "teammates.read".into()];
        assert_eq!(
            missing_scopes(&required, &granted),
            vec!["stats.read".to_string()]
        );
        assert!(missing_scopes(&required, &required).is_empty());
    }

    #[test]
    fn a_window_ending_at_midnight_does_not_touch_the_next_day() {
        let until = time::macros::datetime!(2026-11-23 00:00 UTC);
        assert_eq!(last_day(until), time::macros::date!(2026 - 11 - 22));
    }
}
