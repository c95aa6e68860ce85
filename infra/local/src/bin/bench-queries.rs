//! `cargo xtask bench-queries`' measured process: seeds one org with `--apps` apps
//! (the first is PagerDuty itself, so the page can show it; the others are copies
//! of its catalog entry), each with `--seats` seats and `--days` daily rollups, then
//! times the dashboard-api handler (routing, queries, JSON encoding; a release
//! build, as in Lambda) on API Gateway v2 events against DynamoDB Local:
//! the overview, the app page's data for 12 months, and the seat list; and in a
//! second org, 10k people × 3 apps (each person a seat in each, the emails in other
//! letter cases per app), the people list (`GET /api/people`): warm, cold (the kept
//! list forgotten, as a new Lambda instance) from the stored people snapshot, and
//! cold with the snapshot deleted (rebuilt and written back); and its CSV.
//! Prints a Markdown table and one JSON line; asserts nothing.
//!
//! Environment: the functions' variables plus `SEATSCOPE_LOCAL_DYNAMODB` and
//! `SEATSCOPE_LOCAL_MOTO` (as `bench-sync`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use rand::{Rng as _, SeedableRng as _};
use seatscope_core::config::Config;
use seatscope_core::domain::catalog::{AuthMode, Catalog};
use seatscope_core::domain::settings::AppSettings;
use seatscope_core::domain::{day, DailyRollup, OrgId, Seat, SeatStatus};
use seatscope_core::ops::queries::people;
use seatscope_core::ops::{settings, summary};
use seatscope_core::store::ConnectionGrant;
use seatscope_core::Deps;
use seatscope_local::services::local_sdk_config;

const ORG: &str = "bench-queries";
/// The org of the people case: `PEOPLE` people, each with a seat in 3 apps.
const PEOPLE_ORG: &str = "bench-people";
const PEOPLE: usize = 10_000;
/// Unmeasured requests first: DynamoDB Local's JVM compiles its hot paths.
const WARM_UP: usize = 30;

struct Options {
    apps: usize,
    seats: usize,
    days: i64,
    runs: usize,
}

fn parse() -> anyhow::Result<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str, default: usize| -> anyhow::Result<usize> {
        match args.iter().position(|a| a == name) {
            Some(i) => args
                .get(i + 1)
                .with_context(|| format!("{name} needs a value"))?
                .replace('_', "")
                .parse()
                .with_context(|| format!("{name} must be a number")),
            None => Ok(default),
        }
    };
    Ok(Options {
        apps: value("--apps", 50)?.max(1),
        seats: value("--seats", 10_000)?,
        days: value("--days", 365)? as i64,
        runs: value("--runs", 200)?.max(1),
    })
}

/// The catalog with `n` apps: PagerDuty, then copies of it named app-02 … app-NN.
fn catalog_of(catalog: &Catalog, n: usize) -> anyhow::Result<Catalog> {
    let pagerduty = catalog.get("pagerduty")?.clone();
    let mut providers = vec![pagerduty.clone()];
    for i in 2..=n {
        let mut p = pagerduty.clone();
        p.id = format!("app-{i:02}");
        p.name = format!("App {i:02}");
        providers.push(p);
    }
    Ok(serde_json::from_value(
        serde_json::json!({ "provider": providers }),
    )?)
}

