//! A fake of PandaDoc's public REST API (v1) and its OAuth 2.0 endpoints, over real HTTP.
//!
//! One base URL serves what PandaDoc splits over two hosts (`app.pandadoc.com` for the consent
//! page, `api.pandadoc.com` for the token endpoint and the API). The `oauth` and `api` modules
//! document each endpoint and every choice made where PandaDoc's documentation is silent.
//!
//! | route | what |
//! |---|---|
//! | `GET /oauth2/authorize` | consent page (an HTML form; no PKCE, as PandaDoc) |
//! | `POST /oauth2/authorize/decision` | Approve / Deny → 302 to the `redirect_uri` |
//! | `POST /oauth2/access_token` | `authorization_code` and `refresh_token` (rotating), credentials in the body |
//! | `GET /public/v1/users` | organization users, `count`/`page`, `show_removed` |
//! | `GET /public/v1/members`, `GET /public/v1/members/current` | workspace members |
//! | `GET /public/v1/documents`, `GET /public/v1/documents/{id}/details` | documents |
//! | `GET /public/v1/templates`, `GET /public/v1/templates/{id}/details` | templates |
//! | `GET /_sandbox/ground-truth`, `GET /_sandbox/stats` | sandbox-only introspection |
//! | `POST /_sandbox/revoke-refresh-tokens`, `POST /_sandbox/expire-access-tokens` | sandbox-only controls |
//! | `POST`/`DELETE`/`GET /_sandbox/faults` | fault switches on `/public/v1` ([`crate::faults`]) |
//!
//! The account (one organization, one workspace, its users, templates and documents) is a
//! pure function of `(seed, users, days, events_per_day, end_date)`, so a test can assert
//! exact equality between what a client computed and [`PandaDocGroundTruth`].

mod api;
mod data;
mod oauth;
mod state;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

pub use crate::pagerduty::DayCount;

use crate::faults::{self, FaultSwitch};
use crate::handle::{SandboxHandle, Sealed, Vendor};
pub use state::App as PandaDocState;
use state::App;

/// How a sandbox account is generated and which credentials it accepts.
#[derive(Clone, Debug)]
pub struct PandaDocConfig {
    /// Data is deterministic from `(seed, users, days, events_per_day, end_date)`.
    pub seed: u64,
    /// Seats: users with a membership in the workspace (the organization owner included).
    /// One more user, whose membership was removed, is generated whenever `users >= 2`; it
    /// is listed by `/public/v1/users` only with `show_removed=true` (the default).
    pub users: u32,
    /// Number of whole UTC days of history, ending with `end_date`.
    pub days: u32,
    /// Average number of documents created per day across the workspace. The total over the
    /// range is exactly `events_per_day * days` whenever a user able to create documents
    /// exists; days vary around the average (weekends are quieter). Templates are created
    /// at about one for every twelve documents.
    pub events_per_day: u32,
    /// Last day with data (inclusive). The default is yesterday by [`crate::clock`]: the
    /// system date's, or the day before `SEATSCOPE_TODAY` where a test pins it.
    pub end_date: time::Date,
    /// The OAuth application registered at the sandbox (a confidential client).
    pub client_id: String,
    pub client_secret: String,
    /// A legacy API key of the organization owner, accepted as `Authorization: API-Key <key>`.
    pub api_key: Option<String>,
    /// Requests per sliding 60 s window, per user and per operation, for the "List" class
    /// (users, members, members/current, documents list, templates list). PandaDoc: 2000.
    pub list_rate_per_minute: u32,
    /// The same for the "Details" class (document details, template details). PandaDoc: 600.
    pub details_rate_per_minute: u32,
    /// Lifetime of issued access tokens, the `expires_in` of the token response
    /// (PandaDoc: 31535999 s, one year).
    pub access_token_ttl_secs: u64,
    /// Who approves on the consent screen: the organization owner (an admin), or with
    /// `false` a workspace member without admin rights, whom `/public/v1/users` (for
    /// organization admins) refuses with 403.
    pub consent_as_admin: bool,
    /// Whether the plan includes API access (PandaDoc: Enterprise, or its trial).
    /// Without it, every API call of an authenticated caller is refused with 403.
    pub api_access: bool,
    /// Emails given to users by their index in generation order (index 0 is the owner;
    /// the removed user has one too), after the data is generated: nothing else
    /// changes. Tests give the same address to users of several sandboxes, so one
    /// person holds seats in two or three apps (the People view's ground truth). Empty
    /// by default.
    pub shared_emails: Vec<(u32, String)>,
}

