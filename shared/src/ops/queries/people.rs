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
//! Reading and joining three 10k-seat snapshots costs about 400 ms on DynamoDB Local,
//! so the joined list is kept in the process (the Lambda instance) with what it was
//! built from (its version): the connected apps, each app's summary version
//! (`computed_at`, written anew by every sync and settings change) and settings, and
//! the UTC day. Every request reads those (a Query, then two GetItems per app, all at
//! once). When the kept list is of another version, or none is kept, the org's
//! **people snapshot** is used if it is at the current version (`store/people.rs`:
//! the list in a compact binary layout, gzipped, stamped with the version's hash);
//! otherwise the list is rebuilt and written back as the snapshot. The snapshot is
//! also rebuilt whenever an app's summary is (`ops::summary`), so the first request of
//! a Lambda instance, or the first after a sync or a settings change, reads one
//! snapshot instead of every app's seat list. A snapshot of another version is never
//! used (two apps' refreshes at once may store an older one last), so an answer is
//! never older than the stored summaries; the first request of a new UTC day rebuilds.
//! `GET /api/people` (paged) and `GET /api/people/export.csv` (every row).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::config::Config;
use crate::domain::caller::Caller;
use crate::domain::catalog::{Catalog, Pricing, Provider};
use crate::domain::metrics;
use crate::domain::org::OrgId;
use crate::domain::rules::seat_flags;
use crate::domain::seat::{Seat, SeatStatus};
use crate::domain::settings::{AppSettings, DEFAULT_CURRENCY};
use crate::domain::time::parse_day;
use crate::error::{Error, Result};
use crate::ops::export::text_cell;
use crate::store::{DynamoDbStore, PeopleSnapshot, StoredSummary};

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

/// Text many seats share (an app's id, a license, a day): one allocation per distinct
/// value, not per seat, when a list is read back from its snapshot (a cold request).
/// Serialized as the string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SharedText(Arc<str>);

impl std::ops::Deref for SharedText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SharedText {
    fn from(s: &str) -> Self {
        SharedText(Arc::from(s))
    }
}

impl Serialize for SharedText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// One of a person's seats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonSeat {
    pub provider: SharedText,
    pub seat_id: String,
    pub license: Option<SharedText>,
    pub status: SeatStatus,
    pub last_activity_on: Option<SharedText>,
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// One connected app as every request reads it: its settings and summary.
type Head<'c> = (&'c Provider, AppSettings, Option<StoredSummary>);

/// What a joined list was built from: per connected app (catalog order) its id, its
/// summary's `computed_at` and its settings; and the UTC day (inactive depends on it).
#[derive(Debug, Clone, PartialEq)]
struct Version {
    today: Date,
    apps: Vec<(String, Option<String>, AppSettings)>,
}

/// The stored snapshot's layout (below); part of every version key, so a snapshot
/// written in another layout is never read as this one.
const SNAPSHOT_FORMAT: u32 = 1;

impl Version {
    fn of(today: Date, heads: &[Head]) -> Version {
        Version {
            today,
            apps: heads
                .iter()
                .map(|(p, settings, summary)| {
                    let at = summary.as_ref().and_then(|s| s.summary.computed_at.clone());
                    (p.id.clone(), at, settings.clone())
                })
                .collect(),
        }
    }

