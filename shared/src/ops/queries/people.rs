//! People across apps: every connected app's current seats joined by normalized email
//! (trimmed, lower-cased) into one row per person — the apps they hold, each seat's
//! license, status, last active day, active days and monthly cost, and what all their
//! seats cost a month. Seats without an email are not guessed into a person: they stay
//! with their app and are counted (`unmatched_seats`).
//!
//! Read like the seat list: each app's settings, summary and the seat-list snapshot
//! written with the summary (gzipped, 1,000 seats an item), all apps at once, then
//! joined in memory. Inactive is the seat list's own rule (`domain::rules::seat_flags`)
//! under each app's settings; nothing here redefines it.
//!
//! Reading and joining three 10k-seat snapshots costs about 350 ms on DynamoDB Local,
//! so the joined list is kept in the process (the Lambda instance) with what it was
//! built from: the connected apps, each app's summary version (`computed_at`, written
//! anew by every sync and settings change) and settings, and the UTC day. Every
//! request reads those (a Query, then two GetItems per app, all at once) and rebuilds
//! the list when any differs, so an answer is never older than the stored summaries.
//! `GET /api/people` (paged) and `GET /api/people/export.csv` (every row).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use time::Date;

use crate::config::Config;
use crate::domain::caller::Caller;
use crate::domain::catalog::{Pricing, Provider};
use crate::domain::metrics;
use crate::domain::org::OrgId;
use crate::domain::rules::seat_flags;
use crate::domain::seat::{Seat, SeatStatus};
use crate::domain::settings::{AppSettings, DEFAULT_CURRENCY};
use crate::domain::time::parse_day;
use crate::error::{Error, Result};
use crate::ops::export::text_cell;
use crate::store::{DynamoDbStore, StoredSummary};

pub const DEFAULT_PEOPLE: usize = 100;
pub const MAX_PEOPLE: usize = 500;
/// The longest `q` accepted, in characters.
pub const MAX_Q: usize = 100;
/// The largest `min_apps` accepted (more apps than any catalog holds matches nobody).
pub const MAX_MIN_APPS: u32 = 100;
/// Which people a list or export holds. Filters combine (all must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeopleFilter {
    /// Inactive (the app's own rule) in every app they hold.
    pub inactive_everywhere: bool,
    /// Active in none of the apps they hold (each app's activity known).
    pub active_in_none: bool,
    /// Holding seats in at least this many apps.
    pub min_apps: Option<u32>,
    /// Lower-cased; a substring of the email or the name.
    pub q: Option<String>,
}

/// What `GET /api/people` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeopleQuery {
    pub filter: PeopleFilter,
    /// The normalized email the previous page ended at: this page starts after it.
    pub after: Option<String>,
    pub limit: usize,
}

fn flag(name: &str, code: &'static str, v: Option<&str>) -> Result<bool> {
    match v {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(Error::bad_request(
            code,
            format!("{name} must be 'true' or 'false'"),
        )),
    }
}

impl PeopleFilter {
    pub fn parse(
        inactive_everywhere: Option<&str>,
        active_in_none: Option<&str>,
        min_apps: Option<&str>,
        q: Option<&str>,
    ) -> Result<PeopleFilter> {
        let min_apps = match min_apps {
            None => None,
            Some(v) => Some(
                v.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_MIN_APPS).contains(n))
                    .ok_or_else(|| {
                        Error::bad_request(
                            "invalid_min_apps",
                            format!("min_apps must be a whole number from 1 to {MAX_MIN_APPS}"),
                        )
                    })?,
            ),
        };
        let q = match q {
            Some(q) if q.chars().count() > MAX_Q => {
                return Err(Error::bad_request(
                    "invalid_q",
                    format!("q must be at most {MAX_Q} characters"),
                ))
            }
            Some(q) if q.chars().any(char::is_control) => {
                return Err(Error::bad_request(
                    "invalid_q",
                    "q must not contain control characters",
                ))
            }
            Some(q) => Some(q.trim().to_lowercase()).filter(|q| !q.is_empty()),
            None => None,
        };
        Ok(PeopleFilter {
            inactive_everywhere: flag(
                "inactive_everywhere",
                "invalid_inactive_everywhere",
                inactive_everywhere,
            )?,
            active_in_none: flag("active_in_none", "invalid_active_in_none", active_in_none)?,
            min_apps,
            q,
        })
    }

    fn keeps(&self, p: &Person) -> bool {
        (!self.inactive_everywhere || p.inactive_everywhere)
            && (!self.active_in_none || p.active_in_none)
            && self.min_apps.is_none_or(|n| p.apps_held >= n as usize)
            && self
                .q
                .as_deref()
                .is_none_or(|q| p.email.contains(q) || p.name.to_lowercase().contains(q))
    }
}

