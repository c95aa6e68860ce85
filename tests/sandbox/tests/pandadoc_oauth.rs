//! PandaDoc OAuth over real HTTP: consent page, code exchange with the client credentials in
//! the body, refresh rotation, and the errors a client must handle.

mod support;

use reqwest::StatusCode;
use seatscope_sandbox::PandaDocConfig;
use serde_json::json;
use support::pandadoc::*;

fn is_token(value: &serde_json::Value) -> bool {
    value
        .as_str()
        .is_some_and(|t| t.len() == 40 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test]
async fn approve_then_exchange_gives_a_bearer_token_acting_as_the_owner() {
    let sandbox = start(config()).await;
    let client = http();
    // PKCE parameters are not PandaDoc's: they are ignored, not refused.
    let url = format!(
        "{}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        authorize_url(&sandbox, "state-<&\"'>")
    );
    let location = consent(&client, &url, "approve").await;
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some("state-<&\"'>")
    );
    let code = query_param(&location, "code").expect("a code");

    let (status, body) = exchange(&client, &sandbox, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(is_token(&body["access_token"]) && is_token(&body["refresh_token"]));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 31_535_999);
    assert_eq!(body["scope"], "read+write");
    let keys: Vec<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 5, "{keys:?}");

    let access = body["access_token"].as_str().unwrap_or_default();
    let me = get_ok(
        &client,
        &sandbox,
        &format!("Bearer {access}"),
        "/public/v1/members/current",
    )
    .await;
    let owner = &sandbox.ground_truth().seats[0];
    assert_eq!(me["user_id"], owner.id.as_str());
    assert_eq!(me["role"], "Admin");
    let stats = sandbox.stats();
    assert_eq!(stats.token_requests, 1);
    assert_eq!(stats.token_requests_authorization_code, 1);
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_the_state() {
    let sandbox = start(config()).await;
    let client = http();
    let location = consent(&client, &authorize_url(&sandbox, "s-deny"), "deny").await;
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("s-deny"));
    assert_eq!(query_param(&location, "code"), None);
}

#[tokio::test]
async fn a_reused_code_is_invalid_grant() {
    let sandbox = start(config()).await;
    let client = http();
    let code = approved_code(&client, &sandbox).await;
    let (status, _) = exchange(&client, &sandbox, &code).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = exchange(&client, &sandbox, &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({ "error": "invalid_grant" }));
}

#[tokio::test]
async fn a_wrong_redirect_uri_burns_the_code_and_a_missing_one_is_invalid_request() {
    let sandbox = start(config()).await;
    let client = http();
    let code = approved_code(&client, &sandbox).await;
    let base = [
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("code", code.as_str()),
    ];
    let (status, body) = post_token(&client, &sandbox, &base).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({ "error": "invalid_request" }));
    let mut form = base.to_vec();
    form.push(("redirect_uri", "http://127.0.0.1:9/elsewhere"));
    let (status, body) = post_token(&client, &sandbox, &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({ "error": "invalid_grant" }));
    // The failed attempt consumed the code.
    let (status, body) = exchange(&client, &sandbox, &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({ "error": "invalid_grant" }));
}

#[tokio::test]
async fn refresh_rotates_both_tokens_and_the_old_ones_stop_working() {
    let sandbox = start(config()).await;
    let client = http();
    let (access, refresh_token) = tokens(&client, &sandbox).await;

    let (status, body) = refresh(&client, &sandbox, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read+write");
    assert_eq!(body["expires_in"], 31_535_999);
    let new_access = body["access_token"].as_str().expect("access").to_string();
    let new_refresh = body["refresh_token"].as_str().expect("refresh").to_string();
    assert!(is_token(&body["access_token"]) && is_token(&body["refresh_token"]));
    assert_ne!(new_access, access);
    assert_ne!(new_refresh, refresh_token);

    // The old refresh token is consumed, and the access token issued with it is revoked.
    let (status, body) = refresh(&client, &sandbox, &refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({ "error": "invalid_grant" }));
    let old = api_get(
        &client,
        &sandbox,
        &format!("Bearer {access}"),
        "/public/v1/members/current",
    )
    .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);

    get_ok(
        &client,
        &sandbox,
        &format!("Bearer {new_access}"),
        "/public/v1/users?count=1",
    )
    .await;
    let (status, _) = refresh(&client, &sandbox, &new_refresh).await;
    assert_eq!(status, StatusCode::OK);
    let stats = sandbox.stats();
    assert_eq!(
        (
            stats.token_requests,
            stats.token_requests_authorization_code,
            stats.token_requests_refresh_token
        ),
        (4, 1, 3)
    );
}

