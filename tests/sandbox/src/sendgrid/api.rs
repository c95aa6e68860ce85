//! The Web API v3 endpoints, plus sandbox-only endpoints.
//!
//! Every `/v3` request goes through [`begin`]: count it, authenticate it, apply the rate
//! limit, check the endpoint's scope. Choices, and where SendGrid's documentation is silent:
//!
//! - Errors use SendGrid's shape, `{"errors":[{"field":..,"message":..}]}`, `field` being
//!   `null` when no parameter is at fault (auth, scope, rate limit, unknown route).
//! - Auth: `Authorization: Bearer <key>` only (SendGrid's only scheme for v3; the scheme
//!   name is case-insensitive). Missing, malformed, unknown or revoked key → 401
//!   `authorization required`. A valid key without the endpoint's scope → 403
//!   `access forbidden`. `GET /v3/scopes` needs no particular scope.
//! - Rate limit: a fixed 60 s window per (key, endpoint), like SendGrid's per-endpoint
//!   limits. `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix
//!   epoch seconds when the window ends) on every response to an authenticated request,
//!   403/400/429 included; a 401 carries none, as there is no key to attribute it to. Over
//!   the limit → 429 `too many requests` with `Remaining: 0`. The check comes before the
//!   scope check, so refused requests count too.
//! - `on-behalf-of` (subuser impersonation): the sandbox account has no subusers, so the
//!   header is refused with a 400 naming it, rather than silently ignored.
//! - `GET /v3/teammates`: `limit` defaults to 500 (0 also means the default), above 500 → 400
//!   (`field: "limit"`); a non-integer `limit` or `offset` → 400. Teammates come owner
//!   first, then by username. The body's key is `result` (the schema and SendGrid's docs;
//!   the spec's *example* says `results`). A `Link` header in the form SendGrid sends
//!   (`<url>; rel="next"; title="2", <url>; rel="prev"; title="1", <url>; rel="last";
//!   title="N", <url>; rel="first"; title="1"`), always with the four relations: like the
//!   first page's `prev` observed from SendGrid (which points at page 1 itself), `next` on
//!   the last page points at the last page. A client stops when a page is shorter than
//!   `limit` or when `next` is the page it just read.
//! - `GET /v3/teammates/pending`: every invitation, no pagination (the spec declares no
//!   parameters), no `Link` header.
//! - `GET /v3/stats`: `start_date` required (`YYYY-MM-DD`), `end_date` defaults to today
//!   (UTC), `end_date` before `start_date` → 400; ranges over 3660 days → 400 (a sandbox
//!   limit). One entry per bucket, zeros included. `aggregated_by` = `day` (default),
//!   `week` (buckets start on Monday; a bucket's `date` is its first day inside the range)
//!   or `month` (same, from the 1st). `limit`/`offset` slice the list of buckets (no limit
//!   by default). Days are UTC days.
//! - `GET /v3/user/credits`: as of `end_date` of the config; `reset_frequency` "monthly".
//! - Unknown `/v3` routes → 404 `not found`, whatever the credentials.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, LINK};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use time::macros::format_description;
use time::Date;

use super::data::Teammate;
use super::state::{App, RateDecision};
use super::{
    SendGridMetrics, SCOPE_STATS_READ, SCOPE_TEAMMATES_READ, SCOPE_USER_CREDITS_READ,
    SCOPE_USER_USERNAME_READ,
};
use crate::faults::{FaultSwitch, FaultTarget};
use crate::rate::ceil_secs;
use crate::seeded::format_date;

const TEAMMATES_DEFAULT_LIMIT: u64 = 500;
const TEAMMATES_MAX_LIMIT: u64 = 500;
/// Longest `/v3/stats` range the sandbox renders in one response.
const MAX_STATS_DAYS: i64 = 3_660;

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// SendGrid's error body: `{"errors":[{"field":..,"message":..}]}`.
pub(crate) struct ApiError {
    status: StatusCode,
    field: Option<String>,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, field: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            field: field.map(str::to_string),
            message: message.into(),
        }
    }

    fn bad_request(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, Some(field), message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(
            self.status,
            &json!({ "errors": [{ "field": self.field, "message": self.message }] }),
        )
    }
}

fn unauthorized() -> Rejection {
    Rejection {
        error: ApiError::new(StatusCode::UNAUTHORIZED, None, "authorization required"),
        rate: None,
    }
}

/// A request refused before its handler runs, with rate-limit headers once it was evaluated.
struct Rejection {
    error: ApiError,
    rate: Option<RateHeaders>,
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

/// Rate-limit state to report on a response.
struct RateHeaders(RateDecision);

impl RateHeaders {
    fn apply(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.0.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(self.0.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(self.0.reset_epoch));
        response
    }
}

/// The key of `Authorization: Bearer <key>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let key = rest.trim();
    (!key.is_empty()).then_some(key)
}

