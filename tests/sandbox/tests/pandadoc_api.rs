//! The PandaDoc API over real HTTP: a naive client walking users, members, documents,
//! details and templates reproduces the ground truth; PandaDoc's limits and errors are
//! enforced.

mod support;

use std::collections::BTreeSet;

use reqwest::StatusCode;
use seatscope_sandbox::{PandaDocConfig, PandaDocGroundTruth};
use serde_json::{json, Value};
use support::pandadoc::*;

#[tokio::test]
async fn walking_documents_details_and_templates_reproduces_the_ground_truth() {
    // 10 days x 20 = 200 documents: a multiple of the page size, so the client needs the
    // empty third page to know it is done.
    let sandbox = start(PandaDocConfig {
        days: 10,
        events_per_day: 20,
        ..config()
    })
    .await;
    let client = http();
    let (documents, requests) = walk(&client, &sandbox, KEY, "/public/v1/documents", 100).await;
    assert_eq!(documents.len(), 200);
    assert_eq!(requests, 3, "two full pages and an empty one");
    let ids: BTreeSet<&str> = documents.iter().filter_map(|d| d["id"].as_str()).collect();
    assert_eq!(ids.len(), 200, "no document twice");

    let got = naive_daily(&client, &sandbox, KEY).await;
    let want = truth_daily(&sandbox);
    assert_eq!(got, want);
    let features: BTreeSet<&str> = want.keys().map(|(_, _, f)| f.as_str()).collect();
    assert_eq!(
        features,
        BTreeSet::from([
            "document_completed",
            "document_created",
            "document_sent",
            "template_created"
        ])
    );
    // Every event is inside the range.
    assert!(want
        .keys()
        .all(|(_, d, _)| d.as_str() >= "2026-03-22" && d.as_str() <= "2026-03-31"));
    // Requests: 3 document pages + 200 details + template pages + template details.
    let templates = want
        .iter()
        .filter(|((_, _, f), _)| f == "template_created")
        .map(|(_, c)| *c as u64)
        .sum::<u64>();
    let stats = sandbox.stats();
    assert_eq!(stats.api_requests_details, 200 + templates);
    assert_eq!(stats.rate_limited, 0);
}

#[tokio::test]
async fn the_default_account_walks_to_its_ground_truth_too() {
    let sandbox = start(config()).await;
    let client = http();
    let got = naive_daily(&client, &sandbox, KEY).await;
    assert_eq!(got, truth_daily(&sandbox));
    let documents: u32 = got
        .iter()
        .filter(|((_, _, f), _)| f == "document_created")
        .map(|(_, c)| *c)
        .sum();
    assert_eq!(documents, 12 * 30);
}

#[tokio::test]
async fn users_paging_returns_every_seat_and_the_removed_user_only_when_asked() {
    let sandbox = start(PandaDocConfig {
        users: 120,
        ..config()
    })
    .await;
    let client = http();
    let truth = sandbox.ground_truth();
    assert_eq!(truth.seats.len(), 120);

    // show_removed defaults to true: 121 users over 3 pages of 50.
    let mut all = Vec::new();
    for page in 1.. {
        let body = get_ok(
            &client,
            &sandbox,
            KEY,
            &format!("/public/v1/users?count=50&page={page}"),
        )
        .await;
        assert_eq!(body["total"], 121);
        let results = body["results"].as_array().expect("results").clone();
        let short = results.len() < 50;
        all.extend(results);
        if short {
            break;
        }
    }
    assert_eq!(all.len(), 121);
    let removed: Vec<&Value> = all
        .iter()
        .filter(|u| u["workspaces"].as_array().is_some_and(Vec::is_empty))
        .collect();
    assert_eq!(removed.len(), 1, "one user without a workspace membership");
    let seats: Vec<(String, String, String, String, String)> = all
        .iter()
        .filter(|u| u["workspaces"].as_array().is_some_and(|w| !w.is_empty()))
        .map(|u| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
            assert_eq!(u["workspaces"].as_array().map(Vec::len), Some(1));
            (
                s(&u["user_id"]),
                s(&u["email"]),
                format!("{} {}", s(&u["first_name"]), s(&u["last_name"])),
                s(&u["license"]),
                s(&u["workspaces"][0]["role"]),
            )
        })
        .collect();
    let want: Vec<_> = truth
        .seats
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                s.email.clone(),
                s.name.clone(),
                s.license.clone(),
                s.role.clone(),
            )
        })
        .collect();
    assert_eq!(seats, want);
    let owners: Vec<&Value> = all
        .iter()
        .filter(|u| u["is_organization_owner"] == true)
        .collect();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0]["license"], "Full");
    assert_eq!(owners[0]["workspaces"][0]["role"], "Admin");
    let licenses: BTreeSet<&str> = all.iter().filter_map(|u| u["license"].as_str()).collect();
    assert_eq!(
        licenses,
        BTreeSet::from(["Creator", "Full", "Guest", "Read-only", "eSignature"])
    );

    // show_removed=false: exactly the seats.
    let body = get_ok(
        &client,
        &sandbox,
        KEY,
        "/public/v1/users?show_removed=false&count=50&page=3",
    )
    .await;
    assert_eq!(body["total"], 120);
    assert_eq!(body["results"].as_array().map(Vec::len), Some(20));
    // Default count is 50, and a page past the end is empty.
    let body = get_ok(&client, &sandbox, KEY, "/public/v1/users").await;
    assert_eq!(body["results"].as_array().map(Vec::len), Some(50));
    let body = get_ok(&client, &sandbox, KEY, "/public/v1/users?page=9").await;
    assert_eq!(body["results"], json!([]));
}

