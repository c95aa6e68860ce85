//! Sync scheduling state on the connection item: the due connections (DueIndex), the
//! tick's claim of one, the run's lease, the per-stream checkpoints a run saves under
//! it, a run paused at the Lambda deadline, a finished run's outcome, and the refresh
//! lock of an OAuth token set.

use time::{Duration, OffsetDateTime};

use std::collections::{BTreeMap, VecDeque};

use super::{ddb_err, keys, n, s, unless_condition_failed, DynamoDbStore};
use crate::domain::connection::{ConnectionStatus, SyncSummary};
use crate::domain::org::OrgId;
use crate::domain::time::rfc3339;
use crate::error::{Error, Result};

/// The connection's two locks: a run's lease (only while the connection is scheduled)
/// and the OAuth token set's refresh lock (one refresher at a time, independent of the
/// lease).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionLock {
    Lease,
    Refresh,
}

/// What a run has durably written so far (saved after each written batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// The seats stream read the seats at `at`, before the activity from
    /// `activity_from` on: the seats' last activity may lag the day counts from there
    /// until the sync finishes (kept if an earlier unfinished sync set it sooner).
    Seats {
        at: OffsetDateTime,
        activity_from: OffsetDateTime,
    },
    /// Activity before this instant is written (day counts and rollups).
    ActivityUntil(OffsetDateTime),
}

