//! PagerDuty: seats from `/users`, activity from `/log_entries` (who acknowledged,
//! resolved, annotated, reassigned or escalated incidents, and when).
//!
//! Paging is classic `limit`/`offset`/`more`, and the API refuses offset + limit
//! beyond 10 000, so a time window whose `total` exceeds that is split in halves
//! until each half fits.

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::http::VendorHttp;
use super::{ActivityEvent, SeatRecord};
use crate::error::{Error, Result};

pub struct PagerDutyApi {
    http: VendorHttp,
    /// `limit` per request (the API's maximum is 100).
    page_size: u32,
    /// The API refuses offset + limit beyond this.
    max_offset: u32,
}

#[derive(Deserialize)]
struct UsersPage {
    users: Vec<User>,
    #[serde(default)]
    more: bool,
}

#[derive(Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    invitation_sent: Option<bool>,
}

#[derive(Deserialize)]
struct Me {
    user: User,
}

#[derive(Deserialize)]
struct LogEntriesPage {
    log_entries: Vec<LogEntry>,
    #[serde(default)]
    more: bool,
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Deserialize)]
struct LogEntry {
    #[serde(rename = "type")]
    kind: String,
    created_at: String,
    #[serde(default)]
    agent: Option<Reference>,
}

#[derive(Deserialize)]
struct Reference {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

/// Our feature name for a log entry type, for entries a user did.
///
/// PagerDuty has no `reassign_log_entry`: a user reassigning an incident produces an
/// `assign_log_entry` whose agent is that user (the automatic assignment at trigger time
/// has a service agent and is filtered out with every other non-user entry).
fn feature_of(entry_type: &str) -> Option<&'static str> {
    Some(match entry_type {
        "acknowledge_log_entry" => "acknowledge",
        "resolve_log_entry" => "resolve",
        "annotate_log_entry" => "note",
        "assign_log_entry" => "reassign",
        "escalate_log_entry" => "escalate",
        _ => return None,
    })
}

fn iso(t: OffsetDateTime) -> String {
    crate::domain::rfc3339(t)
}

impl PagerDutyApi {
    pub fn new(http: VendorHttp, page_size: u32, max_offset: u32) -> Self {
        PagerDutyApi {
            http,
            page_size: page_size.clamp(1, 100),
            max_offset,
        }
    }

    fn provider(&self) -> &str {
        self.http.provider_id()
    }

    /// The request loop, for its counters.
    pub fn http(&self) -> &VendorHttp {
        &self.http
    }

    /// `GET /users?limit=1` works for OAuth tokens and account API keys alike.
    pub async fn verify(&self) -> Result<super::Verified> {
        let _: UsersPage = self
            .http
            .get_json("/users", &[("limit", "1".to_string())])
            .await
            .map_err(|e| super::refused(self.http.provider_name(), e))?;
        Ok(super::Verified {
            account_label: self.account_label().await?,
        })
    }

    pub async fn account_label(&self) -> Result<Option<String>> {
        match self.http.get_json::<Me>("/users/me", &[]).await {
            Ok(me) => Ok(Some(me.user.email).filter(|e| !e.is_empty())),
            // Account-level API keys have no "me"; the connection still works.
            Err(Error::Vendor { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn seats(&self) -> Result<Vec<SeatRecord>> {
        let mut seats = Vec::new();
        let mut offset = 0u32;
        loop {
            let page: UsersPage = self
                .http
                .get_json(
                    "/users",
                    &[
                        ("limit", self.page_size.to_string()),
                        ("offset", offset.to_string()),
                    ],
                )
                .await?;
            let n = page.users.len() as u32;
            seats.extend(page.users.into_iter().map(|u| SeatRecord {
                id: u.id,
                email: u.email,
                name: u.name,
                role: u.role,
                license: None,
                // PagerDuty marks users whose invitation is still pending.
                invited: u.invitation_sent == Some(true),
            }));
            if !page.more || n == 0 {
                break;
            }
            offset += n;
            if offset + self.page_size > self.max_offset {
                return Err(Error::vendor(
                    self.provider(),
                    "more than 10 000 users: PagerDuty's offset limit is reached",
                ));
            }
        }
        Ok(seats)
    }

    pub async fn activity(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        sink: &mut (dyn FnMut(ActivityEvent) + Send),
    ) -> Result<u64> {
        let mut windows = vec![(since, until)];
        let mut events = 0u64;
        while let Some((from, to)) = windows.pop() {
            if from >= to {
                continue;
            }
            let first = self.log_entries_page(from, to, 0, true).await?;
            let total = first.total.unwrap_or(0);
            if total + u64::from(self.page_size) > u64::from(self.max_offset)
                && to - from > time::Duration::SECOND
            {
                let mid = from + (to - from) / 2;
                tracing::debug!(provider = self.provider(), total, "splitting a log window");
                // Later half first on the stack so windows are processed oldest first.
                windows.push((mid, to));
                windows.push((from, mid));
                continue;
            }
            let mut page = first;
            let mut offset = 0u32;
            loop {
                let n = page.log_entries.len() as u32;
                for entry in page.log_entries {
                    if let Some(event) = self.event(entry)? {
                        events += 1;
                        sink(event);
                    }
                }
                if !page.more || n == 0 {
                    break;
                }
                offset += n;
                page = self.log_entries_page(from, to, offset, false).await?;
            }
        }
        Ok(events)
    }

    async fn log_entries_page(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        offset: u32,
        total: bool,
    ) -> Result<LogEntriesPage> {
        self.http
            .get_json(
                "/log_entries",
                &[
                    ("since", iso(since)),
                    ("until", iso(until)),
                    ("limit", self.page_size.to_string()),
                    ("offset", offset.to_string()),
                    ("total", total.to_string()),
                    ("time_zone", "UTC".to_string()),
                ],
            )
            .await
    }

    fn event(&self, entry: LogEntry) -> Result<Option<ActivityEvent>> {
        let Some(feature) = feature_of(&entry.kind) else {
            return Ok(None);
        };
        let Some(agent) = entry.agent.filter(|a| a.kind == "user_reference") else {
            return Ok(None);
        };
        let at = OffsetDateTime::parse(&entry.created_at, &Rfc3339).map_err(|e| {
            Error::vendor_source(
                self.provider(),
                "a log entry has an unreadable created_at",
                e,
            )
        })?;
        Ok(Some(ActivityEvent {
            seat_id: agent.id,
            at,
            feature,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_five_user_actions_are_features() {
        assert_eq!(feature_of("annotate_log_entry"), Some("note"));
        assert_eq!(feature_of("trigger_log_entry"), None);
        assert_eq!(feature_of("notify_log_entry"), None);
    }
}