impl Default for PandaDocConfig {
    fn default() -> Self {
        PandaDocConfig {
            seed: 42,
            users: 25,
            days: 30,
            events_per_day: 12,
            end_date: crate::clock::yesterday(),
            client_id: "seatscope-dev".to_string(),
            client_secret: "seatscope-dev-secret".to_string(),
            api_key: None,
            list_rate_per_minute: 2000,
            details_rate_per_minute: 600,
            access_token_ttl_secs: 31_535_999,
            consent_as_admin: true,
            api_access: true,
            shared_emails: Vec::new(),
        }
    }
}

/// What a correct client must compute from the sandbox's API.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PandaDocGroundTruth {
    /// Every seat (user with a live membership; the removed user is not one), in
    /// `/public/v1/users` order.
    pub seats: Vec<PandaDocSeatTruth>,
    /// Per user, UTC day and feature, the number of events; only non-zero counts, sorted by
    /// `(date, user_id, feature)`. Features:
    ///
    /// - `document_created`: the document's `created_by`, day of `date_created`;
    /// - `document_sent`: the document's `sent_by`, day of `date_sent`;
    /// - `document_completed`: the document's creator (its owner), day of `date_completed`;
    /// - `template_created`: the template's `created_by`, day of `date_created`.
    pub daily: Vec<DayCount>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PandaDocSeatTruth {
    /// The `user_id`.
    pub id: String,
    pub email: String,
    /// `first_name last_name`.
    pub name: String,
    /// `Full`, `Creator`, `eSignature`, `Read-only` or `Guest`.
    pub license: String,
    /// The workspace role: `Admin`, `Manager`, `Member` or `Custom`.
    pub role: String,
}

/// A snapshot of the sandbox's request counters.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct PandaDocStats {
    /// Every `POST /oauth2/access_token`, whatever its outcome.
    pub token_requests: u64,
    /// Of those, with `grant_type=authorization_code`.
    pub token_requests_authorization_code: u64,
    /// Of those, with `grant_type=refresh_token`.
    pub token_requests_refresh_token: u64,
    /// Every `/public/v1/...` request, whatever its outcome (401, 404 and 429 included).
    pub api_requests: u64,
    /// Of those, in the List class (users, members, documents list, templates list).
    pub api_requests_list: u64,
    /// Of those, in the Details class (document details, template details).
    pub api_requests_details: u64,
    /// API requests answered 429 (by the rate limit or a fault).
    pub rate_limited: u64,
    /// API requests hit by a fault ([`crate::faults`]).
    pub faults_injected: u64,
    /// Authenticated API requests (429s included) per operation, by PandaDoc's
    /// operation names (`detailsDocument`, `listDocuments`, ...): each operation has its
    /// own rate limit, so a client's least time follows the busiest one.
    #[serde(default)]
    pub api_requests_by_operation: BTreeMap<String, u64>,
}

/// A running PandaDoc sandbox ([`SandboxHandle`]). Its `base_url()` is the base of every
/// route, e.g. `http://127.0.0.1:4321`: the consent page is `{base}/oauth2/authorize`
/// (PandaDoc: `https://app.pandadoc.com`), the token endpoint `{base}/oauth2/access_token`
/// and the API `{base}/public/v1/...` (PandaDoc: `https://api.pandadoc.com`); its
/// `api_requests()` counts the `/public/v1/...` requests. Dropping it stops the server.
pub type PandaDocSandbox = SandboxHandle<App>;

impl Sealed for App {}

impl Vendor for App {
    type Config = PandaDocConfig;
    type GroundTruth = PandaDocGroundTruth;
    const NAME: &'static str = "pandadoc";

