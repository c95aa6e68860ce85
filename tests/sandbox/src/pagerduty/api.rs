//! The REST API: `GET /users`, `GET /users/me`, `GET /log_entries`, `GET /oncalls`,
//! `GET /licenses`, `GET /license_allocations`, plus sandbox-only endpoints.
//!
//! Every REST request goes through [`begin`]: count it, authenticate it, apply the rate
//! limit, check the `Accept` header. Choices where PagerDuty's documentation is silent:
//!
//! - Auth: `Authorization: Bearer <access token>` (issued by `/oauth/token`) or
//!   `Token token=<api_token>`. Missing, unknown or expired → 401
//!   `{"error":{"message":"Authentication failed","code":2006}}` (code from PagerDuty's error
//!   table). An OAuth token whose scope has neither `read` nor `write` → 403, code 2010.
//! - Rate limit: a fixed 60 s window per subject, like PagerDuty's documented subjects: an
//!   API key, or (app, user) for user OAuth tokens, so rotating a token does not reset the
//!   budget. Headers `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` (seconds
//!   until the window resets) on every authenticated response; unauthenticated requests
//!   are not evaluated, so their 401 carries none. Over the limit → 429
//!   `{"error":{"message":"Rate Limit Exceeded","code":2020}}`.
//! - `Accept`: absent, `*/*`, `application/*`, `application/json`, or
//!   `application/vnd.pagerduty+json;version=2`; anything else → 406.
//! - Bad parameters → 400 `{"error":{"message":"Invalid Input Provided","code":2001,
//!   "errors":[...]}}`, the shape of PagerDuty's ArgumentError.
//! - Pagination: `limit` defaults to 25 and is clamped to 1..=100 (the echoed `limit` is the
//!   one used); `offset + limit > 10000` → 400; `total` is `null` unless `total=true`.
//! - `/log_entries`: `since`/`until` filter `created_at` in `[since, until)`; RFC 3339 /
//!   ISO 8601 with an offset, a naive date-time or a bare date (read as UTC, the sandbox
//!   account's time zone). Defaults: `until` = now, `since` = `until` − 30 days.
//!   `since > until` → 400. `time_zone` accepts UTC names only (times are always rendered
//!   in UTC with `Z`); others → 400 rather than silently ignoring a zone a client relies on.
//!   `is_overview=true` leaves out `notify_log_entry`. `include[]` and `team_ids[]` are
//!   validated; `team_ids[]` filters by the service's team; `include[]` does not expand
//!   references.
//! - `/oncalls`: the on-calls overlapping `[since, until]` (both default to now, so the
//!   default answer is who is on call now); `since > until` → 400; `until` more than 90
//!   days ahead → 400 (PagerDuty: "On-call shifts are limited to 90 days in the future");
//!   a range over ten years → 400 (a sandbox bound). Each entry is a whole shift (its
//!   own `start`/`end`); a user an escalation rule targets directly is on call
//!   permanently: `schedule`, `start` and `end` are `null`, as PagerDuty sends them.
//!   Filters `user_ids[]`, `escalation_policy_ids[]`, `schedule_ids[]` (`null` in it
//!   selects the permanent on-calls); `earliest=true` keeps the earliest on-call per
//!   escalation policy, level and user. `include[]` is validated and does not expand
//!   references; `time_zone` as for `/log_entries`. Sorted by escalation policy, level,
//!   start, user.
//! - `/licenses`: every license of the account with its counts (`current_value`,
//!   `allocations_available`, `null` for no limit); no parameters, no paging (the spec
//!   declares none). `/license_allocations`: one per user, in `/users` order, paged like
//!   the rest (`limit`, `offset`, `more`, `total`). The license objects carry `self` and
//!   `html_url` as `null`, as PagerDuty's own examples do (the schema says string). With
//!   [`PagerDutyConfig::licenses_readable`](super::PagerDutyConfig) false both answer 403
//!   `{"error":{"message":"Access Denied","code":2010}}` after authentication and the rate
//!   limit (the spec's "Scoped OAuth requires: `licenses.read`"; a Classic OAuth token's
//!   `read` covers them, as it covers the other endpoints).
//! - `/users/me` with the account API key → 400 (PagerDuty: "This will not work if the
//!   request is made with an account-level access token").

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{RawQuery, State};
use axum::http::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use super::data::{
    Agent, Channel, EntryKind, License, LogEntry, NotificationKind, OnCallEntry, User,
};
use super::state::App;
use crate::faults::{FaultSwitch, FaultTarget};
use crate::rate::{ceil_secs, Window, RATE_WINDOW};

