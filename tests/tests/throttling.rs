//! Route throttling as template.yaml declares it (`DefaultRouteSettings`,
//! `RouteSettings`), applied by the local gateway the way API Gateway applies it:
//! before the authorizer and the function, one token bucket per route for all clients.
//! The attack: a flood of random `GET /oauth/callback` (no sign-in, a DynamoDB call each
//! if it got through) is cut to the route's bucket; everything past it is 429.

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use seatscope_local::gateway::{TemplateRoutes, Throttle};
use seatscope_local::stack::{template_path, Stack, StackOptions};

#[test]
fn every_route_is_throttled_and_the_unauthenticated_ones_tighter() {
    let routes = TemplateRoutes::load(&template_path()).unwrap().routes;
    for r in &routes {
        assert!(r.throttle.is_some(), "{} has no throttle", r.key());
    }
    let throttle = |key: &str| {
        routes
            .iter()
            .find(|r| r.key() == key)
            .and_then(|r| r.throttle)
            .unwrap_or_else(|| panic!("no route {key}"))
    };
    let default = throttle("GET /api/overview");
    for key in [
        "GET /oauth/callback",
        "GET /connect/invite/{token}",
        "POST /connect/invite/{token}",
    ] {
        let t = throttle(key);
        assert!(
            t.rate_per_second < default.rate_per_second && t.burst < default.burst,
            "{key}: {t:?} is not tighter than the default {default:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_oauth_callbacks_is_cut_to_the_routes_bucket() {
    let stack = Stack::start(StackOptions::default())
        .await
        .expect("the local stack starts");
    let Throttle {
        rate_per_second,
        burst,
    } = stack
        .routes
        .routes
        .iter()
        .find(|r| r.key() == "GET /oauth/callback")
        .and_then(|r| r.throttle)
        .expect("the callback's throttle");
    let http = common::http();
    let api = stack.api_url();
    const SENT: usize = 2_000;
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..SENT)
        .map(|i| {
            let http = http.clone();
            let url = format!(
                "{api}/oauth/callback?state=flood-{i:08}-{}&code=x",
                rand::random::<u64>()
            );
            async move {
                http.get(url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let throttled = statuses.iter().filter(|&&s| s == 429).count();
    let through = statuses.iter().filter(|&&s| s != 429).count();
    let allowed = f64::from(burst) + rate_per_second * elapsed;
    println!(
        "{SENT} callbacks in {elapsed:.2} s: {through} reached the function, {throttled} got 429 \
         (bucket: {burst} + {rate_per_second}/s → at most {allowed:.0})"
    );
    assert!(
        statuses.iter().all(|&s| s != 0 && s < 500),
        "no transport error, no 5xx"
    );
    assert!(
        (through as f64) <= allowed + 1.0,
        "{through} callbacks reached the function; the bucket allows {allowed:.0}"
    );
    assert!(throttled > 0, "the flood was throttled");
    // The bucket refills: a person's callback a moment later gets through.
    tokio::time::sleep(Duration::from_secs_f64(2.0 / rate_per_second)).await;
    let status = http
        .get(format!("{api}/oauth/callback?state=later&code=x"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert_ne!(status, 429, "after the flood the route answers again");
    assert!(status < 500);
}