impl PeopleQuery {
    pub fn parse(filter: PeopleFilter, cursor: Option<&str>, limit: Option<&str>) -> Result<Self> {
        let after = cursor.map(decode_cursor).transpose()?;
        let limit = match limit {
            None => DEFAULT_PEOPLE,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_PEOPLE).contains(l))
                .ok_or_else(|| {
                    Error::bad_request(
                        "invalid_limit",
                        format!("limit must be a whole number from 1 to {MAX_PEOPLE}"),
                    )
                })?,
        };
        Ok(PeopleQuery {
            filter,
            after,
            limit,
        })
    }
}

fn encode_cursor(email: &str) -> String {
    crate::store::cursor::encode_text(email)
}

/// The email a cursor stands for; any well-formed cursor is a position.
fn decode_cursor(cursor: &str) -> Result<String> {
    crate::store::cursor::decode_text(cursor)
}

/// One of a person's seats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonSeat {
    pub provider: String,
    pub seat_id: String,
    pub license: Option<String>,
    pub status: SeatStatus,
    pub last_activity_on: Option<String>,
    /// None where the vendor reports no per-seat activity.
    pub active_days_30: Option<u32>,
    /// The seat list's inactive (threshold, grace, exemptions, on call); None unknown.
    pub inactive: Option<bool>,
    /// Activity within the app's threshold; None unknown (no per-seat activity).
    pub active: Option<bool>,
    /// License price, else seat price, per month; None unpriced or usage-priced.
    pub monthly_cost: Option<f64>,
}

/// One person: the seats that share a normalized email.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    /// Trimmed and lower-cased: the join key.
    pub email: String,
    /// The first non-empty name of their seats, in catalog order.
    pub name: String,
    /// Distinct apps they hold a seat in.
    pub apps_held: usize,
    /// Their seats, in catalog order.
    pub apps: Vec<PersonSeat>,
    /// Sum of their seats' known monthly costs in the list's currency; None when none
    /// is known.
    pub monthly_cost: Option<f64>,
    pub inactive_everywhere: bool,
    pub active_in_none: bool,
}

