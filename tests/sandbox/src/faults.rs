//! Fault switches, the same in every sandbox: the vendor misbehaving the ways real
//! vendors do, on demand, so a client's recovery can be tested against exact numbers.
//!
//! | route | what |
//! |---|---|
//! | `POST /_sandbox/faults` | arm one fault (JSON [`Fault`]); it replaces any armed one → 204 |
//! | `DELETE /_sandbox/faults` | disarm → 204 |
//! | `GET /_sandbox/faults` | [`FaultStats`]: the armed fault and what was injected |
//!
//! ```json
//! {"kind": "rate_limit_storm", "count": 5, "every": 1, "after": 3, "reset_secs": 1}
//! ```
//!
//! - `rate_limit_storm`: 429 with the vendor's exact body and headers (PagerDuty
//!   `ratelimit-*` with `reset_secs`, or with `reset_secs: 0` a bare 429 without headers
//!   or body, as PagerDuty occasionally sends; SendGrid `X-RateLimit-*` with the reset
//!   epoch `reset_secs` ahead; PandaDoc no header, the body hint "Expected available in
//!   N seconds", or with `reset_secs: 0` the spec's `{"type":"throttled",...}` without one).
//! - `server_errors`: 500 with the vendor's error body, 502 and 503 with a load
//!   balancer's HTML page, in turn.
//! - `slow_pages`: the request is answered normally after `delay_ms`.
//! - `malformed_json`: a 2xx answer cut in half (still 200, still `application/json`);
//!   other answers pass unchanged.
//! - `unauthorized`: every access token issued so far stops working (as if revoked) and
//!   the hit request answers the vendor's 401; an OAuth client recovers by refreshing,
//!   an API key answers 401 only on hit requests.
//!
//! Faults apply to the vendor API routes only (never OAuth or `/_sandbox`). The first
//! `after` API requests pass untouched, then every `every`-th one is hit until `count`
//! hits, when the fault disarms itself. Requests a fault answers by itself still count
//! in the sandbox's request statistics (and 429s in its rate-limited count).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    RateLimitStorm,
    ServerErrors,
    SlowPages,
    MalformedJson,
    Unauthorized,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::RateLimitStorm => "rate_limit_storm",
            FaultKind::ServerErrors => "server_errors",
            FaultKind::SlowPages => "slow_pages",
            FaultKind::MalformedJson => "malformed_json",
            FaultKind::Unauthorized => "unauthorized",
        }
    }
}

fn one() -> u32 {
    1
}

fn one_second() -> u64 {
    1
}

fn two_seconds() -> u64 {
    2_000
}

/// One armed fault (see the module documentation).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub kind: FaultKind,
    /// Hits before the fault disarms itself (at least 1; default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Every `every`-th API request after `after` is hit (at least 1; default 1).
    #[serde(default = "one")]
    pub every: u32,
    /// API requests that pass untouched before the first hit (default 0).
    #[serde(default)]
    pub after: u32,
    /// `slow_pages`: how long each hit request is held (default 2000 ms).
    #[serde(default = "two_seconds")]
    pub delay_ms: u64,
    /// `rate_limit_storm`: the wait the 429 announces (default 1 s; 0 = none).
    #[serde(default = "one_second")]
    pub reset_secs: u64,
}

impl Fault {
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            count: 1,
            every: 1,
            after: 0,
            delay_ms: two_seconds(),
            reset_secs: one_second(),
        }
    }

    pub fn count(mut self, count: u32) -> Fault {
        self.count = count;
        self
    }

    pub fn every(mut self, every: u32) -> Fault {
        self.every = every;
        self
    }

    pub fn after(mut self, after: u32) -> Fault {
        self.after = after;
        self
    }

    pub fn delay_ms(mut self, delay_ms: u64) -> Fault {
        self.delay_ms = delay_ms;
        self
    }

    pub fn reset_secs(mut self, reset_secs: u64) -> Fault {
        self.reset_secs = reset_secs;
        self
    }

    fn check(&self) -> Result<(), String> {
        if self.count == 0 || self.every == 0 {
            return Err("count and every must be at least 1".into());
        }
        if self.delay_ms > 600_000 || self.reset_secs > 3_600 {
            return Err("delay_ms must be at most 600000 and reset_secs at most 3600".into());
        }
        Ok(())
    }
}

