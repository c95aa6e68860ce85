//! The public API (`/public/v1/...`) plus sandbox-only endpoints.
//!
//! Every API request goes through [`begin`]: count it, authenticate it, apply the rate
//! limit. Choices where PandaDoc's documentation is silent:
//!
//! - Auth: `Authorization: Bearer <access token>` (from `/oauth2/access_token`) or
//!   `Authorization: API-Key <api_key>` (the organization owner's key). Both act as the
//!   organization owner, an organization admin, so `/users` is allowed. No header or an
//!   unknown scheme → 401 `{"type":"authentication_error","detail":"Authentication
//!   credentials were not provided."}` (the spec's 401); an unknown, revoked or expired token
//!   or key → 401 with `"detail":"Incorrect authentication credentials."`.
//! - Rate limits, as PandaDoc publishes them: per user (all tokens and keys of one user share
//!   them), per operation (not cumulative across operations), sliding 60 s window. List class
//!   (users, members, members/current, documents list, templates list):
//!   `list_rate_per_minute`; Details class (document and template details):
//!   `details_rate_per_minute`. Over the limit → 429
//!   `{"type":"request_error","detail":"Request was throttled. Expected available in N
//!   seconds."}` (`N` rounded up, `second` when it is 1) with no rate-limit header and no
//!   `Retry-After`. Refused requests do not use up the window. Unauthenticated requests are
//!   not rate limited.
//! - Bad query parameters → 400 `{"type":"validation_error","detail":{"<param>":["..."]}}`,
//!   every bad parameter reported at once; a contradiction between parameters →
//!   `{"type":"request_error","detail":{"non_field_errors":["..."]}}`. Unknown parameters
//!   are ignored. An empty value (`count=`) is the default.
//! - Pagination (`count`, `page` ≥ 1): a page past the end is `200` with `results: []`.
//!   Users: `count` 0..=50, default 50; the response has `total`. Documents and templates:
//!   `count` 1..=100, default 50; no `total` and no `next`: a client stops at a page shorter
//!   than `count`. Members: not paginated.
//! - Documents date filters (`created_*`, `modified_*`, `completed_*`): `*_from` inclusive,
//!   `*_to` exclusive, as the spec says. Values: RFC 3339 / ISO 8601 date-times with an
//!   offset or `Z`, naive date-times (read as UTC) or bare dates (midnight UTC); a `+` in an
//!   offset must be percent-encoded. `completed_*` leaves out documents never completed.
//! - Documents ordering: `order_by` is one of the spec's values (`date_created` ascending,
//!   `-date_created` descending, ...); ties are broken by id, nulls sort last ascending and
//!   first descending. Without `order_by`, most recent status change first — the spec names
//!   `date_status_changed` as the default, and its example response lists the newest first.
//! - Timestamps: `YYYY-MM-DDThh:mm:ss.uuuuuuZ`, UTC, microseconds, like PandaDoc's.
//! - Unknown document / template id → 404 `{"type":"request_error","detail":"Not found"}`.

use std::cmp::Ordering as Cmp;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, RawQuery, State};
use axum::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use super::data::{Document, Recipient, Template, User, OWNER};
use super::state::App;
use crate::faults::{FaultSwitch, FaultTarget};
use crate::rate::{ceil_secs, RATE_WINDOW};

const USERS_MAX_COUNT: i64 = 50;
const MAX_COUNT: i64 = 100;
const DEFAULT_COUNT: i64 = 50;

const NOT_PROVIDED: &str = "Authentication credentials were not provided.";
const INCORRECT: &str = "Incorrect authentication credentials.";

/// The spec's `DocumentOrderingFieldsEnum`, without the `-` prefix.
const ORDER_FIELDS: [&str; 10] = [
    "name",
    "date_created",
    "date_status_changed",
    "date_of_last_action",
    "date_modified",
    "date_sent",
    "date_completed",
    "date_expiration",
    "date_declined",
    "status",
];

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    List,
    Details,
}