#[tokio::test]
async fn members_are_the_seats_and_current_is_the_owner() {
    let sandbox = start(config()).await;
    let client = http();
    let truth = sandbox.ground_truth();
    let body = get_ok(&client, &sandbox, KEY, "/public/v1/members").await;
    let members = body["results"].as_array().expect("results");
    assert_eq!(members.len(), truth.seats.len());
    let workspace = members[0]["workspace"].clone();
    for (m, seat) in members.iter().zip(&truth.seats) {
        assert_eq!(m["user_id"], seat.id.as_str());
        assert_eq!(m["email"], seat.email.as_str());
        assert_eq!(m["user_license"], seat.license.as_str());
        assert_eq!(m["role"], seat.role.as_str());
        assert_eq!(m["is_active"], true);
        assert_eq!(m["workspace"], workspace);
        // The real field name (the spec's schema says `emails_verified`).
        assert!(m["email_verified"].is_boolean() && m.get("emails_verified").is_none());
        assert!(m["membership_id"].as_str().is_some_and(|id| id.len() == 22));
    }
    let current = get_ok(&client, &sandbox, KEY, "/public/v1/members/current").await;
    assert_eq!(current, members[0]);
    assert_eq!(current["user_id"], truth.seats[0].id.as_str());
}

#[tokio::test]
async fn date_filters_are_half_open_and_validated() {
    let sandbox = start(config()).await;
    let client = http();
    let ids = |body: Value| -> BTreeSet<String> {
        body["results"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|d| d["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let query = |q: &str| format!("/public/v1/documents?count=100&{q}");
    let day1 = ids(get_ok(
        &client,
        &sandbox,
        KEY,
        &query("created_from=2026-03-30T00:00:00Z&created_to=2026-03-31T00:00:00Z"),
    )
    .await);
    let day2 = ids(get_ok(
        &client,
        &sandbox,
        KEY,
        &query("created_from=2026-03-31T00:00:00Z&created_to=2026-04-01T00:00:00Z"),
    )
    .await);
    let both = ids(get_ok(
        &client,
        &sandbox,
        KEY,
        &query("created_from=2026-03-30T00:00:00Z&created_to=2026-04-01T00:00:00Z"),
    )
    .await);
    assert!(!day1.is_empty() && !day2.is_empty());
    assert!(day1.is_disjoint(&day2));
    assert_eq!(
        day1.union(&day2).cloned().collect::<BTreeSet<_>>(),
        both,
        "[from, to) windows tile"
    );
    // Offsets, naive date-times and bare dates name the same instants.
    let shifted = ids(get_ok(
        &client,
        &sandbox,
        KEY,
        &query("created_from=2026-03-30T02:00:00%2B02:00&created_to=2026-03-31"),
    )
    .await);
    assert_eq!(shifted, day1);

    // completed_* leaves out documents never completed; every result is completed.
    let completed = get_ok(
        &client,
        &sandbox,
        KEY,
        &query("completed_from=2026-03-01T00:00:00Z&completed_to=2026-04-01T00:00:00Z"),
    )
    .await;
    let results = completed["results"].as_array().expect("results");
    assert!(!results.is_empty());
    assert!(results
        .iter()
        .all(|d| d["status"] == "document.completed" && d["date_completed"].is_string()));
    // status=2 is the same set here (no other status has a completion date).
    let by_status = ids(get_ok(&client, &sandbox, KEY, &query("status=2")).await);
    assert_eq!(ids(completed), by_status);

    // modified_from beyond the range: nothing.
    let later = get_ok(
        &client,
        &sandbox,
        KEY,
        &query("modified_from=2026-04-01T00:00:00Z"),
    )
    .await;
    assert_eq!(later["results"], json!([]));

    // A bad date is a 400 naming the parameter.
    let (status, body) = json(
        api_get(
            &client,
            &sandbox,
            KEY,
            "/public/v1/documents?created_from=yesterday&modified_to=2026-13-01T00:00:00Z",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["type"], "validation_error");
    assert!(body["detail"]["created_from"][0].is_string());
    assert!(body["detail"]["modified_to"][0].is_string());
}

#[tokio::test]
async fn membership_and_ordering_filters() {
    let sandbox = start(config()).await;
    let client = http();
    // Default order: most recent status change first, stable across pages.
    let (all, _) = walk(&client, &sandbox, KEY, "/public/v1/documents", 100).await;
    assert_eq!(all.len(), 360);
    let (ascending, _) = walk(
        &client,
        &sandbox,
        KEY,
        "/public/v1/documents?order_by=date_created",
        37,
    )
    .await;
    let created: Vec<&str> = ascending
        .iter()
        .filter_map(|d| d["date_created"].as_str())
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]));
    let set = |v: &[Value]| -> BTreeSet<String> {
        v.iter()
            .filter_map(|d| d["id"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(set(&all), set(&ascending));
    let (descending, _) = walk(
        &client,
        &sandbox,
        KEY,
        "/public/v1/documents?order_by=-date_created",
        100,
    )
    .await;
    let mut reversed = ascending.clone();
    reversed.reverse();
    assert_eq!(descending, reversed);

    // membership_id selects the owner's (creator's) documents.
    let members = get_ok(&client, &sandbox, KEY, "/public/v1/members").await;
    let mut total = 0;
    for m in members["results"].as_array().expect("results") {
        let membership = m["membership_id"].as_str().expect("membership_id");
        let (docs, _) = walk(
            &client,
            &sandbox,
            KEY,
            &format!("/public/v1/documents?membership_id={membership}"),
            100,
        )
        .await;
        for d in docs.iter().take(3) {
            let id = d["id"].as_str().expect("id");
            let details = get_ok(
                &client,
                &sandbox,
                KEY,
                &format!("/public/v1/documents/{id}/details"),
            )
            .await;
            assert_eq!(details["created_by"]["membership_id"], membership);
        }
        total += docs.len();
    }
    assert_eq!(total, 360);
}

#[tokio::test]
async fn invalid_parameters_are_400_with_pandadocs_body() {
    let sandbox = start(config()).await;
    let client = http();
    let (status, body) =
        json(api_get(&client, &sandbox, KEY, "/public/v1/users?count=51").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({
            "type": "validation_error",
            "detail": { "count": ["Ensure this value is less than or equal to 50."] }
        })
    );
    for path in [
        "/public/v1/users?page=0",
        "/public/v1/users?count=ten",
        "/public/v1/users?show_removed=maybe",
        "/public/v1/documents?count=101",
        "/public/v1/documents?count=0",
        "/public/v1/documents?page=0",
        "/public/v1/documents?order_by=date",
        "/public/v1/documents?status=15",
        "/public/v1/documents?status__ne=draft",
        "/public/v1/templates?count=101",
        "/public/v1/templates?fields=everything",
    ] {
        let (status, body) = json(api_get(&client, &sandbox, KEY, path).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["type"], "validation_error", "{path}");
        assert!(body["detail"].is_object(), "{path}");
    }
    let (status, body) = json(
        api_get(
            &client,
            &sandbox,
            KEY,
            "/public/v1/documents?template_id=a&form_id=b",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["type"], "request_error");
    // At the maxima, fine.
    for path in [
        "/public/v1/users?count=50",
        "/public/v1/documents?count=100",
        "/public/v1/templates?count=100&fields=content_date_modified",
    ] {
        get_ok(&client, &sandbox, KEY, path).await;
    }
}

#[tokio::test]
async fn templates_list_and_details() {
    let sandbox = start(config()).await;
    let client = http();
    let (templates, _) = walk(&client, &sandbox, KEY, "/public/v1/templates", 10).await;
    assert_eq!(templates.len(), 30, "one template per twelve documents");
    for t in &templates {
        let keys: BTreeSet<&str> = t
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            BTreeSet::from(["date_created", "date_modified", "id", "name", "version"])
        );
    }
    let with_field = get_ok(
        &client,
        &sandbox,
        KEY,
        "/public/v1/templates?count=1&fields=content_date_modified",
    )
    .await;
    assert!(with_field["results"][0]["content_date_modified"].is_string());
    let seats: BTreeSet<String> = sandbox
        .ground_truth()
        .seats
        .into_iter()
        .map(|s| s.id)
        .collect();
    let id = templates[0]["id"].as_str().expect("id");
    let details = get_ok(
        &client,
        &sandbox,
        KEY,
        &format!("/public/v1/templates/{id}/details"),
    )
    .await;
    assert_eq!(details["id"], id);
    assert_eq!(details["date_created"], templates[0]["date_created"]);
    let creator = details["created_by"]["id"].as_str().expect("created_by.id");
    assert!(seats.contains(creator));
}

#[tokio::test]
async fn document_details_carry_creator_sender_and_dates_in_order() {
    let sandbox = start(config()).await;
    let client = http();
    let (documents, _) = walk(&client, &sandbox, KEY, "/public/v1/documents", 100).await;
    let mut statuses = BTreeSet::new();
    let mut sent_by_other = 0;
    for d in &documents {
        let id = d["id"].as_str().expect("id");
        let details = get_ok(
            &client,
            &sandbox,
            KEY,
            &format!("/public/v1/documents/{id}/details"),
        )
        .await;
        for key in [
            "name",
            "status",
            "date_created",
            "date_modified",
            "date_completed",
        ] {
            assert_eq!(details[key], d[key], "{key}");
        }
        statuses.insert(details["status"].as_str().unwrap_or_default().to_string());
        let created = details["date_created"].as_str().expect("date_created");
        match details["date_sent"].as_str() {
            Some(sent) => {
                assert!(sent >= created);
                assert!(details["sent_by"]["id"].is_string());
                if details["sent_by"]["id"] != details["created_by"]["id"] {
                    sent_by_other += 1;
                }
                if let Some(done) = details["date_completed"].as_str() {
                    assert!(done >= sent);
                }
            }
            None => {
                assert_eq!(details["status"], "document.draft");
                assert!(details["sent_by"].is_null() && details["date_completed"].is_null());
            }
        }
        assert!(details["recipients"]
            .as_array()
            .is_some_and(|r| !r.is_empty()));
    }
    assert!(sent_by_other > 0, "some documents are sent by a colleague");
    for status in [
        "document.draft",
        "document.sent",
        "document.viewed",
        "document.completed",
        "document.declined",
        "document.voided",
    ] {
        assert!(statuses.contains(status), "no {status}");
    }
}

#[tokio::test]
async fn the_list_limit_answers_429_with_pandadocs_body_and_no_headers() {
    let sandbox = start(PandaDocConfig {
        list_rate_per_minute: 5,
        details_rate_per_minute: 2,
        ..config()
    })
    .await;
    let client = http();
    for _ in 0..5 {
        let response = api_get(&client, &sandbox, KEY, "/public/v1/users?count=1").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = api_get(&client, &sandbox, KEY, "/public/v1/users?count=1").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    for (name, _) in response.headers() {
        let name = name.as_str();
        assert!(
            !name.contains("ratelimit") && !name.contains("rate-limit") && name != "retry-after",
            "unexpected header {name}"
        );
    }
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["type"], "request_error");
    let detail = body["detail"].as_str().expect("detail");
    let n: u64 = detail
        .strip_prefix("Request was throttled. Expected available in ")
        .and_then(|rest| {
            rest.strip_suffix(" seconds.")
                .or_else(|| rest.strip_suffix(" second."))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected detail {detail:?}"));
    assert!((55..=60).contains(&n), "{n}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2));

    // Per operation: the documents list has its own budget.
    let response = api_get(&client, &sandbox, KEY, "/public/v1/documents?count=1").await;
    assert_eq!(response.status(), StatusCode::OK);
    // Per user: an OAuth token of the same user (the owner) shares the users budget.
    let (access, _) = tokens(&client, &sandbox).await;
    let response = api_get(
        &client,
        &sandbox,
        &format!("Bearer {access}"),
        "/public/v1/users",
    )
    .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    // The details class has its own, lower limit.
    let list = get_ok(&client, &sandbox, KEY, "/public/v1/documents?count=3").await;
    let ids: Vec<&str> = list["results"]
        .as_array()
        .map(|r| r.iter().filter_map(|d| d["id"].as_str()).collect())
        .unwrap_or_default();
    for (i, id) in ids.iter().enumerate() {
        let response = api_get(
            &client,
            &sandbox,
            KEY,
            &format!("/public/v1/documents/{id}/details"),
        )
        .await;
        let want = if i < 2 {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(response.status(), want, "details request {i}");
    }
    let stats = sandbox.stats();
    assert_eq!(stats.rate_limited, 3);
    assert_eq!(stats.api_requests, 6 + 1 + 1 + 1 + 3);
    assert_eq!(stats.api_requests_details, 3);
    assert_eq!(stats.api_requests_list, 9);
}

#[tokio::test]
async fn missing_unknown_or_malformed_credentials_are_401() {
    let sandbox = start(config()).await;
    let client = http();
    let response = client
        .get(format!("{}/public/v1/documents", sandbox.base_url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({ "type": "authentication_error",
                "detail": "Authentication credentials were not provided." })
    );
    for auth in [
        "API-Key wrong",
        "Bearer nope",
        &format!("Bearer {API_KEY}"),
        &format!("Token {API_KEY}"),
        API_KEY,
    ] {
        let (status, body) =
            json(api_get(&client, &sandbox, auth, "/public/v1/members").await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth}");
        assert_eq!(body["type"], "authentication_error", "{auth}");
    }
    assert_eq!(sandbox.api_requests(), 6, "401s are counted too");
    // Without a configured key, API-Key auth is refused altogether.
    let keyless = start(PandaDocConfig {
        api_key: None,
        ..config()
    })
    .await;
    let response = api_get(&client, &keyless, KEY, "/public/v1/users").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unknown_ids_and_paths_are_404_and_the_sandbox_endpoints_serve_the_truth() {
    let sandbox = start(config()).await;
    let client = http();
    for path in [
        "/public/v1/documents/NoSuchDocument2345678/details",
        "/public/v1/templates/NoSuchTemplate2345678/details",
    ] {
        let (status, body) = json(api_get(&client, &sandbox, KEY, path).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(
            body,
            json!({ "type": "request_error", "detail": "Not found" })
        );
    }
    let response = client
        .get(format!("{}/no/such/path", sandbox.base_url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let served: PandaDocGroundTruth = client
        .get(format!("{}/_sandbox/ground-truth", sandbox.base_url()))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(served, sandbox.ground_truth());
    let sorted = served.daily.windows(2).all(|w| {
        (&w[0].date, &w[0].user_id, &w[0].feature) < (&w[1].date, &w[1].user_id, &w[1].feature)
    });
    assert!(sorted && served.daily.iter().all(|d| d.count > 0));
    let stats: seatscope_sandbox::PandaDocStats = client
        .get(format!("{}/_sandbox/stats", sandbox.base_url()))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(stats, sandbox.stats());
    assert_eq!(stats.api_requests, 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_same_config_serves_the_same_account() {
    let a = start(config()).await;
    let b = start(config()).await;
    assert_eq!(a.ground_truth(), b.ground_truth());
    let client = http();
    let page = "/public/v1/documents?count=5&order_by=date_created";
    assert_eq!(
        get_ok(&client, &a, KEY, page).await,
        get_ok(&client, &b, KEY, page).await
    );
}