    /// The version as the stored snapshot carries it: the SHA-256 (hex) of the
    /// snapshot format, the day and the apps (JSON; settings hold sets and maps in
    /// key order, so equal versions give equal keys).
    fn key(&self) -> Result<String> {
        use sha2::Digest as _;
        #[derive(Serialize)]
        struct Canonical<'a> {
            format: u32,
            today: String,
            apps: &'a [(String, Option<String>, AppSettings)],
        }
        let json = serde_json::to_vec(&Canonical {
            format: SNAPSHOT_FORMAT,
            today: crate::domain::time::day(self.today),
            apps: &self.apps,
        })
        .map_err(|e| Error::internal("encoding the people version", e))?;
        let digest = sha2::Sha256::digest(&json);
        Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// Everyone, sorted by email, with the apps' counts and the currencies.
#[derive(Debug, PartialEq)]
struct Joined {
    people: Vec<Person>,
    apps: Vec<PeopleApp>,
    currency: String,
    apps_in_other_currencies: Vec<String>,
}

type Kept = (OrgId, Version, Arc<Joined>);

/// The joined lists this process built or read, by org, with their versions (a few
/// orgs: one Lambda instance mostly serves one org's dashboard at a time).
static JOINED: Mutex<Vec<Kept>> = Mutex::new(Vec::new());
const JOINED_ORGS: usize = 4;
/// How many parts the last stored snapshot read had: the next read asks for that
/// many with the head, in one BatchGetItem.
static PARTS_GUESS: AtomicU32 = AtomicU32::new(4);

/// The kept list of `org` at `version` (at any version: None).
fn kept(org: &OrgId, version: Option<&Version>) -> Option<Arc<Joined>> {
    let cache = JOINED.lock().ok()?;
    cache
        .iter()
        .find(|(o, v, _)| o == org && version.is_none_or(|version| v == version))
        .map(|(_, _, j)| j.clone())
}

/// Keeps `joined` as the org's list. The lists it replaces are freed on a blocking
/// thread: freeing 10k people takes milliseconds the request need not wait for.
fn keep(org: &OrgId, version: Version, joined: Arc<Joined>) {
    let mut replaced = Vec::new();
    if let Ok(mut cache) = JOINED.lock() {
        let (others, this): (Vec<Kept>, Vec<Kept>) = std::mem::take(&mut *cache)
            .into_iter()
            .partition(|(o, _, _)| o != org);
        *cache = others;
        replaced.extend(this);
        if cache.len() >= JOINED_ORGS {
            replaced.push(cache.remove(0));
        }
        cache.push((org.clone(), version, joined));
    }
    if !replaced.is_empty() && tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::spawn_blocking(move || drop(replaced));
    }
}

/// Forgets every joined list this process keeps (the bench's and tests' cold runs:
/// as a new Lambda instance).
pub fn forget_joined() {
    if let Ok(mut cache) = JOINED.lock() {
        cache.clear();
    }
}

/// Where a request's joined list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// This process's kept list.
    Kept,
    /// The org's stored people snapshot, at the current version.
    Stored,
    /// Built from every app's seat-list snapshot (and then stored).
    Rebuilt,
}

/// Each connected app (catalog order) with its settings and summary: a Query for the
/// connections, then two GetItems per app, all at once.
async fn heads<'c>(
    store: &DynamoDbStore,
    catalog: &'c Catalog,
    org: &OrgId,
) -> Result<Vec<Head<'c>>> {
    let connections = store.connections(org).await?;
    let connected = catalog
        .providers()
        .iter()
        .filter(|p| connections.iter().any(|c| c.provider == p.id));
    futures::future::try_join_all(connected.map(|provider| async move {
        let data = store.app_data(org, &provider.id);
        let (settings, summary) = tokio::try_join!(data.settings(), data.summary())?;
        Ok::<_, Error>((provider, settings.unwrap_or_default(), summary))
    }))
    .await
}

/// The list joined from each app's seat-list snapshot (a BatchGetItem of its parts;
/// the seat items before an app's first summary).
async fn rebuild(
    store: &DynamoDbStore,
    org: &OrgId,
    heads: Vec<Head<'_>>,
    today: Date,
) -> Result<Joined> {
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
    Ok(Joined {
        people,
        apps: views,
        currency,
        apps_in_other_currencies: others,
    })
}

/// The org's stored people snapshot when it is at `key`; None when there is none, it
/// is of another version or it cannot be read (each logged: the caller rebuilds).
fn stored_at(
    read: Result<Option<crate::store::StoredPeople>>,
    org: &OrgId,
    key: &str,
) -> Option<Joined> {
    let stored = match read {
        Ok(Some(s)) => s,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(%org, error = %e.chain(), "the people snapshot could not be read; rebuilding");
            return None;
        }
    };
    PARTS_GUESS.store(stored.parts, Ordering::Relaxed);
    if stored.version != key {
        return None;
    }
    match stored.bytes().and_then(|bytes| decode_joined(&bytes)) {
        Ok(j) => Some(j),
        Err(e) => {
            tracing::warn!(%org, error = %e.chain(), "the people snapshot could not be decoded; rebuilding");
            None
        }
    }
}