/// A connected app as the people list saw it.
#[derive(Debug, Clone, Serialize)]
pub struct PeopleApp {
    pub provider: String,
    pub name: String,
    /// Current seats (removed excluded).
    pub seats: usize,
    /// Current seats with no email: not joined to anyone, counted here.
    pub unmatched_seats: usize,
    pub per_seat_activity: bool,
    pub inactive_days: u32,
    pub currency: String,
    /// The latest rollup day of its last summary and when that was computed.
    pub as_of_date: Option<String>,
    pub computed_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PeopleList {
    /// The data's as-of: the oldest `computed_at` of the connected apps' summaries (each
    /// app's own is in `apps`); None before any has synced.
    pub as_of: Option<String>,
    /// When this answer was computed.
    pub generated_at: String,
    /// The currency of each person's `monthly_cost`: the one most priced apps use.
    pub currency: String,
    /// Priced apps in another currency: their seats' costs are left out of the sums.
    pub apps_in_other_currencies: Vec<String>,
    pub apps: Vec<PeopleApp>,
    /// Everyone with a seat, before the filters.
    pub people_total: usize,
    /// People the filters keep (all pages).
    pub total: usize,
    pub limit: usize,
    pub people: Vec<Person>,
    /// Give it back as `cursor` for the next page; None on the last one.
    pub next_cursor: Option<String>,
    pub definitions: BTreeMap<&'static str, &'static str>,
}

pub fn definitions() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        (
            "person",
            "the current seats of every connected app that share an email once trimmed and \
             lower-cased; seats without an email are not joined and are counted per app \
             (unmatched_seats)",
        ),
        (
            "apps_held",
            "distinct connected apps the person holds a current seat in",
        ),
        (
            "inactive",
            "the app's seat list rule: no activity in the app's threshold (30/60/90 days; never \
             active counts), unless exempt, in the grace period or on call; unknown for apps \
             without per-seat activity",
        ),
        (
            "active",
            "activity within the app's threshold (exemptions, grace and on call do not make a \
             seat active); unknown for apps without per-seat activity",
        ),
        (
            "inactive_everywhere",
            "inactive (the rule above) in every app the person holds; never true while one of \
             their apps' activity is unknown",
        ),
        (
            "active_in_none",
            "active in none of the apps the person holds, each app's activity known (with \
             min_apps=N: holds at least N apps, active in none)",
        ),
        (
            "last_activity_on",
            "the seat's last UTC day with an activity event, as of the app's last sync",
        ),
        (
            "active_days_30",
            "days on which the seat had at least one activity event, in the 30 days ending the \
             last sync's day",
        ),
        (
            "seat_monthly_cost",
            "the price of the seat's license type, else the app's seat price, per month (app \
             settings); null when neither is set or the app is usage-priced",
        ),
        (
            "monthly_cost",
            "the person's seats' known monthly costs summed, in the list's currency (apps priced \
             in another are left out and named); null when none of their seats is priced",
        ),
        (
            "unmatched_seats",
            "an app's current seats with an empty email: kept with the app, never guessed into \
             a person",
        ),
    ])
}

/// One connected app's inputs: its settings and current seats.
struct AppSeats<'c> {
    provider: &'c Provider,
    settings: AppSettings,
    summary: Option<StoredSummary>,
    seats: Vec<Seat>,
}

/// What a joined list was built from: per connected app (catalog order) its id, its
/// summary's `computed_at` and its settings; and the UTC day (inactive depends on it).
#[derive(Debug, Clone, PartialEq)]
struct Version {
    today: Date,
    apps: Vec<(String, Option<String>, AppSettings)>,
}

/// Everyone, sorted by email, with the apps' counts and the currencies.
struct Joined {
    people: Vec<Person>,
    apps: Vec<PeopleApp>,
    currency: String,
    apps_in_other_currencies: Vec<String>,
}

type Kept = (OrgId, Version, Arc<Joined>);

/// The joined lists this process built, by org, with their versions (a few orgs: one
/// Lambda instance mostly serves one org's dashboard at a time).
static JOINED: Mutex<Vec<Kept>> = Mutex::new(Vec::new());
const JOINED_ORGS: usize = 4;

fn kept(org: &OrgId, version: &Version) -> Option<Arc<Joined>> {
    let cache = JOINED.lock().ok()?;
    cache
        .iter()
        .find(|(o, v, _)| o == org && v == version)
        .map(|(_, _, j)| j.clone())
}

fn keep(org: &OrgId, version: Version, joined: Arc<Joined>) {
    if let Ok(mut cache) = JOINED.lock() {
        cache.retain(|(o, _, _)| o != org);
        if cache.len() >= JOINED_ORGS {
            cache.remove(0);
        }
        cache.push((org.clone(), version, joined));
    }
}

/// Forgets every joined list this process keeps (the bench's cold runs).
pub fn forget_joined() {
    if let Ok(mut cache) = JOINED.lock() {
        cache.clear();
    }
}

