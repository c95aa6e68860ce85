//! Syncing (docs/design.md, § Sync). The EventBridge tick claims every due connection and sends
//! one SQS message each (`enqueue_due`); the worker syncs one connection per
//! message (`work`): lease → credentials (refreshed when about to expire, or once
//! on a 401) → the seats stream → the activity stream window by window from its
//! checkpoint, each window's absolute day counts, seats' last activity and the
//! rollups of its days written before the checkpoint moves past it → the run
//! recorded, the lease released, the next sync scheduled. A run that nears the
//! Lambda deadline stops between windows (or abandons the window in flight),
//! releases the lease and re-enqueues itself; the next part resumes from the
//! checkpoints, as does a run that takes over a crashed run's expired lease.

mod rollups;
mod run;
mod streams;
mod tick;

pub use run::{
    needs_attention, next_due, schedule_phase, sync_connection, sync_connection_scheduled,
    sync_connection_within,
};
pub use streams::ON_CALL_WINDOW;
pub use tick::{enqueue_due, request_sync, work};

use serde::{Deserialize, Serialize};

use crate::domain::connection::SyncSummary;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunResult {
    Synced(SyncSummary),
    /// The deadline came first: what was fetched is written and checkpointed, the
    /// lease released; the rest needs another run (`work` re-enqueues it).
    Paused(SyncSummary),
    /// Another run holds the lease (or the connection is not scheduled).
    Skipped,
    Failed {
        code: String,
        message: String,
    },
}

/// What a tick (and, locally, the worker draining the queue after it) did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickReport {
    /// Due connections found in DueIndex.
    pub due: usize,
    /// Claimed and sent to the queue.
    pub enqueued: usize,
    pub synced: usize,
    /// Claimed by an earlier tick, or (worker) another run held the lease.
    pub skipped: usize,
    /// Messages not sent (tick), runs that failed (worker).
    pub failed: usize,
    /// Runs paused at the deadline and re-enqueued.
    #[serde(default)]
    pub continued: usize,
}

impl TickReport {
    pub fn count(&mut self, result: &RunResult) {
        match result {
            RunResult::Synced(_) => self.synced += 1,
            RunResult::Paused(_) => self.continued += 1,
            RunResult::Skipped => self.skipped += 1,
            RunResult::Failed { .. } => self.failed += 1,
        }
    }

    /// One log line with every count.
    pub fn log(&self, what: &str) {
        tracing::info!(
            due = self.due,
            enqueued = self.enqueued,
            synced = self.synced,
            skipped = self.skipped,
            failed = self.failed,
            continued = self.continued,
            "{what}"
        );
    }

    pub fn add(&mut self, other: &TickReport) {
        self.due += other.due;
        self.enqueued += other.enqueued;
        self.synced += other.synced;
        self.skipped += other.skipped;
        self.failed += other.failed;
        self.continued += other.continued;
    }
}