/// Stores `joined` as the org's people snapshot at `key`.
async fn store_joined(
    store: &DynamoDbStore,
    org: &OrgId,
    key: String,
    joined: &Joined,
    now: OffsetDateTime,
) -> Result<()> {
    let snapshot = PeopleSnapshot {
        version: key,
        built_at: crate::domain::rfc3339(now),
        bytes: encode_joined(joined)?,
    };
    store.put_people_snapshot(org, &snapshot).await
}

/// The org's joined list as of `now`, and where it came from. Every request reads the
/// connections and each connected app's settings and summary (the version); when the
/// process keeps the list at that version, that list. Otherwise the stored people
/// snapshot (read at the same time as the version when the process keeps nothing of
/// the org) when it is at that version; else the list is rebuilt from every app's
/// seat-list snapshot and written back as the snapshot (a failed write is logged).
/// Whatever was read or built is kept.
async fn joined(
    store: &DynamoDbStore,
    catalog: &Catalog,
    org: &OrgId,
    now: OffsetDateTime,
) -> Result<(Arc<Joined>, Source)> {
    let today = now.date();
    let guess = PARTS_GUESS.load(Ordering::Relaxed);
    let (heads, early) = if kept(org, None).is_some() {
        (heads(store, catalog, org).await?, None)
    } else {
        let (heads, stored) = tokio::join!(
            heads(store, catalog, org),
            store.people_snapshot(org, guess)
        );
        (heads?, Some(stored))
    };
    let version = Version::of(today, &heads);
    if let Some(j) = kept(org, Some(&version)) {
        return Ok((j, Source::Kept));
    }
    let key = version.key()?;
    let read = match early {
        Some(read) => read,
        None => store.people_snapshot(org, guess).await,
    };
    let seen = read
        .as_ref()
        .ok()
        .map(|s| s.as_ref().map(|s| s.version.clone()));
    if let Some(j) = stored_at(read, org, &key) {
        let j = Arc::new(j);
        keep(org, version, j.clone());
        return Ok((j, Source::Stored));
    }
    let j = Arc::new(rebuild(store, org, heads, today).await?);
    keep(org, version, j.clone());
    // Written back unless another snapshot was stored meanwhile (a summary refresh's,
    // likely newer than this one).
    let write_back = async {
        if Some(store.people_snapshot_version(org).await?) != seen {
            return Ok(());
        }
        store_joined(store, org, key, &j, now).await
    };
    if let Err(e) = write_back.await {
        tracing::warn!(%org, error = %e.chain(), "the people snapshot could not be written back");
    }
    Ok((j, Source::Rebuilt))
}

/// Rounds of [`refresh_people_snapshot`]: one, and one more per refresh of another
/// app that landed while it was building (two apps' syncs finishing at once).
const REFRESH_ROUNDS: usize = 3;

/// Rebuilds the org's joined list from every app's seat-list snapshot and stores it
/// as the org's people snapshot, stamped with the version it was built from (after an
/// app's summary is refreshed: `ops::summary`); nothing when the stored one is at the
/// current version already. Then reads the version again: when another app's summary
/// changed meanwhile, or another refresh stored an older list last, it rebuilds again
/// (up to [`REFRESH_ROUNDS`] in all), so refreshes that race leave the current
/// version stored. Readers never use a snapshot of another version either way.
pub async fn refresh_people_snapshot(
    store: &DynamoDbStore,
    catalog: &Catalog,
    org: &OrgId,
    now: OffsetDateTime,
) -> Result<()> {
    for _ in 0..REFRESH_ROUNDS {
        let (heads, stored) = tokio::try_join!(
            heads(store, catalog, org),
            store.people_snapshot_version(org)
        )?;
        let key = Version::of(now.date(), &heads).key()?;
        if stored.as_deref() == Some(key.as_str()) {
            return Ok(());
        }
        let j = rebuild(store, org, heads, now.date()).await?;
        store_joined(store, org, key, &j, now).await?;
    }
    Ok(())
}

