//! OAuth over real HTTP: consent page, code exchange with PKCE, refresh rotation, and the
//! errors a client must handle.

mod support;

use reqwest::StatusCode;
use support::pagerduty::*;

#[tokio::test]
async fn approve_then_pkce_exchange_gives_a_bearer_token_that_lists_users() {
    let sandbox = start(config()).await;
    let client = http();
    let pkce = pkce();
    let location = consent(
        &client,
        &authorize_url(&sandbox, "state-<&\"'>", &pkce.challenge),
        "approve",
    )
    .await;
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some("state-<&\"'>")
    );
    let code = query_param(&location, "code").expect("a code");

    let (status, body) = exchange(&client, &sandbox, &code, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().expect("access_token");
    assert!(access.starts_with("pdus+_0"), "{access}");
    assert!(body["refresh_token"]
        .as_str()
        .is_some_and(|r| r.starts_with("pdus+_1")));
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "openid read");
    assert_eq!(body["expires_in"], 2_592_000);
    assert_eq!(
        body["id_token"].as_str().map(|t| t.split('.').count()),
        Some(3)
    );

    let users = api_get(&client, &sandbox, &format!("Bearer {access}"), "/users").await;
    assert_eq!(users.status(), StatusCode::OK);
    let users: serde_json::Value = users.json().await.expect("JSON");
    assert_eq!(users["users"].as_array().map(Vec::len), Some(25));

    // The token acts as the account owner, who approved the consent page.
    let me = api_get(&client, &sandbox, &format!("Bearer {access}"), "/users/me").await;
    let me: serde_json::Value = me.json().await.expect("JSON");
    assert_eq!(me["user"]["role"], "owner");
    assert_eq!(sandbox.token_requests(), 1);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_invalid_grant_and_burns_the_code() {
    let sandbox = start(config()).await;
    let client = http();
    let (code, verifier) = approved_code(&client, &sandbox).await;
    let (status, body) = exchange(
        &client,
        &sandbox,
        &code,
        "not-the-verifier-at-all-but-long-enough-xx",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = exchange(&client, &sandbox, &code, &verifier).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a failed attempt consumes the code"
    );
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_reused_code_is_invalid_grant() {
    let sandbox = start(config()).await;
    let client = http();
    let (code, verifier) = approved_code(&client, &sandbox).await;
    let (status, _) = exchange(&client, &sandbox, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = exchange(&client, &sandbox, &code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert!(body["error_description"].as_str().is_some());
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_the_state() {
    let sandbox = start(config()).await;
    let client = http();
    let location = consent(
        &client,
        &authorize_url(&sandbox, "s-deny", &pkce().challenge),
        "deny",
    )
    .await;
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&location, "error_description").is_some());
    assert_eq!(query_param(&location, "state").as_deref(), Some("s-deny"));
    assert_eq!(query_param(&location, "code"), None);
}

#[tokio::test]
async fn unknown_client_and_bad_parameters_get_a_400_page_not_a_redirect() {
    let sandbox = start(config()).await;
    let client = http();
    let good = authorize_url(&sandbox, "s", &pkce().challenge);
    let cases = [
        good.replace("client_id=seatscope-dev", "client_id=someone-else"),
        good.replace("response_type=code", "response_type=token"),
        good.replace("code_challenge_method=S256", "code_challenge_method=plain"),
        good.replace("redirect_uri=", "redirect_uri=not-a-url&x="),
        format!("{}/oauth/authorize", sandbox.base_url()),
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
        .post(format!("{}/oauth/authorize/decision", sandbox.base_url()))
        .form(&[
            ("client_id", "evil"),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("scope", "read"),
            ("decision", "approve"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refresh_rotates_and_the_old_refresh_token_is_rejected() {
    let sandbox = start(config()).await;
    let client = http();
    let (access, refresh_token) = tokens(&client, &sandbox).await;

    let (status, body) = refresh(&client, &sandbox, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_access = body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();
    let new_refresh = body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    assert_ne!(new_access, access);
    assert_ne!(new_refresh, refresh_token);
    assert_eq!(body["token_type"], "bearer");

    let (status, body) = refresh(&client, &sandbox, &refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");

    let response = api_get(
        &client,
        &sandbox,
        &format!("Bearer {new_access}"),
        "/users?limit=1",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = refresh(&client, &sandbox, &new_refresh).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn revoked_refresh_tokens_and_expired_access_tokens_are_refused() {
    let sandbox = start(config()).await;
    let client = http();
    let (access, refresh_token) = tokens(&client, &sandbox).await;

    sandbox.expire_access_tokens();
    let response = api_get(&client, &sandbox, &format!("Bearer {access}"), "/users").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert!(body["error"]["message"].is_string() && body["error"]["code"].is_number());

    sandbox.revoke_refresh_tokens();
    let (status, body) = refresh(&client, &sandbox, &refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");

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
    let response = api_get(&client, &sandbox, &format!("Bearer {access}"), "/users").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = refresh(&client, &sandbox, &refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn client_authentication_by_basic_or_form_and_its_errors() {
    let sandbox = start(config()).await;
    let client = http();
    let token_url = format!("{}/oauth/token", sandbox.base_url());

    // Basic auth on the code exchange.
    let (code, verifier) = approved_code(&client, &sandbox).await;
    let response = client
        .post(&token_url)
        .basic_auth("seatscope-dev", Some("seatscope-dev-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::OK);

    // A wrong secret is invalid_client with 401.
    let response = client
        .post(&token_url)
        .basic_auth("seatscope-dev", Some("wrong"))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_client");

    // No secret at all: the registered client is confidential.
    let response = client
        .post(&token_url)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "seatscope-dev"),
            ("refresh_token", "x"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Unknown grant type and missing parameters.
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("grant_type", "password")], "unsupported_grant_type"),
        (&[], "invalid_request"),
        (&[("grant_type", "authorization_code")], "invalid_request"),
    ];
    for (form, error) in cases {
        let response = client
            .post(&token_url)
            .basic_auth("seatscope-dev", Some("seatscope-dev-secret"))
            .form(form)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], error, "{form:?}");
    }

    // A redirect_uri other than the authorized one is invalid_grant.
    let (code, verifier) = approved_code(&client, &sandbox).await;
    let response = client
        .post(&token_url)
        .basic_auth("seatscope-dev", Some("seatscope-dev-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/elsewhere"),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_grant");

    // Every POST /oauth/token counted, whatever the outcome: 1 + 1 + 1 + 3 + 1 + the helper's 0.
    assert_eq!(sandbox.token_requests(), 7);
    let stats: serde_json::Value = client
        .get(format!("{}/_sandbox/stats", sandbox.base_url()))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(stats["token_requests"], 7);
}

#[tokio::test]
async fn an_unknown_scope_is_granted_as_openid_only_and_cannot_read() {
    let sandbox = start(config()).await;
    let client = http();
    let pkce = pkce();
    let url = authorize_url(&sandbox, "s", &pkce.challenge).replace("scope=read", "scope=Read");
    let location = consent(&client, &url, "approve").await;
    let code = query_param(&location, "code").expect("code");
    let (status, body) = exchange(&client, &sandbox, &code, &pkce.verifier).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["scope"], "openid");
    let access = body["access_token"].as_str().unwrap_or_default();
    let response = api_get(&client, &sandbox, &format!("Bearer {access}"), "/users").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
