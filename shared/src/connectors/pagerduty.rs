//! PagerDuty: seats from `/users` with each user's license from `/license_allocations`
//! (e.g. "Business (Full User)" or "Business (Stakeholder)"), activity from
//! `/log_entries` (who acknowledged, resolved, annotated, reassigned or escalated
//! incidents, and when), and who is on call from `/oncalls` (a schedule's shifts, or an
//! escalation rule's direct target).
//!
//! Paging is classic `limit`/`offset`/`more`, and the API refuses offset + limit
//! beyond 10 000, so a time window whose `total` exceeds that is split in halves
//! until each half fits.

use std::collections::HashMap;

use futures::StreamExt as _;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::http::VendorHttp;
use super::{ActivityEvent, Connector, EventSink, SeatRecord, Span, Verified};
use crate::domain::catalog::Provider;
use crate::domain::OnCall;
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
    /// `https://<subdomain>.pagerduty.com/users/<id>`: the account's subdomain.
    #[serde(default)]
    html_url: Option<String>,
}

/// The account's subdomain from one of its web URLs (`https://acme.pagerduty.com/…` →
/// `acme`); EU accounts are `acme.eu.pagerduty.com`.
fn subdomain(html_url: &str) -> Option<String> {
    let host = url::Url::parse(html_url)
        .ok()?
        .host_str()?
        .to_ascii_lowercase();
    let name = host.split('.').next()?;
    (!name.is_empty() && host.ends_with(".pagerduty.com")).then(|| name.to_string())
}

#[derive(Deserialize)]
struct AllocationsPage {
    license_allocations: Vec<Allocation>,
    #[serde(default)]
    more: bool,
}

#[derive(Deserialize)]
struct Allocation {
    user: Named,
    license: LicenseName,
}

#[derive(Deserialize)]
struct LicenseName {
    name: String,
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
struct OnCallsPage {
    oncalls: Vec<OnCallEntry>,
    #[serde(default)]
    more: bool,
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Deserialize)]
struct OnCallEntry {
    user: Option<Named>,
    #[serde(default)]
    schedule: Option<Named>,
    #[serde(default)]
    escalation_policy: Option<Named>,
    #[serde(default)]
    escalation_level: Option<u32>,
    /// Null for a permanent on-call (a direct target of an escalation rule).
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Deserialize)]
struct Reference {
    id: String,
    #[serde(rename = "type")]
    kind: String,
}

/// Which of a user's on-calls names them: one now first, then the lowest escalation
/// level, a schedule before a direct target, then by name (so the choice is stable).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct OnCallRank {
    not_now: bool,
    level: u32,
    no_schedule: bool,
    names: (String, String),
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

