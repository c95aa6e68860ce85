//! Rate-limit windows shared by the sandboxes.

use std::time::{Duration, Instant};

/// Every sandbox limits requests per 60 s.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(60);

/// A fixed 60 s rate-limit window.
pub(crate) struct Window {
    pub started: Instant,
    pub used: u32,
}

impl Window {
    pub fn new(now: Instant) -> Window {
        Window {
            started: now,
            used: 0,
        }
    }

    /// Starts a new window at `now` if this one is over; true when it did.
    pub fn restart_if_over(&mut self, now: Instant) -> bool {
        let over = now.duration_since(self.started) >= RATE_WINDOW;
        if over {
            *self = Window::new(now);
        }
        over
    }

    /// Counts one request if fewer than `limit` were admitted; whether it was.
    pub fn admit(&mut self, limit: u32) -> bool {
        let allowed = self.used < limit;
        if allowed {
            self.used += 1;
        }
        allowed
    }
}

/// Whole seconds, rounded up, so a client that waits this long lands past the instant.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
