//! Bad bearer tokens on every route of template.yaml that has the JWT authorizer, over
//! real HTTP against the local stack (whose gateway verifies tokens against the dev
//! issuer's discovery document and JWKS, as API Gateway's authorizer does): `alg: none`,
//! HS256 keyed with the issuer's public key, a tampered signature, expired, not yet
//! valid, another audience, another issuer — each refused with 401 before any function
//! runs — and a correctly signed token whose org claim carries `#` (which would reach
//! into another tenant's keys), refused by the core. Nothing is written by any of them.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use seatscope_local::stack::{Stack, StackOptions};
use serde_json::{json, Value};

/// A concrete request path for a route template.
fn concrete(path: &str) -> String {
    path.replace("{provider}", "pagerduty")
        .replace("{file}", "seats.csv")
        .replace("{token}", "x")
        .replace("{id}", "x")
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Every bad token, by name.
fn bad_tokens(stack: &Stack) -> Vec<(&'static str, String)> {
    let auth = &stack.auth;
    let good = |claims: serde_json::Map<String, Value>| auth.sign(&Value::Object(claims));
    let base = || auth.claims("acme", "mallory@acme.example", 600);
    let kid = auth.jwks()["keys"][0]["kid"].as_str().unwrap().to_string();

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&Value::Object(base()))
    );
    // The classic confusion: HMAC keyed with what the issuer publishes.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.clone());
    let public = auth.jwks()["keys"][0]["n"].as_str().unwrap().to_string();
    let hs256 = jsonwebtoken::encode(
        &header,
        &Value::Object(base()),
        &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    let valid = good(base());
    let mut tampered = valid.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let mut expired = base();
    expired.insert(
        "exp".into(),
        json!(expired["iat"].as_i64().unwrap() - 3_600),
    );
    let mut not_yet = base();
    not_yet.insert(
        "nbf".into(),
        json!(not_yet["iat"].as_i64().unwrap() + 3_600),
    );
    let mut other_aud = base();
    other_aud.insert("aud".into(), json!("someone-else"));
    let mut other_iss = base();
    other_iss.insert("iss".into(), json!("http://evil.example/dev-issuer"));
    vec![
        ("alg none", none),
        ("HS256 keyed with the public key", hs256),
        ("tampered signature", tampered),
        ("expired", good(expired)),
        ("not yet valid", good(not_yet)),
        ("another audience", good(other_aud)),
        ("another issuer", good(other_iss)),
        ("not a JWT", "not-a-jwt".to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bearer_tokens_are_refused_on_every_authorized_route_and_write_nothing() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("the local stack starts");
    // Something to protect: a connected org.
    connect(&stack, "acme").await.expect("connect");
    let before = all_items(&stack).await.unwrap();
    let secrets_before = secret_names(&stack).await.unwrap();
    let http = http();
    let api = stack.api_url();
    let routes: Vec<_> = stack
        .routes
        .routes
        .iter()
        .filter(|r| r.authorized)
        .cloned()
        .collect();
    assert!(routes.len() >= 10, "the template's authorized routes");
    let tokens = bad_tokens(&stack);
    let mut tried = 0;
    for route in &routes {
        let url = format!("{api}{}", concrete(&route.path));
        for (name, token) in &tokens {
            let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
            let resp = http
                .request(method, &url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(r#"{"api_key":"SG.x","inactive_days":30}"#)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            assert_eq!(status, 401, "{name} on {}: {status} {body}", route.key());
            assert_eq!(
                body,
                r#"{"message":"Unauthorized"}"#,
                "{name} on {}",
                route.key()
            );
            tried += 1;
        }
    }
    println!(
        "{tried} requests with bad tokens on {} routes: all 401",
        routes.len()
    );

    // Signed by the real issuer, but the org claim reaches for another tenant's keys.
    for org in [
        "acme#APP#pagerduty",
        "acme#",
        "#",
        "acme/../x",
        "ACME\u{0}x",
    ] {
        let token = stack.auth.sign(&Value::Object(stack.auth.claims(
            org,
            "mallory@acme.example",
            600,
        )));
        for route in &routes {
            let method = reqwest::Method::from_bytes(route.method.as_bytes()).unwrap();
            let resp = http
                .request(method, format!("{api}{}", concrete(&route.path)))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(r#"{"api_key":"SG.x","inactive_days":30}"#)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 401, "org {org:?} on {}: {body}", route.key());
            assert!(
                body["error"]["code"].is_string(),
                "org {org:?} on {}: a coded error, got {body}",
                route.key()
            );
        }
    }
    assert_eq!(
        all_items(&stack).await.unwrap(),
        before,
        "nothing was written"
    );
    assert_eq!(secret_names(&stack).await.unwrap(), secrets_before);
}
