//! Shared server state: the generated account, issued codes and tokens, rate-limit windows
//! and request counters.
//!
//! Plain `std::sync::Mutex`es: no lock is held across an `.await`, and the critical sections
//! are a few map operations.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::data::Dataset;
use super::{PandaDocConfig, PandaDocGroundTruth, PandaDocStats};
use crate::faults::FaultSwitch;

pub struct App {
    pub(crate) config: PandaDocConfig,
    pub(crate) data: Dataset,
    pub(crate) truth: PandaDocGroundTruth,
    pub(crate) counters: Counters,
    pub(crate) faults: FaultSwitch,
    pub(crate) grants: Mutex<Grants>,
    /// Sliding windows: the instants of the admitted requests of the last 60 s, per
    /// (user index, operation).
    pub(crate) windows: Mutex<HashMap<(usize, &'static str), VecDeque<Instant>>>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub token: AtomicU64,
    pub token_code: AtomicU64,
    pub token_refresh: AtomicU64,
    pub api: AtomicU64,
    pub api_list: AtomicU64,
    pub api_details: AtomicU64,
    pub rate_limited: AtomicU64,
    /// Authenticated API requests per operation (each has its own rate limit).
    pub by_operation: Mutex<BTreeMap<&'static str, u64>>,
}

/// An authorization code waiting to be exchanged.
pub(crate) struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub user: usize,
    pub expires: Instant,
}

pub(crate) struct AccessGrant {
    pub user: usize,
    pub expires: Instant,
}

pub(crate) struct RefreshGrant {
    pub client_id: String,
    pub user: usize,
    pub scope: String,
    /// The access token issued together with this refresh token; refreshing revokes it.
    pub access_token: String,
}

#[derive(Default)]
pub(crate) struct Grants {
    pub codes: HashMap<String, AuthCode>,
    pub access: HashMap<String, AccessGrant>,
    pub refresh: HashMap<String, RefreshGrant>,
}

impl App {
    pub(crate) fn new(config: PandaDocConfig) -> App {
        let data = Dataset::generate(&config);
        let truth = data.ground_truth();
        App {
            config,
            data,
            truth,
            counters: Counters::default(),
            faults: FaultSwitch::default(),
            grants: Mutex::new(Grants::default()),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// A poisoned lock only means another request panicked; the maps are still usable.
    pub(crate) fn grants(&self) -> MutexGuard<'_, Grants> {
        self.grants.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn windows(
        &self,
    ) -> MutexGuard<'_, HashMap<(usize, &'static str), VecDeque<Instant>>> {
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

    pub(crate) fn stats(&self) -> PandaDocStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PandaDocStats {
            token_requests: get(&c.token),
            token_requests_authorization_code: get(&c.token_code),
            token_requests_refresh_token: get(&c.token_refresh),
            api_requests: get(&c.api),
            api_requests_list: get(&c.api_list),
            api_requests_details: get(&c.api_details),
            rate_limited: get(&c.rate_limited),
            faults_injected: self.faults.injected(),
            api_requests_by_operation: c
                .by_operation
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }
}
