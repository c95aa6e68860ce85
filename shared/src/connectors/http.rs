//! The request loop every connector uses: sends with the provider's auth and Accept
//! headers, honors rate-limit headers before the budget runs out, and retries 429,
//! 5xx and timeouts with exponential backoff and jitter (backon), waiting at least
//! as long as the vendor's reset header says.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::catalog::Provider;
use crate::error::{Error, Result};

/// One failed attempt, classified for the retry policy.
#[derive(Debug)]
enum Attempt {
    /// 429 / 5xx / timeout: retry, after `wait` if the vendor said.
    Retry {
        wait: Option<Duration>,
        error: Error,
    },
    Fatal(Error),
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

impl VendorHttp {
    pub fn new(provider: &Provider, client: reqwest::Client, authorization: SecretString) -> Self {
        VendorHttp {
            provider_id: provider.id.clone(),
            provider_name: provider.name.clone(),
            api_base: provider.api_base.trim_end_matches('/').to_string(),
            accept: provider.accept.clone(),
            client,
            authorization,
            not_before: Mutex::new(None),
            max_retries: 8,
        }
    }

    pub fn provider_id(&self) -> &str {
        &self.provider_id
    }

    pub fn provider_name(&self) -> &str {
        &self.provider_name
    }

    /// GET `path` (relative to the API base) with `query`, decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let attempt = || async { self.attempt(path, query).await };
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
                    tracing::warn!(provider = %self.provider_id, path, wait_ms = dur.as_millis() as u64, error = %error, "vendor call failed, retrying");
                }
            })
            .await;
        let body = match result {
            Ok(body) => body,
            Err(Attempt::Retry { error, .. }) | Err(Attempt::Fatal(error)) => return Err(error),
        };
        serde_json::from_slice(&body).map_err(|e| {
            Error::vendor_source(
                &self.provider_id,
                format!("unexpected response shape from {path}"),
                e,
            )
        })
    }

    async fn attempt(&self, path: &str, query: &[(&str, String)]) -> Result<Vec<u8>, Attempt> {
        let wait_until = *self.not_before.lock().await;
        if let Some(at) = wait_until {
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