/// PagerDuty refuses `offset + limit` beyond this.
const MAX_PAGINATION_WINDOW: u64 = 10_000;
const DEFAULT_LIMIT: u64 = 25;
const MAX_LIMIT: u64 = 100;

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// PagerDuty's error body: `{"error":{"message":..,"code":..,"errors":[..]}}`.
pub(crate) fn pd_error(
    status: StatusCode,
    message: &str,
    code: u32,
    errors: &[String],
) -> Response {
    let mut error = json!({ "message": message, "code": code });
    if !errors.is_empty() {
        error["errors"] = json!(errors);
    }
    json_response(status, &json!({ "error": error }))
}

/// A PagerDuty-shaped error, rendered at the edge (small, unlike `Response`).
pub(crate) struct ApiError {
    status: StatusCode,
    message: &'static str,
    code: u32,
    errors: Vec<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        pd_error(self.status, self.message, self.code, &self.errors)
    }
}

fn invalid_input(detail: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        message: "Invalid Input Provided",
        code: 2001,
        errors: vec![detail.into()],
    }
}

fn forbidden() -> ApiError {
    ApiError {
        status: StatusCode::FORBIDDEN,
        message: "Access Denied",
        code: 2010,
        errors: Vec::new(),
    }
}

fn unauthorized() -> ApiError {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: "Authentication failed",
        code: 2006,
        errors: Vec::new(),
    }
}

/// A request refused before its handler runs, with rate-limit headers once it was evaluated.
struct Rejection {
    error: ApiError,
    rate: Option<RateInfo>,
}

impl From<ApiError> for Rejection {
    fn from(error: ApiError) -> Self {
        Rejection { error, rate: None }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let response = self.error.into_response();
        match self.rate {
            Some(rate) => rate.apply(response),
            None => response,
        }
    }
}

/// Query parameters in order, repeated keys kept (`include[]=a&include[]=b`).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Params {
        Params(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn boolean(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(invalid_input(format!(
                "{key} must be true or false, got {other:?}"
            ))),
        }
    }

    /// An ISO 8601 date-time parameter, if present.
    fn time(&self, key: &str) -> Result<Option<OffsetDateTime>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => parse_time(v).map(Some).ok_or_else(|| {
                invalid_input(format!("{key} must be an ISO 8601 date-time, got {v:?}"))
            }),
        }
    }

    fn includes(&self, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
        let values = self.all("include[]");
        for v in &values {
            if !allowed.contains(v) {
                return Err(invalid_input(format!(
                    "include[] must be one of {}, got {v:?}",
                    allowed.join(", ")
                )));
            }
        }
        Ok(values.into_iter().map(str::to_string).collect())
    }
}

/// `time_zone`: the sandbox renders times in UTC only, and says so rather than silently
/// ignoring a zone a client relies on.
fn utc_only(params: &Params) -> Result<(), ApiError> {
    if let Some(zone) = params.get("time_zone") {
        let utc = [
            "UTC",
            "Etc/UTC",
            "GMT",
            "Etc/GMT",
            "Etc/Universal",
            "Universal",
            "Zulu",
        ];
        if !utc.iter().any(|z| z.eq_ignore_ascii_case(zone)) {
            return Err(invalid_input(format!(
                "time_zone {zone:?} is not supported by the sandbox: it renders times in UTC \
                 only (use time_zone=UTC or leave it out)"
            )));
        }
    }
    Ok(())
}

struct Page {
    limit: u64,
    offset: u64,
    total: bool,
}

fn pagination(params: &Params) -> Result<Page, ApiError> {
    let number = |key: &str, default: u64| -> Result<u64, ApiError> {
        match params.get(key) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| invalid_input(format!("{key} must be a non-negative integer"))),
        }
    };
    let limit = number("limit", DEFAULT_LIMIT)?.clamp(1, MAX_LIMIT);
    let offset = number("offset", 0)?;
    let total = params.boolean("total")?;
    if offset.saturating_add(limit) > MAX_PAGINATION_WINDOW {
        return Err(invalid_input(format!(
            "Offset + limit must not exceed {MAX_PAGINATION_WINDOW}: the REST API returns at most \
             {MAX_PAGINATION_WINDOW} records through classic pagination (offset {offset}, limit \
             {limit}). Narrow the query with a filter (since/until) instead."
        )));
    }
    Ok(Page {
        limit,
        offset,
        total,
    })
}

/// Who is calling.
enum Caller {
    OAuth { user: usize },
    AccountKey,
}

