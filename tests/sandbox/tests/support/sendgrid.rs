//! The SendGrid sandbox: its configuration and keys, requests, and SendGrid's JSON
//! responses and headers.

pub use super::http::{http, query_param};

use reqwest::StatusCode;
use seatscope_sandbox::{SendGridConfig, SendGridSandbox, SendGridSandboxKey};
use serde_json::Value;
use time::macros::date;

/// A fixed end date keeps the data identical from one day to the next.
pub fn config() -> SendGridConfig {
    SendGridConfig {
        end_date: date!(2026 - 03 - 31),
        ..SendGridConfig::default()
    }
}

/// The first day of [`config`]'s 30-day range.
pub const FIRST_DAY: &str = "2026-03-02";
pub const LAST_DAY: &str = "2026-03-31";

pub async fn start(config: SendGridConfig) -> SendGridSandbox {
    SendGridSandbox::start(config, 0)
        .await
        .expect("the sandbox starts on a free port")
}

pub fn full_key() -> String {
    SendGridSandboxKey::full().key
}

pub fn nostats_key() -> String {
    SendGridSandboxKey::without_stats().key
}

/// `GET {base}{path}` with `Authorization: Bearer {key}` (no header when `key` is `None`).
pub async fn get(
    client: &reqwest::Client,
    sandbox: &SendGridSandbox,
    key: Option<&str>,
    path_and_query: &str,
) -> reqwest::Response {
    let mut request = client.get(format!("{}{}", sandbox.base_url(), path_and_query));
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    request.send().await.expect("GET")
}

/// Status, body and headers of a JSON response.
pub async fn json(response: reqwest::Response) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let status = response.status();
    let headers = response.headers().clone();
    assert!(
        headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json")),
        "{status}: not JSON: {headers:?}"
    );
    (status, response.json().await.expect("a JSON body"), headers)
}

pub fn header_u64(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.parse().ok()
}

/// `(rel, url, title)` for each link of a SendGrid `Link` header.
pub fn parse_link(value: &str) -> Vec<(String, String, String)> {
    value
        .split(", <")
        .map(|part| {
            let part = part.trim_start_matches('<');
            let (url, params) = part.split_once('>').expect("<url>");
            let param = |name: &str| {
                params
                    .split(';')
                    .map(str::trim)
                    .find_map(|p| p.strip_prefix(&format!("{name}=\"")))
                    .map(|v| v.trim_end_matches('"').to_string())
                    .unwrap_or_default()
            };
            (param("rel"), url.to_string(), param("title"))
        })
        .collect()
}

pub fn now_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}