impl DynamoDbStore {
    /// The tick's claim of a due connection: moves `next_sync_at` to `now + hold` if
    /// it is still due, so a second tick before the worker runs does not enqueue it
    /// again. False if it is not due (any more) or not scheduled.
    pub async fn claim_due(
        &self,
        org: &OrgId,
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
        org: &OrgId,
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
        org: &OrgId,
        provider: &str,
        owner: &str,
        checkpoint: Checkpoint,
        lease_until: OffsetDateTime,
    ) -> Result<bool> {
        let update = self
            .update_connection(org, provider)
            .await
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":exp", n(lease_until.unix_timestamp()))
            .expression_attribute_values(":me", s(owner));
        let update = match checkpoint {
            Checkpoint::Seats { at, activity_from } => update
                .update_expression(
                    "SET seats_synced_at = :at, lease_expires_at = :exp, \
                     last_activity_pending_from = \
                     if_not_exists(last_activity_pending_from, :from)",
                )
                .expression_attribute_values(":at", s(rfc3339(at)))
                .expression_attribute_values(":from", s(rfc3339(activity_from))),
            Checkpoint::ActivityUntil(at) => update
                .update_expression("SET activity_synced_until = :at, lease_expires_at = :exp")
                .expression_attribute_values(":at", s(rfc3339(at))),
        };
        let result = update.send().await;
        Ok(unless_condition_failed(result, "UpdateItem(checkpoint)")?.is_some())
    }

    /// A run that reached its deadline: releases the lease (the checkpoints are
    /// saved) and holds the schedule until `hold_until`, so the tick leaves the
    /// connection to the continuation message. False if the lease was lost.
    pub async fn pause_run(
        &self,
        org: &OrgId,
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

    /// (org, provider) of every connection due at `now`, from the sharded DueIndex, in
    /// the order the tick claims them ([`interleave_shards`]).
    pub async fn due_connections(&self, now: OffsetDateTime) -> Result<Vec<(OrgId, String)>> {
        let mut due = Vec::new();
        for shard in 0..keys::DUE_SHARDS {
            let mut start = None;
            loop {
                let page = self
                    .query_builder()
                    .await
                    .index_name("DueIndex")
                    .key_condition_expression("due_shard = :s AND next_sync_at <= :now")
                    .expression_attribute_values(":s", s(keys::due_shard_name(shard)))
                    .expression_attribute_values(":now", n(now.unix_timestamp()))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(ddb_err("Query(DueIndex)"))?;
                for item in page.items.unwrap_or_default() {
                    let pk = item.get("pk").and_then(|v| v.as_s().ok());
                    let sk = item.get("sk").and_then(|v| v.as_s().ok());
                    if let (Some(pk), Some(sk)) = (pk, sk) {
                        if let Some((org, provider)) = keys::connection_of(pk, sk) {
                            due.push((org, provider));
                        }
                    }
                }
                match page.last_evaluated_key {
                    Some(k) => start = Some(k),
                    None => break,
                }
            }
        }
        Ok(interleave_shards(due))
    }

    /// Takes one of the connection's locks for `owner` until `now + ttl`, if it is free
    /// or expired. False if someone else holds it, or (the lease) if the connection is
    /// gone or not scheduled.
    pub async fn take_lock(
        &self,
        lock: ConnectionLock,
        (org, provider): (&OrgId, &str),
        owner: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<bool> {
        let (owner_attr, until_attr, requires, op) = match lock {
            ConnectionLock::Lease => (
                "lease_owner",
                "lease_expires_at",
                "due_shard",
                "UpdateItem(lease)",
            ),
            ConnectionLock::Refresh => (
                "refresh_lock_owner",
                "refresh_lock_until",
                "pk",
                "UpdateItem(refresh lock)",
            ),
        };
        let result = self
            .update_connection(org, provider)
            .await
            .update_expression(format!("SET {owner_attr} = :me, {until_attr} = :until"))
            .condition_expression(format!(
                "attribute_exists({requires}) AND \
                 (attribute_not_exists({until_attr}) OR {until_attr} < :now)"
            ))
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n((now + ttl).unix_timestamp()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await;
        Ok(unless_condition_failed(result, op)?.is_some())
    }

    /// Releases the refresh lock if `owner` still holds it.
    pub async fn release_refresh_lock(
        &self,
        org: &OrgId,
        provider: &str,
        owner: &str,
    ) -> Result<()> {
        let result = self
            .update_connection(org, provider)
            .await
            .update_expression("REMOVE refresh_lock_owner, refresh_lock_until")
            .condition_expression("refresh_lock_owner = :me")
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        match unless_condition_failed(result, "UpdateItem(release refresh lock)")? {
            Some(_) => Ok(()),
            None => Ok(()),
        }
    }

    /// Records a run's outcome on the connection and releases the lease, only if
    /// `owner` still holds it (a run whose lease was taken over writes nothing).
    pub async fn finish_run(
        &self,
        org: &OrgId,
        provider: &str,
        owner: &str,
        outcome: &SyncOutcome,
    ) -> Result<bool> {
        let mut set = vec![
            "#st = :st",
            "next_sync_at = :next",
            "last_sync_at = :at",
            "consecutive_failures = :fails",
        ];
        let mut remove = vec!["lease_owner", "lease_expires_at"];
        let mut u = self
            .update_connection(org, provider)
            .await
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(
                ":st",
                serde_dynamo::to_attribute_value(outcome.status)
                    .map_err(|e| Error::internal("serializing status", e))?,
            )
            .expression_attribute_values(":next", n(outcome.next_sync_at.unix_timestamp()))
            .expression_attribute_values(":at", s(rfc3339(outcome.finished_at)))
            .expression_attribute_values(":fails", n(i64::from(outcome.consecutive_failures)))
            .expression_attribute_values(":me", s(owner))
            .condition_expression("lease_owner = :me");
        if let Some(summary) = &outcome.summary {
            // A finished sync wrote the seats' last activity up to its end.
            remove.push("last_activity_pending_from");
            set.push("last_sync_summary = :sum");
            u = u.expression_attribute_values(
                ":sum",
                serde_dynamo::to_attribute_value(summary)
                    .map_err(|e| Error::internal("serializing summary", e))?,
            );
        }
        match &outcome.status_reason {
            Some(reason) => {
                set.push("status_reason = :reason");
                u = u.expression_attribute_values(":reason", s(reason));
            }
            None => remove.push("status_reason"),
        }
        if outcome.status == ConnectionStatus::NeedsReconnect {
            // Unscheduled until the admin reconnects: out of the DueIndex.
            remove.push("due_shard");
        }
        let expr = format!("SET {} REMOVE {}", set.join(", "), remove.join(", "));
        let result = u.update_expression(expr).send().await;
        Ok(unless_condition_failed(result, "UpdateItem(finish run)")?.is_some())
    }
}

/// Where a connection's scheduling stands after a run.
pub struct SyncOutcome {
    pub status: ConnectionStatus,
    pub status_reason: Option<String>,
    pub summary: Option<SyncSummary>,
    pub finished_at: OffsetDateTime,
    pub next_sync_at: OffsetDateTime,
    /// Failures in a row including this run (0 after a success).
    pub consecutive_failures: u32,
}

/// The due connections in the order the tick claims them: DueIndex returns them shard
/// by shard, and each claim moves `next_sync_at`, an index key (two index writes), so
/// claiming in that order puts every write of the moment on one shard's partition
/// (`cargo xtask scale` measured 782 of a partition's 1,000 WCU/s locally). Taking
/// the shards in turn spreads them over all of them.
pub fn interleave_shards(due: Vec<(OrgId, String)>) -> Vec<(OrgId, String)> {
    let mut by_shard: BTreeMap<String, VecDeque<(OrgId, String)>> = BTreeMap::new();
    for (org, provider) in due {
        by_shard
            .entry(keys::due_shard(&org, &provider, keys::DUE_SHARDS))
            .or_default()
            .push_back((org, provider));
    }
    let mut order = Vec::with_capacity(by_shard.values().map(VecDeque::len).sum());
    while !by_shard.is_empty() {
        by_shard.retain(|_, queue| {
            if let Some(next) = queue.pop_front() {
                order.push(next);
            }
            !queue.is_empty()
        });
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_claims_the_shards_in_turn_and_every_due_connection_once() {
        // DueIndex's order: all of shard 0, then shard 1 …
        let mut due: Vec<(OrgId, String)> = (0..400)
            .map(|i| {
                (
                    OrgId::parse(&format!("org{i}")).unwrap(),
                    "pagerduty".to_string(),
                )
            })
            .collect();
        let shard = |c: &(OrgId, String)| keys::due_shard(&c.0, &c.1, keys::DUE_SHARDS);
        due.sort_by_key(shard);
        let order = interleave_shards(due.clone());
        let mut sorted = order.clone();
        sorted.sort();
        due.sort();
        assert_eq!(sorted, due, "each once");
        // Any DUE_SHARDS claims in a row (while every shard has some left) hit every shard.
        let shards: Vec<String> = order.iter().map(shard).collect();
        let smallest = (0..keys::DUE_SHARDS)
            .map(|s| shards.iter().filter(|x| **x == format!("DUE#{s}")).count())
            .min()
            .unwrap();
        assert!(smallest > 50, "{smallest}");
        for window in
            shards[..smallest * keys::DUE_SHARDS as usize].chunks(keys::DUE_SHARDS as usize)
        {
            let distinct: std::collections::BTreeSet<&String> = window.iter().collect();
            assert_eq!(distinct.len(), keys::DUE_SHARDS as usize, "{window:?}");
        }
    }
}