/// One rate-limited operation.
#[derive(Clone, Copy)]
pub(crate) struct Operation {
    name: &'static str,
    class: Class,
}

const LIST_USERS: Operation = Operation {
    name: "listUsers",
    class: Class::List,
};
const LIST_MEMBERS: Operation = Operation {
    name: "listMembers",
    class: Class::List,
};
const CURRENT_MEMBER: Operation = Operation {
    name: "detailsCurrentMember",
    class: Class::List,
};
const LIST_DOCUMENTS: Operation = Operation {
    name: "listDocuments",
    class: Class::List,
};
const DOCUMENT_DETAILS: Operation = Operation {
    name: "detailsDocument",
    class: Class::Details,
};
const LIST_TEMPLATES: Operation = Operation {
    name: "listTemplates",
    class: Class::List,
};
const TEMPLATE_DETAILS: Operation = Operation {
    name: "detailsTemplate",
    class: Class::Details,
};

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// PandaDoc's error body, `{"type": .., "detail": ..}`, rendered at the edge (small,
/// unlike `Response`).
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    detail: Value,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(
            self.status,
            &json!({ "type": self.kind, "detail": self.detail }),
        )
    }
}

fn error(status: StatusCode, kind: &'static str, detail: Value) -> ApiError {
    ApiError {
        status,
        kind,
        detail,
    }
}

fn unauthorized(detail: &str) -> ApiError {
    error(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        json!(detail),
    )
}

fn not_found_error() -> ApiError {
    error(StatusCode::NOT_FOUND, "request_error", json!("Not found"))
}

fn throttled_detail(wait_secs: u64) -> String {
    let unit = if wait_secs == 1 { "second" } else { "seconds" };
    format!("Request was throttled. Expected available in {wait_secs} {unit}.")
}

enum Credential {
    Bearer(String),
    ApiKey(String),
}

fn credential(headers: &HeaderMap) -> Option<Credential> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    let rest = rest.trim().to_string();
    if scheme.eq_ignore_ascii_case("bearer") {
        Some(Credential::Bearer(rest))
    } else if scheme.eq_ignore_ascii_case("api-key") {
        Some(Credential::ApiKey(rest))
    } else {
        None
    }
}

/// Counts, authenticates and rate-limits one API request; `Ok` is the caller's user index.
fn begin(app: &App, headers: &HeaderMap, op: Operation) -> Result<usize, ApiError> {
    let counters = &app.counters;
    counters.api.fetch_add(1, Ordering::Relaxed);
    match op.class {
        Class::List => counters.api_list.fetch_add(1, Ordering::Relaxed),
        Class::Details => counters.api_details.fetch_add(1, Ordering::Relaxed),
    };
    let user = match credential(headers) {
        None => return Err(unauthorized(NOT_PROVIDED)),
        Some(Credential::Bearer(token)) => {
            let grants = app.grants();
            match grants.access.get(&token) {
                Some(grant) if grant.expires > Instant::now() => grant.user,
                _ => return Err(unauthorized(INCORRECT)),
            }
        }
        Some(Credential::ApiKey(key)) => match &app.config.api_key {
            Some(expected) if !key.is_empty() && *expected == key => OWNER,
            _ => return Err(unauthorized(INCORRECT)),
        },
    };
    if !app.config.api_access {
        // The wording is ours: PandaDoc documents the plan gate, not its error text.
        return Err(error(
            StatusCode::FORBIDDEN,
            "permission_error",
            json!("API access is not available on your current plan."),
        ));
    }
    *counters
        .by_operation
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(op.name)
        .or_default() += 1;
    let limit = match op.class {
        Class::List => app.config.list_rate_per_minute,
        Class::Details => app.config.details_rate_per_minute,
    } as usize;
    let now = Instant::now();
    let wait = {
        let mut windows = app.windows();
        let window = windows.entry((user, op.name)).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
        {
            window.pop_front();
        }
        if window.len() < limit {
            window.push_back(now);
            None
        } else {
            // The oldest admitted request leaves the window first.
            let left = window
                .front()
                .map(|t| RATE_WINDOW.saturating_sub(now.duration_since(*t)))
                .unwrap_or(RATE_WINDOW);
            Some(ceil_secs(left).max(1))
        }
    };
    if let Some(wait) = wait {
        counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            "request_error",
            json!(throttled_detail(wait)),
        ));
    }
    Ok(user)
}

