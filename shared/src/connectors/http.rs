//! The request loop every connector uses: sends with the provider's auth and Accept
//! headers, keeps to the provider's rate limit, and retries 429, 5xx, timeouts and
//! truncated JSON with exponential backoff and jitter (backon), waiting at least as
//! long as the vendor's reset header (or PandaDoc's body hint) says.
//!
//! # Keeping to a vendor's limit: no 429 by design
//!
//! One `VendorHttp` serves one connection's sync, because vendors limit per token or
//! user, which is what one connection is. Its activity windows are fetched several at
//! once (`SYNC_PARALLEL_WINDOWS`), so up to that many requests are in flight. Two
//! mechanisms, chosen by the catalog's [`RateWindow`]:
//!
//! **Fixed windows the vendor reports** (PagerDuty's `ratelimit-*`, per credential;
//! SendGrid's `X-RateLimit-*`, per endpoint). A GCRA budget (governor, from the
//! catalog, [`PACING_MARGIN`] slower than the vendor's number, burst = the vendor's
//! window) paces; it cannot know where the vendor's window starts, so it is not what
//! prevents 429s. Those came from two gaps between the client's picture and the
//! vendor's window:
//!
//! - *Requests in flight.* The client used to stop when a response said
//!   `remaining 0`; the other windows' requests already sent by then were each refused
//!   (two per exhausted window with three windows in flight: the "three 429s" a
//!   PagerDuty bench rerun drew, over two window boundaries).
//! - *A window the client did not open* (a client started mid-window, after another
//!   run or a retry used part of it): the GCRA's full burst does not fit in what is
//!   left, and a burst at the end of one window plus one at the start of the next
//!   overruns whatever the client assumes about the phase.
//!
//! So the vendor's own count is mirrored ([`HeaderWindow`]): a request goes out only
//! while `remaining − in flight > 0`, `remaining` being the least the vendor reported
//! for its current window (it only falls within a window, and the least report comes
//! from the latest-admitted request read, so every request admitted after it is still
//! in flight: the difference never overstates what is left, whatever order responses
//! are read in). When it reaches 0, requests wait for the window's reset, read from
//! the same response (PagerDuty's seconds rounded up, counted from when the response
//! arrived, so never early; SendGrid's epoch plus [`EPOCH_SKEW_MARGIN`] for clock
//! skew). When nothing is known of the current window (the first request, or the
//! last known window is over), one request goes alone and its response tells the
//! rest what is left: a client started mid-window adapts after one request. Nothing
//! here depends on timing, only on the vendor's numbers.
//!
//! **A sliding window, no header** (PandaDoc, per operation). Each budget keeps a log
//! of its requests of the last [`SLIDING_WINDOW`] (the vendor's 60 s plus a second for
//! latency jitter) and sends while fewer than the vendor's number are in it: a whole
//! window's worth at once, then one more as each leaves the log, which is the least
//! time a sliding window allows. A GCRA cannot do this: its burst refills
//! continuously, so after a full burst it would send again long before the first
//! request leaves the vendor's window.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::domain::catalog::{Provider, RateClass, RateWindow};
use crate::error::{Error, Result};

/// GCRA budgets pace this much slower than the vendor's number (1 %): a request that
/// reaches the vendor a little late or early then never lands in a full window.
pub const PACING_MARGIN: f64 = 1.01;
/// A sliding-window budget's log spans the vendor's 60 s plus this: requests reach
/// the vendor up to this much later than each other than they left, and still never
/// make more than its number in any 60 s.
pub const SLIDING_WINDOW: Duration = Duration::from_secs(61);
/// A reset given as an epoch (SendGrid) is read against this machine's clock: waited
/// this much longer, so a clock up to a second ahead of the vendor's is not early.
pub const EPOCH_SKEW_MARGIN: Duration = Duration::from_secs(1);
/// Two reports of one window's reset differ by less than the header's one-second
/// resolution plus latency; a report this much later than the known reset is of the
/// vendor's next window (windows are a minute long at PagerDuty and SendGrid).
const SAME_WINDOW: Duration = Duration::from_secs(2);
/// A 200 whose body is not JSON (cut off by a proxy, a vendor hiccup) is asked for
/// again this many times before the call fails as a vendor error.
pub const MALFORMED_RETRIES: usize = 3;

