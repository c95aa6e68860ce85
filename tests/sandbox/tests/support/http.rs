//! An HTTP client for the tests and JSON responses.

use reqwest::StatusCode;
use serde_json::Value;

/// Redirects off: the tests read `Location` themselves.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("a reqwest client")
}

/// Status and JSON body.
pub async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

/// Status and JSON body of an OAuth token endpoint's answer.
pub async fn token_response(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (
        status,
        response.json().await.expect("a JSON token response"),
    )
}

/// The JSON body of a response that must have `status` and an `application/json` type.
pub async fn body(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert!(response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json")));
    response.json().await.expect("a JSON body")
}

pub fn query_param(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}