// ---------------------------------------------------------------- parameters

/// Query parameters in order, repeated keys kept.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Params {
        Params(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value, `None` when absent or empty.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn has_prefix(&self, prefix: &str) -> bool {
        self.0.iter().any(|(k, _)| k.starts_with(prefix))
    }
}

/// Collects field errors, DRF style: every bad parameter is reported in one 400.
struct Check<'a> {
    params: &'a Params,
    errors: Map<String, Value>,
}

impl<'a> Check<'a> {
    fn new(params: &'a Params) -> Check<'a> {
        Check {
            params,
            errors: Map::new(),
        }
    }

    fn fail(&mut self, key: &str, message: String) {
        self.errors.insert(key.to_string(), json!([message]));
    }

    fn integer(&mut self, key: &str, default: i64, min: i64, max: Option<i64>) -> i64 {
        let Some(raw) = self.params.get(key) else {
            return default;
        };
        let Ok(value) = raw.trim().parse::<i64>() else {
            self.fail(key, "A valid integer is required.".into());
            return default;
        };
        if value < min {
            self.fail(
                key,
                format!("Ensure this value is greater than or equal to {min}."),
            );
            return default;
        }
        if let Some(max) = max.filter(|m| value > *m) {
            self.fail(
                key,
                format!("Ensure this value is less than or equal to {max}."),
            );
            return default;
        }
        value
    }

    fn boolean(&mut self, key: &str, default: bool) -> bool {
        match self.params.get(key) {
            None => default,
            Some("true" | "True" | "TRUE" | "1") => true,
            Some("false" | "False" | "FALSE" | "0") => false,
            Some(_) => {
                self.fail(key, "Must be a valid boolean.".into());
                default
            }
        }
    }

    fn datetime(&mut self, key: &str) -> Option<OffsetDateTime> {
        let raw = self.params.get(key)?;
        let parsed = parse_time(raw);
        if parsed.is_none() {
            self.fail(
                key,
                "Datetime has wrong format. Use one of these formats instead: \
                 YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
                    .into(),
            );
        }
        parsed
    }

    fn choice<'v>(&mut self, key: &str, allowed: &[&'v str]) -> Option<&'v str> {
        let raw = self.params.get(key)?;
        match allowed.iter().find(|a| **a == raw) {
            Some(found) => Some(found),
            None => {
                self.fail(key, format!("\"{raw}\" is not a valid choice."));
                None
            }
        }
    }

    /// A document status number, `0..=14`.
    fn status(&mut self, key: &str) -> Option<u8> {
        let raw = self.params.get(key)?;
        match raw.trim().parse::<u8>() {
            Ok(code) if code <= 14 => Some(code),
            _ => {
                self.fail(key, format!("\"{raw}\" is not a valid choice."));
                None
            }
        }
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(error(
                StatusCode::BAD_REQUEST,
                "validation_error",
                Value::Object(self.errors),
            ))
        }
    }
}

fn non_field_error(message: &str) -> ApiError {
    error(
        StatusCode::BAD_REQUEST,
        "request_error",
        json!({ "non_field_errors": [message] }),
    )
}

