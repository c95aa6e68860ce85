//! The SendGrid sandbox over real HTTP: auth and scopes, pagination, stats, credits, the
//! rate limit, determinism, and the ground truth a naive client reproduces.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use seatscope_sandbox::{
    SendGridConfig, SendGridCreditsTruth, SendGridDayTruth, SendGridGroundTruth, SendGridMetrics,
    SendGridSandbox, SendGridSandboxKey, SendGridSeatTruth,
};
use serde_json::{json, Value};
use support::sendgrid::*;

const ENDPOINTS: [&str; 6] = [
    "/v3/scopes",
    "/v3/teammates",
    "/v3/teammates/pending",
    "/v3/stats?start_date=2026-03-01",
    "/v3/user/credits",
    "/v3/user/username",
];

#[tokio::test]
async fn missing_malformed_unknown_or_revoked_keys_are_401_with_sendgrids_body() {
    let sandbox = start(config()).await;
    let client = http();
    let expected = json!({ "errors": [{ "field": null, "message": "authorization required" }] });
    for path in ENDPOINTS {
        let (status, body, headers) = json(get(&client, &sandbox, None, path).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body, expected, "{path}");
        assert!(headers.get("x-ratelimit-limit").is_none(), "{path}");
    }
    let unknown = SendGridSandboxKey::generate("not-configured", &[]).key;
    let (status, body, _) = json(get(&client, &sandbox, Some(&unknown), "/v3/scopes").await).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, expected.clone()));
    // Another scheme than Bearer, and a bare key.
    for auth in [format!("Token {}", full_key()), full_key(), "Bearer".into()] {
        let response = client
            .get(format!("{}/v3/scopes", sandbox.base_url()))
            .header("authorization", auth.clone())
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth}");
    }

    // Revoked through the sandbox endpoint: 204, then 401; unknown keys are 404.
    let key = nostats_key();
    let (status, _, _) = json(get(&client, &sandbox, Some(&key), "/v3/scopes").await).await;
    assert_eq!(status, StatusCode::OK);
    let revoke = |key: String| {
        let client = client.clone();
        let url = format!("{}/_sandbox/revoke-key", sandbox.base_url());
        async move {
            client
                .post(url)
                .json(&json!({ "key": key }))
                .send()
                .await
                .expect("POST revoke-key")
                .status()
        }
    };
    assert_eq!(revoke(key.clone()).await, StatusCode::NO_CONTENT);
    let (status, body, _) = json(get(&client, &sandbox, Some(&key), "/v3/scopes").await).await;
    assert_eq!((status, body), (StatusCode::UNAUTHORIZED, expected));
    assert_eq!(revoke(unknown).await, StatusCode::NOT_FOUND);
    // The other key is untouched; the library method works the same way.
    let (status, _, _) = json(get(&client, &sandbox, Some(&full_key()), "/v3/scopes").await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(sandbox.revoke_key(&full_key()));
    let (status, _, _) = json(get(&client, &sandbox, Some(&full_key()), "/v3/scopes").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_without_the_endpoints_scope_is_403_and_scopes_lists_each_keys_scopes() {
    let sandbox = start(config()).await;
    let client = http();
    let key = nostats_key();
    let (status, body, headers) = json(
        get(
            &client,
            &sandbox,
            Some(&key),
            "/v3/stats?start_date=2026-03-01",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({ "errors": [{ "field": null, "message": "access forbidden" }] })
    );
    assert!(header_u64(&headers, "x-ratelimit-remaining").is_some());
    // The same key reads everything else.
    for path in [
        "/v3/teammates",
        "/v3/teammates/pending",
        "/v3/user/credits",
        "/v3/user/username",
    ] {
        let (status, _, _) = json(get(&client, &sandbox, Some(&key), path).await).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }

    let (status, body, _) = json(get(&client, &sandbox, Some(&key), "/v3/scopes").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "scopes": SendGridSandboxKey::without_stats().scopes })
    );
    let (_, body, _) = json(get(&client, &sandbox, Some(&full_key()), "/v3/scopes").await).await;
    let scopes: BTreeSet<&str> = body["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for needed in [
        "teammates.read",
        "stats.read",
        "user.credits.read",
        "user.username.read",
    ] {
        assert!(scopes.contains(needed), "{needed} in {scopes:?}");
    }

    // A key with no scopes at all still reads its (empty) scopes, and nothing else.
    let bare = SendGridSandboxKey::generate("bare", &[]);
    let sandbox = start(SendGridConfig {
        api_keys: vec![bare.clone()],
        ..config()
    })
    .await;
    let (status, body, _) = json(get(&client, &sandbox, Some(&bare.key), "/v3/scopes").await).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "scopes": [] })));
    for path in &ENDPOINTS[1..] {
        let (status, _, _) = json(get(&client, &sandbox, Some(&bare.key), path).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
}

async fn teammates_page(
    client: &reqwest::Client,
    sandbox: &SendGridSandbox,
    query: &str,
) -> (Vec<Value>, Vec<(String, String, String)>) {
    let (status, body, headers) = json(
        get(
            client,
            sandbox,
            Some(&full_key()),
            &format!("/v3/teammates{query}"),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let link = headers
        .get("link")
        .and_then(|v| v.to_str().ok())
        .expect("a Link header");
    (
        body["result"].as_array().expect("result").clone(),
        parse_link(link),
    )
}

#[tokio::test]
async fn teammates_page_with_limit_and_offset_and_a_sendgrid_link_header() {
    let sandbox = start(config()).await; // 12 teammates
    let client = http();
    let base = sandbox.base_url();

    let (all, links) = teammates_page(&client, &sandbox, "").await;
    assert_eq!(all.len(), 12, "default limit 500 returns everyone");
    let rels: Vec<&str> = links.iter().map(|(rel, _, _)| rel.as_str()).collect();
    assert_eq!(rels, ["next", "prev", "last", "first"]);
    assert!(links.iter().all(|(_, url, title)| url
        == &format!("{base}/v3/teammates?limit=500&offset=0")
        && title == "1"));
    assert_eq!(all[0]["user_type"], "owner");
    let fields = [
        "username",
        "email",
        "first_name",
        "last_name",
        "user_type",
        "is_admin",
        "phone",
        "website",
        "address",
        "address2",
        "city",
        "state",
        "zip",
        "country",
    ];
    for t in &all {
        let keys: BTreeSet<&str> = t
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, fields.into_iter().collect(), "{t}");
        let admin = t["user_type"] != "teammate";
        assert_eq!(t["is_admin"], admin, "{t}");
    }

    // limit=5: pages 1..3, the last one short; Link titles are page numbers.
    let (page1, links) = teammates_page(&client, &sandbox, "?limit=5").await;
    assert_eq!(page1, all[..5]);
    let link = |links: &[(String, String, String)], rel: &str| {
        links
            .iter()
            .find(|(r, _, _)| r == rel)
            .map(|(_, url, title)| {
                (
                    query_param(url, "offset").unwrap_or_default(),
                    title.clone(),
                )
            })
            .expect("rel present")
    };
    assert_eq!(link(&links, "next"), ("5".into(), "2".into()));
    assert_eq!(link(&links, "prev"), ("0".into(), "1".into()));
    assert_eq!(link(&links, "last"), ("10".into(), "3".into()));
    assert_eq!(link(&links, "first"), ("0".into(), "1".into()));
    let (page3, links) = teammates_page(&client, &sandbox, "?limit=5&offset=10").await;
    assert_eq!(page3, all[10..]);
    assert_eq!(
        link(&links, "next"),
        ("10".into(), "3".into()),
        "next on the last page"
    );
    assert_eq!(link(&links, "prev"), ("5".into(), "2".into()));
    let (beyond, _) = teammates_page(&client, &sandbox, "?limit=5&offset=40").await;
    assert!(beyond.is_empty());

    // Following `next` until it points at the page just read visits every teammate once.
    let mut url = format!("{base}/v3/teammates?limit=4");
    let mut seen = Vec::new();
    loop {
        let query = url
            .split_once("/v3/teammates")
            .map(|(_, q)| q)
            .unwrap_or_default();
        let (page, links) = teammates_page(&client, &sandbox, query).await;
        seen.extend(page);
        let next = links
            .iter()
            .find(|(rel, _, _)| rel == "next")
            .expect("next")
            .1
            .clone();
        if query_param(&next, "offset") == query_param(&url, "offset").or(Some("0".into())) {
            break;
        }
        url = next;
        assert!(seen.len() <= 12, "pagination loops");
    }
    assert_eq!(seen, all);

    // Limits: above 500 is a 400 naming the field; junk is 400; 0 means the default.
    for bad in ["limit=501", "limit=abc", "limit=-1", "offset=x"] {
        let (status, body, headers) = json(
            get(
                &client,
                &sandbox,
                Some(&full_key()),
                &format!("/v3/teammates?{bad}"),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let field = bad.split('=').next().unwrap_or_default();
        assert_eq!(body["errors"][0]["field"], field, "{bad}: {body}");
        assert!(body["errors"][0]["message"].is_string());
        assert!(header_u64(&headers, "x-ratelimit-limit").is_some());
    }
    let (zero, _) = teammates_page(&client, &sandbox, "?limit=0").await;
    assert_eq!(zero.len(), 12);
    let (max, _) = teammates_page(&client, &sandbox, "?limit=500").await;
    assert_eq!(max.len(), 12);
}

#[tokio::test]
async fn pending_invitations_carry_token_scopes_and_an_epoch_expiration() {
    let sandbox = start(config()).await;
    let client = http();
    let (status, body, headers) = json(
        get(
            &client,
            &sandbox,
            Some(&full_key()),
            "/v3/teammates/pending",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("link").is_none());
    let invites = body["result"].as_array().expect("result");
    assert_eq!(invites.len(), 2);
    let end_noon = 1_774_958_400; // 2026-03-31T12:00:00Z
    for invite in invites {
        let keys: BTreeSet<&str> = invite
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            BTreeSet::from(["email", "scopes", "is_admin", "token", "expiration_date"])
        );
        let expiration = invite["expiration_date"].as_i64().expect("epoch seconds");
        assert!(
            expiration > end_noon && expiration <= end_noon + 7 * 86_400,
            "{invite}"
        );
        assert_eq!(invite["token"].as_str().map(str::len), Some(32));
        let admin = invite["is_admin"].as_bool().expect("is_admin");
        assert_eq!(
            invite["scopes"].as_array().expect("scopes").is_empty(),
            admin
        );
    }
    // Invitees are not teammates yet.
    let (teammates, _) = teammates_page(&client, &sandbox, "").await;
    for invite in invites {
        assert!(teammates.iter().all(|t| t["email"] != invite["email"]));
    }
    let (_, body, _) = json(
        get(
            &client,
            &start(SendGridConfig {
                pending_invites: 0,
                ..config()
            })
            .await,
            Some(&full_key()),
            "/v3/teammates/pending",
        )
        .await,
    )
    .await;
    assert_eq!(body, json!({ "result": [] }));
}

fn metrics(entry: &Value) -> SendGridMetrics {
    assert_eq!(entry["stats"].as_array().map(Vec::len), Some(1), "{entry}");
    serde_json::from_value(entry["stats"][0]["metrics"].clone()).expect("16 metrics")
}

#[tokio::test]
async fn stats_cover_every_day_of_the_range_with_zeros_outside_the_data() {
    let sandbox = start(config()).await;
    let client = http();
    let truth = sandbox.ground_truth();
    let key = full_key();
    let (status, body, headers) = json(
        get(
            &client,
            &sandbox,
            Some(&key),
            "/v3/stats?start_date=2026-02-25&end_date=2026-04-03&aggregated_by=day",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(header_u64(&headers, "x-ratelimit-reset").is_some());
    let days = body.as_array().expect("an array");
    assert_eq!(days.len(), 38, "2026-02-25 ..= 2026-04-03");
    assert_eq!(days[0]["date"], "2026-02-25");
    assert_eq!(days[37]["date"], "2026-04-03");
    let by_date: BTreeMap<String, SendGridMetrics> = days
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap_or_default().to_string(),
                metrics(d),
            )
        })
        .collect();
    assert_eq!(by_date.len(), 38, "dates are distinct");
    for d in &truth.daily {
        assert_eq!(by_date.get(&d.date), Some(&d.metrics), "{}", d.date);
    }
    for outside in ["2026-02-25", "2026-03-01", "2026-04-01", "2026-04-03"] {
        assert_eq!(by_date[outside], SendGridMetrics::default(), "{outside}");
    }
    let keys: BTreeSet<String> = days[10]["stats"][0]["metrics"]
        .as_object()
        .expect("metrics")
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys.len(), 16);

    // end_date defaults to today (UTC, by the sandbox's clock); aggregated_by to day.
    let today = seatscope_sandbox::clock::today();
    let start = today - time::Duration::days(10);
    let (_, body, _) = json(
        get(
            &client,
            &sandbox,
            Some(&key),
            &format!("/v3/stats?start_date={start}"),
        )
        .await,
    )
    .await;
    let list = body.as_array().expect("array");
    assert_eq!(
        list.last().and_then(|d| d["date"].as_str()),
        Some(format!("{today}").as_str())
    );
    assert_eq!(list[0]["date"], start.to_string());

    // Week and month buckets sum the days; limit/offset slice the buckets.
    let sum = |from: &str, to: &str| {
        let mut m = SendGridMetrics::default();
        for d in truth
            .daily
            .iter()
            .filter(|d| d.date.as_str() >= from && d.date.as_str() <= to)
        {
            m.add(&d.metrics);
        }
        m
    };
    let (_, weeks, _) = json(
        get(
            &client,
            &sandbox,
            Some(&key),
            "/v3/stats?start_date=2026-03-04&end_date=2026-03-31&aggregated_by=week",
        )
        .await,
    )
    .await;
    let weeks = weeks.as_array().expect("array");
    let dates: Vec<&str> = weeks.iter().filter_map(|w| w["date"].as_str()).collect();
    assert_eq!(
        dates,
        [
            "2026-03-04",
            "2026-03-09",
            "2026-03-16",
            "2026-03-23",
            "2026-03-30"
        ]
    );
    assert_eq!(metrics(&weeks[0]), sum("2026-03-04", "2026-03-08"));
    assert_eq!(metrics(&weeks[4]), sum("2026-03-30", "2026-03-31"));
    let (_, months, _) = json(
        get(
            &client,
            &sandbox,
            Some(&key),
            "/v3/stats?start_date=2026-02-20&end_date=2026-04-02&aggregated_by=month",
        )
        .await,
    )
    .await;
    let months = months.as_array().expect("array");
    assert_eq!(months.len(), 3);
    assert_eq!(months[1]["date"], "2026-03-01");
    assert_eq!(metrics(&months[1]), sum("2026-03-01", "2026-03-31"));
    assert_eq!(metrics(&months[0]), SendGridMetrics::default());
    let (_, sliced, _) = json(
        get(
            &client,
            &sandbox,
            Some(&key),
            "/v3/stats?start_date=2026-03-02&end_date=2026-03-31&limit=5&offset=10",
        )
        .await,
    )
    .await;
    let sliced = sliced.as_array().expect("array");
    assert_eq!(sliced.len(), 5);
    assert_eq!(sliced[0]["date"], "2026-03-12");
}

#[tokio::test]
async fn stats_refuse_a_missing_or_invalid_start_date_and_other_bad_parameters() {
    let sandbox = start(config()).await;
    let client = http();
    for (query, field) in [
        ("", "start_date"),
        ("?end_date=2026-03-31", "start_date"),
        ("?start_date=", "start_date"),
        ("?start_date=03/01/2026", "start_date"),
        ("?start_date=2026-02-30", "start_date"),
        ("?start_date=2026-3-1", "start_date"),
        ("?start_date=2026-03-01&end_date=tomorrow", "end_date"),
        ("?start_date=2026-03-10&end_date=2026-03-01", "end_date"),
        ("?start_date=2026-03-01&aggregated_by=hour", "aggregated_by"),
        ("?start_date=2026-03-01&limit=ten", "limit"),
        ("?start_date=1990-01-01&end_date=2026-03-01", "start_date"),
    ] {
        let (status, body, headers) = json(
            get(
                &client,
                &sandbox,
                Some(&full_key()),
                &format!("/v3/stats{query}"),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        let errors = body["errors"].as_array().expect("errors");
        assert_eq!(errors.len(), 1, "{body}");
        assert_eq!(errors[0]["field"], field, "{query}: {body}");
        assert!(
            errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert!(header_u64(&headers, "x-ratelimit-remaining").is_some());
    }
    let (_, body, _) = json(get(&client, &sandbox, Some(&full_key()), "/v3/stats").await).await;
    assert_eq!(
        body,
        json!({ "errors": [{ "field": "start_date", "message": "missing required argument: start_date" }] })
    );
}

#[tokio::test]
async fn credits_and_username_match_the_generated_account() {
    let sandbox = start(SendGridConfig {
        days: 45,
        ..config()
    })
    .await;
    let client = http();
    let truth = sandbox.ground_truth();
    let key = full_key();
    let (status, credits, _) =
        json(get(&client, &sandbox, Some(&key), "/v3/user/credits").await).await;
    assert_eq!(status, StatusCode::OK);
    let (_, stats, _) = json(
        get(
            &client,
            &sandbox,
            Some(&key),
            "/v3/stats?start_date=2026-03-01&end_date=2026-03-31",
        )
        .await,
    )
    .await;
    let march: u64 = stats
        .as_array()
        .expect("array")
        .iter()
        .map(|d| metrics(d).requests)
        .sum();
    assert_eq!(
        credits,
        json!({
            "remain": 100_000u64.saturating_sub(march),
            "total": 100_000,
            "overage": march.saturating_sub(100_000),
            "used": march,
            "last_reset": "2026-03-01",
            "next_reset": "2026-04-01",
            "reset_frequency": "monthly",
        })
    );
    assert_eq!(truth.credits.used, march);

    let (status, body, _) =
        json(get(&client, &sandbox, Some(&key), "/v3/user/username").await).await;
    assert_eq!(status, StatusCode::OK);
    let (teammates, _) = teammates_page(&client, &sandbox, "").await;
    assert_eq!(body["username"], teammates[0]["username"], "the owner");
    assert_eq!(teammates[0]["user_type"], "owner");
    assert!(body["user_id"].as_u64().is_some_and(|id| id > 0));
    assert_eq!(body.as_object().map(|o| o.len()), Some(2));
}

#[tokio::test]
async fn the_fourth_request_in_a_minute_is_429_with_epoch_reset_headers_per_key_and_endpoint() {
    let sandbox = start(SendGridConfig {
        rate_limit_per_minute: 3,
        ..config()
    })
    .await;
    let client = http();
    let key = full_key();
    let before = now_epoch();
    let mut resets = BTreeSet::new();
    for i in 0..3u64 {
        let (status, _, headers) =
            json(get(&client, &sandbox, Some(&key), "/v3/scopes").await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header_u64(&headers, "x-ratelimit-limit"), Some(3));
        assert_eq!(header_u64(&headers, "x-ratelimit-remaining"), Some(2 - i));
        resets.insert(header_u64(&headers, "x-ratelimit-reset").expect("reset"));
    }
    assert_eq!(resets.len(), 1, "one window, one reset time: {resets:?}");
    let reset = *resets.first().expect("reset");
    assert!(
        reset > before && reset <= now_epoch() + 61,
        "{reset} vs {before}"
    );

    let (status, body, headers) =
        json(get(&client, &sandbox, Some(&key), "/v3/scopes").await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body,
        json!({ "errors": [{ "field": null, "message": "too many requests" }] })
    );
    assert_eq!(header_u64(&headers, "x-ratelimit-limit"), Some(3));
    assert_eq!(header_u64(&headers, "x-ratelimit-remaining"), Some(0));
    assert_eq!(header_u64(&headers, "x-ratelimit-reset"), Some(reset));
    assert!(reset > now_epoch(), "the reset is in the future");

    // Another endpoint with the same key, and the same endpoint with another key, are fine.
    let (status, _, headers) =
        json(get(&client, &sandbox, Some(&key), "/v3/user/username").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header_u64(&headers, "x-ratelimit-remaining"), Some(2));
    let (status, _, _) =
        json(get(&client, &sandbox, Some(&nostats_key()), "/v3/scopes").await).await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(sandbox.rate_limited(), 1);
    assert_eq!(sandbox.api_requests(), 6);
    let stats: Value = client
        .get(format!("{}/_sandbox/stats", sandbox.base_url()))
        .send()
        .await
        .expect("GET stats")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        stats,
        json!({
            "api_requests": 6,
            "rate_limited": 1,
            "faults_injected": 0,
            "by_path": { "/v3/scopes": 5, "/v3/user/username": 1 },
        })
    );
}

#[tokio::test]
async fn unknown_routes_and_on_behalf_of_are_refused_in_sendgrids_shape() {
    let sandbox = start(config()).await;
    let client = http();
    let (status, body, _) =
        json(get(&client, &sandbox, Some(&full_key()), "/v3/teammates/x/y").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({ "errors": [{ "field": null, "message": "not found" }] })
    );
    let response = client
        .get(format!("{}/v3/teammates", sandbox.base_url()))
        .header("authorization", format!("Bearer {}", full_key()))
        .header("on-behalf-of", "some-subuser")
        .send()
        .await
        .expect("GET");
    let (status, body, _) = json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "on-behalf-of");
    assert_eq!(
        sandbox.requests_by_path().get("/v3/teammates/x/y"),
        Some(&1)
    );
}

/// Every endpoint's body for one sandbox.
async fn snapshot(sandbox: &SendGridSandbox) -> Vec<Value> {
    let client = http();
    let mut out = Vec::new();
    for path in [
        "/v3/teammates",
        "/v3/teammates/pending",
        "/v3/stats?start_date=2026-02-01&end_date=2026-03-31",
        "/v3/user/credits",
        "/v3/user/username",
        "/v3/scopes",
    ] {
        let (status, body, _) = json(get(&client, sandbox, Some(&full_key()), path).await).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        out.push(body);
    }
    out
}

#[tokio::test]
async fn the_same_seed_gives_the_same_account_and_another_seed_another() {
    let a = start(config()).await;
    let b = start(config()).await;
    let c = start(SendGridConfig {
        seed: 43,
        ..config()
    })
    .await;
    let (sa, sb, sc) = (snapshot(&a).await, snapshot(&b).await, snapshot(&c).await);
    assert_eq!(sa, sb);
    assert_eq!(a.ground_truth(), b.ground_truth());
    assert_ne!(sa[0], sc[0], "teammates differ");
    assert_ne!(sa[2], sc[2], "stats differ");
    assert_ne!(a.ground_truth(), c.ground_truth());
}

/// What a naive connector computes: walk the teammates by `limit`, read the invitations, the
/// stats of the range and the credits.
async fn naive_client(sandbox: &SendGridSandbox, first: &str, last: &str) -> SendGridGroundTruth {
    let client = http();
    let key = full_key();
    let mut seats = Vec::new();
    let limit = 5;
    let mut offset = 0;
    loop {
        let (page, _) =
            teammates_page(&client, sandbox, &format!("?limit={limit}&offset={offset}")).await;
        for t in &page {
            let text = |k: &str| t[k].as_str().unwrap_or_default().to_string();
            seats.push(SendGridSeatTruth {
                id: text("username"),
                email: text("email"),
                name: format!("{} {}", text("first_name"), text("last_name")),
                role: text("user_type"),
                invited: false,
            });
        }
        if page.len() < limit {
            break;
        }
        offset += limit;
    }
    let (_, pending, _) =
        json(get(&client, sandbox, Some(&key), "/v3/teammates/pending").await).await;
    for invite in pending["result"].as_array().expect("result") {
        let email = invite["email"].as_str().unwrap_or_default().to_string();
        seats.push(SendGridSeatTruth {
            id: email.clone(),
            email: email.clone(),
            name: email,
            role: "invited".into(),
            invited: true,
        });
    }
    let (_, stats, _) = json(
        get(
            &client,
            sandbox,
            Some(&key),
            &format!("/v3/stats?start_date={first}&end_date={last}&aggregated_by=day"),
        )
        .await,
    )
    .await;
    let daily = stats
        .as_array()
        .expect("array")
        .iter()
        .map(|d| SendGridDayTruth {
            date: d["date"].as_str().unwrap_or_default().to_string(),
            metrics: metrics(d),
        })
        .collect();
    let (_, c, _) = json(get(&client, sandbox, Some(&key), "/v3/user/credits").await).await;
    let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    SendGridGroundTruth {
        seats,
        daily,
        credits: SendGridCreditsTruth {
            total: n("total"),
            used: n("used"),
            remain: n("remain"),
            overage: n("overage"),
            last_reset: s("last_reset"),
            next_reset: s("next_reset"),
        },
    }
}

#[tokio::test]
async fn a_naive_client_walking_the_api_computes_exactly_the_ground_truth() {
    for cfg in [
        config(),
        SendGridConfig {
            seed: 7,
            teammates: 10, // a multiple of the page size: the last page is full
            pending_invites: 3,
            days: 60,
            emails_per_day: 5_000,
            ..config()
        },
        SendGridConfig {
            teammates: 1,
            pending_invites: 0,
            days: 1,
            ..config()
        },
    ] {
        let first = (cfg.end_date - time::Duration::days(i64::from(cfg.days) - 1)).to_string();
        let sandbox = start(cfg.clone()).await;
        let computed = naive_client(&sandbox, &first, LAST_DAY).await;
        let truth = sandbox.ground_truth();
        assert_eq!(computed, truth, "seed {}", cfg.seed);
        assert_eq!(
            truth.seats.len(),
            (cfg.teammates + cfg.pending_invites) as usize
        );
        assert_eq!(truth.daily.len(), cfg.days as usize);
        assert_eq!(
            truth.daily.first().map(|d| d.date.as_str()),
            Some(first.as_str())
        );
        let total: u64 = truth.daily.iter().map(|d| d.metrics.requests).sum();
        assert_eq!(total, u64::from(cfg.emails_per_day) * u64::from(cfg.days));

        // The HTTP ground truth is the same document.
        let served: SendGridGroundTruth = http()
            .get(format!("{}/_sandbox/ground-truth", sandbox.base_url()))
            .send()
            .await
            .expect("GET ground truth")
            .json()
            .await
            .expect("ground truth JSON");
        assert_eq!(served, truth);
    }
    assert_eq!(FIRST_DAY, "2026-03-02");
}

#[tokio::test]
async fn the_ground_truth_json_has_the_documented_shape() {
    let sandbox = start(config()).await;
    let body: Value = http()
        .get(format!("{}/_sandbox/ground-truth", sandbox.base_url()))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    let seat = &body["seats"][0];
    assert_eq!(
        seat.as_object()
            .map(|o| o.keys().cloned().collect::<BTreeSet<_>>()),
        Some(
            ["email", "id", "invited", "name", "role"]
                .map(String::from)
                .into()
        )
    );
    assert_eq!(seat["role"], "owner");
    let invited: Vec<&Value> = body["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .filter(|s| s["invited"] == true)
        .collect();
    assert_eq!(invited.len(), 2);
    assert!(invited
        .iter()
        .all(|s| s["role"] == "invited" && s["id"] == s["email"]));
    let day = &body["daily"][0];
    assert_eq!(day["date"], FIRST_DAY);
    assert_eq!(
        day.as_object().map(|o| o.len()),
        Some(17),
        "date + 16 metrics"
    );
    assert!(day["requests"].as_u64().is_some() && day["delivered"].as_u64().is_some());
    for k in [
        "total",
        "used",
        "remain",
        "overage",
        "last_reset",
        "next_reset",
    ] {
        assert!(!body["credits"][k].is_null(), "{k}");
    }
}

#[tokio::test]
async fn the_cli_prints_its_url_and_serves_until_killed() {
    use tokio::io::AsyncBufReadExt;
    let exe = env!("CARGO_BIN_EXE_sandbox");
    let mut child = tokio::process::Command::new(exe)
        .args([
            "sendgrid",
            "--port",
            "0",
            "--seed",
            "5",
            "--teammates",
            "4",
            "--days",
            "3",
            "--emails-per-day",
            "10",
            "--end-date",
            "2026-03-31",
            "--api-key",
            "cli-key",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the sandbox binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("a line within 30 s")
        .expect("stdout readable")
        .expect("one line");
    let url = line
        .strip_prefix("sendgrid sandbox listening on ")
        .expect("the documented line");
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let truth: SendGridGroundTruth = http()
        .get(format!("{url}/_sandbox/ground-truth"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(truth.seats.len(), 4 + 2);
    assert_eq!(truth.daily.len(), 3);
    let status = http()
        .get(format!("{url}/v3/teammates"))
        .bearer_auth("cli-key")
        .send()
        .await
        .expect("GET")
        .status();
    assert_eq!(status, StatusCode::OK);
    child.kill().await.expect("kill our child");

    let usage = tokio::process::Command::new(exe)
        .args(["sendgrid", "--bogus", "1"])
        .output()
        .await
        .expect("runs");
    assert_eq!(usage.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&usage.stderr).contains("usage: sandbox sendgrid"));
}