#[tokio::test]
async fn revoked_refresh_tokens_and_expired_access_tokens_are_refused() {
    let sandbox = start(config()).await;
    let client = http();
    let (access, refresh_token) = tokens(&client, &sandbox).await;

    sandbox.expire_access_tokens();
    let (status, body) = json(
        api_get(
            &client,
            &sandbox,
            &format!("Bearer {access}"),
            "/public/v1/users",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["type"], "authentication_error");
    assert!(body["detail"].is_string());

    sandbox.revoke_refresh_tokens();
    let (status, body) = refresh(&client, &sandbox, &refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({ "error": "invalid_grant" }));

    // The HTTP controls do the same.
    let (access, refresh_token) = tokens(&client, &sandbox).await;
    for path in [
        "/_sandbox/expire-access-tokens",
        "/_sandbox/revoke-refresh-tokens",
    ] {
        let response = client
            .post(format!("{}{path}", sandbox.base_url()))
            .send()
            .await
            .expect("POST");
        assert!(response.status().is_success());
    }
    let response = api_get(
        &client,
        &sandbox,
        &format!("Bearer {access}"),
        "/public/v1/users",
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = refresh(&client, &sandbox, &refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_configured_token_lifetime_is_reported_and_enforced() {
    let sandbox = start(PandaDocConfig {
        access_token_ttl_secs: 0,
        ..config()
    })
    .await;
    let client = http();
    let code = approved_code(&client, &sandbox).await;
    let (status, body) = exchange(&client, &sandbox, &code).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], 0);
    let access = body["access_token"].as_str().unwrap_or_default();
    let response = api_get(
        &client,
        &sandbox,
        &format!("Bearer {access}"),
        "/public/v1/members",
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The refresh token still works and gives a (again short-lived) pair.
    let refresh_token = body["refresh_token"].as_str().unwrap_or_default();
    let (status, body) = refresh(&client, &sandbox, refresh_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], 0);
}

#[tokio::test]
async fn client_authentication_is_by_body_fields_only() {
    let sandbox = start(config()).await;
    let client = http();
    let token_url = format!("{}/oauth2/access_token", sandbox.base_url());
    let cases: [&[(&str, &str)]; 3] = [
        // Wrong secret.
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
            ("refresh_token", "x"),
        ],
        // No secret.
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("refresh_token", "x"),
        ],
        // Unknown client.
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "someone-else"),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", "x"),
        ],
    ];
    for form in cases {
        let (status, body) = post_token(&client, &sandbox, form).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{form:?}");
        assert_eq!(body, json!({ "error": "invalid_client" }));
    }
    // HTTP Basic is not PandaDoc's documented method: without body fields, no client.
    let response = client
        .post(&token_url)
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Unknown grant type, missing grant type, missing code, JSON body.
    let creds = [("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut form = creds.to_vec();
        form.extend_from_slice(extra);
        form
    };
    for (form, error) in [
        (
            with(&[("grant_type", "password")]),
            "unsupported_grant_type",
        ),
        (with(&[]), "invalid_request"),
        (
            with(&[("grant_type", "authorization_code")]),
            "invalid_request",
        ),
        (with(&[("grant_type", "refresh_token")]), "invalid_request"),
    ] {
        let (status, body) = post_token(&client, &sandbox, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(body, json!({ "error": error }), "{form:?}");
    }
    let response = client
        .post(&token_url)
        .json(
            &json!({ "grant_type": "refresh_token", "client_id": CLIENT_ID,
                       "client_secret": CLIENT_SECRET, "refresh_token": "x" }),
        )
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<serde_json::Value>().await.ok(),
        Some(json!({ "error": "invalid_request" }))
    );
    // Every POST counted, whatever the outcome: 3 + 1 + 4 + 1.
    let stats: serde_json::Value = client
        .get(format!("{}/_sandbox/stats", sandbox.base_url()))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(stats["token_requests"], 9);
    assert_eq!(stats["token_requests_refresh_token"], 5);
    assert_eq!(stats["token_requests_authorization_code"], 1);
}

#[tokio::test]
async fn unknown_client_and_bad_parameters_get_a_400_page_not_a_redirect() {
    let sandbox = start(config()).await;
    let client = http();
    let good = authorize_url(&sandbox, "s");
    let cases = [
        good.replace("client_id=seatscope-dev", "client_id=someone-else"),
        good.replace("response_type=code", "response_type=token"),
        good.replace("scope=read+write", "scope=admin"),
        good.replace("&scope=read+write", ""),
        good.replace("redirect_uri=", "redirect_uri=not-a-url&x="),
        format!("{good}&client_id=seatscope-dev"),
        format!("{}/oauth2/authorize", sandbox.base_url()),
    ];
    for url in cases {
        let response = client.get(&url).send().await.expect("GET");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(response.headers().get("location").is_none());
        let body = response.text().await.expect("body");
        assert!(body.contains("<h1>Authorization error</h1>"), "{body}");
    }
    // A tampered form is checked again on POST.
    let response = client
        .post(format!("{}/oauth2/authorize/decision", sandbox.base_url()))
        .form(&[
            ("client_id", "evil"),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("scope", "read write"),
            ("decision", "approve"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_read_only_grant_reports_scope_read_and_can_read() {
    let sandbox = start(config()).await;
    let client = http();
    let url = authorize_url(&sandbox, "s").replace("scope=read+write", "scope=read");
    let location = consent(&client, &url, "approve").await;
    let code = query_param(&location, "code").expect("code");
    let (status, body) = exchange(&client, &sandbox, &code).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["scope"], "read");
    let access = body["access_token"].as_str().unwrap_or_default();
    get_ok(
        &client,
        &sandbox,
        &format!("Bearer {access}"),
        "/public/v1/documents?count=1",
    )
    .await;
}