/// The org's joined list as of now: a Query for the connections, then per connected
/// app its settings and summary (GetItems, all at once); when those and the day are
/// what the kept list was built from, that list; otherwise each app's seat-list
/// snapshot (a BatchGetItem of its parts; the seat items before an app's first
/// summary), joined, and kept.
async fn joined(
    store: &DynamoDbStore,
    config: &Config,
    org: &OrgId,
    today: Date,
) -> Result<Arc<Joined>> {
    let connections = store.connections(org).await?;
    let connected = config
        .catalog
        .providers()
        .iter()
        .filter(|p| connections.iter().any(|c| c.provider == p.id));
    let heads = futures::future::try_join_all(connected.map(|provider| async move {
        let data = store.app_data(org, &provider.id);
        let (settings, summary) = tokio::try_join!(data.settings(), data.summary())?;
        Ok::<_, Error>((provider, settings.unwrap_or_default(), summary))
    }))
    .await?;
    let version = Version {
        today,
        apps: heads
            .iter()
            .map(|(p, settings, summary)| {
                let at = summary.as_ref().and_then(|s| s.summary.computed_at.clone());
                (p.id.clone(), at, settings.clone())
            })
            .collect(),
    };
    if let Some(j) = kept(org, &version) {
        return Ok(j);
    }
    let apps = futures::future::try_join_all(heads.into_iter().map(
        |(provider, settings, summary)| async move {
            let seats = store
                .app_data(org, &provider.id)
                .current_seats(summary.as_ref())
                .await?
                .into_iter()
                .filter(|s| s.status != SeatStatus::Removed)
                .collect();
            Ok::<_, Error>(AppSeats {
                provider,
                settings,
                summary,
                seats,
            })
        },
    ))
    .await?;
    let (people, views, currency, others) = join(&apps, today);
    let j = Arc::new(Joined {
        people,
        apps: views,
        currency,
        apps_in_other_currencies: others,
    });
    keep(org, version, j.clone());
    Ok(j)
}

fn cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The join key: trimmed and lower-cased; None for a seat without an email.
pub fn normalize_email(email: &str) -> Option<String> {
    let e = email.trim();
    (!e.is_empty()).then(|| e.to_lowercase())
}

/// The currency most priced apps use (the default where none is priced; ties go to
/// the first in alphabetical order), as the overview's totals.
fn main_currency(apps: &[AppSeats]) -> String {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for a in apps.iter().filter(|a| is_priced(a)) {
        *count.entry(a.settings.currency.as_str()).or_default() += 1;
    }
    count
        .iter()
        .max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c)))
        .map_or(DEFAULT_CURRENCY, |(c, _)| *c)
        .to_string()
}

fn is_priced(a: &AppSeats) -> bool {
    a.provider.pricing == Pricing::PerSeat
        && (a.settings.seat_price.is_some() || !a.settings.license_prices.is_empty())
}