/// Rate-limit state to report on a response.
struct RateInfo {
    limit: u32,
    remaining: u32,
    reset_secs: u64,
}

impl RateInfo {
    fn apply(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset_secs));
        response
    }
}

enum Credential {
    Bearer(String),
    Token(String),
}

fn credential(headers: &HeaderMap) -> Option<Credential> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(Credential::Bearer(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("token") {
        let token = rest.strip_prefix("token=")?.trim().trim_matches('"');
        return Some(Credential::Token(token.to_string()));
    }
    None
}

fn accept_ok(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(ACCEPT) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        match media.as_str() {
            "*/*" | "application/*" | "application/json" => true,
            "application/vnd.pagerduty+json" => parts.all(|p| match p.split_once('=') {
                Some((k, v)) if k.trim().eq_ignore_ascii_case("version") => {
                    v.trim().trim_matches('"') == "2"
                }
                _ => true,
            }),
            _ => false,
        }
    })
}

/// Counts, authenticates, rate-limits and checks `Accept` for one REST request.
fn begin(app: &App, headers: &HeaderMap) -> Result<(Caller, RateInfo), Rejection> {
    app.api_requests.fetch_add(1, Ordering::Relaxed);
    let (caller, subject) = match credential(headers) {
        Some(Credential::Bearer(token)) => {
            let grants = app.grants();
            let Some(grant) = grants.access.get(&token) else {
                return Err(unauthorized().into());
            };
            if grant.expires <= Instant::now() {
                return Err(unauthorized().into());
            }
            let scopes: Vec<&str> = grant.scope.split_whitespace().collect();
            if !scopes.iter().any(|s| *s == "read" || *s == "write") {
                return Err(forbidden().into());
            }
            (
                Caller::OAuth { user: grant.user },
                format!("oauth:{}:{}", grant.client_id, grant.user),
            )
        }
        Some(Credential::Token(token)) => match &app.config.api_token {
            Some(key) if !key.is_empty() && *key == token => {
                (Caller::AccountKey, format!("key:{token}"))
            }
            _ => return Err(unauthorized().into()),
        },
        None => return Err(unauthorized().into()),
    };

    let limit = app.config.rate_limit_per_minute;
    let now = Instant::now();
    let (allowed, info) = {
        let mut windows = app.windows();
        let window = windows.entry(subject).or_insert(Window::new(now));
        window.restart_if_over(now);
        let allowed = window.admit(limit);
        let left = RATE_WINDOW.saturating_sub(now.duration_since(window.started));
        let info = RateInfo {
            limit,
            remaining: limit.saturating_sub(window.used),
            // Round up so a client that waits this long lands in the next window.
            reset_secs: ceil_secs(left),
        };
        (allowed, info)
    };
    if !allowed {
        app.rate_limited.fetch_add(1, Ordering::Relaxed);
        return Err(Rejection {
            error: ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: "Rate Limit Exceeded",
                code: 2020,
                errors: Vec::new(),
            },
            rate: Some(info),
        });
    }
    if !accept_ok(headers) {
        return Err(Rejection {
            error: ApiError {
                status: StatusCode::NOT_ACCEPTABLE,
                message: "Not Acceptable",
                code: 2001,
                errors: vec![
                    "Accept must allow application/vnd.pagerduty+json;version=2 or application/json"
                        .to_string(),
                ],
            },
            rate: Some(info),
        });
    }
    Ok((caller, info))
}

fn timestamp(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

fn parse_time(value: &str) -> Option<OffsetDateTime> {
    let naive = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let day = format_description!("[year]-[month]-[day]");
    OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(value, &Iso8601::DEFAULT))
        .ok()
        .or_else(|| {
            PrimitiveDateTime::parse(value, &naive)
                .ok()
                .map(PrimitiveDateTime::assume_utc)
        })
        .or_else(|| {
            Date::parse(value, &day)
                .ok()
                .map(|d| d.with_time(Time::MIDNIGHT).assume_utc())
        })
}

// ---------------------------------------------------------------- rendering

impl App {
    fn web_url(&self, path: &str) -> String {
        format!("https://{}.pagerduty.com/{path}", self.data.subdomain)
    }

    /// A PagerDuty reference object: `{id, type, summary, self, html_url}`.
    fn reference(&self, kind: &str, (id, name): (&str, &str), api: &str, web: &str) -> Value {
        json!({
            "id": id,
            "type": format!("{kind}_reference"),
            "summary": name,
            "self": format!("{}/{api}/{id}", self.base_url),
            "html_url": self.web_url(&format!("{web}/{id}")),
        })
    }