/// Bodies from this size on are parsed on the blocking pool: a sync's pages are
/// fetched several at once within one task, and parsing them there would keep every
/// page's parsing on one core.
const PARSE_APART_FROM_BYTES: usize = 32 * 1024;

/// A response body as `T`: on the blocking pool when it is large (above).
async fn parse_json<T: DeserializeOwned + Send + 'static>(
    body: Vec<u8>,
) -> std::result::Result<T, serde_json::Error> {
    if body.len() < PARSE_APART_FROM_BYTES {
        return serde_json::from_slice(&body);
    }
    match tokio::task::spawn_blocking(move || serde_json::from_slice(&body)).await {
        Ok(parsed) => parsed,
        // The pool is shutting down or the parse panicked: the panic is not ours to hide.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(serde::de::Error::custom("the runtime is shutting down")),
    }
}

/// One failed attempt, classified for the retry policy.
#[derive(Debug)]
enum Attempt {
    /// 429 / 5xx / timeout / truncated body: retry, after `wait` if the vendor said.
    Retry {
        wait: Option<Duration>,
        error: Error,
    },
    Fatal(Error),
}

/// A poisoned lock only means a panic elsewhere; the state is still usable.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The log of a sliding-window budget: when its last requests went out.
struct SlidingLog {
    limit: usize,
    window: Duration,
    sent: std::sync::Mutex<VecDeque<Instant>>,
}

impl SlidingLog {
    fn new(limit: u32, window: Duration) -> SlidingLog {
        SlidingLog {
            limit: limit.max(1) as usize,
            window,
            sent: std::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// Takes a slot at `now` if fewer than `limit` requests went out in the window
    /// before it; otherwise the instant the oldest of them leaves the window.
    fn take(&self, now: Instant) -> std::result::Result<(), Instant> {
        let mut sent = lock(&self.sent);
        while sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            sent.pop_front();
        }
        if sent.len() < self.limit {
            sent.push_back(now);
            Ok(())
        } else {
            Err(sent.front().map_or(now, |t| *t + self.window))
        }
    }
}

enum Pace {
    /// GCRA: `per_minute` a minute, `burst` back to back.
    Gcra(DefaultDirectRateLimiter),
    /// At most `per_minute` in any [`SLIDING_WINDOW`].
    Sliding(SlidingLog),
}

/// The client's budget for one class of paths (or, without a class, every other path).
struct Budget {
    class: Option<RateClass>,
    pace: Pace,
}

impl Budget {
    fn new(class: Option<RateClass>, per_minute: u32, burst: u32) -> Budget {
        let per_minute = per_minute.max(1);
        let period = Duration::from_secs_f64(60.0 * PACING_MARGIN / f64::from(per_minute));
        let burst = NonZeroU32::new(burst.clamp(1, per_minute)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Budget {
            class,
            pace: Pace::Gcra(DefaultDirectRateLimiter::direct(quota)),
        }
    }

    fn sliding(class: Option<RateClass>, per_minute: u32) -> Budget {
        Budget {
            class,
            pace: Pace::Sliding(SlidingLog::new(per_minute, SLIDING_WINDOW)),
        }
    }
}

/// What the vendor's headers said about one of its fixed windows (one per credential,
/// or per endpoint), and the requests sent under it and not answered yet.
#[derive(Debug, Default)]
struct HeaderWindow {
    in_flight: u32,
    /// The window last reported, if any.
    known: Option<Reported>,
}

#[derive(Debug, Clone, Copy)]
struct Reported {
    /// The least `remaining` the vendor reported for this window.
    remaining: i64,
    /// When the window surely ends (the earliest such report).
    ends: Instant,
}

/// What a request may do now under its [`HeaderWindow`].
#[derive(Debug, PartialEq, Eq)]
enum Gate {
    /// Go (counted in flight).
    Go,
    /// The window is spent: wait for its end.
    Until(Instant),
    /// Nothing is known of the current window and a request is out to find out.
    Answer,
}

impl HeaderWindow {
    fn gate(&mut self, now: Instant) -> Gate {
        let go = match self.known {
            Some(k) if now < k.ends => {
                if k.remaining - i64::from(self.in_flight) > 0 {
                    true
                } else {
                    return Gate::Until(k.ends);
                }
            }
            // The first request, or the known window is over: one request at a time
            // until a response tells what is left of the current one.
            _ => self.in_flight == 0,
        };
        if go {
            self.in_flight += 1;
            Gate::Go
        } else {
            Gate::Answer
        }
    }

