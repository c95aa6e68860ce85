//! The PandaDoc sandbox: its configuration and credentials, the consent form, the token
//! requests, and a naive client that walks the API.

pub use super::consent::{hidden_inputs, unescape_html};
pub use super::http::{body, http, json, query_param};

use super::http::token_response;

use super::consent::consent_form;
use std::collections::BTreeMap;

use reqwest::StatusCode;
use seatscope_sandbox::{PandaDocConfig, PandaDocSandbox};
use serde_json::Value;
use time::macros::date;

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/seatscope/pandadoc/callback";
pub const CLIENT_ID: &str = "seatscope-dev";
pub const CLIENT_SECRET: &str = "seatscope-dev-secret";
pub const API_KEY: &str = "3039ba033eb1410caa0a2227158d63c9d6502cd8";
pub const KEY: &str = "API-Key 3039ba033eb1410caa0a2227158d63c9d6502cd8";

/// A fixed end date keeps the data identical from one day to the next; an API key is set.
pub fn config() -> PandaDocConfig {
    PandaDocConfig {
        end_date: date!(2026 - 03 - 31),
        api_key: Some(API_KEY.to_string()),
        ..PandaDocConfig::default()
    }
}

pub async fn start(config: PandaDocConfig) -> PandaDocSandbox {
    PandaDocSandbox::start(config, 0)
        .await
        .expect("the sandbox starts on a free port")
}

/// PandaDoc's documented authorize URL, literally `scope=read+write`.
pub fn authorize_url(sandbox: &PandaDocSandbox, state: &str) -> String {
    let mut url =
        url::Url::parse(&format!("{}/oauth2/authorize", sandbox.base_url())).expect("a base URL");
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("response_type", "code")
        .append_pair("state", state);
    format!("{url}&scope=read+write")
}

/// GETs the consent page, posts its form with `decision`, returns the redirect `Location`.
pub async fn consent(client: &reqwest::Client, authorize_url: &str, decision: &str) -> String {
    consent_form(
        client,
        authorize_url,
        decision,
        "PandaDoc sandbox",
        "/oauth2/authorize/decision",
    )
    .await
}

pub async fn approved_code(client: &reqwest::Client, sandbox: &PandaDocSandbox) -> String {
    let location = consent(client, &authorize_url(sandbox, "st-1"), "approve").await;
    query_param(&location, "code").expect("a code in the redirect")
}

pub async fn post_token(
    client: &reqwest::Client,
    sandbox: &PandaDocSandbox,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let response = client
        .post(format!("{}/oauth2/access_token", sandbox.base_url()))
        .form(form)
        .send()
        .await
        .expect("POST access_token");
    token_response(response).await
}

pub async fn exchange(
    client: &reqwest::Client,
    sandbox: &PandaDocSandbox,
    code: &str,
) -> (StatusCode, Value) {
    post_token(
        client,
        sandbox,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "read+write"),
        ],
    )
    .await
}

pub async fn refresh(
    client: &reqwest::Client,
    sandbox: &PandaDocSandbox,
    refresh_token: &str,
) -> (StatusCode, Value) {
    post_token(
        client,
        sandbox,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", refresh_token),
            ("scope", "read+write"),
        ],
    )
    .await
}

/// A full consent + exchange; returns `(access_token, refresh_token)`.
pub async fn tokens(client: &reqwest::Client, sandbox: &PandaDocSandbox) -> (String, String) {
    let code = approved_code(client, sandbox).await;
    let (status, body) = exchange(client, sandbox, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let get = |k: &str| body[k].as_str().expect("a token").to_string();
    (get("access_token"), get("refresh_token"))
}

/// `GET {base}{path}` with the given `Authorization` value.
pub async fn api_get(
    client: &reqwest::Client,
    sandbox: &PandaDocSandbox,
    auth: &str,
    path_and_query: &str,
) -> reqwest::Response {
    client
        .get(format!("{}{}", sandbox.base_url(), path_and_query))
        .header("authorization", auth)
        .send()
        .await
        .expect("GET")
}

/// `GET` that must answer 200 with JSON.
pub async fn get_ok(
    client: &reqwest::Client,
    sandbox: &PandaDocSandbox,
    auth: &str,
    path_and_query: &str,
) -> Value {
    let (status, body) = json(api_get(client, sandbox, auth, path_and_query).await).await;
    assert_eq!(status, StatusCode::OK, "{path_and_query}: {body}");
    body
}

/// Every page of a `count`/`page` list until a page is shorter than `count`, as a client
/// of PandaDoc must (no `next`, no `total` on documents and templates).
pub async fn walk(
    client: &reqwest::Client,
    sandbox: &PandaDocSandbox,
    auth: &str,
    path: &str,
    count: usize,
) -> (Vec<Value>, usize) {
    let mut all = Vec::new();
    let mut requests = 0;
    let separator = if path.contains('?') { '&' } else { '?' };
    for page in 1.. {
        let body = get_ok(
            client,
            sandbox,
            auth,
            &format!("{path}{separator}count={count}&page={page}"),
        )
        .await;
        requests += 1;
        let results = body["results"].as_array().expect("results").clone();
        let short = results.len() < count;
        all.extend(results);
        if short {
            break;
        }
    }
    (all, requests)
}

/// `(user_id, date, feature) -> count`, the shape of the ground truth's `daily`.
pub type Daily = BTreeMap<(String, String, String), u32>;

pub fn day(timestamp: &Value) -> Option<String> {
    timestamp.as_str().map(|t| t[..10].to_string())
}

/// What a naive client computes: walk documents and templates, fetch every details page,
/// count by the rules of the ground truth.
pub async fn naive_daily(client: &reqwest::Client, sandbox: &PandaDocSandbox, auth: &str) -> Daily {
    let mut daily = Daily::new();
    let mut add = |user: &Value, date: Option<String>, feature: &str| {
        let user = user.as_str().expect("a user id").to_string();
        let date = date.expect("a date");
        *daily.entry((user, date, feature.to_string())).or_default() += 1;
    };
    let (documents, _) = walk(client, sandbox, auth, "/public/v1/documents", 100).await;
    for d in &documents {
        let id = d["id"].as_str().expect("id");
        let details = get_ok(
            client,
            sandbox,
            auth,
            &format!("/public/v1/documents/{id}/details"),
        )
        .await;
        let creator = &details["created_by"]["id"];
        add(creator, day(&details["date_created"]), "document_created");
        if !details["sent_by"].is_null() {
            add(
                &details["sent_by"]["id"],
                day(&details["date_sent"]),
                "document_sent",
            );
        }
        if !details["date_completed"].is_null() {
            add(
                creator,
                day(&details["date_completed"]),
                "document_completed",
            );
        }
    }
    let (templates, _) = walk(client, sandbox, auth, "/public/v1/templates", 100).await;
    for t in &templates {
        let id = t["id"].as_str().expect("id");
        let details = get_ok(
            client,
            sandbox,
            auth,
            &format!("/public/v1/templates/{id}/details"),
        )
        .await;
        add(
            &details["created_by"]["id"],
            day(&details["date_created"]),
            "template_created",
        );
    }
    daily
}

pub fn truth_daily(sandbox: &PandaDocSandbox) -> Daily {
    sandbox
        .ground_truth()
        .daily
        .into_iter()
        .map(|d| ((d.user_id, d.date, d.feature), d.count))
        .collect()
}