fn parse_time(value: &str) -> Option<OffsetDateTime> {
    let naive_fraction =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    let naive = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let naive_minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let day = format_description!("[year]-[month]-[day]");
    OffsetDateTime::parse(value, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(value, &Iso8601::DEFAULT))
        .ok()
        .or_else(|| {
            [naive_fraction, naive, naive_minutes]
                .iter()
                .find_map(|f| PrimitiveDateTime::parse(value, f).ok())
                .map(PrimitiveDateTime::assume_utc)
        })
        .or_else(|| {
            Date::parse(value, &day)
                .ok()
                .map(|d| d.with_time(Time::MIDNIGHT).assume_utc())
        })
}

pub(crate) fn timestamp(at: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

fn opt_timestamp(at: Option<OffsetDateTime>) -> Value {
    at.map(|t| json!(timestamp(t))).unwrap_or(Value::Null)
}

/// `(page - 1) * count` without overflow.
fn page_slice<T>(items: &[T], page: i64, count: i64) -> &[T] {
    let skip = usize::try_from((page - 1).saturating_mul(count)).unwrap_or(usize::MAX);
    let start = skip.min(items.len());
    let end = start.saturating_add(count as usize).min(items.len());
    &items[start..end]
}

// ---------------------------------------------------------------- rendering

impl App {
    fn user_json(&self, u: &User) -> Value {
        let workspaces = if u.removed {
            json!([])
        } else {
            json!([{
                "role": u.role,
                "workspace_id": self.data.workspace_id,
                "membership_id": u.membership_id,
            }])
        };
        json!({
            "user_id": u.user_id,
            "email": u.email,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "phone_number": u.phone_number,
            "license": u.license,
            "is_organization_owner": u.is_owner,
            "workspaces": workspaces,
        })
    }

    fn member_json(&self, u: &User) -> Value {
        json!({
            "user_id": u.user_id,
            "membership_id": u.membership_id,
            "email": u.email,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "is_active": true,
            "workspace": self.data.workspace_id,
            "workspace_name": self.data.workspace_name,
            // The spec's schema says `emails_verified`; PandaDoc (and the spec's own
            // examples) send `email_verified`.
            "email_verified": u.email_verified,
            "role": u.role,
            "user_license": u.license,
            "date_created": timestamp(u.joined),
            "date_modified": timestamp(u.modified),
        })
    }

    /// `created_by` of document and template details.
    fn creator_json(&self, user: usize) -> Value {
        let u = &self.data.users[user];
        json!({
            "id": u.user_id,
            "membership_id": u.membership_id,
            "email": u.email,
            "first_name": u.first_name,
            "last_name": u.last_name,
            "avatar": u.avatar,
        })
    }

    fn document_item_json(&self, d: &Document) -> Value {
        json!({
            "id": d.id,
            "name": d.name,
            "status": d.status.name(),
            "date_created": timestamp(d.created),
            "date_modified": timestamp(d.modified),
            "date_completed": opt_timestamp(d.completed),
            "expiration_date": opt_timestamp(d.expiration),
            "version": "2",
        })
    }

    fn recipient_json(r: &Recipient) -> Value {
        json!({
            "id": r.id,
            "first_name": r.first_name,
            "last_name": r.last_name,
            "email": r.email,
            "phone": "",
            "recipient_type": r.kind,
            "has_completed": r.has_completed,
            "role": r.role,
            "roles": if r.role.is_empty() { json!([]) } else { json!([r.role]) },
            "signing_order": null,
            "delivery_methods": { "email": true, "sms": false },
            "redirect": { "is_enabled": false, "url": null },
            "contact_id": r.contact_id,
            "shared_link": r.shared_link,
            "signature_date": opt_timestamp(r.signature_date),
            "verification_settings": null,
            "type": "recipient",
        })
    }

    fn document_details_json(&self, d: &Document) -> Value {
        let sent_by = d.sent_by.map(|s| {
            let u = &self.data.users[s];
            json!({
                "id": u.user_id,
                "email": u.email,
                "first_name": u.first_name,
                "last_name": u.last_name,
                "avatar": u.avatar,
            })
        });
        let template = d.template.map(|t| {
            let t = &self.data.templates[t];
            json!({ "id": t.id, "name": t.name })
        });
        let content_modified = (d.created + time::Duration::seconds(2)).min(d.modified);
        json!({
            "id": d.id,
            "name": d.name,
            "autonumbering_sequence_name_prefix": null,
            "date_created": timestamp(d.created),
            "date_modified": timestamp(d.modified),
            "date_completed": opt_timestamp(d.completed),
            "content_date_modified": timestamp(content_modified),
            "date_sent": opt_timestamp(d.sent),
            "ref_number": d.ref_number,
            "created_by": self.creator_json(d.created_by),
            "template": template,
            "expiration_date": opt_timestamp(d.expiration),
            "metadata": {},
            "tokens": [],
            "fields": [],
            "pricing": {},
            "tables": [],
            "images": [],
            "texts": [],
            "tags": [],
            "status": d.status.name(),
            "recipients": d.recipients.iter().map(App::recipient_json).collect::<Vec<_>>(),
            "sent_by": sent_by,
            "grand_total": { "amount": d.amount, "currency": d.currency },
            "linked_objects": [],
            "approval_execution": null,
            "version": "2",
            "lock": null,
        })
    }

    fn template_item_json(&self, t: &Template, content_date_modified: bool) -> Value {
        let mut item = json!({
            "id": t.id,
            "name": t.name,
            "date_created": timestamp(t.created),
            "date_modified": timestamp(t.modified),
            "version": "2",
        });
        if content_date_modified {
            item["content_date_modified"] = json!(timestamp(t.content_modified));
        }
        item
    }

    fn template_details_json(&self, t: &Template) -> Value {
        let roles: Vec<Value> = t
            .roles
            .iter()
            .map(|(id, name)| {
                json!({ "id": id, "name": name, "signing_order": null, "preassigned_person": null })
            })
            .collect();
        json!({
            "id": t.id,
            "name": t.name,
            "date_created": timestamp(t.created),
            "date_modified": timestamp(t.modified),
            "content_date_modified": timestamp(t.content_modified),
            // PandaDoc sends `membership_id` here too (the spec's example has it, its schema
            // does not declare it).
            "created_by": self.creator_json(t.created_by),
            "metadata": {},
            "tokens": [],
            "fields": [],
            "pricing": {},
            "tags": [],
            "roles": roles,
            "version": "2",
            "content_placeholders": [],
            "tables": [],
            "images": [],
        })
    }
}

// ---------------------------------------------------------------- handlers

fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, &body)
}