    fn team_ref(&self, team: usize) -> Value {
        let t = &self.data.teams[team];
        self.reference("team", (&t.id, t.name), "teams", "teams")
    }

    fn user_ref(&self, user: usize) -> Value {
        let u = &self.data.users[user];
        self.reference("user", (&u.id, &u.name), "users", "users")
    }

    fn service_ref(&self, service: usize) -> Value {
        let s = &self.data.services[service];
        self.reference("service", (&s.id, s.name), "services", "service-directory")
    }

    fn policy_ref(&self, policy: usize) -> Value {
        let p = &self.data.policies[policy];
        self.reference(
            "escalation_policy",
            (&p.id, p.name),
            "escalation_policies",
            "escalation_policies",
        )
    }

    fn schedule_ref(&self, schedule: usize) -> Value {
        let s = &self.data.schedules[schedule];
        self.reference("schedule", (&s.id, s.name), "schedules", "schedules")
    }

    /// A license as `/license_allocations` embeds it (`LicenseWithCounts/allOf/0`).
    fn license_json(&self, l: &License) -> Value {
        json!({
            "id": l.id,
            "type": "license",
            "summary": l.name,
            "name": l.name,
            "description": l.description,
            "role_group": l.role_group,
            "valid_roles": l.valid_roles,
            "self": null,
            "html_url": null,
        })
    }

    fn on_call_json(&self, e: &OnCallEntry) -> Value {
        json!({
            "escalation_policy": self.policy_ref(e.policy),
            "escalation_level": e.level,
            "schedule": e.schedule.map(|s| self.schedule_ref(s)),
            "user": self.user_ref(e.user),
            "start": e.start.map(timestamp),
            "end": e.end.map(timestamp),
        })
    }