fn count(app: &App, path: &str) {
    app.api_requests.fetch_add(1, Ordering::Relaxed);
    *app.by_path().entry(path.to_string()).or_default() += 1;
}

/// Counts, authenticates, rate-limits and checks the scope of one `/v3` request. The key's
/// scopes come back for `/v3/scopes`.
fn begin(
    app: &App,
    headers: &HeaderMap,
    endpoint: &'static str,
    scope: Option<&'static str>,
) -> Result<(RateHeaders, Vec<String>), Rejection> {
    count(app, endpoint);
    let Some(key) = bearer(headers) else {
        return Err(unauthorized());
    };
    let Some(scopes) = app.key_scopes(key) else {
        return Err(unauthorized());
    };
    let rate = RateHeaders(app.rate(key, endpoint));
    if !rate.0.allowed {
        app.rate_limited.fetch_add(1, Ordering::Relaxed);
        return Err(Rejection {
            error: ApiError::new(StatusCode::TOO_MANY_REQUESTS, None, "too many requests"),
            rate: Some(rate),
        });
    }
    if let Some(scope) = scope {
        if !scopes.iter().any(|s| s == scope) {
            return Err(Rejection {
                error: ApiError::new(StatusCode::FORBIDDEN, None, "access forbidden"),
                rate: Some(rate),
            });
        }
    }
    if headers.contains_key("on-behalf-of") {
        return Err(Rejection {
            error: ApiError::bad_request(
                "on-behalf-of",
                "the sandbox account has no subusers or customer accounts: on-behalf-of is not \
                 supported",
            ),
            rate: Some(rate),
        });
    }
    Ok((rate, scopes.to_vec()))
}

/// Runs `handler` after [`begin`] and puts the rate-limit headers on whatever it answers.
fn serve(
    app: &App,
    headers: &HeaderMap,
    endpoint: &'static str,
    scope: Option<&'static str>,
    handler: impl FnOnce(&[String]) -> Result<Response, ApiError>,
) -> Response {
    match begin(app, headers, endpoint, scope) {
        Err(rejection) => rejection.into_response(),
        Ok((rate, scopes)) => rate.apply(match handler(&scopes) {
            Ok(response) => response,
            Err(error) => error.into_response(),
        }),
    }
}

/// Query parameters in order.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<String>) -> Params {
        Params(
            url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `key`, `None` when absent or empty.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn integer(&self, key: &str) -> Result<Option<u64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
                ApiError::bad_request(key, format!("{key} must be a non-negative integer"))
            }),
        }
    }

    fn date(&self, key: &str) -> Result<Option<Date>, ApiError> {
        let format = format_description!("[year]-[month]-[day]");
        match self.get(key) {
            None => Ok(None),
            Some(v) => match Date::parse(v, &format) {
                Ok(date) if v.len() == 10 => Ok(Some(date)),
                _ => Err(ApiError::bad_request(
                    key,
                    format!("{key} must be a valid date in the format YYYY-MM-DD"),
                )),
            },
        }
    }
}

// ---------------------------------------------------------------- rendering

fn teammate_json(t: &Teammate) -> Value {
    json!({
        "username": t.username,
        "email": t.email,
        "first_name": t.first_name,
        "last_name": t.last_name,
        "user_type": t.user_type,
        "is_admin": t.is_admin(),
        "phone": t.phone,
        "website": t.website,
        "address": t.address,
        "address2": t.address2,
        "city": t.city,
        "state": t.state,
        "zip": t.zip,
        "country": t.country,
    })
}