pub(crate) async fn list_users(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let caller = match begin(&app, &headers, LIST_USERS) {
        Ok(user) => user,
        Err(rejection) => return rejection.into_response(),
    };
    // "List Users" is for organization admins.
    if !app.data.users.get(caller).is_some_and(|u| u.is_admin()) {
        return error(
            StatusCode::FORBIDDEN,
            "permission_error",
            json!("You do not have permission to perform this action."),
        )
        .into_response();
    }
    let params = Params::parse(query);
    let mut check = Check::new(&params);
    let count = check.integer("count", DEFAULT_COUNT, 0, Some(USERS_MAX_COUNT));
    let page = check.integer("page", 1, 1, None);
    let show_removed = check.boolean("show_removed", true);
    if let Err(rejection) = check.finish() {
        return rejection.into_response();
    }
    let users: Vec<&User> = app
        .data
        .users
        .iter()
        .filter(|u| show_removed || !u.removed)
        .collect();
    let results: Vec<Value> = page_slice(&users, page, count)
        .iter()
        .map(|u| app.user_json(u))
        .collect();
    ok(json!({ "total": users.len(), "results": results }))
}

pub(crate) async fn list_members(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(rejection) = begin(&app, &headers, LIST_MEMBERS) {
        return rejection.into_response();
    }
    let results: Vec<Value> = app
        .data
        .members()
        .map(|(_, u)| app.member_json(u))
        .collect();
    ok(json!({ "results": results }))
}