    /// A response read (or a request given up): no longer in flight; `report` is what
    /// its headers said, `(remaining, ends)`.
    fn answered(&mut self, report: Option<(i64, Instant)>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some((remaining, ends)) = report else {
            return;
        };
        match &mut self.known {
            Some(k) if ends <= k.ends + SAME_WINDOW => {
                if ends + SAME_WINDOW < k.ends {
                    // A late answer from an earlier window.
                    return;
                }
                k.remaining = k.remaining.min(remaining);
                k.ends = k.ends.min(ends);
            }
            // The first report, or one of a later window.
            _ => self.known = Some(Reported { remaining, ends }),
        }
    }
}

/// A request counted in flight under a [`HeaderWindow`]; dropped without an answer
/// (an error, a timeout, a cancelled sync), it stops counting.
struct InFlight<'a> {
    http: &'a VendorHttp,
    key: Option<String>,
}

impl InFlight<'_> {
    fn answered(mut self, report: Option<(i64, Instant)>) {
        if let Some(key) = self.key.take() {
            self.http.window_answered(&key, report);
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.http.window_answered(&key, None);
        }
    }
}

/// What one `VendorHttp` did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// Requests sent (retries included).
    pub requests: u64,
    /// Attempts that were retried (429, 5xx, timeouts, truncated bodies).
    pub retries: u64,
    /// Responses that were 429.
    pub rate_limited: u64,
    /// Time spent waiting for the budget or a vendor's reset before sending.
    pub waited_ms: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    waited_ms: AtomicU64,
}

pub struct VendorHttp {
    provider_id: String,
    provider_name: String,
    api_base: String,
    accept: Option<String>,
    client: reqwest::Client,
    authorization: SecretString,
    /// How the vendor counts (which of the mechanisms above applies).
    rate_window: RateWindow,
    /// The vendor's fixed windows as its headers report them: one (key "") per
    /// credential, or one per path.
    windows: std::sync::Mutex<HashMap<String, HeaderWindow>>,
    /// Signalled whenever a request stops being in flight.
    window_news: Notify,
    /// The classes' budgets first, the provider's default budget last.
    budgets: Vec<Budget>,
    clock: DefaultClock,
    counters: Counters,
    max_retries: usize,
}

/// When the vendor's current window ends, as of a response that arrived at `now`:
/// PagerDuty's `ratelimit-reset` (whole seconds, rounded up by the vendor), SendGrid's
/// `X-RateLimit-Reset` (an epoch, plus [`EPOCH_SKEW_MARGIN`]), with `remaining`.
/// None unless the response carries both.
fn window_report(headers: &HeaderMap, now: Instant, now_epoch: i64) -> Option<(i64, Instant)> {
    let remaining = remaining(headers)?;
    let ends = if headers.contains_key("ratelimit-reset") {
        reset_after(headers, now_epoch)?
    } else if headers.contains_key("x-ratelimit-reset") {
        reset_after(headers, now_epoch)? + EPOCH_SKEW_MARGIN
    } else {
        return None;
    };
    Some((remaining, now + ends))
}

