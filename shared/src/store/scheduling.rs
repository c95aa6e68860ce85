//! Sync scheduling state on the connection item: the tick's claim of a due
//! connection, the per-stream checkpoints a run saves under its lease, and a run
//! paused at the Lambda deadline.

use time::{Duration, OffsetDateTime};

use super::{n, s, unless_condition_failed, DynamoDbStore};
use crate::domain::rfc3339;
use crate::error::Result;

/// What a run has durably written so far (saved after each written batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// The seats stream was written at this instant.
    Seats(OffsetDateTime),
    /// Activity before this instant is written (day counts and rollups).
    ActivityUntil(OffsetDateTime),
}

impl DynamoDbStore {
    /// The tick's claim of a due connection: moves `next_sync_at` to `now + hold` if
    /// it is still due, so a second tick before the worker runs does not enqueue it
    /// again. False if it is not due (any more) or not scheduled.
    pub async fn claim_due(
        &self,
        org: &str,
        provider: &str,
        now: OffsetDateTime,
        hold: Duration,
    ) -> Result<bool> {
        let result = self
            .update_connection(org, provider)
            .await
            .update_expression("SET next_sync_at = :later")
            .condition_expression("attribute_exists(due_shard) AND next_sync_at <= :now")
            .expression_attribute_values(":later", n((now + hold).unix_timestamp()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await;
        Ok(unless_condition_failed(result, "UpdateItem(claim due)")?.is_some())
    }

    /// Undoes a claim whose message could not be sent: due again at `now` (unless
    /// something else has moved the schedule meanwhile).
    pub async fn release_claim(
        &self,
        org: &str,
        provider: &str,
        now: OffsetDateTime,
        hold: Duration,
    ) -> Result<()> {
        let result = self
            .update_connection(org, provider)
            .await
            .update_expression("SET next_sync_at = :now")
            .condition_expression("attribute_exists(due_shard) AND next_sync_at = :later")
            .expression_attribute_values(":later", n((now + hold).unix_timestamp()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await;
        match unless_condition_failed(result, "UpdateItem(release claim)")? {
            Some(_) => Ok(()),
            None => Ok(()),
        }
    }

    /// Saves a stream's checkpoint and renews the lease, only while `owner` holds
    /// it. False if the lease was lost (taken over or the connection disconnected):
    /// the run must stop writing.
    pub async fn save_checkpoint(
        &self,
        org: &str,
        provider: &str,
        owner: &str,
        checkpoint: Checkpoint,
        lease_until: OffsetDateTime,
    ) -> Result<bool> {
        let (attribute, at) = match checkpoint {
            Checkpoint::Seats(at) => ("seats_synced_at", at),
            Checkpoint::ActivityUntil(at) => ("activity_synced_until", at),
        };
        let result = self
            .update_connection(org, provider)
            .await
            .update_expression(format!("SET {attribute} = :at, lease_expires_at = :exp"))
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":at", s(rfc3339(at)))
            .expression_attribute_values(":exp", n(lease_until.unix_timestamp()))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        Ok(unless_condition_failed(result, "UpdateItem(checkpoint)")?.is_some())
    }

    /// A run that reached its deadline: releases the lease (the checkpoints are
    /// saved) and holds the schedule until `hold_until`, so the tick leaves the
    /// connection to the continuation message. False if the lease was lost.
    pub async fn pause_run(
        &self,
        org: &str,
        provider: &str,
        owner: &str,
        hold_until: OffsetDateTime,
    ) -> Result<bool> {
        let result = self
            .update_connection(org, provider)
            .await
            .update_expression("SET next_sync_at = :hold REMOVE lease_owner, lease_expires_at")
            .condition_expression("lease_owner = :me AND attribute_exists(due_shard)")
            .expression_attribute_values(":hold", n(hold_until.unix_timestamp()))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        Ok(unless_condition_failed(result, "UpdateItem(pause run)")?.is_some())
    }
}