pub(crate) async fn current_member(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let user = match begin(&app, &headers, CURRENT_MEMBER) {
        Ok(user) => user,
        Err(rejection) => return rejection.into_response(),
    };
    match app.data.users.get(user) {
        Some(u) => ok(app.member_json(u)),
        None => not_found_error().into_response(),
    }
}

/// Sort key of a document for an `order_by` field (nullable fields as `Option`).
fn document_key(d: &Document, field: &str) -> (Option<OffsetDateTime>, Option<String>, u8) {
    match field {
        "name" => (None, Some(d.name.clone()), 0),
        "date_created" => (Some(d.created), None, 0),
        "date_status_changed" => (Some(d.status_changed), None, 0),
        "date_of_last_action" | "date_modified" => (Some(d.modified), None, 0),
        "date_sent" => (d.sent, None, 0),
        "date_completed" => (d.completed, None, 0),
        "date_expiration" => (d.expiration, None, 0),
        "date_declined" => (
            (d.status == super::data::Status::Declined).then_some(d.status_changed),
            None,
            0,
        ),
        _ => (None, None, d.status.code()),
    }
}

/// Postgres-like: ascending puts nulls last; the order is total through the id.
fn compare_documents(a: &Document, b: &Document, field: &str) -> Cmp {
    let (ka, kb) = (document_key(a, field), document_key(b, field));
    let nullable = field.starts_with("date_");
    let by_key = if nullable {
        match (ka.0, kb.0) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Cmp::Less,
            (None, Some(_)) => Cmp::Greater,
            (None, None) => Cmp::Equal,
        }
    } else {
        ka.cmp(&kb)
    };
    by_key.then_with(|| a.id.cmp(&b.id))
}

pub(crate) async fn list_documents(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(rejection) = begin(&app, &headers, LIST_DOCUMENTS) {
        return rejection.into_response();
    }
    let params = Params::parse(query);
    let mut check = Check::new(&params);
    let count = check.integer("count", DEFAULT_COUNT, 1, Some(MAX_COUNT));
    let page = check.integer("page", 1, 1, None);
    let mut orderings: Vec<String> = ORDER_FIELDS.iter().map(|f| f.to_string()).collect();
    orderings.extend(ORDER_FIELDS.iter().map(|f| format!("-{f}")));
    let allowed: Vec<&str> = orderings.iter().map(String::as_str).collect();
    let order_by = check.choice("order_by", &allowed).map(str::to_string);
    let created_from = check.datetime("created_from");
    let created_to = check.datetime("created_to");
    let modified_from = check.datetime("modified_from");
    let modified_to = check.datetime("modified_to");
    let completed_from = check.datetime("completed_from");
    let completed_to = check.datetime("completed_to");
    let status = check.status("status");
    let status_ne = check.status("status__ne");
    let deleted = check.boolean("deleted", false);
    if let Err(rejection) = check.finish() {
        return rejection.into_response();
    }
    if params.get("template_id").is_some() && params.get("form_id").is_some() {
        return non_field_error("Either template_id or form_id should be added to query.")
            .into_response();
    }
    let membership = params.get("membership_id");
    let template_id = params.get("template_id");
    let id = params.get("id");
    let contact_id = params.get("contact_id");
    let q = params.get("q").map(str::to_lowercase);
    // Nothing in the sandbox is deleted, in a folder, tagged, made from a form or has
    // metadata: those filters select nothing.
    let nothing = deleted
        || params.get("form_id").is_some()
        || params.get("folder_uuid").is_some()
        || params.get("tag").is_some()
        || params.has_prefix("metadata_");
    let data = &app.data;
    let from_to =
        |at: Option<OffsetDateTime>, from: Option<OffsetDateTime>, to: Option<OffsetDateTime>| {
            if from.is_none() && to.is_none() {
                return true;
            }
            at.is_some_and(|t| from.is_none_or(|f| t >= f) && to.is_none_or(|u| t < u))
        };
    let mut matching: Vec<&Document> = data
        .documents
        .iter()
        .filter(|d| {
            !nothing
                && from_to(Some(d.created), created_from, created_to)
                && from_to(Some(d.modified), modified_from, modified_to)
                && from_to(d.completed, completed_from, completed_to)
                && status.is_none_or(|s| d.status.code() == s)
                && status_ne.is_none_or(|s| d.status.code() != s)
                && membership.is_none_or(|m| data.users[d.created_by].membership_id == m)
                && template_id.is_none_or(|t| d.template.is_some_and(|i| data.templates[i].id == t))
                && id.is_none_or(|i| d.id == i)
                && contact_id.is_none_or(|c| d.recipients.iter().any(|r| r.contact_id == c))
                && q.as_deref().is_none_or(|q| {
                    d.name.to_lowercase().contains(q) || d.ref_number.eq_ignore_ascii_case(q)
                })
        })
        .collect();
    match order_by.as_deref() {
        None => matching.sort_by(|a, b| compare_documents(b, a, "date_status_changed")),
        Some(field) => match field.strip_prefix('-') {
            Some(field) => matching.sort_by(|a, b| compare_documents(b, a, field)),
            None => matching.sort_by(|a, b| compare_documents(a, b, field)),
        },
    }
    let results: Vec<Value> = page_slice(&matching, page, count)
        .iter()
        .map(|d| app.document_item_json(d))
        .collect();
    ok(json!({ "results": results }))
}

