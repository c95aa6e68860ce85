//! A fake of the parts of Twilio SendGrid's Web API v3 that Seatscope reads, over real HTTP.
//!
//! SendGrid offers no OAuth for Web API v3: every call carries an API key,
//! `Authorization: Bearer SG.…`, and each key has a fixed set of scopes (permissions).
//!
//! | route | scope | what |
//! |---|---|---|
//! | `GET /v3/scopes` | any valid key | `{"scopes":[..]}`, the calling key's scopes |
//! | `GET /v3/teammates?limit&offset` | `teammates.read` | `{"result":[..]}` + a `Link` header |
//! | `GET /v3/teammates/pending` | `teammates.read` | `{"result":[..]}`, pending invitations |
//! | `GET /v3/stats?start_date&end_date&aggregated_by&limit&offset` | `stats.read` | global daily metrics |
//! | `GET /v3/user/credits` | `user.credits.read` | the monthly credit balance |
//! | `GET /v3/user/username` | `user.username.read` | the account (owner) username and user id |
//! | `GET /_sandbox/ground-truth`, `GET /_sandbox/stats` | — | sandbox-only introspection |
//! | `POST /_sandbox/revoke-key` `{"key":..}` | — | sandbox-only: the key answers 401 afterwards |
//! | `POST`/`DELETE`/`GET /_sandbox/faults` | — | fault switches on `/v3` ([`crate::faults`]) |
//!
//! The `api` module documents each endpoint's behaviour and where it departs from SendGrid.
//! The data (teammates, invitations, daily stats, credits) is a pure function of
//! `(seed, teammates, pending_invites, days, emails_per_day, end_date, monthly_credits)`, so a
//! test can assert exact equality between what a client computed and
//! [`SendGridGroundTruth`].

mod api;
mod data;
mod state;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::faults::{self, FaultSwitch};
use crate::handle::{SandboxHandle, Sealed, Vendor};
pub use state::App as SendGridState;
use state::App;

/// Scope of `GET /v3/teammates` and `GET /v3/teammates/pending`.
pub const SCOPE_TEAMMATES_READ: &str = "teammates.read";
/// Scope of `GET /v3/stats`. SendGrid's permission list has both `stats.read` and
/// `stats.global.read` under "Stats" without saying which endpoint needs which; the sandbox
/// requires `stats.read` (a full-access key has both).
pub const SCOPE_STATS_READ: &str = "stats.read";
/// Scope of `GET /v3/user/credits`.
pub const SCOPE_USER_CREDITS_READ: &str = "user.credits.read";
/// Scope of `GET /v3/user/username`.
pub const SCOPE_USER_USERNAME_READ: &str = "user.username.read";

/// The scopes of [`SandboxKey::full`]: every scope the sandbox checks, plus a few that a
/// full-access SendGrid key also carries (all names from SendGrid's API key permission list,
/// and all present in the specs' permission examples).
pub const FULL_KEY_SCOPES: [&str; 9] = [
    "api_keys.read",
    "mail.send",
    SCOPE_STATS_READ,
    "stats.global.read",
    SCOPE_TEAMMATES_READ,
    "user.account.read",
    SCOPE_USER_CREDITS_READ,
    "user.profile.read",
    SCOPE_USER_USERNAME_READ,
];

/// An API key the sandbox accepts, with its scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxKey {
    pub key: String,
    pub scopes: Vec<String>,
}