/// Seconds until the budget resets, from PagerDuty's `ratelimit-reset` (seconds) or
/// SendGrid's `X-RateLimit-Reset` (epoch seconds).
pub fn reset_after(headers: &HeaderMap, now_epoch: i64) -> Option<Duration> {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    if let Some(secs) = value("ratelimit-reset") {
        return Some(Duration::from_secs(secs.max(0) as u64));
    }
    if let Some(epoch) = value("x-ratelimit-reset") {
        // Small values are seconds, not an epoch (be liberal in what we accept).
        let secs = if epoch > 1_000_000_000 {
            epoch - now_epoch
        } else {
            epoch
        };
        return Some(Duration::from_secs(secs.max(0) as u64));
    }
    value("retry-after").map(|s| Duration::from_secs(s.max(0) as u64))
}

fn remaining(headers: &HeaderMap) -> Option<i64> {
    ["ratelimit-remaining", "x-ratelimit-remaining"]
        .iter()
        .find_map(|n| headers.get(*n))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A body that is not JSON at all (cut off, HTML from a proxy), as opposed to JSON
/// of an unexpected shape, which asking again would not change.
fn is_malformed(e: &serde_json::Error) -> bool {
    matches!(
        e.classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    )
}

impl VendorHttp {
    pub fn new(provider: &Provider, client: reqwest::Client, authorization: SecretString) -> Self {
        let budget = |class: Option<RateClass>, per_minute: u32, burst: u32| {
            if provider.rate_window == RateWindow::Sliding {
                Budget::sliding(class, per_minute)
            } else {
                Budget::new(class, per_minute, burst)
            }
        };
        let mut budgets: Vec<Budget> = provider
            .rate_classes
            .iter()
            .map(|c| budget(Some(c.clone()), c.per_minute, c.burst))
            .collect();
        budgets.push(budget(
            None,
            provider.rate_limit_per_minute,
            provider.rate_burst,
        ));
        VendorHttp {
            provider_id: provider.id.clone(),
            provider_name: provider.name.clone(),
            api_base: provider.api_base.trim_end_matches('/').to_string(),
            accept: provider.accept.clone(),
            client,
            authorization,
            rate_window: provider.rate_window,
            windows: std::sync::Mutex::new(HashMap::new()),
            window_news: Notify::new(),
            budgets,
            clock: DefaultClock::default(),
            counters: Counters::default(),
            max_retries: 8,
        }
    }

    pub fn provider_id(&self) -> &str {
        &self.provider_id
    }

    pub fn provider_name(&self) -> &str {
        &self.provider_name
    }

    pub fn stats(&self) -> HttpStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let c = &self.counters;
        HttpStats {
            requests: get(&c.requests),
            retries: get(&c.retries),
            rate_limited: get(&c.rate_limited),
            waited_ms: get(&c.waited_ms),
        }
    }

    /// Waits until `path`'s budget allows one more request, and takes it.
    async fn take_budget(&self, path: &str) {
        // The default budget (no class) comes last and takes every path.
        let Some(budget) = self
            .budgets
            .iter()
            .find(|b| b.class.as_ref().is_none_or(|c| c.matches(path)))
        else {
            return;
        };
        match &budget.pace {
            Pace::Gcra(limiter) => {
                while let Err(not_until) = limiter.check() {
                    let wait = not_until.wait_time_from(self.clock.now());
                    self.waited(wait);
                    tokio::time::sleep(wait).await;
                }
            }
            Pace::Sliding(log) => {
                while let Err(at) = log.take(Instant::now()) {
                    self.waited(at.saturating_duration_since(Instant::now()));
                    tokio::time::sleep_until(at).await;
                }
            }
        }
    }

    fn waited(&self, wait: Duration) {
        self.counters
            .waited_ms
            .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
    }

    /// The key of `path`'s window in `windows`: None where the vendor reports none.
    fn window_key(&self, path: &str) -> Option<String> {
        match self.rate_window {
            RateWindow::Fixed => Some(String::new()),
            RateWindow::FixedPerEndpoint => {
                Some(path.split('?').next().unwrap_or_default().to_string())
            }
            RateWindow::Sliding => None,
        }
    }

    /// Waits until the vendor's window for `path` has room for one more request
    /// beside those in flight (see the module's documentation), and counts it in
    /// flight.
    async fn enter_window(&self, path: &str) -> InFlight<'_> {
        let Some(key) = self.window_key(path) else {
            return InFlight {
                http: self,
                key: None,
            };
        };
        loop {
            // Registered before the state is read, so an answer in between wakes it.
            let news = self.window_news.notified();
            tokio::pin!(news);
            news.as_mut().enable();
            let now = Instant::now();
            let gate = lock(&self.windows)
                .entry(key.clone())
                .or_default()
                .gate(now);
            match gate {
                Gate::Go => {
                    return InFlight {
                        http: self,
                        key: Some(key),
                    }
                }
                Gate::Until(at) => {
                    self.waited(at.saturating_duration_since(now));
                    tokio::time::sleep_until(at).await;
                }
                Gate::Answer => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), news).await;
                    self.waited(now.elapsed());
                }
            }
        }
    }

    fn window_answered(&self, key: &str, report: Option<(i64, Instant)>) {
        if let Some(w) = lock(&self.windows).get_mut(key) {
            w.answered(report);
        }
        self.window_news.notify_waiters();
    }

    /// GET `path` (relative to the API base) with `query`, decoded as JSON.
    pub async fn get_json<T: DeserializeOwned + Send + 'static>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let malformed = AtomicUsize::new(0);
        let attempt = || async {
            let body = self.attempt(path, query).await?;
            parse_json::<T>(body).await.map_err(|e| {
                if is_malformed(&e) && malformed.fetch_add(1, Ordering::Relaxed) < MALFORMED_RETRIES
                {
                    Attempt::Retry {
                        wait: None,
                        error: Error::vendor_source(
                            &self.provider_id,
                            format!("a malformed response from {path}"),
                            e,
                        ),
                    }
                } else {
                    Attempt::Fatal(Error::vendor_source(
                        &self.provider_id,
                        format!("unexpected response shape from {path}"),
                        e,
                    ))
                }
            })
        };
        let result = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(60))
                    .with_max_times(self.max_retries)
                    .with_jitter(),
            )
            .when(|a| matches!(a, Attempt::Retry { .. }))
            .adjust(|a, backoff| match a {
                Attempt::Retry { wait: Some(w), .. } => Some(backoff.map_or(*w, |b| b.max(*w))),
                _ => backoff,
            })
            .notify(|a, dur| {
                if let Attempt::Retry { error, .. } = a {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(provider = %self.provider_id, path, wait_ms = dur.as_millis() as u64, error = %error, "vendor call failed, retrying");
                }
            })
            .await;
        match result {
            Ok(value) => Ok(value),
            Err(Attempt::Retry { error, .. }) | Err(Attempt::Fatal(error)) => Err(error),
        }
    }

    async fn attempt(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<u8>, Attempt> {
        self.take_budget(path).await;
        let in_flight = self.enter_window(path).await;
        let mut req = self
            .client
            .get(format!("{}{path}", self.api_base))
            .query(query)
            .header(AUTHORIZATION, self.authorization.expose_secret());
        if let Some(accept) = &self.accept {
            req = req.header(ACCEPT, accept);
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                // Connection failures and timeouts are worth another try; the URL
                // (which may carry query values) is stripped from the error.
                let error = Error::vendor_source(
                    &self.provider_id,
                    format!("request to {path} failed"),
                    e.without_url(),
                );
                return Err(Attempt::Retry { wait: None, error });
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let now_epoch = time::OffsetDateTime::now_utc().unix_timestamp();
        let reset = reset_after(&headers, now_epoch);
        in_flight.answered(window_report(&headers, Instant::now(), now_epoch));
        let body = response.bytes().await.map_err(|e| Attempt::Retry {
            wait: None,
            error: Error::vendor_source(
                &self.provider_id,
                "reading a response failed",
                e.without_url(),
            ),
        })?;
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        match status {
            s if s.is_success() => Ok(body.to_vec()),
            StatusCode::TOO_MANY_REQUESTS => Err(Attempt::Retry {
                wait: reset
                    .or_else(|| throttle_hint(&body))
                    .or(Some(Duration::from_secs(1))),
                error: Error::vendor(&self.provider_id, format!("rate limited on {path}")),
            }),
            StatusCode::UNAUTHORIZED => Err(Attempt::Fatal(Error::VendorAuth {
                provider: self.provider_id.clone(),
                message: vendor_message(&body).unwrap_or_else(|| "401 Unauthorized".into()),
            })),
            s if s.is_server_error() => Err(Attempt::Retry {
                wait: None,
                error: Error::vendor(&self.provider_id, format!("{path} answered {s}")),
            }),
            s => Err(Attempt::Fatal(Error::Vendor {
                provider: self.provider_id.clone(),
                message: format!(
                    "{path} answered {s}: {}",
                    vendor_message(&body).unwrap_or_else(|| "no reason given".into())
                ),
                source: None,
            })),
        }
    }
}

/// PandaDoc sends no rate-limit headers; its 429 body may say "Expected available
/// in N seconds".
pub fn throttle_hint(body: &[u8]) -> Option<Duration> {
    let text = vendor_message(body)?;
    let rest = &text[text.find("available in ")? + "available in ".len()..];
    let secs: u64 = rest.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_secs(secs.min(120)))
}