pub(crate) async fn document_details(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(rejection) = begin(&app, &headers, DOCUMENT_DETAILS) {
        return rejection.into_response();
    }
    match app
        .data
        .document_index
        .get(&id)
        .map(|&i| &app.data.documents[i])
    {
        Some(d) => ok(app.document_details_json(d)),
        None => not_found_error().into_response(),
    }
}

pub(crate) async fn list_templates(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(rejection) = begin(&app, &headers, LIST_TEMPLATES) {
        return rejection.into_response();
    }
    let params = Params::parse(query);
    let mut check = Check::new(&params);
    let count = check.integer("count", DEFAULT_COUNT, 1, Some(MAX_COUNT));
    let page = check.integer("page", 1, 1, None);
    let shared = check.boolean("shared", false);
    let deleted = check.boolean("deleted", false);
    let mut content_date_modified = false;
    for (key, value) in &params.0 {
        if key != "fields" {
            continue;
        }
        for field in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            if field == "content_date_modified" {
                content_date_modified = true;
            } else {
                check.fail("fields", format!("\"{field}\" is not a valid choice."));
            }
        }
    }
    if let Err(rejection) = check.finish() {
        return rejection.into_response();
    }
    let q = params.get("q").map(str::to_lowercase);
    let id = params.get("id");
    // No template is shared, deleted, in a folder or tagged.
    let nothing =
        shared || deleted || params.get("folder_uuid").is_some() || params.get("tag").is_some();
    let matching: Vec<&Template> = app
        .data
        .templates
        .iter()
        .filter(|t| {
            !nothing
                && id.is_none_or(|i| t.id == i)
                && q.as_deref()
                    .is_none_or(|q| t.name.to_lowercase().contains(q))
        })
        .collect();
    let results: Vec<Value> = page_slice(&matching, page, count)
        .iter()
        .map(|t| app.template_item_json(t, content_date_modified))
        .collect();
    ok(json!({ "results": results }))
}

pub(crate) async fn template_details(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(rejection) = begin(&app, &headers, TEMPLATE_DETAILS) {
        return rejection.into_response();
    }
    match app
        .data
        .template_index
        .get(&id)
        .map(|&i| &app.data.templates[i])
    {
        Some(t) => ok(app.template_details_json(t)),
        None => not_found_error().into_response(),
    }
}

pub(crate) async fn sandbox_ground_truth(State(app): State<Arc<App>>) -> Response {
    match serde_json::to_value(&app.truth) {
        Ok(body) => ok(body),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": e.to_string() }),
        ),
    }
}