impl SandboxKey {
    /// A key shaped like SendGrid's (69 characters, `SG.<22>.<43>`, URL-safe base64
    /// alphabet), deterministic from `label`: the 22-character id starts with the label
    /// (truncated, anything outside `[A-Za-z0-9_-]` dropped) and is padded with a hash.
    pub fn generate(label: &str, scopes: &[&str]) -> SandboxKey {
        let hash = |what: &str| URL_SAFE_NO_PAD.encode(Sha256::digest(what.as_bytes()));
        let clean: String = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(21)
            .collect();
        let mut id = if clean.is_empty() {
            String::new()
        } else {
            format!("{clean}-")
        };
        id.push_str(&hash(&format!("seatscope-sendgrid-sandbox:id:{label}")));
        id.truncate(22);
        // SHA-256 is 32 bytes: 43 characters of unpadded base64, the secret's exact length.
        let secret = hash(&format!("seatscope-sendgrid-sandbox:secret:{label}"));
        SandboxKey {
            key: format!("SG.{id}.{secret}"),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The default full key: `SG.sandbox-full-…`, every scope in [`FULL_KEY_SCOPES`].
    pub fn full() -> SandboxKey {
        SandboxKey::generate("sandbox-full", &FULL_KEY_SCOPES)
    }

    /// The default restricted key: `SG.sandbox-nostats-…`, like [`SandboxKey::full`] without
    /// `stats.read` and `stats.global.read` (so `GET /v3/stats` answers 403).
    pub fn without_stats() -> SandboxKey {
        let scopes: Vec<&str> = FULL_KEY_SCOPES
            .iter()
            .copied()
            .filter(|s| !s.starts_with("stats."))
            .collect();
        SandboxKey::generate("sandbox-nostats", &scopes)
    }
}

/// How a sandbox account is generated and which keys it accepts.
#[derive(Clone, Debug)]
pub struct SendGridConfig {
    /// Data is deterministic from `(seed, teammates, pending_invites, days, emails_per_day,
    /// end_date, monthly_credits)`.
    pub seed: u64,
    /// Accepted teammates, the owner included (at least 1).
    pub teammates: u32,
    /// Pending invitations (`GET /v3/teammates/pending`).
    pub pending_invites: u32,
    /// Whole UTC days of email statistics, ending with `end_date`.
    pub days: u32,
    /// Average `requests` per day; the total over the range is exactly
    /// `emails_per_day * days`. Days vary around the average (weekends are quieter, a few
    /// days send nothing).
    pub emails_per_day: u32,
    /// Last day with data (inclusive). The default is yesterday by [`crate::clock`]: the
    /// system date's, or the day before `SEATSCOPE_TODAY` where a test pins it. Credits are as of
    /// this day.
    pub end_date: time::Date,
    /// The plan's monthly email credits (`total` of `GET /v3/user/credits`).
    pub monthly_credits: u64,
    /// Accepted API keys. The default has [`SandboxKey::full`] and
    /// [`SandboxKey::without_stats`].
    pub api_keys: Vec<SandboxKey>,
    /// Requests per fixed 60 s window, per API key and endpoint.
    pub rate_limit_per_minute: u32,
    /// Emails given to teammates by their index in `/v3/teammates` order (index 0 is the
    /// owner), after the data is generated: nothing else changes. Tests give the same
    /// address to users of several sandboxes, so one person holds seats in two or three
    /// apps (the People view's ground truth). Empty by default.
    pub shared_emails: Vec<(u32, String)>,
}

impl Default for SendGridConfig {
    fn default() -> Self {
        SendGridConfig {
            seed: 42,
            teammates: 12,
            pending_invites: 2,
            days: 30,
            emails_per_day: 2_000,
            end_date: crate::clock::yesterday(),
            monthly_credits: 100_000,
            api_keys: vec![SandboxKey::full(), SandboxKey::without_stats()],
            rate_limit_per_minute: 600,
            shared_emails: Vec::new(),
        }
    }
}

/// What a correct client must compute from the sandbox's API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SendGridGroundTruth {
    /// Teammates in `/v3/teammates` order, then pending invitations in
    /// `/v3/teammates/pending` order.
    pub seats: Vec<SendGridSeatTruth>,
    /// Every day of the generated range, oldest first, zeros included: what
    /// `/v3/stats?aggregated_by=day` returns for that range.
    pub daily: Vec<SendGridDayTruth>,
    pub credits: SendGridCreditsTruth,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SendGridSeatTruth {
    /// The teammate's `username`; for a pending invitation, its `email`.
    pub id: String,
    pub email: String,
    /// `"first_name last_name"`; for a pending invitation (which has no name), the email.
    pub name: String,
    /// `user_type` (`owner`, `admin`, `teammate`), or `invited` for a pending invitation.
    pub role: String,
    pub invited: bool,
}

/// One day of global stats, with the date and the 16 metrics side by side.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SendGridDayTruth {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    #[serde(flatten)]
    pub metrics: SendGridMetrics,
}

/// SendGrid's global email metrics (`StatsAdvancedGlobalStats`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SendGridMetrics {
    pub blocks: u64,
    pub bounce_drops: u64,
    pub bounces: u64,
    pub clicks: u64,
    pub deferred: u64,
    pub delivered: u64,
    pub invalid_emails: u64,
    pub opens: u64,
    pub processed: u64,
    pub requests: u64,
    pub spam_report_drops: u64,
    pub spam_reports: u64,
    pub unique_clicks: u64,
    pub unique_opens: u64,
    pub unsubscribe_drops: u64,
    pub unsubscribes: u64,
}

