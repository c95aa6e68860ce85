//! The request loop every connector uses: sends with the provider's auth and Accept
//! headers, keeps to the provider's rate budget, honors rate-limit headers before the
//! vendor's window runs out, and retries 429, 5xx, timeouts and truncated JSON with
//! exponential backoff and jitter (backon), waiting at least as long as the vendor's
//! reset header (or PandaDoc's body hint) says.
//!
//! **Rate budgets** (governor's GCRA, from the catalog): one per `VendorHttp`, that is
//! per connection's sync, because vendors limit per token or user, which is what one
//! connection is. A provider has a default budget and may name endpoint classes with
//! their own (PandaDoc's details calls). Pacing runs [`PACING_MARGIN`] under the
//! vendor's number so request latency jitter never tips a window over; the burst is
//! the vendor's whole window where it counts fixed windows and says when one is spent
//! (PagerDuty's `ratelimit-*`, SendGrid's `X-RateLimit-*`: `remaining 0` makes every
//! request wait for the reset), and 1 where it says nothing (PandaDoc's sliding window).

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
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::catalog::{Provider, RateClass};
use crate::error::{Error, Result};

/// Budgets pace this much slower than the vendor's number (1 %): a request that
/// reaches the vendor a little late or early then never lands in a full window.
pub const PACING_MARGIN: f64 = 1.01;
/// A 200 whose body is not JSON (cut off by a proxy, a vendor hiccup) is asked for
/// again this many times before the call fails as a vendor error.
pub const MALFORMED_RETRIES: usize = 3;

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

/// A GCRA budget: `per_minute` requests a minute, `burst` of them back to back.
struct Budget {
    class: Option<RateClass>,
    limiter: DefaultDirectRateLimiter,
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
            limiter: DefaultDirectRateLimiter::direct(quota),
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
    /// Set when the vendor said the budget is spent: no request before this instant.
    not_before: Mutex<Option<Instant>>,
    /// The classes' budgets first, the provider's default budget last.
    budgets: Vec<Budget>,
    clock: DefaultClock,
    counters: Counters,
    max_retries: usize,
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
        let mut budgets: Vec<Budget> = provider
            .rate_classes
            .iter()
            .map(|c| Budget::new(Some(c.clone()), c.per_minute, c.burst))
            .collect();
        budgets.push(Budget::new(
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
            not_before: Mutex::new(None),
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
        while let Err(not_until) = budget.limiter.check() {
            let wait = not_until.wait_time_from(self.clock.now());
            self.counters
                .waited_ms
                .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    /// GET `path` (relative to the API base) with `query`, decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let malformed = AtomicUsize::new(0);
        let attempt = || async {
            let body = self.attempt(path, query).await?;
            serde_json::from_slice::<T>(&body).map_err(|e| {
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
        let wait_until = *self.not_before.lock().await;
        if let Some(at) = wait_until {
            let now = Instant::now();
            if at > now {
                self.counters
                    .waited_ms
                    .fetch_add((at - now).as_millis() as u64, Ordering::Relaxed);
            }
            tokio::time::sleep_until(at).await;
        }
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
        if remaining(&headers) == Some(0) {
            if let Some(r) = reset {
                *self.not_before.lock().await = Some(Instant::now() + r);
            }
        } else if wait_until.is_some() {
            *self.not_before.lock().await = None;
        }
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

    #[test]
    fn a_budget_lets_its_burst_through_then_paces_a_little_under_the_vendors_rate() {
        let clock = DefaultClock::default();
        let paced = Budget::new(None, 60, 1);
        assert!(paced.limiter.check().is_ok());
        let wait = paced
            .limiter
            .check()
            .unwrap_err()
            .wait_time_from(clock.now());
        assert!(
            wait > Duration::from_millis(1_000) && wait <= Duration::from_millis(1_010),
            "{wait:?}"
        );

        let window = Budget::new(None, 120, 120);
        for _ in 0..120 {
            assert!(window.limiter.check().is_ok());
        }
        assert!(window.limiter.check().is_err());
        // A burst above the rate is capped at one minute's worth.
        let capped = Budget::new(None, 2, 50);
        assert!(capped.limiter.check().is_ok() && capped.limiter.check().is_ok());
        assert!(capped.limiter.check().is_err());
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