/// Everyone, sorted by email, with the apps' counts. Pure: the join and the rules.
fn join(apps: &[AppSeats], today: Date) -> (Vec<Person>, Vec<PeopleApp>, String, Vec<String>) {
    let currency = main_currency(apps);
    let other_currencies: Vec<String> = apps
        .iter()
        .filter(|a| is_priced(a) && a.settings.currency != currency)
        .map(|a| a.provider.id.clone())
        .collect();
    let mut by_email: HashMap<String, Person> = HashMap::new();
    let mut views = Vec::with_capacity(apps.len());
    for app in apps {
        let per_seat = app.provider.per_seat_activity;
        let summed = app.settings.currency == currency;
        let mut unmatched = 0;
        for seat in &app.seats {
            let Some(email) = normalize_email(&seat.email) else {
                unmatched += 1;
                continue;
            };
            let flags = seat_flags(seat, &app.settings, today, per_seat);
            let last = seat.last_activity_on.as_deref().and_then(parse_day);
            let monthly_cost = (app.provider.pricing == Pricing::PerSeat)
                .then(|| app.settings.price_of(seat.license.as_deref()))
                .flatten();
            let person = by_email.entry(email).or_insert_with_key(|email| Person {
                email: email.clone(),
                name: String::new(),
                apps_held: 0,
                apps: Vec::new(),
                monthly_cost: None,
                inactive_everywhere: true,
                active_in_none: true,
            });
            if person.name.is_empty() {
                person.name = seat.name.trim().to_string();
            }
            if !person.apps.iter().any(|s| s.provider == app.provider.id) {
                person.apps_held += 1;
            }
            let active =
                per_seat.then(|| !metrics::is_inactive(last, today, app.settings.inactive_days));
            person.inactive_everywhere &= flags.inactive == Some(true);
            person.active_in_none &= active == Some(false);
            if let Some(c) = monthly_cost.filter(|_| summed) {
                person.monthly_cost = Some(person.monthly_cost.unwrap_or(0.0) + c);
            }
            person.apps.push(PersonSeat {
                provider: app.provider.id.clone(),
                seat_id: seat.seat_id.clone(),
                license: seat.license.clone(),
                status: seat.status,
                last_activity_on: seat.last_activity_on.clone(),
                active_days_30: per_seat.then(|| seat.active_days_30.unwrap_or(0)),
                inactive: flags.inactive,
                active,
                monthly_cost,
            });
        }
        let summary = app.summary.as_ref().map(|s| &s.summary);
        views.push(PeopleApp {
            provider: app.provider.id.clone(),
            name: app.provider.name.clone(),
            seats: app.seats.len(),
            unmatched_seats: unmatched,
            per_seat_activity: per_seat,
            inactive_days: app.settings.inactive_days,
            currency: app.settings.currency.clone(),
            as_of_date: summary.and_then(|s| s.as_of_date.clone()),
            computed_at: summary.and_then(|s| s.computed_at.clone()),
        });
    }
    let mut people: Vec<Person> = by_email
        .into_values()
        .map(|mut p| {
            p.monthly_cost = p.monthly_cost.map(cents);
            p
        })
        .collect();
    people.sort_unstable_by(|a, b| a.email.cmp(&b.email));
    (people, views, currency, other_currencies)
}

/// One page of people (`GET /api/people`).
pub async fn people(
    store: &DynamoDbStore,
    config: &Config,
    caller: &Caller,
    query: &PeopleQuery,
) -> Result<PeopleList> {
    let now = config.clock.now();
    let j = joined(store, config, &caller.org, now.date()).await?;
    Ok(page(&j, query, now))
}

fn page(j: &Joined, query: &PeopleQuery, now: time::OffsetDateTime) -> PeopleList {
    let kept: Vec<&Person> = j.people.iter().filter(|p| query.filter.keeps(p)).collect();
    let total = kept.len();
    let start = match &query.after {
        Some(after) => kept.partition_point(|p| p.email.as_str() <= after.as_str()),
        None => 0,
    };
    let mut people: Vec<Person> = kept
        .into_iter()
        .skip(start)
        .take(query.limit + 1)
        .cloned()
        .collect();
    let more = people.len() > query.limit;
    people.truncate(query.limit);
    let next_cursor = more
        .then(|| people.last().map(|p| encode_cursor(&p.email)))
        .flatten();
    PeopleList {
        as_of: j.apps.iter().filter_map(|a| a.computed_at.clone()).min(),
        generated_at: crate::domain::rfc3339(now),
        currency: j.currency.clone(),
        apps_in_other_currencies: j.apps_in_other_currencies.clone(),
        apps: j.apps.clone(),
        people_total: j.people.len(),
        total,
        limit: query.limit,
        people,
        next_cursor,
        definitions: definitions(),
    }
}

/// Every person the filters keep as CSV (`GET /api/people/export.csv`): one row per
/// person, then per connected app its license, status, last active day, active days
/// (30) and monthly cost (empty where they hold no seat there; several seats in one
/// app are joined with ` | `), then their monthly cost and the currency.
pub async fn people_csv(
    store: &DynamoDbStore,
    config: &Config,
    caller: &Caller,
    filter: &PeopleFilter,
) -> Result<String> {
    let now = config.clock.now();
    let j = joined(store, config, &caller.org, now.date()).await?;
    let kept: Vec<&Person> = j.people.iter().filter(|p| filter.keeps(p)).collect();
    write_csv(&kept, &j.apps, &j.currency)
}

