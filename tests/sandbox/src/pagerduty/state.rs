//! Shared server state: the generated account, issued codes and tokens, rate-limit windows
//! and request counters.
//!
//! Plain `std::sync::Mutex`es: no lock is held across an `.await`, and the critical sections
//! are a few map operations.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::data::Dataset;
use super::{GroundTruth, PagerDutyConfig};
use crate::faults::FaultSwitch;
use crate::rate::Window;

pub struct App {
    pub(crate) config: PagerDutyConfig,
    pub(crate) base_url: String,
    pub(crate) data: Dataset,
    pub(crate) truth: GroundTruth,
    pub(crate) token_requests: AtomicU64,
    pub(crate) api_requests: AtomicU64,
    /// API requests answered 429 (by the rate limit or a fault).
    pub(crate) rate_limited: AtomicU64,
    pub(crate) faults: FaultSwitch,
    pub(crate) grants: Mutex<Grants>,
    /// What the next code exchanges answer instead of the truth (a misbehaving vendor).
    pub(crate) token_override: Mutex<super::TokenOverride>,
    pub(crate) windows: Mutex<HashMap<String, Window>>,
    /// Each log entry's JSON, rendered by the first page that lists it: the data set
    /// never changes, and rendering (names, SHA-256 keys, nested references) is most
    /// of what serving `/log_entries` costs, which `cargo xtask bench` runs on the
    /// same two cores as the client it measures.
    pub(crate) entry_json: Vec<std::sync::OnceLock<String>>,
}

/// An authorization code waiting to be exchanged.
pub(crate) struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub scope: String,
    pub user: usize,
    pub expires: Instant,
}

pub(crate) struct AccessGrant {
    pub client_id: String,
    pub user: usize,
    pub scope: String,
    pub expires: Instant,
}

pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub user: usize,
    pub scope: String,
}

#[derive(Default)]
pub(crate) struct Grants {
    pub codes: HashMap<String, AuthCode>,
    pub access: HashMap<String, AccessGrant>,
    pub refresh: HashMap<String, RefreshGrant>,
}

impl App {
    pub(crate) fn new(config: PagerDutyConfig, base_url: String) -> App {
        let data = Dataset::generate(&config);
        let truth = data.ground_truth();
        let entry_json = (0..data.entries.len())
            .map(|_| std::sync::OnceLock::new())
            .collect();
        App {
            entry_json,
            config,
            base_url,
            data,
            truth,
            token_requests: AtomicU64::new(0),
            api_requests: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            faults: FaultSwitch::default(),
            grants: Mutex::new(Grants::default()),
            token_override: Mutex::new(super::TokenOverride::default()),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// A poisoned lock only means another request panicked; the maps are still usable.
    pub(crate) fn grants(&self) -> MutexGuard<'_, Grants> {
        self.grants.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn token_override(&self) -> MutexGuard<'_, super::TokenOverride> {
        self.token_override
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn windows(&self) -> MutexGuard<'_, HashMap<String, Window>> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn revoke_refresh_tokens(&self) {
        self.grants().refresh.clear();
    }

    pub(crate) fn expire_access_tokens(&self) {
        let now = Instant::now();
        for grant in self.grants().access.values_mut() {
            grant.expires = now;
        }
    }
}
