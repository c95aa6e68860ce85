//! A fake of PagerDuty's REST API v2 and Classic User OAuth, over real HTTP.
//!
//! What it serves (the `oauth` and `api` modules document each endpoint):
//!
//! | route | what |
//! |---|---|
//! | `GET /oauth/authorize` | consent page (an HTML form, documented in the `oauth` module) |
//! | `POST /oauth/authorize/decision` | Approve / Deny → 302 to the `redirect_uri` |
//! | `POST /oauth/token` | `authorization_code` (with PKCE S256) and `refresh_token` (rotating) |
//! | `GET /users`, `GET /users/me`, `GET /log_entries`, `GET /oncalls`, `GET /licenses`, `GET /license_allocations` | the REST API, PagerDuty's shapes |
//! | `GET /_sandbox/ground-truth`, `GET /_sandbox/stats` | sandbox-only introspection |
//! | `POST /_sandbox/revoke-refresh-tokens`, `POST /_sandbox/expire-access-tokens` | sandbox-only controls |
//! | `POST`/`DELETE`/`GET /_sandbox/faults` | fault switches on the REST API ([`crate::faults`]) |
//! | `POST`/`DELETE /_sandbox/token-response` | code exchanges answer another `scope` / `token_type` ([`TokenOverride`]) |
//!
//! The data (users, incidents, log entries, on-call schedules, licenses) is a pure function of
//! `(seed, users, days, events_per_day, end_date)`, so a test can assert exact equality
//! between what a client computed and [`GroundTruth`].

mod api;
mod data;
mod oauth;
mod state;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::faults::{self, FaultSwitch};
use crate::handle::{SandboxHandle, Sealed, Vendor};
pub use state::App as PagerDutyState;
use state::App;

/// How a sandbox account is generated and which credentials it accepts.
#[derive(Clone, Debug)]
pub struct PagerDutyConfig {
    /// Data is deterministic from `(seed, users, days, events_per_day, end_date)`.
    pub seed: u64,
    pub users: u32,
    /// Number of whole UTC days of history, ending with `end_date`.
    pub days: u32,
    /// Average number of user-agent activity log entries (the five counted types) per day
    /// across the account. The total over the range is exactly `events_per_day * days`
    /// whenever at least one user is active; days and users vary around the average.
    pub events_per_day: u32,
    /// Users who went quiet: for each entry N, one active user (never the owner; the
    /// highest-indexed active users, in order) acts for the last time on the latest day at
    /// or before `end_date - N` that has counted actions, and never after. Tests that need
    /// seats idle for a known number of days build it into the data with this instead of
    /// hoping a seed provides it. Empty by default (the data is then what it always was).
    pub went_quiet_days_ago: Vec<u32>,
    /// Full users who only write notes: this many users with a full-user license, on
    /// no schedule or escalation policy and with counted actions (never the owner;
    /// the lowest-indexed such users), have every acknowledge, resolve, reassign and
    /// escalate of theirs turned into a note (annotate) — active, but no responder
    /// action: the seats a downgrade to Stakeholder fits. 0 by default.
    pub notes_only_full_users: u32,
    /// Display names given to users by their index in generation order (index 0 is the
    /// owner), after the data is generated: nothing else changes. For tests of what a
    /// vendor-chosen name can do downstream (e.g. a formula in a CSV export). Empty by default.
    pub renamed_users: Vec<(u32, String)>,
    /// Emails given to users by their index in generation order (index 0 is the owner),
    /// after the data is generated: nothing else changes. Tests give the same address to
    /// users of several sandboxes, so one person holds seats in two or three apps (the
    /// People view's ground truth). Empty by default.
    pub shared_emails: Vec<(u32, String)>,
    /// The account's subdomain (`https://<subdomain>.pagerduty.com/…` in every `html_url`):
    /// the account's identity. Tests of a Reconnect that lands on another account start a
    /// second sandbox with another one (and another seed).
    pub subdomain: String,
    /// Last day with data (inclusive). The default is yesterday by [`crate::clock`]: the
    /// system date's, or the day before `SEATSCOPE_TODAY` where a test pins it.
    pub end_date: time::Date,
    /// The OAuth client registered at the sandbox (a confidential client).
    pub client_id: String,
    pub client_secret: String,
    /// An account-level API key, accepted as `Authorization: Token token=<key>`.
    pub api_token: Option<String>,
    /// Requests per fixed 60 s window, per rate-limit subject (an API key, or app + user for OAuth tokens).
    pub rate_limit_per_minute: u32,
    /// Lifetime of issued access tokens (PagerDuty Classic User OAuth: 30 days).
    pub access_token_ttl_secs: u64,
    /// Whether callers may read `/licenses` and `/license_allocations`. False answers
    /// both 403 (`Access Denied`, code 2010), as PagerDuty does for a token without the
    /// permission (a Scoped OAuth token without `licenses.read`, or a user who may not
    /// see the account's licenses); the other endpoints work. True by default.
    pub licenses_readable: bool,
}

