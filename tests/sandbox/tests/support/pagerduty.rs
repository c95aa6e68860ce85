//! The PagerDuty sandbox: its configuration, PKCE, the consent form, the token exchange and
//! API requests.

pub use super::consent::{hidden_inputs, unescape_html};
pub use super::http::{body, http, json, query_param};

use super::http::token_response;

use super::consent::consent_form;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use reqwest::StatusCode;
use seatscope_sandbox::{PagerDutyConfig, PagerDutySandbox};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::macros::date;

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/seatscope/callback";
pub const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

/// A fixed end date keeps the data identical from one day to the next.
pub fn config() -> PagerDutyConfig {
    PagerDutyConfig {
        end_date: date!(2026 - 03 - 31),
        ..PagerDutyConfig::default()
    }
}

pub async fn start(config: PagerDutyConfig) -> PagerDutySandbox {
    PagerDutySandbox::start(config, 0)
        .await
        .expect("the sandbox starts on a free port")
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce {
        verifier,
        challenge,
    }
}

pub fn authorize_url(sandbox: &PagerDutySandbox, state: &str, challenge: &str) -> String {
    let mut url =
        url::Url::parse(&format!("{}/oauth/authorize", sandbox.base_url())).expect("a base URL");
    url.query_pairs_mut()
        .append_pair("client_id", "seatscope-dev")
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("scope", "read")
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url.to_string()
}

/// GETs the consent page, posts its form with `decision`, returns the redirect `Location`.
pub async fn consent(client: &reqwest::Client, authorize_url: &str, decision: &str) -> String {
    consent_form(
        client,
        authorize_url,
        decision,
        "PagerDuty sandbox",
        "/oauth/authorize/decision",
    )
    .await
}

/// Approves and returns `(code, verifier)`.
pub async fn approved_code(
    client: &reqwest::Client,
    sandbox: &PagerDutySandbox,
) -> (String, String) {
    let pkce = pkce();
    let location = consent(
        client,
        &authorize_url(sandbox, "st-1", &pkce.challenge),
        "approve",
    )
    .await;
    let code = query_param(&location, "code").expect("a code in the redirect");
    (code, pkce.verifier)
}

pub async fn exchange(
    client: &reqwest::Client,
    sandbox: &PagerDutySandbox,
    code: &str,
    verifier: &str,
) -> (StatusCode, Value) {
    let response = client
        .post(format!("{}/oauth/token", sandbox.base_url()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "seatscope-dev"),
            ("client_secret", "seatscope-dev-secret"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("POST token");
    token_response(response).await
}

pub async fn refresh(
    client: &reqwest::Client,
    sandbox: &PagerDutySandbox,
    refresh_token: &str,
) -> (StatusCode, Value) {
    let response = client
        .post(format!("{}/oauth/token", sandbox.base_url()))
        .basic_auth("seatscope-dev", Some("seatscope-dev-secret"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .expect("POST token");
    token_response(response).await
}

/// A full consent + exchange; returns `(access_token, refresh_token)`.
pub async fn tokens(client: &reqwest::Client, sandbox: &PagerDutySandbox) -> (String, String) {
    let (code, verifier) = approved_code(client, sandbox).await;
    let (status, body) = exchange(client, sandbox, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string(),
        body["refresh_token"]
            .as_str()
            .expect("refresh_token")
            .to_string(),
    )
}

/// `GET {base}{path}` with a Bearer token and PagerDuty's Accept header.
pub async fn api_get(
    client: &reqwest::Client,
    sandbox: &PagerDutySandbox,
    auth: &str,
    path_and_query: &str,
) -> reqwest::Response {
    client
        .get(format!("{}{}", sandbox.base_url(), path_and_query))
        .header("authorization", auth)
        .header("accept", ACCEPT)
        .send()
        .await
        .expect("GET")
}