// --- the stored snapshot's bytes ---------------------------------------------------------

/// The joined list as stored (the store gzips it). JSON would cost more to read back
/// than everything else on a cold request (2 MB for 10k people × 3 apps), so it is a
/// compact binary layout:
///
/// - the apps and currencies as the API shows them, as JSON (length first);
/// - tables of the licenses, days and seat costs the seats share (each seat names an
///   entry), so a cold read allocates each distinct one once;
/// - each person: email, name, apps held, monthly cost, the two flags and the seats:
///   the app (its index in the apps), seat id, license, status, last active day, active
///   days, inactive and active, cost.
///
/// Numbers are LEB128 varints; an optional value is 0 for none, else its value (or
/// table index) + 1; text is its length then UTF-8; costs are f64 bits (exact).
struct Bytes(Vec<u8>);

impl Bytes {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn text(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

/// Reads what [`Bytes`] wrote; any truncation or bad value is an error.
struct Cursor<'a> {
    bytes: &'a [u8],
}

fn corrupt() -> Error {
    Error::Internal {
        context: "the people snapshot is corrupt".into(),
        source: None,
    }
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.bytes.len() {
            return Err(corrupt());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt())
    }
    fn count(&mut self) -> Result<usize> {
        usize::try_from(self.varint()?).map_err(|_| corrupt())
    }
    fn text(&mut self) -> Result<&'a str> {
        let n = self.count()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| corrupt())
    }
    fn f64(&mut self) -> Result<f64> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| corrupt())?;
        Ok(f64::from_bits(u64::from_le_bytes(b)))
    }
    /// An optional index into a table of `len` entries.
    fn entry(&mut self, len: usize) -> Result<Option<usize>> {
        match self.count()? {
            0 => Ok(None),
            n if n <= len => Ok(Some(n - 1)),
            _ => Err(corrupt()),
        }
    }
}

/// The apps and currencies, as the API shows them.
#[derive(Serialize, Deserialize)]
struct StoredHead {
    apps: Vec<PeopleApp>,
    currency: String,
    apps_in_other_currencies: Vec<String>,
}

fn status_code(s: SeatStatus) -> u8 {
    match s {
        SeatStatus::Active => 0,
        SeatStatus::Invited => 1,
        SeatStatus::Removed => 2,
    }
}

fn flag_code(v: Option<bool>) -> u8 {
    match v {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    }
}

fn flag_of(code: u8) -> Result<Option<bool>> {
    match code {
        0 => Ok(None),
        1 => Ok(Some(false)),
        2 => Ok(Some(true)),
        _ => Err(corrupt()),
    }
}

/// Distinct values in first-seen order, and each one's index.
struct Table<K> {
    values: Vec<K>,
    index: HashMap<K, usize>,
}

impl<K: std::hash::Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Table {
            values: Vec::new(),
            index: HashMap::new(),
        }
    }
    /// 0 for none, else the value's index + 1.
    fn code(&mut self, v: Option<&K>) -> u64 {
        let Some(v) = v else { return 0 };
        let n = *self.index.entry(v.clone()).or_insert_with(|| {
            self.values.push(v.clone());
            self.values.len() - 1
        });
        n as u64 + 1
    }
}