impl Default for PagerDutyConfig {
    fn default() -> Self {
        PagerDutyConfig {
            seed: 42,
            users: 25,
            days: 30,
            events_per_day: 120,
            went_quiet_days_ago: Vec::new(),
            notes_only_full_users: 0,
            renamed_users: Vec::new(),
            shared_emails: Vec::new(),
            subdomain: "seatscope-sandbox".to_string(),
            end_date: crate::clock::yesterday(),
            client_id: "seatscope-dev".to_string(),
            client_secret: "seatscope-dev-secret".to_string(),
            api_token: None,
            rate_limit_per_minute: 960,
            access_token_ttl_secs: 2_592_000,
            licenses_readable: true,
        }
    }
}

/// What a correct client must compute from the sandbox's API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroundTruth {
    /// Every user of the account, in `/users` order (by name, then id).
    pub seats: Vec<SeatTruth>,
    /// Per user, UTC day and feature, the number of counted log entries; only non-zero
    /// counts, sorted by `(date, user_id, feature)`.
    pub daily: Vec<DayCount>,
    /// Every user on call at some time in any 21 days (each schedule rotates weekly over
    /// at most three users; a direct target is always on call), one entry per user,
    /// sorted by `user_id`. Some of them never act: on call, quiet, at any date.
    #[serde(default)]
    pub on_call: Vec<OnCallTruth>,
}

