//! Shared server state: the generated account, the accepted keys, rate-limit windows and
//! request counters.
//!
//! Plain `std::sync::Mutex`es: no lock is held across an `.await`, and the critical sections
//! are a few map operations.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::data::Dataset;
use super::{SendGridConfig, SendGridGroundTruth};
use crate::faults::FaultSwitch;
use crate::rate::{ceil_secs, Window, RATE_WINDOW};

pub struct App {
    pub(crate) config: SendGridConfig,
    pub(crate) base_url: String,
    pub(crate) data: Dataset,
    pub(crate) truth: SendGridGroundTruth,
    pub(crate) api_requests: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) faults: FaultSwitch,
    by_path: Mutex<BTreeMap<String, u64>>,
    revoked: Mutex<HashSet<String>>,
    windows: Mutex<HashMap<(String, &'static str), KeyWindow>>,
}

/// A fixed 60 s rate-limit window, with the instant it ends as SendGrid reports it.
pub(crate) struct KeyWindow {
    window: Window,
    /// Unix epoch seconds at which the window ends (`X-RateLimit-Reset`).
    reset_epoch: u64,
}

/// What one request did to its window.
pub(crate) struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_epoch: u64,
}

impl App {
    pub(crate) fn new(config: SendGridConfig, base_url: String) -> App {
        let data = Dataset::generate(&config);
        let truth = data.ground_truth();
        App {
            config,
            base_url,
            data,
            truth,
            api_requests: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            faults: FaultSwitch::default(),
            by_path: Mutex::new(BTreeMap::new()),
            revoked: Mutex::new(HashSet::new()),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// A poisoned lock only means another request panicked; the maps are still usable.
    pub(crate) fn by_path(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.by_path.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn revoked(&self) -> MutexGuard<'_, HashSet<String>> {
        self.revoked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The scopes of a configured, unrevoked key.
    pub(crate) fn key_scopes(&self, key: &str) -> Option<&[String]> {
        let configured = self.config.api_keys.iter().find(|k| k.key == key)?;
        if self.revoked().contains(key) {
            return None;
        }
        Some(&configured.scopes)
    }

    pub(crate) fn revoke_key(&self, key: &str) -> bool {
        if !self.config.api_keys.iter().any(|k| k.key == key) {
            return false;
        }
        self.revoked().insert(key.to_string());
        true
    }

    /// Counts one request against `(key, endpoint)`'s window.
    pub(crate) fn rate(&self, key: &str, endpoint: &'static str) -> RateDecision {
        let limit = self.config.rate_limit_per_minute;
        let now = Instant::now();
        let epoch_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        // Rounded up, so a client that sleeps until this second lands in the next window.
        let reset_epoch = || ceil_secs(epoch_now + RATE_WINDOW);
        let entry = windows
            .entry((key.to_string(), endpoint))
            .or_insert_with(|| KeyWindow {
                window: Window::new(now),
                reset_epoch: reset_epoch(),
            });
        if entry.window.restart_if_over(now) {
            entry.reset_epoch = reset_epoch();
        }
        let allowed = entry.window.admit(limit);
        let window = &entry.window;
        RateDecision {
            allowed,
            limit,
            remaining: limit.saturating_sub(window.used),
            reset_epoch: entry.reset_epoch,
        }
    }
}