/// SendGrid's pagination `Link` header: next, prev, last, first, each titled with its
/// 1-based page number; `next` and `prev` are clamped to the list (see the module docs).
fn link_header(base: &str, path: &str, limit: u64, offset: u64, total: u64) -> String {
    let last = if total == 0 {
        0
    } else {
        (total - 1) / limit * limit
    };
    let next = (offset + limit).min(last);
    let prev = offset.saturating_sub(limit);
    let link = |at: u64, rel: &str| {
        format!(
            "<{base}{path}?limit={limit}&offset={at}>; rel=\"{rel}\"; title=\"{}\"",
            at / limit + 1
        )
    };
    [
        link(next, "next"),
        link(prev, "prev"),
        link(last, "last"),
        link(0, "first"),
    ]
    .join(", ")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregation {
    Day,
    Week,
    Month,
}

fn bucket_start(aggregation: Aggregation, date: Date, start: Date) -> Date {
    let first = match aggregation {
        Aggregation::Day => date,
        Aggregation::Week => {
            date - time::Duration::days(i64::from(date.weekday().number_days_from_monday()))
        }
        Aggregation::Month => date.replace_day(1).unwrap_or(date),
    };
    first.max(start)
}

fn stats_body(app: &App, params: &Params) -> Result<Value, ApiError> {
    let start = params.date("start_date")?.ok_or_else(|| {
        ApiError::bad_request("start_date", "missing required argument: start_date")
    })?;
    let end = params.date("end_date")?.unwrap_or_else(crate::clock::today);
    if end < start {
        return Err(ApiError::bad_request(
            "end_date",
            "end_date must not be before start_date",
        ));
    }
    if (end - start).whole_days() >= MAX_STATS_DAYS {
        return Err(ApiError::bad_request(
            "start_date",
            format!("the sandbox serves at most {MAX_STATS_DAYS} days of stats per request"),
        ));
    }
    let aggregation = match params.get("aggregated_by") {
        None | Some("day") => Aggregation::Day,
        Some("week") => Aggregation::Week,
        Some("month") => Aggregation::Month,
        Some(_) => {
            return Err(ApiError::bad_request(
                "aggregated_by",
                "aggregated_by must be one of day, week or month",
            ))
        }
    };
    let limit = params.integer("limit")?.filter(|l| *l > 0);
    let offset = params.integer("offset")?.unwrap_or(0);

    let mut buckets: Vec<(Date, SendGridMetrics)> = Vec::new();
    let mut day = start;
    loop {
        let key = bucket_start(aggregation, day, start);
        let metrics = app.data.metrics_on(day);
        match buckets.last_mut() {
            Some((k, acc)) if *k == key => acc.add(&metrics),
            _ => buckets.push((key, metrics)),
        }
        match day.next_day() {
            Some(next) if day < end => day = next,
            _ => break,
        }
    }
    let entries: Vec<Value> = buckets
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX)))
        .map(|(date, metrics)| {
            json!({
                "date": format_date(*date),
                "stats": [{ "metrics": metrics }],
            })
        })
        .collect();
    Ok(Value::Array(entries))
}

// ---------------------------------------------------------------- handlers

pub(crate) async fn scopes(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    serve(&app, &headers, "/v3/scopes", None, |scopes| {
        Ok(json_response(StatusCode::OK, &json!({ "scopes": scopes })))
    })
}

pub(crate) async fn teammates(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let path = "/v3/teammates";
    serve(&app, &headers, path, Some(SCOPE_TEAMMATES_READ), |_| {
        let params = Params::parse(query);
        let limit = match params.integer("limit")? {
            None | Some(0) => TEAMMATES_DEFAULT_LIMIT,
            Some(l) if l > TEAMMATES_MAX_LIMIT => {
                return Err(ApiError::bad_request(
                    "limit",
                    format!("limit must be less than or equal to {TEAMMATES_MAX_LIMIT}"),
                ))
            }
            Some(l) => l,
        };
        let offset = params.integer("offset")?.unwrap_or(0);
        let all = &app.data.teammates;
        let result: Vec<Value> = all
            .iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .map(teammate_json)
            .collect();
        let mut response = json_response(StatusCode::OK, &json!({ "result": result }));
        let link = link_header(&app.base_url, path, limit, offset, all.len() as u64);
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(LINK, value);
        }
        Ok(response)
    })
}

pub(crate) async fn pending_teammates(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    serve(
        &app,
        &headers,
        "/v3/teammates/pending",
        Some(SCOPE_TEAMMATES_READ),
        |_| {
            let result: Vec<Value> = app
                .data
                .pending
                .iter()
                .map(|i| {
                    json!({
                        "email": i.email,
                        "scopes": i.scopes,
                        "is_admin": i.is_admin,
                        "token": i.token,
                        "expiration_date": i.expiration_date,
                    })
                })
                .collect();
            Ok(json_response(StatusCode::OK, &json!({ "result": result })))
        },
    )
}

pub(crate) async fn stats(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    serve(&app, &headers, "/v3/stats", Some(SCOPE_STATS_READ), |_| {
        let body = stats_body(&app, &Params::parse(query))?;
        Ok(json_response(StatusCode::OK, &body))
    })
}

pub(crate) async fn credits(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    serve(
        &app,
        &headers,
        "/v3/user/credits",
        Some(SCOPE_USER_CREDITS_READ),
        |_| {
            let c = &app.data.credits;
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "remain": c.remain,
                    "total": c.total,
                    "overage": c.overage,
                    "used": c.used,
                    "last_reset": c.last_reset,
                    "next_reset": c.next_reset,
                    "reset_frequency": "monthly",
                }),
            ))
        },
    )
}