impl SendGridMetrics {
    pub fn add(&mut self, other: &SendGridMetrics) {
        self.blocks += other.blocks;
        self.bounce_drops += other.bounce_drops;
        self.bounces += other.bounces;
        self.clicks += other.clicks;
        self.deferred += other.deferred;
        self.delivered += other.delivered;
        self.invalid_emails += other.invalid_emails;
        self.opens += other.opens;
        self.processed += other.processed;
        self.requests += other.requests;
        self.spam_report_drops += other.spam_report_drops;
        self.spam_reports += other.spam_reports;
        self.unique_clicks += other.unique_clicks;
        self.unique_opens += other.unique_opens;
        self.unsubscribe_drops += other.unsubscribe_drops;
        self.unsubscribes += other.unsubscribes;
    }
}

/// The credit balance `GET /v3/user/credits` reports (as of `end_date`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SendGridCreditsTruth {
    pub total: u64,
    /// Sum of `requests` from `last_reset` to `end_date`.
    pub used: u64,
    /// `total - used`, at least 0.
    pub remain: u64,
    /// `used - total`, at least 0.
    pub overage: u64,
    /// First day of `end_date`'s month.
    pub last_reset: String,
    /// First day of the following month.
    pub next_reset: String,
}

/// A running SendGrid sandbox ([`SandboxHandle`]). Its `base_url()` is the API base, e.g.
/// `http://127.0.0.1:4321`, standing for `https://api.sendgrid.com`: endpoints are at
/// `{base}/v3/...`, and `api_requests()` counts the `/v3/...` requests. Dropping it stops
/// the server.
pub type SendGridSandbox = SandboxHandle<App>;

impl Sealed for App {}

impl Vendor for App {
    type Config = SendGridConfig;
    type GroundTruth = SendGridGroundTruth;
    const NAME: &'static str = "sendgrid";

    fn check(config: &SendGridConfig) -> anyhow::Result<()> {
        check(config)
    }

    fn new(config: SendGridConfig, base_url: String) -> App {
        App::new(config, base_url)
    }

    fn router(state: Arc<App>) -> Router {
        router(state)
    }

    fn faults(&self) -> &FaultSwitch {
        &self.faults
    }

    fn ground_truth(&self) -> &SendGridGroundTruth {
        &self.truth
    }

    fn api_requests(&self) -> u64 {
        self.api_requests.load(Ordering::Relaxed)
    }

    fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }
}

impl SandboxHandle<App> {
    /// `/v3/...` requests received, by request path.
    pub fn requests_by_path(&self) -> BTreeMap<String, u64> {
        self.state().by_path().clone()
    }

    /// Makes `key` invalid (401 from then on). False if the sandbox never accepted it.
    pub fn revoke_key(&self, key: &str) -> bool {
        self.state().revoke_key(key)
    }
}