    fn user_json(&self, u: &User) -> Value {
        let contact_methods: Vec<Value> = u
            .contact_methods
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "type": c.kind,
                    "summary": c.summary,
                    "self": format!("{}/users/{}/contact_methods/{}", self.base_url, u.id, c.id),
                    "html_url": null,
                })
            })
            .collect();
        let notification_rules: Vec<Value> = u
            .notification_rules
            .iter()
            .zip(&u.contact_methods)
            .map(|(rule, method)| {
                json!({
                    "id": rule,
                    "type": "assignment_notification_rule_reference",
                    "summary": format!("0 minutes: channel {}", method.id),
                    "self": format!("{}/users/{}/notification_rules/{}", self.base_url, u.id, rule),
                    "html_url": null,
                })
            })
            .collect();
        json!({
            "id": u.id,
            "type": "user",
            "summary": u.name,
            "self": format!("{}/users/{}", self.base_url, u.id),
            "html_url": self.web_url(&format!("users/{}", u.id)),
            "name": u.name,
            "email": u.email,
            "time_zone": u.time_zone,
            "color": u.color,
            "role": u.role,
            "avatar_url": "https://pd-static-assets.pagerduty.com/users/blank-avatar.png",
            "description": u.description,
            "invitation_sent": u.invitation_sent,
            "created_via_sso": u.created_via_sso,
            "job_title": u.job_title,
            "teams": u.teams.iter().map(|&t| self.team_ref(t)).collect::<Vec<_>>(),
            "contact_methods": contact_methods,
            "notification_rules": notification_rules,
        })
    }

    fn entry_json(&self, e: &LogEntry) -> Value {
        let data = &self.data;
        let incident = &data.incidents[e.incident];
        let service = &data.services[incident.service];
        let created_at = timestamp(e.at);
        let name = |user: Option<usize>| {
            user.and_then(|u| data.users.get(u))
                .map(|u| u.name.as_str())
                .unwrap_or("")
        };
        let by_user = match e.agent {
            Agent::User(u) => Some(u),
            Agent::Service(_) => None,
        };
        let summary = match (e.kind, by_user) {
            (EntryKind::Trigger, Some(_)) => "Triggered through the website".to_string(),
            (EntryKind::Trigger, None) if e.channel == Channel::EmailTrigger => {
                "Triggered through email".to_string()
            }
            (EntryKind::Trigger, None) => "Triggered through the API".to_string(),
            (EntryKind::Acknowledge, Some(_)) => format!("Acknowledged by {}", name(by_user)),
            (EntryKind::Acknowledge, None) => "Acknowledged through the API".to_string(),
            (EntryKind::Resolve, Some(_)) => format!("Resolved by {}", name(by_user)),
            (EntryKind::Resolve, None) => "Resolved through the API".to_string(),
            (EntryKind::Annotate, _) => "Note added".to_string(),
            (EntryKind::Assign, Some(_)) => {
                format!("Assigned to {} by {}", name(e.target), name(by_user))
            }
            (EntryKind::Assign, None) => format!("Assigned to {}.", name(e.target)),
            (EntryKind::Escalate, Some(_)) => {
                format!("Escalated to level {} by {}", e.level, name(by_user))
            }
            (EntryKind::Escalate, None) => format!("Escalated to level {} by timeout", e.level),
            (EntryKind::Notify, _) => {
                let how = match e.channel {
                    Channel::Notification(NotificationKind::Sms) => "SMS",
                    Channel::Notification(NotificationKind::Email) => "email",
                    _ => "push notification",
                };
                format!("Notified {} by {how}.", name(e.target))
            }
        };
        let key = |seed: &str| -> String {
            Sha256::digest(seed.as_bytes())
                .iter()
                .take(16)
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let channel = match e.channel {
            Channel::Website => json!({ "type": "website" }),
            Channel::Mobile => json!({ "type": "mobile" }),
            Channel::Api => json!({ "type": "api" }),
            Channel::Sms => json!({ "type": "sms" }),
            Channel::Email => json!({ "type": "email" }),
            Channel::Note => json!({ "type": "note" }),
            Channel::Auto => json!({ "type": "auto" }),
            Channel::Timeout => json!({ "type": "timeout" }),
            Channel::WebTrigger => json!({
                "type": "web_trigger",
                "summary": incident.title,
                "subject": incident.title,
                "details": "Triggered from the web app",
            }),
            Channel::EventsApi => json!({
                "type": "api",
                "summary": incident.title,
                "description": incident.title,
                "service_key": key(&service.id),
                "incident_key": key(&incident.id),
                "details": { "severity": "critical", "source": service.name },
            }),
            Channel::EmailTrigger => json!({
                "type": "email",
                "summary": incident.title,
                "to": format!("alerts@{}.pagerduty.com", data.subdomain),
                "from": "monitoring@seatscope-sandbox.example",
                "subject": incident.title,
                "body": format!("{}\n\nService: {}", incident.title, service.name),
                "body_content_type": "text/plain",
            }),
            Channel::Notification(kind) => {
                let target = e.target.and_then(|u| data.users.get(u));
                let mut notification = json!({
                    "type": match kind {
                        NotificationKind::Email => "email_notification",
                        NotificationKind::Sms => "sms_notification",
                        NotificationKind::Push => "push_notification",
                    },
                    "started_at": created_at,
                    "status": "success",
                });
                // PagerDuty gives no address for push notifications.
                match (kind, target) {
                    (NotificationKind::Email, Some(u)) => notification["address"] = json!(u.email),
                    (NotificationKind::Sms, Some(_)) => {
                        notification["address"] = json!("+1 555-0100")
                    }
                    _ => {}
                }
                json!({ "type": "auto", "notification": notification })
            }
        };
        let agent = match e.agent {
            Agent::User(u) => self.user_ref(u),
            Agent::Service(s) => self.service_ref(s),
        };
        let mut entry = json!({
            "id": e.id,
            "type": e.kind.type_name(),
            "summary": summary,
            "self": format!("{}/log_entries/{}", self.base_url, e.id),
            "html_url": self.web_url(&format!("incidents/{}/log_entries/{}", incident.id, e.id)),
            "created_at": created_at,
            "agent": agent,
            "channel": channel,
            "service": self.service_ref(incident.service),
            "incident": {
                "id": incident.id,
                "type": "incident_reference",
                "summary": format!("[#{}] {}", incident.number, incident.title),
                "self": format!("{}/incidents/{}", self.base_url, incident.id),
                "html_url": self.web_url(&format!("incidents/{}", incident.id)),
            },
            "teams": [self.team_ref(service.team)],
            "contexts": [],
        });
        match e.kind {
            EntryKind::Trigger => {
                entry["event_details"] = json!({ "description": incident.title });
            }
            EntryKind::Acknowledge => {
                if let Some(timeout) = service.ack_timeout {
                    entry["acknowledgement_timeout"] = json!(timeout);
                }
            }
            EntryKind::Assign | EntryKind::Escalate => {
                entry["assignees"] = json!(e
                    .target
                    .map(|u| self.user_ref(u))
                    .into_iter()
                    .collect::<Vec<_>>());
            }
            EntryKind::Notify => {
                if let Some(u) = e.target {
                    entry["user"] = self.user_ref(u);
                }
            }
            EntryKind::Resolve | EntryKind::Annotate => {}
        }
        entry
    }
}