fn encode_joined(j: &Joined) -> Result<Vec<u8>> {
    let head = serde_json::to_vec(&StoredHead {
        apps: j.apps.clone(),
        currency: j.currency.clone(),
        apps_in_other_currencies: j.apps_in_other_currencies.clone(),
    })
    .map_err(|e| Error::internal("encoding the people snapshot", e))?;
    let (mut licenses, mut days, mut costs) = (Table::new(), Table::new(), Table::new());
    let mut people = Bytes(Vec::with_capacity(j.people.len() * 96));
    people.varint(j.people.len() as u64);
    for p in &j.people {
        people.text(&p.email);
        people.text(&p.name);
        people.varint(p.apps_held as u64);
        match p.monthly_cost {
            None => people.0.push(0),
            Some(c) => {
                people.0.push(1);
                people.f64(c);
            }
        }
        people
            .0
            .push(u8::from(p.inactive_everywhere) | u8::from(p.active_in_none) << 1);
        people.varint(p.apps.len() as u64);
        for s in &p.apps {
            let app = j.apps.iter().position(|a| a.provider == *s.provider);
            let app = app.ok_or_else(|| Error::Internal {
                context: format!("a person's seat of '{}', not a listed app", &*s.provider),
                source: None,
            })?;
            people.varint(app as u64);
            people.text(&s.seat_id);
            people.varint(licenses.code(s.license.as_ref()));
            people.0.push(status_code(s.status));
            people.varint(days.code(s.last_activity_on.as_ref()));
            people.varint(s.active_days_30.map_or(0, |d| u64::from(d) + 1));
            people
                .0
                .push(flag_code(s.inactive) | flag_code(s.active) << 2);
            people.varint(costs.code(s.monthly_cost.map(f64::to_bits).as_ref()));
        }
    }
    let mut out = Bytes(Vec::with_capacity(head.len() + people.0.len() + 4096));
    out.varint(head.len() as u64);
    out.0.extend_from_slice(&head);
    for table in [&licenses.values, &days.values] {
        out.varint(table.len() as u64);
        for v in table {
            out.text(v);
        }
    }
    out.varint(costs.values.len() as u64);
    for bits in &costs.values {
        out.f64(f64::from_bits(*bits));
    }
    out.0.extend_from_slice(&people.0);
    Ok(out.0)
}