/// The vendor's own error text, from the usual error body shapes, shortened.
pub fn vendor_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let pick = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let message = v
        .pointer("/error/message")
        .and_then(pick)
        .map(|m| {
            let details: Vec<String> = v
                .pointer("/error/errors")
                .and_then(|e| e.as_array())
                .map(|a| a.iter().filter_map(pick).collect())
                .unwrap_or_default();
            if details.is_empty() {
                m
            } else {
                format!("{m}: {}", details.join("; "))
            }
        })
        .or_else(|| v.pointer("/errors/0/message").and_then(pick))
        .or_else(|| v.pointer("/detail").and_then(pick))
        .or_else(|| v.pointer("/error_description").and_then(pick))
        .or_else(|| v.pointer("/error").and_then(pick))?;
    Some(message.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn pagerduty_reset_is_seconds_and_sendgrid_reset_is_an_epoch() {
        let mut h = HeaderMap::new();
        h.insert("ratelimit-reset", HeaderValue::from_static("17"));
        assert_eq!(reset_after(&h, 0), Some(Duration::from_secs(17)));
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", HeaderValue::from_static("1700000030"));
        assert_eq!(
            reset_after(&h, 1_700_000_000),
            Some(Duration::from_secs(30))
        );
    }

    fn gcra(b: &Budget) -> &DefaultDirectRateLimiter {
        match &b.pace {
            Pace::Gcra(l) => l,
            Pace::Sliding(_) => panic!("a GCRA budget"),
        }
    }

    #[test]
    fn a_budget_lets_its_burst_through_then_paces_a_little_under_the_vendors_rate() {
        let clock = DefaultClock::default();
        let paced = Budget::new(None, 60, 1);
        assert!(gcra(&paced).check().is_ok());
        let wait = gcra(&paced)
            .check()
            .unwrap_err()
            .wait_time_from(clock.now());
        assert!(
            wait > Duration::from_millis(1_000) && wait <= Duration::from_millis(1_010),
            "{wait:?}"
        );

        let window = Budget::new(None, 120, 120);
        for _ in 0..120 {
            assert!(gcra(&window).check().is_ok());
        }
        assert!(gcra(&window).check().is_err());
        // A burst above the rate is capped at one minute's worth.
        let capped = Budget::new(None, 2, 50);
        assert!(gcra(&capped).check().is_ok() && gcra(&capped).check().is_ok());
        assert!(gcra(&capped).check().is_err());
    }

    #[test]
    fn a_sliding_log_lets_a_window_through_then_one_more_as_each_leaves() {
        let log = SlidingLog::new(3, Duration::from_secs(61));
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // A whole window at once (spread over 10 s here).
        for i in 0..3 {
            assert_eq!(log.take(t0 + s(5 * i)), Ok(()));
        }
        // The fourth waits for the first to leave the log, 61 s after it went.
        assert_eq!(log.take(t0 + s(30)), Err(t0 + s(61)));
        assert_eq!(log.take(t0 + s(61)), Ok(()));
        // The next one waits for the second (sent at 5 s).
        assert_eq!(log.take(t0 + s(61)), Err(t0 + s(66)));
        assert_eq!(log.take(t0 + s(66)), Ok(()));
        // Never more than 3 in any 61 s: the end of one window and the start of the
        // next do not add up (the classic fixed-window client's mistake).
        assert!(log.take(t0 + s(70)).is_err());
    }

    #[test]
    fn a_header_window_counts_requests_in_flight_against_what_the_vendor_said_is_left() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = HeaderWindow::default();
        // Nothing known: one request goes and finds out.
        assert_eq!(w.gate(t0), Gate::Go);
        assert_eq!(w.gate(t0), Gate::Answer);
        // Started mid-window: the vendor has 3 left, until t0 + 40 s.
        w.answered(Some((3, t0 + s(40))));
        assert_eq!(w.gate(t0), Gate::Go);
        assert_eq!(w.gate(t0), Gate::Go);
        assert_eq!(w.gate(t0), Gate::Go);
        // Three in flight may take all three: the fourth waits for the reset.
        assert_eq!(w.gate(t0), Gate::Until(t0 + s(40)));
        // Answers read out of order: the later-admitted one (remaining 0) first, then
        // an earlier one (remaining 2) that must not raise what is left.
        w.answered(Some((0, t0 + s(40))));
        w.answered(Some((2, t0 + s(41))));
        assert_eq!(w.gate(t0 + s(1)), Gate::Until(t0 + s(40)));
        w.answered(None);
        // The window is over: one request again, until the next window is reported.
        assert_eq!(w.gate(t0 + s(40)), Gate::Go);
        assert_eq!(w.gate(t0 + s(40)), Gate::Answer);
        // A late answer from the old window does not count for the new one...
        w.answered(Some((0, t0 + s(40))));
        assert_eq!(w.gate(t0 + s(40)), Gate::Go);
        // ...a report of the next window (ending a minute later) does.
        w.answered(Some((958, t0 + s(100))));
        assert_eq!(w.gate(t0 + s(41)), Gate::Go);
        assert_eq!(w.known.unwrap().remaining, 958);
        assert_eq!(w.in_flight, 1);
    }

    /// A vendor counting fixed windows that open with the first request after the last
    /// one ended, like PagerDuty's (and the sandbox's), but `WINDOW` long: answers
    /// with `ratelimit-*` headers, 429 over the limit. Counts (admitted, refused).
    async fn fixed_window_vendor(
        limit: u32,
        window: Duration,
    ) -> (String, std::sync::Arc<(AtomicU64, AtomicU64)>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let counts = std::sync::Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let state = std::sync::Arc::new(std::sync::Mutex::new((Instant::now(), 0u32, false)));
        let (c, st) = (counts.clone(), state.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (c, st) = (c.clone(), st.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match socket.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
                        buf.drain(..end + 4);
                        let (allowed, remaining, reset) = {
                            let mut s = lock(&st);
                            let now = Instant::now();
                            if !s.2 || now.duration_since(s.0) >= window {
                                *s = (now, 0, true);
                            }
                            let allowed = s.1 < limit;
                            if allowed {
                                s.1 += 1;
                            }
                            let left = window.saturating_sub(now.duration_since(s.0));
                            let reset = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                            (allowed, limit - s.1, reset)
                        };
                        let (status, body) = if allowed {
                            c.0.fetch_add(1, Ordering::Relaxed);
                            ("200 OK", "{}")
                        } else {
                            c.1.fetch_add(1, Ordering::Relaxed);
                            (
                                "429 Too Many Requests",
                                r#"{"error":{"message":"Rate Limit Exceeded","code":2020}}"#,
                            )
                        };
                        let response = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\nratelimit-limit: {limit}\r\n\
                             ratelimit-remaining: {remaining}\r\nratelimit-reset: {reset}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (base, counts)
    }

    /// The drift case: the vendor's fixed window was opened (and mostly used) before
    /// the client started, the client's GCRA budget has its whole burst, and three
    /// requests are in flight at a time (as with `SYNC_PARALLEL_WINDOWS` = 3). Before
    /// the window mirror, the client burst into the end of the vendor's window and the
    /// requests in flight when `remaining` hit 0 were refused at each window's end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_started_mid_window_with_requests_in_flight_draws_no_429() {
        let (limit, window) = (5u32, Duration::from_secs(3));
        let (base, counts) = fixed_window_vendor(limit, window).await;
        let client = reqwest::Client::new();
        // Someone else opens the window and leaves 2 of 5.
        for _ in 0..3 {
            let r = client.get(format!("{base}/warm")).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
        let catalog = crate::domain::catalog::Catalog::load(|_| None).unwrap();
        let mut provider = catalog.get("pagerduty").unwrap().clone();
        provider.api_base = base;
        // The vendor's number as a budget per minute, its whole window as the burst.
        provider.rate_limit_per_minute = limit * 60 / window.as_secs() as u32;
        provider.rate_burst = limit;
        let http = VendorHttp::new(&provider, client, "Token token=t".to_string().into());
        let per_task = 5;
        let tasks = (0..3).map(|_| async {
            for _ in 0..per_task {
                let _: serde_json::Value = http.get_json("/log_entries", &[]).await.unwrap();
            }
        });
        futures::future::join_all(tasks).await;
        let (admitted, refused) = (
            counts.0.load(Ordering::Relaxed),
            counts.1.load(Ordering::Relaxed),
        );
        assert_eq!(admitted, 3 + 3 * per_task);
        assert_eq!(refused, 0, "the vendor refused {refused} requests");
        assert_eq!(http.stats().rate_limited, 0);
        assert_eq!(http.stats().requests, 3 * per_task);
    }

    #[test]
    fn a_cut_body_is_malformed_but_a_wrong_shape_is_not() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Page {
            users: Vec<String>,
        }
        let cut = serde_json::from_slice::<Page>(br#"{"users":["a","#).unwrap_err();
        assert!(is_malformed(&cut));
        let html = serde_json::from_slice::<Page>(b"<html>502</html>").unwrap_err();
        assert!(is_malformed(&html));
        let shape = serde_json::from_slice::<Page>(br#"{"people":[]}"#).unwrap_err();
        assert!(!is_malformed(&shape));
    }

    #[test]
    fn pandadoc_throttle_hint_is_read_from_the_body() {
        assert_eq!(
            throttle_hint(br#"{"type":"request_error","detail":"Request was throttled. Expected available in 13 seconds."}"#),
            Some(Duration::from_secs(13))
        );
        assert_eq!(
            throttle_hint(br#"{"type":"throttled","detail":"Request was throttled."}"#),
            None
        );
    }

    #[test]
    fn vendor_messages_are_read_from_each_vendor_shape() {
        assert_eq!(
            vendor_message(br#"{"error":{"message":"Rate Limit Exceeded","code":2020}}"#).unwrap(),
            "Rate Limit Exceeded"
        );
        assert_eq!(
            vendor_message(br#"{"error":{"message":"Invalid Input Provided","code":2001,"errors":["Offset must be less than 10000"]}}"#).unwrap(),
            "Invalid Input Provided: Offset must be less than 10000"
        );
        assert_eq!(
            vendor_message(br#"{"errors":[{"field":null,"message":"too many requests"}]}"#)
                .unwrap(),
            "too many requests"
        );
        assert_eq!(
            vendor_message(br#"{"type":"throttled","detail":"Request was throttled."}"#).unwrap(),
            "Request was throttled."
        );
        assert!(vendor_message(b"<html>").is_none());
    }
}