/// A user on an on-call schedule, or targeted by an escalation policy directly.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OnCallTruth {
    pub user_id: String,
    /// The schedule's name; None for a direct target of the policy.
    pub schedule: Option<String>,
    pub escalation_policy: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SeatTruth {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    /// The user's license name (`/license_allocations`), e.g. `Business (Full User)` or
    /// `Business (Stakeholder)`; every seeded user has one.
    #[serde(default)]
    pub license: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DayCount {
    pub user_id: String,
    /// `YYYY-MM-DD`, the UTC day of the entries' `created_at`.
    pub date: String,
    /// One of `acknowledge`, `resolve`, `note`, `reassign`, `escalate`.
    pub feature: String,
    pub count: u32,
}

/// A running PagerDuty sandbox ([`SandboxHandle`]): its `base_url()` is the API base, e.g.
/// `http://127.0.0.1:4321`; OAuth is at `{base}/oauth/authorize` and `{base}/oauth/token`
/// (PagerDuty serves those from identity.pagerduty.com). Its `api_requests()` counts the
/// REST API requests (`/users`, `/users/me`, `/log_entries`, `/oncalls`, `/licenses`,
/// `/license_allocations`). Dropping it
/// stops the server.
pub type PagerDutySandbox = SandboxHandle<App>;

impl Sealed for App {}

impl Vendor for App {
    type Config = PagerDutyConfig;
    type GroundTruth = GroundTruth;
    const NAME: &'static str = "pagerduty";

    fn check(config: &PagerDutyConfig) -> anyhow::Result<()> {
        check(config)
    }

    fn new(config: PagerDutyConfig, base_url: String) -> App {
        App::new(config, base_url)
    }

    fn router(state: Arc<App>) -> Router {
        router(state)
    }

    fn faults(&self) -> &FaultSwitch {
        &self.faults
    }

    fn ground_truth(&self) -> &GroundTruth {
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
    /// Number of `POST /oauth/token` requests received, whatever their outcome.
    pub fn token_requests(&self) -> u64 {
        self.state().token_requests.load(Ordering::Relaxed)
    }

    /// Makes every refresh token issued so far invalid (like PagerDuty's "Revoke All Tokens"
    /// for refresh purposes); tokens issued afterwards work.
    pub fn revoke_refresh_tokens(&self) {
        self.state().revoke_refresh_tokens();
    }

    /// Makes the code exchanges from now on answer `answer`'s `scope` and `token_type`
    /// instead of the granted ones (like `POST /_sandbox/token-response`); the tokens
    /// work as usual. `TokenOverride::default()` restores the truth.
    pub fn set_token_response(&self, answer: TokenOverride) {
        *self.state().token_override() = answer;
    }

    /// Makes every access token issued so far answer 401, as if its lifetime had passed.
    pub fn expire_access_tokens(&self) {
        self.state().expire_access_tokens();
    }
}

/// Refuses configurations that would not fit in memory or in the calendar, before generating.
fn check(config: &PagerDutyConfig) -> anyhow::Result<()> {
    anyhow::ensure!(config.users <= 100_000, "users must be at most 100000");
    anyhow::ensure!(
        config.days <= 3_660,
        "days must be at most 3660 (ten years)"
    );
    anyhow::ensure!(
        u64::from(config.events_per_day) * u64::from(config.days) <= 20_000_000,
        "events_per_day * days must be at most 20000000"
    );
    let back = time::Duration::days(i64::from(config.days));
    anyhow::ensure!(
        config.end_date.checked_sub(back).is_some(),
        "end_date minus days is before the calendar's start"
    );
    anyhow::ensure!(!config.client_id.is_empty(), "client_id must not be empty");
    anyhow::ensure!(
        config.went_quiet_days_ago.iter().all(|&n| n < config.days),
        "every went_quiet_days_ago entry must be less than days"
    );
    anyhow::ensure!(
        config.renamed_users.iter().all(|(i, _)| *i < config.users),
        "every renamed_users index must be less than users"
    );
    anyhow::ensure!(
        config.shared_emails.iter().all(|(i, _)| *i < config.users),
        "every shared_emails index must be less than users"
    );
    Ok(())
}

/// A vendor answering a code exchange with other than what was granted: the `scope`
/// (e.g. `openid read write`, wider than asked, or `openid`, narrower) and/or the
/// `token_type` (e.g. `mac`). `None` keeps the true value.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenOverride {
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
}

fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/users", get(api::list_users))
        .route("/users/me", get(api::current_user))
        .route("/log_entries", get(api::list_log_entries))
        .route("/oncalls", get(api::list_on_calls))
        .route("/licenses", get(api::list_licenses))
        .route("/license_allocations", get(api::list_license_allocations))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            faults::inject::<App>,
        ));
    Router::new()
        .route("/oauth/authorize", get(oauth::authorize_page))
        .route("/oauth/authorize/decision", post(oauth::authorize_decision))
        .route("/oauth/token", post(oauth::token))
        .merge(api)
        .route(
            "/_sandbox/faults",
            post(faults::arm::<App>)
                .delete(faults::clear::<App>)
                .get(faults::show::<App>),
        )
        .route("/_sandbox/ground-truth", get(api::sandbox_ground_truth))
        .route("/_sandbox/stats", get(api::sandbox_stats))
        .route(
            "/_sandbox/revoke-refresh-tokens",
            post(api::sandbox_revoke_refresh_tokens),
        )
        .route(
            "/_sandbox/token-response",
            post(api::sandbox_set_token_response).delete(api::sandbox_clear_token_response),
        )
        .route(
            "/_sandbox/expire-access-tokens",
            post(api::sandbox_expire_access_tokens),
        )
        .fallback(api::not_found)
        .with_state(app)
}