/// What the fault switch did, served at `GET /_sandbox/faults`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FaultStats {
    /// The armed fault, if any.
    pub active: Option<Fault>,
    /// API requests hit by a fault since the sandbox started.
    pub injected: u64,
    /// The same per kind (`rate_limit_storm`, ...).
    pub by_kind: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Armed {
    fault: Option<Fault>,
    /// API requests seen since it was armed.
    seen: u64,
    hits: u32,
}

/// One sandbox's fault switch (the state behind `/_sandbox/faults`).
#[derive(Default)]
pub struct FaultSwitch {
    armed: Mutex<Armed>,
    injected: AtomicU64,
    by_kind: Mutex<BTreeMap<String, u64>>,
}

/// One hit: the fault and its index (0-based) within the armed fault.
pub(crate) struct Hit {
    pub fault: Fault,
    pub index: u32,
}

impl FaultSwitch {
    fn armed(&self) -> MutexGuard<'_, Armed> {
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn arm(&self, fault: Fault) -> Result<(), String> {
        fault.check()?;
        *self.armed() = Armed {
            fault: Some(fault),
            seen: 0,
            hits: 0,
        };
        Ok(())
    }

    pub fn clear(&self) {
        *self.armed() = Armed::default();
    }

    /// Called once per API request: the fault to inject into it, if any.
    fn next(&self) -> Option<Hit> {
        let hit = {
            let mut armed = self.armed();
            let fault = armed.fault.clone()?;
            armed.seen += 1;
            let past = armed.seen.checked_sub(u64::from(fault.after) + 1)?;
            if past % u64::from(fault.every) != 0 {
                return None;
            }
            let index = armed.hits;
            armed.hits += 1;
            if armed.hits >= fault.count {
                armed.fault = None;
            }
            Hit { fault, index }
        };
        self.injected.fetch_add(1, Ordering::Relaxed);
        *self
            .by_kind
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(hit.fault.kind.name().to_string())
            .or_default() += 1;
        Some(hit)
    }

    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> FaultStats {
        FaultStats {
            active: self.armed().fault.clone(),
            injected: self.injected(),
            by_kind: self
                .by_kind
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// What a sandbox provides for faults: its switch and the vendor's own responses.
pub(crate) trait FaultTarget: Send + Sync + 'static {
    fn faults(&self) -> &FaultSwitch;
    /// Counts an API request a fault answers by itself (`status` is what it answers).
    fn count_answered(&self, path: &str, status: StatusCode);
    /// The vendor's 429, announcing `reset_secs` (0: the vendor's form without a hint).
    fn too_many_requests(&self, reset_secs: u64) -> Response;
    /// The vendor's own 500 body.
    fn internal_error(&self) -> Response;
    /// The vendor's 401 for a refused credential.
    fn unauthorized(&self) -> Response;
    /// Every access token issued so far stops working.
    fn expire_access_tokens(&self);
}

/// A load balancer's page for 502 / 503, as vendors' edges send them.
fn gateway_page(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let mut response = (
        status,
        format!(
            "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} \
             {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
        ),
    )
        .into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

/// Middleware on a sandbox's API routes: injects the armed fault.
pub(crate) async fn inject<T: FaultTarget>(
    State(app): State<Arc<T>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(hit) = app.faults().next() else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_string();
    let fault = hit.fault;
    let answered = |response: Response| {
        app.count_answered(&path, response.status());
        response
    };
    match fault.kind {
        FaultKind::SlowPages => {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
            next.run(request).await
        }
        FaultKind::MalformedJson => {
            let response = next.run(request).await;
            if !response.status().is_success() {
                return response;
            }
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let cut: Bytes = bytes.slice(..bytes.len() / 2);
            parts.headers.remove(CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(cut))
        }
        FaultKind::RateLimitStorm => answered(app.too_many_requests(fault.reset_secs)),
        FaultKind::ServerErrors => answered(match hit.index % 3 {
            0 => app.internal_error(),
            1 => gateway_page(StatusCode::BAD_GATEWAY),
            _ => gateway_page(StatusCode::SERVICE_UNAVAILABLE),
        }),
        FaultKind::Unauthorized => {
            app.expire_access_tokens();
            answered(app.unauthorized())
        }
    }
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn bad_request(message: String) -> Response {
    let mut response = (
        StatusCode::BAD_REQUEST,
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `POST /_sandbox/faults`.
pub(crate) async fn arm<T: FaultTarget>(State(app): State<Arc<T>>, body: Bytes) -> Response {
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return bad_request(format!(
                "the body must be a fault like {{\"kind\":\"rate_limit_storm\",\"count\":3}} \
                 (kinds: rate_limit_storm, server_errors, slow_pages, malformed_json, \
                 unauthorized): {e}"
            ))
        }
    };
    match app.faults().arm(fault) {
        Ok(()) => no_content(),
        Err(e) => bad_request(e),
    }
}

/// `DELETE /_sandbox/faults`.
pub(crate) async fn clear<T: FaultTarget>(State(app): State<Arc<T>>) -> Response {
    app.faults().clear();
    no_content()
}

/// `GET /_sandbox/faults`.
pub(crate) async fn show<T: FaultTarget>(State(app): State<Arc<T>>) -> Response {
    let mut response = serde_json::to_string(&app.faults().stats())
        .unwrap_or_default()
        .into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(switch: &FaultSwitch, requests: usize) -> Vec<bool> {
        (0..requests).map(|_| switch.next().is_some()).collect()
    }

    #[test]
    fn after_every_and_count_pick_the_hit_requests_and_the_fault_disarms_itself() {
        let switch = FaultSwitch::default();
        switch
            .arm(
                Fault::new(FaultKind::ServerErrors)
                    .after(2)
                    .every(3)
                    .count(2),
            )
            .unwrap();
        assert_eq!(
            hits(&switch, 10),
            [false, false, true, false, false, true, false, false, false, false]
        );
        let stats = switch.stats();
        assert_eq!(stats.active, None);
        assert_eq!(stats.injected, 2);
        assert_eq!(stats.by_kind["server_errors"], 2);
    }

    #[test]
    fn clearing_disarms_and_bad_faults_are_refused() {
        let switch = FaultSwitch::default();
        switch
            .arm(Fault::new(FaultKind::SlowPages).count(5))
            .unwrap();
        switch.clear();
        assert_eq!(hits(&switch, 3), [false, false, false]);
        assert!(switch
            .arm(Fault::new(FaultKind::SlowPages).count(0))
            .is_err());
        assert!(switch
            .arm(Fault::new(FaultKind::SlowPages).every(0))
            .is_err());
    }

    #[test]
    fn faults_read_from_json_with_defaults() {
        let f: Fault = serde_json::from_str(r#"{"kind":"malformed_json"}"#).unwrap();
        assert_eq!(f, Fault::new(FaultKind::MalformedJson));
        let f: Fault =
            serde_json::from_str(r#"{"kind":"rate_limit_storm","count":4,"reset_secs":0}"#)
                .unwrap();
        assert_eq!((f.count, f.reset_secs), (4, 0));
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"meteor"}"#).is_err());
        assert!(serde_json::from_str::<Fault>(r#"{"kind":"slow_pages","dleay_ms":1}"#).is_err());
    }
}