    fn check(config: &PandaDocConfig) -> anyhow::Result<()> {
        check(config)
    }

    /// PandaDoc's answers name no URL: the base is the handle's alone.
    fn new(config: PandaDocConfig, _base_url: String) -> App {
        App::new(config)
    }

    fn router(state: Arc<App>) -> Router {
        router(state)
    }

    fn faults(&self) -> &FaultSwitch {
        &self.faults
    }

    fn ground_truth(&self) -> &PandaDocGroundTruth {
        &self.truth
    }

    fn api_requests(&self) -> u64 {
        self.counters.api.load(Ordering::Relaxed)
    }

    fn rate_limited(&self) -> u64 {
        self.counters.rate_limited.load(Ordering::Relaxed)
    }
}

impl SandboxHandle<App> {
    /// The request counters (also served at `GET /_sandbox/stats`).
    pub fn stats(&self) -> PandaDocStats {
        self.state().stats()
    }

    /// Number of `POST /oauth2/access_token` requests received, whatever their outcome.
    pub fn token_requests(&self) -> u64 {
        self.state().counters.token.load(Ordering::Relaxed)
    }

    /// Makes every refresh token issued so far invalid (as if the user had revoked the app's
    /// access); tokens issued afterwards work.
    pub fn revoke_refresh_tokens(&self) {
        self.state().revoke_refresh_tokens();
    }

    /// Makes every access token issued so far answer 401, as if its lifetime had passed.
    pub fn expire_access_tokens(&self) {
        self.state().expire_access_tokens();
    }
}

/// Refuses configurations that would not fit in memory or in the calendar, before generating.
fn check(config: &PandaDocConfig) -> anyhow::Result<()> {
    anyhow::ensure!(config.users <= 100_000, "users must be at most 100000");
    anyhow::ensure!(
        config.days <= 3_660,
        "days must be at most 3660 (ten years)"
    );
    anyhow::ensure!(
        u64::from(config.events_per_day) * u64::from(config.days) <= 5_000_000,
        "events_per_day * days must be at most 5000000"
    );
    let back = time::Duration::days(i64::from(config.days));
    anyhow::ensure!(
        config.end_date.checked_sub(back).is_some()
            && config
                .end_date
                .checked_add(time::Duration::days(400))
                .is_some(),
        "end_date is too close to the calendar's limits"
    );
    anyhow::ensure!(!config.client_id.is_empty(), "client_id must not be empty");
    anyhow::ensure!(
        config.shared_emails.iter().all(|(i, _)| *i <= config.users),
        "every shared_emails index must be at most users"
    );
    anyhow::ensure!(
        config.api_key.as_deref() != Some(""),
        "api_key must not be empty (leave it unset to disable API-key auth)"
    );
    Ok(())
}

fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/public/v1/users", get(api::list_users))
        .route("/public/v1/members", get(api::list_members))
        .route("/public/v1/members/current", get(api::current_member))
        .route("/public/v1/documents", get(api::list_documents))
        .route(
            "/public/v1/documents/{id}/details",
            get(api::document_details),
        )
        .route("/public/v1/templates", get(api::list_templates))
        .route(
            "/public/v1/templates/{id}/details",
            get(api::template_details),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            faults::inject::<App>,
        ));
    Router::new()
        .route("/oauth2/authorize", get(oauth::authorize_page))
        .route(
            "/oauth2/authorize/decision",
            post(oauth::authorize_decision),
        )
        .route("/oauth2/access_token", post(oauth::access_token))
        .merge(api)
        .route("/_sandbox/ground-truth", get(api::sandbox_ground_truth))
        .route("/_sandbox/stats", get(api::sandbox_stats))
        .route(
            "/_sandbox/revoke-refresh-tokens",
            post(api::sandbox_revoke_refresh_tokens),
        )
        .route(
            "/_sandbox/expire-access-tokens",
            post(api::sandbox_expire_access_tokens),
        )
        .route(
            "/_sandbox/faults",
            post(faults::arm::<App>)
                .delete(faults::clear::<App>)
                .get(faults::show::<App>),
        )
        .fallback(api::not_found)
        .with_state(app)
}