/// Writes `items` 500 at a time with `put` (the store's typed batch writes), 8 at once.
async fn put_many<'a, T: Sync, F, Fut>(items: &'a [T], put: F) -> anyhow::Result<()>
where
    F: Fn(&'a [T]) -> Fut,
    Fut: std::future::Future<Output = seatscope_core::Result<()>>,
{
    let mut writes = futures::stream::iter(items.chunks(500))
        .map(put)
        .buffer_unordered(8);
    while let Some(done) = writes.next().await {
        done?;
    }
    Ok(())
}

async fn seed(deps: &Deps, o: &Options) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let today = now.date();
    let features = deps.config.catalog.get("pagerduty")?.features.clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let started = Instant::now();
    let org = OrgId::parse(ORG)?;
    for (i, provider) in deps.config.catalog.providers().iter().enumerate() {
        let data = deps.store.app_data(&org, &provider.id);
        save_bench_connection(deps, &org, &provider.id, now).await?;
        let seats: Vec<Seat> = (0..o.seats)
            .map(|s| {
                let last = (rng.gen_range(0..10) < 8)
                    .then(|| day(today - time::Duration::days(rng.gen_range(0..120))));
                Seat {
                    seat_id: format!("P{s:06}"),
                    email: format!("user{s}@bench.example"),
                    name: format!("User {s}"),
                    role: if s % 20 == 0 { "admin" } else { "user" }.into(),
                    license: Some("full".into()),
                    status: SeatStatus::Active,
                    first_seen_at: "2025-01-01T00:00:00Z".into(),
                    last_seen_at: seatscope_core::domain::rfc3339(now),
                    active_days_30: Some(rng.gen_range(0..=30)),
                    last_response_on: None,
                    last_activity_on: last,
                    added_after_import: false,
                    on_call: None,
                }
            })
            .collect();
        put_many(&seats, |chunk| data.put_seats(chunk)).await?;
        let rollups: Vec<DailyRollup> = (0..o.days)
            .map(|d| {
                let date = today - time::Duration::days(d);
                let mau = rng.gen_range(o.seats as u32 / 2..=o.seats as u32);
                DailyRollup {
                    date: day(date),
                    seats: o.seats as u32,
                    dau: Some(mau / 5),
                    wau: Some(mau / 2),
                    mau: Some(mau),
                    features: features
                        .iter()
                        .map(|f| (f.clone(), rng.gen_range(0..5_000)))
                        .collect::<BTreeMap<_, _>>(),
                    as_of: seatscope_core::domain::rfc3339(now),
                }
            })
            .collect();
        put_many(&rollups, |chunk| data.put_rollups(chunk)).await?;
        // Half the apps have a price and an exemption list; each gets its summary
        // the way a sync or a settings change computes it.
        if i % 2 == 0 {
            let settings = AppSettings {
                seat_price: Some(21.0),
                exempt_seats: (0..20).map(|s| format!("P{s:06}")).collect(),
                ..AppSettings::default()
            };
            let admin = seatscope_core::domain::Caller::member(&org, "bench")
                .admin_for(seatscope_core::domain::audit::Action::Settings)?;
            settings::save_settings(&deps.store, &deps.config, &admin, provider, settings).await?;
        } else {
            summary::refresh_summary(&deps.store, &org, provider, Some(&seats), now).await?;
        }
        eprintln!(
            "  seeded {}/{} apps ({} seats, {} days each) in {:.0} s",
            i + 1,
            deps.config.catalog.providers().len(),
            o.seats,
            o.days,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The people case: 3 apps (the catalog's first three) in `PEOPLE_ORG`, each with a
/// seat for every one of `PEOPLE` people (the email's letter case differs per app;
/// a few seats per app have no email), written as a sync does: the seat items, then
/// the summary with its seat-list snapshot, then the org's people snapshot.
async fn seed_people(deps: &Deps) -> anyhow::Result<()> {
    let now = deps.config.clock.now();
    let today = now.date();
    let org = OrgId::parse(PEOPLE_ORG)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let started = Instant::now();
    for (i, provider) in deps.config.catalog.providers().iter().take(3).enumerate() {
        save_bench_connection(deps, &org, &provider.id, now).await?;
        let seats: Vec<Seat> = (0..PEOPLE + 5)
            .map(|s| {
                let last = (rng.gen_range(0..10) < 7)
                    .then(|| day(today - time::Duration::days(rng.gen_range(0..120))));
                let email = match (s >= PEOPLE, i) {
                    (true, _) => String::new(),
                    (false, 0) => format!("person{s}@people.example"),
                    (false, 1) => format!("Person{s}@People.example"),
                    (false, _) => format!(" PERSON{s}@PEOPLE.EXAMPLE"),
                };
                Seat {
                    seat_id: format!("P{s:06}"),
                    email,
                    name: format!("Person {s}"),
                    role: "user".into(),
                    license: Some(if s % 4 == 0 { "stakeholder" } else { "full" }.into()),
                    status: SeatStatus::Active,
                    first_seen_at: "2025-01-01T00:00:00Z".into(),
                    last_seen_at: seatscope_core::domain::rfc3339(now),
                    active_days_30: Some(rng.gen_range(0..=30)),
                    last_response_on: None,
                    last_activity_on: last,
                    added_after_import: false,
                    on_call: None,
                }
            })
            .collect();
        let data = deps.store.app_data(&org, &provider.id);
        put_many(&seats, |chunk| data.put_seats(chunk)).await?;
        if i < 2 {
            let settings = AppSettings {
                seat_price: Some(21.0),
                license_prices: BTreeMap::from([("stakeholder".to_string(), 0.0)]),
                ..AppSettings::default()
            };
            let admin = seatscope_core::domain::Caller::member(&org, "bench")
                .admin_for(seatscope_core::domain::audit::Action::Settings)?;
            settings::save_settings(&deps.store, &deps.config, &admin, provider, settings).await?;
        }
        // The bench's catalog (its apps are copies of PagerDuty under other ids).
        summary::refresh_summary_in(
            &deps.store,
            Some(&deps.config.catalog),
            &org,
            provider,
            Some(&seats),
            now,
        )
        .await?;
    }
    eprintln!(
        "  seeded {PEOPLE} people × 3 apps in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// An API Gateway v2 event for `GET path?query`, with the authorizer's claims.
fn event(route: &str, path: &str, query: &str, params: &[(&str, &str)]) -> String {
    event_in(ORG, route, path, query, params)
}

/// The same in `org`.
fn event_in(org: &str, route: &str, path: &str, query: &str, params: &[(&str, &str)]) -> String {
    let params: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
        .collect();
    let query_map: serde_json::Map<String, serde_json::Value> =
        url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), serde_json::json!(v)))
            .collect();
    serde_json::json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "bench.local"},
        "queryStringParameters": query_map,
        "pathParameters": params,
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "bench.local",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench", "routeKey": route, "stage": "$default",
            "time": "23/Nov/2026:00:00:00 +0000", "timeEpoch": 0,
            "authorizer": {"jwt": {"claims": {"sub": "bench", "org_id": org}, "scopes": null}}
        },
        "isBase64Encoded": false
    })
    .to_string()
}