fn decode_joined(bytes: &[u8]) -> Result<Joined> {
    let mut c = Cursor { bytes };
    let n = c.count()?;
    let head: StoredHead = serde_json::from_slice(c.take(n)?)
        .map_err(|e| Error::internal("reading the people snapshot", e))?;
    let table = |c: &mut Cursor| -> Result<Vec<SharedText>> {
        let n = c.count()?;
        (0..n).map(|_| c.text().map(SharedText::from)).collect()
    };
    let app_ids: Vec<SharedText> = head
        .apps
        .iter()
        .map(|a| SharedText::from(a.provider.as_str()))
        .collect();
    let licenses = table(&mut c)?;
    let days = table(&mut c)?;
    let n = c.count()?;
    let costs = (0..n).map(|_| c.f64()).collect::<Result<Vec<f64>>>()?;
    let n = c.count()?;
    let mut people = Vec::with_capacity(n.min(bytes.len()));
    for _ in 0..n {
        let email = c.text()?.to_string();
        let name = c.text()?.to_string();
        let apps_held = c.count()?;
        let monthly_cost = match c.byte()? {
            0 => None,
            1 => Some(c.f64()?),
            _ => return Err(corrupt()),
        };
        let flags = c.byte()?;
        let seats = c.count()?;
        let mut apps = Vec::with_capacity(seats.min(c.bytes.len()));
        for _ in 0..seats {
            let provider = app_ids.get(c.count()?).ok_or_else(corrupt)?.clone();
            let seat_id = c.text()?.to_string();
            let license = c.entry(licenses.len())?.map(|i| licenses[i].clone());
            let status = match c.byte()? {
                0 => SeatStatus::Active,
                1 => SeatStatus::Invited,
                2 => SeatStatus::Removed,
                _ => return Err(corrupt()),
            };
            let last_activity_on = c.entry(days.len())?.map(|i| days[i].clone());
            let active_days_30 = match c.varint()? {
                0 => None,
                d => Some(u32::try_from(d - 1).map_err(|_| corrupt())?),
            };
            let f = c.byte()?;
            let cost = c.entry(costs.len())?.map(|i| costs[i]);
            apps.push(PersonSeat {
                provider,
                seat_id,
                license,
                status,
                last_activity_on,
                active_days_30,
                inactive: flag_of(f & 3)?,
                active: flag_of(f >> 2)?,
                monthly_cost: cost,
            });
        }
        people.push(Person {
            email,
            name,
            apps_held,
            apps,
            monthly_cost,
            inactive_everywhere: flags & 1 != 0,
            active_in_none: flags & 2 != 0,
        });
    }
    if !c.bytes.is_empty() {
        return Err(corrupt());
    }
    Ok(Joined {
        people,
        apps: head.apps,
        currency: head.currency,
        apps_in_other_currencies: head.apps_in_other_currencies,
    })
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
        let id = SharedText::from(app.provider.id.as_str());
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
            if !person.apps.iter().any(|s| s.provider == id) {
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
                provider: id.clone(),
                seat_id: seat.seat_id.clone(),
                license: seat.license.as_deref().map(SharedText::from),
                status: seat.status,
                last_activity_on: seat.last_activity_on.as_deref().map(SharedText::from),
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
    Ok(people_with_source(store, config, caller, query).await?.0)
}

/// [`people`], and where its joined list came from (tests and the bench).
pub async fn people_with_source(
    store: &DynamoDbStore,
    config: &Config,
    caller: &Caller,
    query: &PeopleQuery,
) -> Result<(PeopleList, Source)> {
    let now = config.clock.now();
    let (j, source) = joined(store, &config.catalog, &caller.org, now).await?;
    Ok((page(&j, query, now), source))
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
    let (j, _) = joined(store, &config.catalog, &caller.org, config.clock.now()).await?;
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
            let seats: Vec<&PersonSeat> = p
                .apps
                .iter()
                .filter(|s| *s.provider == a.provider)
                .collect();
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
            row.push(cell(&|s| {
                opt(s.last_activity_on.as_deref().map(str::to_string))
            }));
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
    fn the_stored_snapshot_reads_back_as_the_list_it_was_written_from() {
        let (a, c) = (provider("a", true), provider("c", false));
        let today = date!(2026 - 11 - 23);
        let priced = AppSettings {
            seat_price: Some(12.34),
            license_prices: BTreeMap::from([("Full".to_string(), 30.5)]),
            ..AppSettings::default()
        };
        let mut full = seat("a2", "Bo@X.example", Some("2026-11-20"));
        full.license = Some("Full".into());
        let mut invited = seat("c2", "cy@x.example", None);
        invited.status = SeatStatus::Invited;
        invited.name = "Cy \"Quote\" Ünïcode".into();
        let apps = vec![
            AppSeats {
                provider: &a,
                settings: priced,
                summary: None,
                seats: vec![
                    seat("a1", "ann@x.example", Some("2026-01-01")),
                    full,
                    seat("a3", "", None),
                ],
            },
            AppSeats {
                provider: &c,
                settings: AppSettings {
                    currency: "EUR".into(),
                    seat_price: Some(3.0),
                    ..AppSettings::default()
                },
                summary: None,
                seats: vec![seat("c1", "bo@x.example", None), invited],
            },
        ];
        let (people, apps, currency, apps_in_other_currencies) = join(&apps, today);
        let joined = Joined {
            people,
            apps,
            currency,
            apps_in_other_currencies,
        };
        let bytes = encode_joined(&joined).unwrap();
        assert_eq!(decode_joined(&bytes).unwrap(), joined);
        // Cut short anywhere, or with a byte more: an error, never a panic.
        for n in 0..bytes.len() {
            assert!(decode_joined(&bytes[..n]).is_err(), "cut at {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_joined(&longer).is_err());
        // Any byte changed: an error or some list, never a panic.
        for n in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[n] ^= 0xff;
            let _ = decode_joined(&changed);
        }
    }

    #[test]
    fn a_version_key_changes_with_the_day_a_summary_or_the_settings() {
        let v = Version {
            today: date!(2026 - 11 - 23),
            apps: vec![
                (
                    "a".into(),
                    Some("2026-11-23T10:00:00Z".into()),
                    AppSettings::default(),
                ),
                ("b".into(), None, AppSettings::default()),
            ],
        };
        let key = v.key().unwrap();
        assert_eq!(key, v.clone().key().unwrap());
        assert_eq!(key.len(), 64);
        let mut next_day = v.clone();
        next_day.today = date!(2026 - 11 - 24);
        let mut synced = v.clone();
        synced.apps[1].1 = Some("2026-11-23T11:00:00Z".into());
        let mut settings = v.clone();
        settings.apps[0].2.exempt_seats.insert("P1".into());
        let mut fewer = v.clone();
        fewer.apps.pop();
        for other in [next_day, synced, settings, fewer] {
            assert_ne!(other.key().unwrap(), key, "{other:?}");
        }
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