/// Refuses configurations that would not fit in memory or in the calendar, before generating.
fn check(config: &SendGridConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.teammates >= 1,
        "teammates must be at least 1 (the owner)"
    );
    anyhow::ensure!(
        config.teammates <= 100_000,
        "teammates must be at most 100000"
    );
    anyhow::ensure!(
        config
            .shared_emails
            .iter()
            .all(|(i, _)| *i < config.teammates),
        "every shared_emails index must be less than teammates"
    );
    anyhow::ensure!(
        config.pending_invites <= 10_000,
        "pending_invites must be at most 10000"
    );
    anyhow::ensure!(
        config.days <= 3_660,
        "days must be at most 3660 (ten years)"
    );
    anyhow::ensure!(
        config.emails_per_day <= 1_000_000_000,
        "emails_per_day must be at most 1000000000"
    );
    anyhow::ensure!(
        config.monthly_credits <= 1_000_000_000_000,
        "monthly_credits must be at most 10^12"
    );
    let back = time::Duration::days(i64::from(config.days));
    anyhow::ensure!(
        config.end_date.checked_sub(back).is_some()
            && config.end_date.year() < 9_999
            && config.end_date.year() > -9_999,
        "end_date is too close to the calendar's limits"
    );
    anyhow::ensure!(
        config.rate_limit_per_minute >= 1,
        "rate_limit_per_minute must be at least 1"
    );
    let mut seen = std::collections::HashSet::new();
    for key in &config.api_keys {
        anyhow::ensure!(!key.key.trim().is_empty(), "an API key must not be empty");
        anyhow::ensure!(
            !key.key.chars().any(char::is_whitespace),
            "API key {:?} contains whitespace",
            key.key
        );
        anyhow::ensure!(
            seen.insert(key.key.as_str()),
            "API key {:?} is listed twice",
            key.key
        );
    }
    Ok(())
}

fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/v3/scopes", get(api::scopes))
        .route("/v3/teammates", get(api::teammates))
        .route("/v3/teammates/pending", get(api::pending_teammates))
        .route("/v3/stats", get(api::stats))
        .route("/v3/user/credits", get(api::credits))
        .route("/v3/user/username", get(api::username))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            faults::inject::<App>,
        ));
    Router::new()
        .merge(api)
        .route(
            "/_sandbox/faults",
            post(faults::arm::<App>)
                .delete(faults::clear::<App>)
                .get(faults::show::<App>),
        )
        .route("/_sandbox/ground-truth", get(api::sandbox_ground_truth))
        .route("/_sandbox/stats", get(api::sandbox_stats))
        .route("/_sandbox/revoke-key", post(api::sandbox_revoke_key))
        .fallback(api::not_found)
        .with_state(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_sendgrids_shape() {
        for key in [
            SandboxKey::full(),
            SandboxKey::without_stats(),
            SandboxKey::generate("", &[]),
            SandboxKey::generate("a very long label with spaces and ünïcode", &[]),
        ] {
            let k = &key.key;
            assert_eq!(k.len(), 69, "{k}");
            let parts: Vec<&str> = k.split('.').collect();
            assert_eq!(parts.len(), 3, "{k}");
            assert_eq!(parts[0], "SG");
            assert_eq!(parts[1].len(), 22, "{k}");
            assert_eq!(parts[2].len(), 43, "{k}");
            assert!(parts[1..].iter().all(|p| p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')));
        }
        assert!(SandboxKey::full().key.starts_with("SG.sandbox-full-"));
        assert!(SandboxKey::without_stats()
            .key
            .starts_with("SG.sandbox-nostats-"));
        assert_eq!(SandboxKey::full(), SandboxKey::full());
        assert_ne!(SandboxKey::full().key, SandboxKey::without_stats().key);
    }

    #[test]
    fn the_restricted_key_lacks_only_the_stats_scopes() {
        let full = SandboxKey::full();
        let limited = SandboxKey::without_stats();
        assert!(full.scopes.iter().any(|s| s == SCOPE_STATS_READ));
        assert!(!limited.scopes.iter().any(|s| s == SCOPE_STATS_READ));
        for s in [
            SCOPE_TEAMMATES_READ,
            SCOPE_USER_CREDITS_READ,
            SCOPE_USER_USERNAME_READ,
        ] {
            assert!(limited.scopes.iter().any(|x| x == s), "{s}");
        }
    }

    #[test]
    fn bad_configs_are_refused() {
        let ok = SendGridConfig::default();
        assert!(check(&ok).is_ok());
        assert!(check(&SendGridConfig {
            teammates: 0,
            ..ok.clone()
        })
        .is_err());
        assert!(check(&SendGridConfig {
            rate_limit_per_minute: 0,
            ..ok.clone()
        })
        .is_err());
        let twice = vec![SandboxKey::full(), SandboxKey::full()];
        assert!(check(&SendGridConfig {
            api_keys: twice,
            ..ok.clone()
        })
        .is_err());
        assert!(check(&SendGridConfig { days: 5_000, ..ok }).is_err());
    }
}