const PER_APP: [&str; 5] = [
    "license",
    "status",
    "last_activity_on",
    "active_days_30",
    "monthly_cost",
];

fn write_csv(people: &[&Person], apps: &[PeopleApp], currency: &str) -> Result<String> {
    let err = |e: csv::Error| Error::internal("writing a CSV", e);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["email".to_string(), "name".into(), "apps_held".into()];
    for a in apps {
        header.extend(PER_APP.iter().map(|c| format!("{}_{c}", a.provider)));
    }
    header.extend([
        "monthly_cost".into(),
        "currency".into(),
        "inactive_everywhere".into(),
        "active_in_none".into(),
    ]);
    w.write_record(&header).map_err(err)?;
    let opt = |v: Option<String>| v.unwrap_or_default();
    for p in people {
        let mut row = vec![
            text_cell(&p.email).into_owned(),
            text_cell(&p.name).into_owned(),
            p.apps_held.to_string(),
        ];
        for a in apps {
            let seats: Vec<&PersonSeat> =
                p.apps.iter().filter(|s| s.provider == a.provider).collect();
            let cell = |f: &dyn Fn(&PersonSeat) -> String| {
                seats.iter().map(|s| f(s)).collect::<Vec<_>>().join(" | ")
            };
            row.push(cell(&|s| {
                text_cell(s.license.as_deref().unwrap_or_default()).into_owned()
            }));
            row.push(cell(&|s| {
                match s.status {
                    SeatStatus::Active => "active",
                    SeatStatus::Invited => "invited",
                    SeatStatus::Removed => "removed",
                }
                .to_string()
            }));
            row.push(cell(&|s| opt(s.last_activity_on.clone())));
            row.push(cell(&|s| opt(s.active_days_30.map(|d| d.to_string()))));
            row.push(cell(&|s| opt(s.monthly_cost.map(|c| c.to_string()))));
        }
        row.push(opt(p.monthly_cost.map(|c| c.to_string())));
        row.push(currency.to_string());
        row.push(p.inactive_everywhere.to_string());
        row.push(p.active_in_none.to_string());
        w.write_record(&row).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::internal("writing a CSV", e.into_error()))?;
    String::from_utf8(bytes).map_err(|e| Error::internal("writing a CSV", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn provider(id: &str, per_seat: bool) -> Provider {
        let catalog = crate::domain::catalog::Catalog::load(|_| None).expect("catalog");
        let mut p = catalog
            .get(if per_seat { "pagerduty" } else { "sendgrid" })
            .unwrap()
            .clone();
        p.id = id.into();
        p
    }

    fn seat(id: &str, email: &str, last: Option<&str>) -> Seat {
        let mut s = Seat::sample(id, last, "2025-01-01T00:00:00Z", false);
        s.email = email.into();
        s
    }

    #[test]
    fn seats_join_by_normalized_email_and_unmatched_seats_are_counted() {
        let (a, b, c) = (
            provider("a", true),
            provider("b", true),
            provider("c", false),
        );
        let today = date!(2026 - 11 - 23);
        let priced = AppSettings {
            seat_price: Some(10.0),
            license_prices: BTreeMap::from([("Full".to_string(), 30.0)]),
            ..AppSettings::default()
        };
        let mut full = seat("a2", " Bo@X.example ", Some("2026-11-20"));
        full.license = Some("Full".into());
        let apps = vec![
            AppSeats {
                provider: &a,
                settings: priced,
                summary: None,
                seats: vec![
                    seat("a1", "ann@x.example", Some("2026-01-01")),
                    full,
                    seat("a3", "  ", None),
                ],
            },
            AppSeats {
                provider: &b,
                settings: AppSettings::default(),
                summary: None,
                seats: vec![
                    seat("b1", "ANN@x.example", None),
                    seat("b2", "", Some("2026-11-22")),
                ],
            },
            AppSeats {
                provider: &c,
                settings: AppSettings::default(),
                summary: None,
                seats: vec![seat("c1", "bo@x.example", None)],
            },
        ];
        let (people, views, currency, _) = join(&apps, today);
        assert_eq!(currency, "USD");
        let emails: Vec<&str> = people.iter().map(|p| p.email.as_str()).collect();
        assert_eq!(emails, ["ann@x.example", "bo@x.example"]);
        let unmatched: Vec<usize> = views.iter().map(|v| v.unmatched_seats).collect();
        assert_eq!(unmatched, [1, 1, 0]);
        let (ann, bo) = (&people[0], &people[1]);
        assert_eq!((ann.apps_held, bo.apps_held), (2, 2));
        assert!(ann.inactive_everywhere && ann.active_in_none);
        assert_eq!(ann.monthly_cost, Some(10.0));
        // Bo: active in a (Full, 30), unknown in c (no per-seat activity).
        assert!(!bo.inactive_everywhere && !bo.active_in_none);
        assert_eq!(bo.monthly_cost, Some(30.0));
        assert_eq!(bo.apps[1].inactive, None);

        let (people, apps_view, currency, apps_in_other_currencies) = join(&apps, today);
        let j = Joined {
            people,
            apps: apps_view,
            currency,
            apps_in_other_currencies,
        };
        let now = datetime!(2026-11-23 12:00 UTC);
        let all = |f: PeopleFilter| {
            let q = PeopleQuery {
                filter: f,
                after: None,
                limit: 1,
            };
            page(&j, &q, now)
        };
        let first = all(PeopleFilter::default());
        assert_eq!((first.total, first.people.len()), (2, 1));
        let cursor = first.next_cursor.clone().unwrap();
        let q = PeopleQuery::parse(PeopleFilter::default(), Some(&cursor), Some("1")).unwrap();
        let second = page(&j, &q, now);
        assert_eq!(second.people[0].email, "bo@x.example");
        assert_eq!(second.next_cursor, None);
        let inactive = all(PeopleFilter::parse(Some("true"), None, None, None).unwrap());
        assert_eq!(inactive.total, 1);
        let q = all(PeopleFilter::parse(None, None, Some("2"), Some(" BO ")).unwrap());
        assert_eq!(q.total, 1);
        let everyone: Vec<&Person> = j.people.iter().collect();
        let csv = write_csv(&everyone, &j.apps, "USD").unwrap();
        assert!(csv.starts_with("email,name,apps_held,a_license,"), "{csv}");
        assert_eq!(csv.lines().count(), 3);
    }

    #[test]
    fn bad_filters_and_pages_are_client_errors() {
        for (ie, ain, min, q) in [
            (Some("yes"), None, None, None),
            (None, Some("1"), None, None),
            (None, None, Some("0"), None),
            (None, None, Some("101"), None),
            (None, None, Some("-1"), None),
            (None, None, None, Some("\u{7}")),
        ] {
            assert_eq!(
                PeopleFilter::parse(ie, ain, min, q).unwrap_err().status(),
                400
            );
        }
        let long = "x".repeat(MAX_Q + 1);
        assert_eq!(
            PeopleFilter::parse(None, None, None, Some(&long))
                .unwrap_err()
                .status(),
            400
        );
        for (cursor, limit) in [
            (Some("%%"), None),
            (Some(""), None),
            (None, Some("0")),
            (None, Some("501")),
            (None, Some("x")),
        ] {
            assert_eq!(
                PeopleQuery::parse(PeopleFilter::default(), cursor, limit)
                    .unwrap_err()
                    .status(),
                400
            );
        }
        let q = PeopleQuery::parse(PeopleFilter::default(), Some("AAAA"), Some("500")).unwrap();
        assert_eq!(q.limit, 500);
        assert_eq!(
            decode_cursor(&encode_cursor("a@b.example")).unwrap(),
            "a@b.example"
        );
    }
}