// ---------------------------------------------------------------- handlers

pub(crate) async fn list_users(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (_, rate) = match begin(&app, &headers) {
        Ok(ok) => ok,
        Err(rejection) => return rejection.into_response(),
    };
    let params = Params::parse(query);
    let result = (|| -> Result<Value, ApiError> {
        let page = pagination(&params)?;
        params.includes(&[
            "contact_methods",
            "notification_rules",
            "teams",
            "subdomains",
        ])?;
        let needle = params.get("query").unwrap_or_default().to_lowercase();
        let team_ids = params.all("team_ids[]");
        let data = &app.data;
        let matching: Vec<usize> = data
            .users_in_list_order()
            .into_iter()
            .filter(|&i| {
                let u = &data.users[i];
                (needle.is_empty()
                    || u.name.to_lowercase().contains(&needle)
                    || u.email.to_lowercase().contains(&needle))
                    && (team_ids.is_empty()
                        || u.teams
                            .iter()
                            .any(|&t| team_ids.contains(&data.teams[t].id.as_str())))
            })
            .collect();
        let users: Vec<Value> = matching
            .iter()
            .skip(page.offset as usize)
            .take(page.limit as usize)
            .map(|&i| app.user_json(&data.users[i]))
            .collect();
        let more = page.offset + (users.len() as u64) < matching.len() as u64;
        Ok(json!({
            "users": users,
            "limit": page.limit,
            "offset": page.offset,
            "more": more,
            "total": if page.total { json!(matching.len()) } else { Value::Null },
        }))
    })();
    rate.apply(match result {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(error) => error.into_response(),
    })
}

pub(crate) async fn current_user(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (caller, rate) = match begin(&app, &headers) {
        Ok(ok) => ok,
        Err(rejection) => return rejection.into_response(),
    };
    let params = Params::parse(query);
    let response = match params.includes(&[
        "contact_methods",
        "notification_rules",
        "teams",
        "subdomains",
        "calendar_urls",
    ]) {
        Err(error) => error.into_response(),
        Ok(_) => match caller {
            Caller::OAuth { user } => match app.data.users.get(user) {
                Some(u) => json_response(StatusCode::OK, &json!({ "user": app.user_json(u) })),
                None => unauthorized().into_response(),
            },
            Caller::AccountKey => invalid_input(
                "Because this request was made using an account-level access token, we were \
                 unable to correlate a user with this request. Use a user-level API key or an \
                 OAuth user token.",
            )
            .into_response(),
        },
    };
    rate.apply(response)
}

pub(crate) async fn list_log_entries(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (_, rate) = match begin(&app, &headers) {
        Ok(ok) => ok,
        Err(rejection) => return rejection.into_response(),
    };
    let params = Params::parse(query);
    let result = (|| -> Result<String, ApiError> {
        let page = pagination(&params)?;
        params.includes(&["incidents", "services", "channels", "teams"])?;
        let overview = params.boolean("is_overview")?;
        utc_only(&params)?;
        let time = |key: &str| params.time(key);
        let until = time("until")?.unwrap_or_else(crate::clock::now);
        let since = time("since")?.unwrap_or(until - time::Duration::days(30));
        if since > until {
            return Err(invalid_input("since must not be after until"));
        }
        let team_ids = params.all("team_ids[]");
        let data = &app.data;
        // Entries are newest first: the window is one contiguous slice.
        let start = data.entries.partition_point(|e| e.at >= until);
        let end = data.entries.partition_point(|e| e.at >= since);
        let window = &data.entries[start..end.max(start)];
        let keep = |e: &&LogEntry| {
            (!overview || e.kind != EntryKind::Notify)
                && (team_ids.is_empty() || {
                    let service = &data.services[data.incidents[e.incident].service];
                    team_ids.contains(&data.teams[service.team].id.as_str())
                })
        };
        let matching = window.iter().filter(keep).count() as u64;
        let mut entries = String::new();
        let mut listed = 0u64;
        for (i, e) in window
            .iter()
            .enumerate()
            .filter(|(_, e)| keep(e))
            .skip(page.offset as usize)
            .take(page.limit as usize)
        {
            if listed > 0 {
                entries.push(',');
            }
            entries
                .push_str(app.entry_json[start + i].get_or_init(|| app.entry_json(e).to_string()));
            listed += 1;
        }
        let more = page.offset + listed < matching;
        // The keys in the order serde_json writes a `json!` object (sorted).
        Ok(format!(
            r#"{{"limit":{},"log_entries":[{entries}],"more":{more},"offset":{},"total":{}}}"#,
            page.limit,
            page.offset,
            if page.total {
                matching.to_string()
            } else {
                "null".to_string()
            },
        ))
    })();
    rate.apply(match result {
        Ok(body) => {
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            response
        }
        Err(error) => error.into_response(),
    })
}