/// One `/oncalls` entry: whose, its rank for naming the seat, and what it says.
fn on_call_of(
    provider: &str,
    entry: OnCallEntry,
    now: OffsetDateTime,
) -> Result<Option<(String, OnCallRank, OnCall)>> {
    let Some(user) = entry.user else {
        return Ok(None);
    };
    let instant = |v: Option<&str>| -> Result<Option<OffsetDateTime>> {
        v.map(|s| {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
                Error::vendor_source(provider, "an on-call has an unreadable start or end", e)
            })
        })
        .transpose()
    };
    let start = instant(entry.start.as_deref())?;
    let end = instant(entry.end.as_deref())?;
    let on_now = start.is_none_or(|s| s <= now) && end.is_none_or(|e| now < e);
    let name = |n: &Named| n.summary.clone().unwrap_or_else(|| n.id.clone());
    let schedule = entry.schedule.as_ref().map(name);
    let escalation_policy = entry
        .escalation_policy
        .as_ref()
        .map(name)
        .unwrap_or_default();
    let rank = OnCallRank {
        not_now: !on_now,
        level: entry.escalation_level.unwrap_or(u32::MAX),
        no_schedule: schedule.is_none(),
        names: (
            schedule.clone().unwrap_or_default(),
            escalation_policy.clone(),
        ),
    };
    Ok(Some((
        user.id,
        rank,
        OnCall {
            now: on_now,
            schedule,
            escalation_policy,
        },
    )))
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

    /// The offset of the next page after one of `n` items at `offset`; None when the
    /// vendor has no more. A listing past PagerDuty's offset limit is an error (`what`
    /// names it), not a silent cut.
    fn next_offset(&self, more: bool, offset: u32, n: u32, what: &str) -> Result<Option<u32>> {
        if !more || n == 0 {
            return Ok(None);
        }
        let next = offset + n;
        if next + self.page_size > self.max_offset {
            return Err(Error::vendor(
                self.provider(),
                format!("more than 10 000 {what}: PagerDuty's offset limit is reached"),
            ));
        }
        Ok(Some(next))
    }

    fn provider(&self) -> &str {
        self.http.provider_id()
    }

    /// The consenting user's email (the label) and the account's subdomain (its
    /// identity, from the user's `html_url`).
    pub async fn account(&self) -> Result<Verified> {
        match self.http.get_json::<Me>("/users/me", &[]).await {
            Ok(me) => Ok(Verified {
                account_id: me.user.html_url.as_deref().and_then(subdomain),
                account_label: Some(me.user.email).filter(|e| !e.is_empty()),
            }),
            // Account-level API keys have no "me"; the connection still works.
            Err(Error::Vendor { .. }) => Ok(Verified::default()),
            Err(e) => Err(e),
        }
    }

    /// Each user's license name, by user id, from `/license_allocations` (classic
    /// paging). None where the token may not read licenses (403: a grant without the
    /// permission, e.g. a Scoped OAuth token without `licenses.read` or a consenting user
    /// who may not see the account's licenses): the seats are still worth syncing, so
    /// they go without licenses and a warning says why. Other failures fail the sync.
    pub async fn licenses(&self) -> Result<Option<HashMap<String, String>>> {
        let mut licenses = HashMap::new();
        let mut offset = 0u32;
        loop {
            let page: AllocationsPage = match self
                .http
                .get_json(
                    "/license_allocations",
                    &[
                        ("limit", self.page_size.to_string()),
                        ("offset", offset.to_string()),
                    ],
                )
                .await
            {
                Ok(page) => page,
                Err(Error::Vendor { message, .. }) if message.contains(" answered 403") => {
                    tracing::warn!(
                        provider = self.provider(),
                        reason = %message,
                        "licenses cannot be read (403): seats are synced without them; \
                         reconnect with a user who may read the account's licenses"
                    );
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let n = page.license_allocations.len() as u32;
            licenses.extend(
                page.license_allocations
                    .into_iter()
                    .map(|a| (a.user.id, a.license.name)),
            );
            match self.next_offset(page.more, offset, n, "license allocations")? {
                Some(next) => offset = next,
                None => break,
            }
        }
        Ok(Some(licenses))
    }

    /// Who is on call at some time in `[since, until]`, per user id: on call at `now`,
    /// and where (the schedule's and escalation policy's names). A user on several is
    /// shown where they are on call now first, then at the lowest escalation level.
    /// Windows whose `total` would pass the offset limit are split in halves.
    pub async fn on_call_between(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<HashMap<String, OnCall>> {
        let mut best: HashMap<String, (OnCallRank, OnCall)> = HashMap::new();
        let mut windows = vec![(since, until)];
        while let Some((from, to)) = windows.pop() {
            let mut offset = 0u32;
            loop {
                let page = self.on_calls_page(from, to, offset, offset == 0).await?;
                if offset == 0 {
                    let total = page.total.unwrap_or(0);
                    if total + u64::from(self.page_size) > u64::from(self.max_offset)
                        && to - from > time::Duration::HOUR
                    {
                        let mid = from + (to - from) / 2;
                        windows.push((mid, to));
                        windows.push((from, mid));
                        break;
                    }
                }
                let n = page.oncalls.len() as u32;
                for entry in page.oncalls {
                    let Some((user, rank, on_call)) = on_call_of(self.provider(), entry, now)?
                    else {
                        continue;
                    };
                    match best.get(&user) {
                        Some((r, _)) if *r <= rank => {}
                        _ => {
                            best.insert(user, (rank, on_call));
                        }
                    }
                }
                match self.next_offset(page.more, offset, n, "on-call entries in an hour")? {
                    Some(next) => offset = next,
                    None => break,
                }
            }
        }
        Ok(best.into_iter().map(|(user, (_, o))| (user, o)).collect())
    }

    async fn on_calls_page(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        offset: u32,
        total: bool,
    ) -> Result<OnCallsPage> {
        self.time_range_page("/oncalls", since, until, offset, total)
            .await
    }

    async fn log_entries_page(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        offset: u32,
        total: bool,
    ) -> Result<LogEntriesPage> {
        self.time_range_page("/log_entries", since, until, offset, total)
            .await
    }

    /// One classic-paged page of a list PagerDuty filters by a `since`/`until` range.
    async fn time_range_page<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        path: &str,
        since: OffsetDateTime,
        until: OffsetDateTime,
        offset: u32,
        total: bool,
    ) -> Result<T> {
        self.http
            .get_json(
                path,
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

    /// The entries' counted events, each given to `sink`; how many there were.
    fn send_events(&self, entries: Vec<LogEntry>, sink: EventSink<'_>) -> Result<u64> {
        let mut events = 0;
        for entry in entries {
            if let Some(event) = self.event(entry)? {
                events += 1;
                sink(event);
            }
        }
        Ok(events)
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

/// Makes the connector of a catalog provider: its line in `connectors::REGISTRY`.
pub fn connector(provider: &Provider, http: VendorHttp) -> Box<dyn Connector> {
    Box::new(PagerDutyApi::new(
        http,
        provider.page_size,
        provider.max_offset.unwrap_or(10_000),
    ))
}

/// Log-entry pages one window keeps in flight once its first page gave the total.
const PAGES_IN_FLIGHT: usize = 4;

#[async_trait::async_trait]
impl Connector for PagerDutyApi {
    /// The request loop, for its counters.
    fn http(&self) -> &VendorHttp {
        &self.http
    }

    /// `GET /users?limit=1` works for OAuth tokens and account API keys alike.
    async fn verify(&self) -> Result<Verified> {
        let _: UsersPage = self
            .http
            .get_json("/users", &[("limit", "1".to_string())])
            .await
            .map_err(|e| super::refused(self.http.provider_name(), e))?;
        self.account().await
    }

    async fn seats(&self) -> Result<Vec<SeatRecord>> {
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
            match self.next_offset(page.more, offset, n, "users")? {
                Some(next) => offset = next,
                None => break,
            }
        }
        if let Some(mut licenses) = self.licenses().await? {
            for seat in &mut seats {
                seat.license = licenses.remove(&seat.id);
            }
        }
        Ok(seats)
    }

    async fn activity(&self, (since, until): Span, sink: EventSink<'_>) -> Result<u64> {
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
            let n = first.log_entries.len() as u32;
            let more = first.more;
            events += self.send_events(first.log_entries, sink)?;
            if !more || n == 0 {
                continue;
            }
            // The first page's total says which pages follow: they are fetched
            // PAGES_IN_FLIGHT at a time (in order; the client's rate budget paces
            // them), then one at a time if entries arrived after the total was taken.
            let mut offset = n;
            let mut more = true;
            if n == self.page_size {
                let offsets: Vec<u32> = (1..)
                    .map(|k| k * self.page_size)
                    .take_while(|o| u64::from(*o) < total)
                    .collect();
                let mut pages = futures::stream::iter(offsets)
                    .map(|o| self.log_entries_page(from, to, o, false))
                    .buffered(PAGES_IN_FLIGHT);
                while let Some(page) = pages.next().await {
                    let page = page?;
                    let n = page.log_entries.len() as u32;
                    offset += n;
                    more = page.more && n > 0;
                    events += self.send_events(page.log_entries, sink)?;
                }
            }
            while more {
                let page = self.log_entries_page(from, to, offset, false).await?;
                let n = page.log_entries.len() as u32;
                offset += n;
                more = page.more && n > 0;
                events += self.send_events(page.log_entries, sink)?;
            }
        }
        Ok(events)
    }

    async fn on_calls(
        &self,
        since: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<HashMap<String, OnCall>>> {
        self.on_call_between(since, until, now).await.map(Some)
    }

    /// PagerDuty filters log entries by time (`since`/`until`): a window costs what
    /// its entries cost.
    fn activity_by_window(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_the_subdomain_of_a_pagerduty_web_url() {
        for (url, want) in [
            ("https://acme.pagerduty.com/users/PABC123", Some("acme")),
            (
                "https://Acme-Corp.eu.pagerduty.com/users/P1",
                Some("acme-corp"),
            ),
            ("https://acme.pagerduty.com.evil.example/users/P1", None),
            ("https://pagerduty.com/users/P1", None),
            ("not a url", None),
        ] {
            assert_eq!(subdomain(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn an_on_call_now_names_the_seat_before_a_later_or_higher_level_one() {
        let entry = |schedule: Option<&str>, level, start: Option<&str>, end: Option<&str>| {
            serde_json::from_value::<OnCallEntry>(serde_json::json!({
                "user": {"id": "PU1", "type": "user_reference"},
                "schedule": schedule.map(|s| serde_json::json!({"id": "PS", "type": "schedule_reference", "summary": s})),
                "escalation_policy": {"id": "PE", "type": "escalation_policy_reference", "summary": "Ops"},
                "escalation_level": level,
                "start": start,
                "end": end,
            }))
            .unwrap()
        };
        let now = time::macros::datetime!(2026-11-23 12:00 UTC);
        let rank = |e| on_call_of("pagerduty", e, now).unwrap().unwrap();
        let (_, later, o) = rank(entry(
            Some("Nights"),
            1,
            Some("2026-11-30T00:00:00Z"),
            Some("2026-12-07T00:00:00Z"),
        ));
        assert!(!o.now);
        let (_, current, o) = rank(entry(
            Some("Days"),
            2,
            Some("2026-11-23T00:00:00Z"),
            Some("2026-11-30T00:00:00Z"),
        ));
        assert!(o.now && o.schedule.as_deref() == Some("Days"));
        let (_, permanent, o) = rank(entry(None, 3, None, None));
        assert!(o.now && o.schedule.is_none() && o.escalation_policy == "Ops");
        assert!(current < permanent && permanent < later);
    }

    #[test]
    fn only_the_five_user_actions_are_features() {
        assert_eq!(feature_of("annotate_log_entry"), Some("note"));
        assert_eq!(feature_of("trigger_log_entry"), None);
        assert_eq!(feature_of("notify_log_entry"), None);
    }
}