pub(crate) async fn username(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    serve(
        &app,
        &headers,
        "/v3/user/username",
        Some(SCOPE_USER_USERNAME_READ),
        |_| {
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "username": app.data.owner().username,
                    "user_id": app.data.user_id,
                }),
            ))
        },
    )
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
    let by_path = app.by_path().clone();
    json_response(
        StatusCode::OK,
        &json!({
            "api_requests": app.api_requests.load(Ordering::Relaxed),
            "rate_limited": app.rate_limited.load(Ordering::Relaxed),
            "faults_injected": app.faults.injected(),
            "by_path": by_path,
        }),
    )
}

/// `POST /_sandbox/revoke-key` with `{"key": "SG...."}`: 204, or 404 for a key the sandbox
/// never accepted, 400 for a body without a `key` string.
pub(crate) async fn sandbox_revoke_key(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let key = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("key").and_then(Value::as_str).map(str::to_string));
    match key {
        None => json_response(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "the body must be JSON like {\"key\": \"SG....\"}" }),
        ),
        Some(key) if app.revoke_key(&key) => StatusCode::NO_CONTENT.into_response(),
        Some(_) => json_response(
            StatusCode::NOT_FOUND,
            &json!({ "error": "the sandbox does not know that key" }),
        ),
    }
}

impl FaultTarget for App {
    fn faults(&self) -> &FaultSwitch {
        &self.faults
    }

    fn count_answered(&self, path: &str, status: StatusCode) {
        count(self, path);
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn too_many_requests(&self, reset_secs: u64) -> Response {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let rate = RateHeaders(RateDecision {
            allowed: false,
            limit: self.config.rate_limit_per_minute,
            remaining: 0,
            // Rounded up, like the window's own reset.
            reset_epoch: ceil_secs(epoch) + reset_secs,
        });
        rate.apply(
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, None, "too many requests").into_response(),
        )
    }

    fn internal_error(&self) -> Response {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "internal server error",
        )
        .into_response()
    }

    fn unauthorized(&self) -> Response {
        unauthorized().into_response()
    }

    /// SendGrid has no OAuth: API keys keep working after a hit.
    fn expire_access_tokens(&self) {}
}

pub(crate) async fn not_found(State(app): State<Arc<App>>, uri: Uri) -> Response {
    if uri.path().starts_with("/v3/") {
        count(&app, uri.path());
    }
    ApiError::new(StatusCode::NOT_FOUND, None, "not found").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(link: &str) -> Vec<(String, u64, u64)> {
        link.split(", ")
            .map(|part| {
                let offset = part
                    .split("offset=")
                    .nth(1)
                    .and_then(|s| s.split('>').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u64::MAX);
                let rel = part
                    .split("rel=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .unwrap_or_default()
                    .to_string();
                let title = part
                    .split("title=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                (rel, offset, title)
            })
            .collect()
    }

    #[test]
    fn link_header_has_sendgrids_four_relations() {
        let link = link_header("http://h", "/v3/teammates", 5, 0, 12);
        assert!(link
            .starts_with("<http://h/v3/teammates?limit=5&offset=5>; rel=\"next\"; title=\"2\", "));
        assert_eq!(
            offsets(&link),
            vec![
                ("next".into(), 5, 2),
                ("prev".into(), 0, 1),
                ("last".into(), 10, 3),
                ("first".into(), 0, 1)
            ]
        );
        let last = offsets(&link_header("http://h", "/v3/teammates", 5, 10, 12));
        assert_eq!(
            last[0],
            ("next".into(), 10, 3),
            "next on the last page is itself"
        );
        assert_eq!(last[1], ("prev".into(), 5, 2));
        let exact = offsets(&link_header("http://h", "/v3/teammates", 5, 5, 10));
        assert_eq!(exact[0], ("next".into(), 5, 2));
        assert_eq!(exact[2], ("last".into(), 5, 2));
        let beyond = offsets(&link_header("http://h", "/v3/teammates", 5, 50, 10));
        assert_eq!(beyond[0].1, 5);
    }

    #[test]
    fn bearer_forms() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_none());
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer SG.a.b"));
        assert_eq!(bearer(&h), Some("SG.a.b"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer  SG.a.b "));
        assert_eq!(bearer(&h), Some("SG.a.b"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Token SG.a.b"));
        assert!(bearer(&h).is_none());
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(bearer(&h).is_none());
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first_inside_the_range() {
        use time::macros::date;
        let start = date!(2026 - 03 - 04); // a Wednesday
        assert_eq!(
            bucket_start(Aggregation::Week, date!(2026 - 03 - 06), start),
            start
        );
        assert_eq!(
            bucket_start(Aggregation::Week, date!(2026 - 03 - 11), start),
            date!(2026 - 03 - 09)
        );
        assert_eq!(
            bucket_start(Aggregation::Month, date!(2026 - 04 - 20), start),
            date!(2026 - 04 - 01)
        );
        assert_eq!(
            bucket_start(Aggregation::Month, date!(2026 - 03 - 20), start),
            start
        );
    }
}