pub(crate) async fn list_on_calls(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (_, rate) = match begin(&app, &headers) {
        Ok(ok) => ok,
        Err(rejection) => return rejection.into_response(),
    };
    let params = Params::parse(query);
    let result = (|| -> Result<Value, ApiError> {
        let page = pagination(&params)?;
        params.includes(&["escalation_policies", "users", "schedules"])?;
        utc_only(&params)?;
        let earliest = params.boolean("earliest")?;
        let now = crate::clock::now();
        let since = params.time("since")?.unwrap_or(now);
        let until = params.time("until")?.unwrap_or(now);
        if since > until {
            return Err(invalid_input(
                "The until time cannot be before the since time",
            ));
        }
        if until > now + time::Duration::days(90) {
            return Err(invalid_input(
                "On-call shifts are limited to 90 days in the future: until must be at most 90 \
                 days from now",
            ));
        }
        if until - since > time::Duration::days(3_660) {
            return Err(invalid_input(
                "since and until must be at most ten years apart (a sandbox bound)",
            ));
        }
        let data = &app.data;
        let user_ids = params.all("user_ids[]");
        let policy_ids = params.all("escalation_policy_ids[]");
        let schedule_ids = params.all("schedule_ids[]");
        let mut seen = std::collections::HashSet::new();
        let matching: Vec<OnCallEntry> = data
            .on_calls(since, until)
            .into_iter()
            .filter(|e| {
                (user_ids.is_empty() || user_ids.contains(&data.users[e.user].id.as_str()))
                    && (policy_ids.is_empty()
                        || policy_ids.contains(&data.policies[e.policy].id.as_str()))
                    && (schedule_ids.is_empty()
                        || match e.schedule {
                            Some(s) => schedule_ids.contains(&data.schedules[s].id.as_str()),
                            None => schedule_ids.contains(&"null"),
                        })
            })
            // Sorted by start within a policy and level: the first seen is the earliest.
            .filter(|e| !earliest || seen.insert((e.policy, e.level, e.user)))
            .collect();
        let oncalls: Vec<Value> = matching
            .iter()
            .skip(page.offset as usize)
            .take(page.limit as usize)
            .map(|e| app.on_call_json(e))
            .collect();
        let more = page.offset + (oncalls.len() as u64) < matching.len() as u64;
        Ok(json!({
            "oncalls": oncalls,
            "limit": page.limit,
            "offset": page.offset,
            "more": more,
            "total": if page.total { json!(matching.len()) } else { Value::Null },
        }))
    })();
    rate.apply(match result {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(error) => error.into_response(),
    })
}

pub(crate) async fn list_licenses(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let (_, rate) = match begin(&app, &headers) {
        Ok(ok) => ok,
        Err(rejection) => return rejection.into_response(),
    };
    if !app.config.licenses_readable {
        return rate.apply(forbidden().into_response());
    }
    let data = &app.data;
    let licenses: Vec<Value> = data
        .licenses
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut license = app.license_json(l);
            license["current_value"] = json!(data.allocated(i));
            license["allocations_available"] = json!(l.allocations_available);
            license
        })
        .collect();
    rate.apply(json_response(
        StatusCode::OK,
        &json!({ "licenses": licenses }),
    ))
}

pub(crate) async fn list_license_allocations(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (_, rate) = match begin(&app, &headers) {
        Ok(ok) => ok,
        Err(rejection) => return rejection.into_response(),
    };
    if !app.config.licenses_readable {
        return rate.apply(forbidden().into_response());
    }
    let params = Params::parse(query);
    let result = pagination(&params).map(|page| {
        let data = &app.data;
        let order = data.users_in_list_order();
        let allocations: Vec<Value> = order
            .iter()
            .skip(page.offset as usize)
            .take(page.limit as usize)
            .map(|&i| {
                let a = &data.allocations[i];
                json!({
                    "user": app.user_ref(i),
                    "license": app.license_json(&data.licenses[a.license]),
                    "allocated_at": timestamp(a.at),
                })
            })
            .collect();
        let more = page.offset + (allocations.len() as u64) < order.len() as u64;
        json!({
            "license_allocations": allocations,
            "limit": page.limit,
            "offset": page.offset,
            "more": more,
            "total": if page.total { json!(order.len()) } else { Value::Null },
        })
    });
    rate.apply(match result {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(error) => error.into_response(),
    })
}