/// A people-list cursor (the page after `email`), as the API gives it back.
fn cursor_of(email: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(email)
}

struct Measured {
    label: String,
    times: Vec<Duration>,
    bytes: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn measure(
    deps: &Deps,
    label: &str,
    runs: usize,
    make: impl Fn(usize) -> String,
) -> anyhow::Result<Measured> {
    measure_prepared(deps, label, runs, || async { Ok(()) }, make).await
}

/// [`measure`] with `prepare` run (untimed) before each request.
async fn measure_prepared<Fut>(
    deps: &Deps,
    label: &str,
    runs: usize,
    prepare: impl Fn() -> Fut,
    make: impl Fn(usize) -> String,
) -> anyhow::Result<Measured>
where
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    for i in 0..runs + WARM_UP {
        prepare().await?;
        let req = lambda_http::request::from_str(&make(i))?;
        let started = Instant::now();
        let resp = dashboard_api::handle(deps, req)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let took = started.elapsed();
        anyhow::ensure!(
            resp.status() == 200,
            "{label}: status {} {:?}",
            resp.status(),
            std::str::from_utf8(resp.body().as_ref()).unwrap_or("")
        );
        bytes = resp.body().as_ref().len();
        if i >= WARM_UP {
            times.push(took);
        }
    }
    times.sort();
    Ok(Measured {
        label: label.into(),
        times,
        bytes,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = parse()?;
    let endpoint = |k: &str| std::env::var(k).with_context(|| format!("{k} is required"));
    let dynamodb = aws_sdk_dynamodb::Client::new(
        &local_sdk_config(&endpoint("SEATSCOPE_LOCAL_DYNAMODB")?).await,
    );
    let secrets = aws_sdk_secretsmanager::Client::new(
        &local_sdk_config(&endpoint("SEATSCOPE_LOCAL_MOTO")?).await,
    );
    let mut config = Config::from_env()?;
    config.catalog = catalog_of(&config.catalog, o.apps)?;
    let deps = Deps::from_clients(config, dynamodb, secrets)?;
    let started = Instant::now();
    eprintln!(
        "bench-queries: seeding {} apps × {} seats × {} days …",
        o.apps, o.seats, o.days
    );
    seed(&deps, &o).await?;
    seed_people(&deps).await?;
    let seeded = started.elapsed();
    let ids: Vec<String> = deps
        .config
        .catalog
        .providers()
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let people_org = &OrgId::parse(PEOPLE_ORG)?;
    let store = &deps.store;
    let sources = people_sources(&deps, people_org).await?;
    let today = time::OffsetDateTime::now_utc().date();
    let from = day(today - time::Duration::days(364));
    let to = day(today);
    eprintln!("bench-queries: timing {} requests of each kind …", o.runs);
    let results = vec![
        measure(&deps, "overview", o.runs, |_| {
            event("GET /api/overview", "/api/overview", "", &[])
        })
        .await?,
        measure(&deps, "app detail (12 months)", o.runs, |i| {
            let id = &ids[i % ids.len()];
            event(
                "GET /api/apps/{provider}",
                &format!("/api/apps/{id}"),
                &format!("from={from}&to={to}"),
                &[("provider", id)],
            )
        })
        .await?,
        measure(&deps, "seat list", o.runs.min(50), |i| {
            let id = &ids[i % ids.len()];
            event(
                "GET /api/apps/{provider}/seats",
                &format!("/api/apps/{id}/seats"),
                "",
                &[("provider", id)],
            )
        })
        .await?,
        measure(&deps, "people, 10k × 3 apps (page of 100)", o.runs, |i| {
            // Pages all over the list, as a reader paging through it does.
            let query = match i % 4 {
                0 => String::new(),
                n => format!(
                    "cursor={}",
                    cursor_of(&format!("person{}@people.example", n * 2000))
                ),
            };
            event_in(PEOPLE_ORG, "GET /api/people", "/api/people", &query, &[])
        })
        .await?,
        measure(
            &deps,
            "people, holds 2+ apps active in none",
            o.runs,
            |_| {
                event_in(
                    PEOPLE_ORG,
                    "GET /api/people",
                    "/api/people",
                    "min_apps=2&active_in_none=true",
                    &[],
                )
            },
        )
        .await?,
        measure_prepared(
            &deps,
            "people, cold: stored snapshot read (page of 100)",
            o.runs,
            || async {
                // As the first request of a Lambda instance, or the first after a
                // sync or settings change (which rewrote the snapshot).
                people::forget_joined();
                Ok(())
            },
            |_| event_in(PEOPLE_ORG, "GET /api/people", "/api/people", "", &[]),
        )
        .await?,
        measure_prepared(
            &deps,
            "people, cold: list rebuilt, snapshot written back (page of 100)",
            o.runs.min(50),
            move || async move {
                // As the first request of a new UTC day, or one without a stored
                // snapshot at the current version.
                people::forget_joined();
                store.delete_people_snapshot(people_org).await?;
                Ok(())
            },
            |_| event_in(PEOPLE_ORG, "GET /api/people", "/api/people", "", &[]),
        )
        .await?,
        measure(&deps, "people CSV (10k rows)", o.runs.min(50), |_| {
            event_in(
                PEOPLE_ORG,
                "GET /api/people/export.csv",
                "/api/people/export.csv",
                "",
                &[],
            )
        })
        .await?,
    ];
    println!(
        "\n### Query API on DynamoDB Local: {} apps × {} seats × {} days (seeded in {:.0} s)\n",
        o.apps,
        o.seats,
        o.days,
        seeded.as_secs_f64()
    );
    println!("| request | runs | p50 ms | p99 ms | max ms | response |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut json = serde_json::Map::new();
    for m in &results {
        let (p50, p99) = (percentile(&m.times, 0.5), percentile(&m.times, 0.99));
        let max = m.times.last().map_or(0.0, |t| t.as_secs_f64() * 1000.0);
        println!(
            "| {} | {} | {p50:.1} | {p99:.1} | {max:.1} | {:.0} KB |",
            m.label,
            m.times.len(),
            m.bytes as f64 / 1024.0
        );
        json.insert(
            m.label.clone(),
            serde_json::json!({"p50_ms": p50, "p99_ms": p99, "runs": m.times.len(), "bytes": m.bytes}),
        );
    }
    println!("\n{}", serde_json::Value::Object(json));
    println!("\npeople list's source, cold, after seeding: {sources}");
    Ok(())
}

/// Where a cold people request's list comes from right after seeding (the snapshot
/// the last app's summary refresh wrote), then with the snapshot deleted, then again:
/// what the cold rows measure.
async fn people_sources(deps: &Deps, org: &OrgId) -> anyhow::Result<String> {
    let caller = seatscope_core::domain::Caller::member(org, "bench");
    let query = people::PeopleQuery::parse(people::PeopleFilter::default(), None, None)?;
    let mut seen = Vec::new();
    for delete in [false, true, false] {
        people::forget_joined();
        if delete {
            deps.store.delete_people_snapshot(org).await?;
        }
        let (_, source) =
            people::people_with_source(&deps.store, &deps.config, &caller, &query).await?;
        seen.push(format!("{source:?}"));
    }
    anyhow::ensure!(
        seen == ["Stored", "Rebuilt", "Stored"],
        "the people snapshot was not used as expected: {seen:?}"
    );
    Ok(format!(
        "{}; with the snapshot deleted: {}; next: {}",
        seen[0], seen[1], seen[2]
    ))
}

/// A connection item for `provider` as the bench's admin would have made it.
async fn save_bench_connection(
    deps: &Deps,
    org: &OrgId,
    provider: &str,
    now: time::OffsetDateTime,
) -> anyhow::Result<()> {
    let secret_name = format!("{}/{org}/{provider}", deps.config.secret_prefix);
    deps.store
        .save_connection(
            &ConnectionGrant {
                org,
                provider,
                auth_mode: AuthMode::ApiKey,
                secret_name: &secret_name,
                connected_by: "bench",
                invited_by: None,
                vendor_account: Some("bench"),
                vendor_account_id: None,
                scopes: None,
                now,
            },
            &seatscope_core::domain::audit::AuditScope::tool(
                org,
                seatscope_core::domain::audit::Action::ApiKey,
                now,
            )
            .done(Default::default()),
        )
        .await?;
    Ok(())
}