pub(crate) async fn sandbox_stats(State(app): State<Arc<App>>) -> Response {
    match serde_json::to_value(app.stats()) {
        Ok(body) => ok(body),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({ "error": e.to_string() }),
        ),
    }
}

pub(crate) async fn sandbox_revoke_refresh_tokens(State(app): State<Arc<App>>) -> StatusCode {
    app.revoke_refresh_tokens();
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

    fn count_answered(&self, path: &str, status: StatusCode) {
        let c = &self.counters;
        c.api.fetch_add(1, Ordering::Relaxed);
        if path.ends_with("/details") {
            c.api_details.fetch_add(1, Ordering::Relaxed);
        } else {
            c.api_list.fetch_add(1, Ordering::Relaxed);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            c.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn too_many_requests(&self, reset_secs: u64) -> Response {
        if reset_secs == 0 {
            // The spec's 429 body: no hint, no header.
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                json!("Request was throttled."),
            )
            .into_response();
        }
        error(
            StatusCode::TOO_MANY_REQUESTS,
            "request_error",
            json!(throttled_detail(reset_secs)),
        )
        .into_response()
    }

    fn internal_error(&self) -> Response {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            json!("A server error occurred."),
        )
        .into_response()
    }

    fn unauthorized(&self) -> Response {
        unauthorized(INCORRECT).into_response()
    }

    fn expire_access_tokens(&self) {
        App::expire_access_tokens(self);
    }
}

pub(crate) async fn not_found() -> Response {
    not_found_error().into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_the_forms_accepted() {
        let z = parse_time("2026-03-01T10:00:00Z");
        assert!(z.is_some());
        assert_eq!(parse_time("2026-03-01T11:00:00+01:00"), z);
        assert_eq!(parse_time("2026-03-01T10:00:00"), z);
        assert_eq!(parse_time("2026-03-01T10:00"), z);
        assert!(parse_time("2026-03-01T10:00:00.132757Z").is_some());
        assert!(parse_time("2026-03-01T10:00:00.5").is_some());
        assert!(parse_time("2026-03-01").is_some());
        assert!(parse_time("yesterday").is_none());
        assert!(parse_time("2026-03-01T10:00:00 01:00").is_none());
    }

    #[test]
    fn timestamps_have_microseconds_and_z() {
        let t = parse_time("2026-03-01T10:00:00.1234567Z").unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(timestamp(t), "2026-03-01T10:00:00.123456Z");
        let t = parse_time("2026-03-01T10:00:00Z").unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert_eq!(timestamp(t), "2026-03-01T10:00:00.000000Z");
    }

    #[test]
    fn throttled_detail_is_singular_for_one_second() {
        assert_eq!(
            throttled_detail(1),
            "Request was throttled. Expected available in 1 second."
        );
        assert_eq!(
            throttled_detail(13),
            "Request was throttled. Expected available in 13 seconds."
        );
    }

    #[test]
    fn credential_schemes() {
        let mut h = HeaderMap::new();
        assert!(credential(&h).is_none());
        h.insert(AUTHORIZATION, HeaderValue::from_static("API-Key abc"));
        assert!(matches!(credential(&h), Some(Credential::ApiKey(k)) if k == "abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer 0123"));
        assert!(matches!(credential(&h), Some(Credential::Bearer(t)) if t == "0123"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Token token=abc"));
        assert!(credential(&h).is_none());
    }

    #[test]
    fn pages_past_the_end_are_empty() {
        let items = [1, 2, 3, 4, 5];
        assert_eq!(page_slice(&items, 1, 2), &[1, 2]);
        assert_eq!(page_slice(&items, 3, 2), &[5]);
        assert!(page_slice(&items, 4, 2).is_empty());
        assert!(page_slice(&items, i64::MAX, 100).is_empty());
        assert!(page_slice(&items, 1, 0).is_empty());
    }
}