pub(crate) async fn sandbox_ground_truth(State(app): State<Arc<App>>) -> Response {
    match serde_json::to_value(&app.truth) {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": e.to_string() }),
        ),
    }
}

pub(crate) async fn sandbox_stats(State(app): State<Arc<App>>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "token_requests": app.token_requests.load(Ordering::Relaxed),
            "api_requests": app.api_requests.load(Ordering::Relaxed),
            "rate_limited": app.rate_limited.load(Ordering::Relaxed),
            "faults_injected": app.faults.injected(),
        }),
    )
}

pub(crate) async fn sandbox_revoke_refresh_tokens(State(app): State<Arc<App>>) -> StatusCode {
    app.revoke_refresh_tokens();
    StatusCode::NO_CONTENT
}

pub(crate) async fn sandbox_set_token_response(
    State(app): State<Arc<App>>,
    axum::Json(answer): axum::Json<super::TokenOverride>,
) -> StatusCode {
    *app.token_override() = answer;
    StatusCode::NO_CONTENT
}

pub(crate) async fn sandbox_clear_token_response(State(app): State<Arc<App>>) -> StatusCode {
    *app.token_override() = super::TokenOverride::default();
    StatusCode::NO_CONTENT
}

pub(crate) async fn sandbox_expire_access_tokens(State(app): State<Arc<App>>) -> StatusCode {
    app.expire_access_tokens();
    StatusCode::NO_CONTENT
}

impl FaultTarget for App {
    fn faults(&self) -> &FaultSwitch {
        &self.faults
    }

    fn count_answered(&self, _path: &str, status: StatusCode) {
        self.api_requests.fetch_add(1, Ordering::Relaxed);
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn too_many_requests(&self, reset_secs: u64) -> Response {
        if reset_secs == 0 {
            // "A 429 may occasionally arrive without headers/body."
            return StatusCode::TOO_MANY_REQUESTS.into_response();
        }
        let rate = RateInfo {
            limit: self.config.rate_limit_per_minute,
            remaining: 0,
            reset_secs,
        };
        rate.apply(pd_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate Limit Exceeded",
            2020,
            &[],
        ))
    }

    fn internal_error(&self) -> Response {
        pd_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            2000,
            &[],
        )
    }

    fn unauthorized(&self) -> Response {
        unauthorized().into_response()
    }

    fn expire_access_tokens(&self) {
        App::expire_access_tokens(self);
    }
}

pub(crate) async fn not_found() -> Response {
    pd_error(StatusCode::NOT_FOUND, "Not Found", 2100, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_variants() {
        let mut h = HeaderMap::new();
        assert!(accept_ok(&h));
        for ok in [
            "application/vnd.pagerduty+json;version=2",
            "application/vnd.pagerduty+json;version=2, application/json",
            "application/json",
            "*/*",
        ] {
            h.insert(ACCEPT, HeaderValue::from_static(ok));
            assert!(accept_ok(&h), "{ok}");
        }
        for bad in ["text/html", "application/vnd.pagerduty+json;version=1"] {
            h.insert(ACCEPT, HeaderValue::from_static(bad));
            assert!(!accept_ok(&h), "{bad}");
        }
    }

    #[test]
    fn times_parse_in_the_forms_pagerduty_takes() {
        let z = parse_time("2026-03-01T10:00:00Z");
        assert!(z.is_some());
        assert_eq!(parse_time("2026-03-01T11:00:00+01:00"), z);
        assert_eq!(parse_time("2026-03-01T10:00:00"), z);
        assert!(parse_time("2026-03-01").is_some());
        assert!(parse_time("yesterday").is_none());
        assert_eq!(
            timestamp(z.unwrap_or(OffsetDateTime::UNIX_EPOCH)),
            "2026-03-01T10:00:00Z"
        );
    }

    #[test]
    fn token_header_forms() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Token token=abc"));
        assert!(matches!(credential(&h), Some(Credential::Token(t)) if t == "abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer pdus+_0X_1"));
        assert!(matches!(credential(&h), Some(Credential::Bearer(t)) if t == "pdus+_0X_1"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic Zm9v"));
        assert!(credential(&h).is_none());
    }
}
