//! SQS adapter: the sync fan-out queue (docs/design.md § Tick, § Continuations). The tick sends one message per
//! due connection; a sync that reaches the Lambda deadline sends its continuation.
//! A message names the org and the provider, and carries a continuation's count,
//! the tick's time and the run so far: never a credential.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use serde::{Deserialize, Serialize};

use crate::aws::LazyClient;
use crate::domain::org::OrgId;
use crate::domain::run::RunSoFar;
use crate::error::{Error, Result};

/// SQS's SendMessageBatch limit.
const BATCH_SIZE: usize = 10;
/// Entries SQS refused for a reason on its side are sent again this many times.
const SEND_ATTEMPTS: u32 = 3;

#[derive(Clone)]
pub struct SqsSyncQueue {
    client: LazyClient<Client>,
    url: String,
}

impl SqsSyncQueue {
    pub fn new(client: impl Into<LazyClient<Client>>, url: impl Into<String>) -> Self {
        SqsSyncQueue {
            client: client.into(),
            url: url.into(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends every request, 10 per SendMessageBatch; entries SQS failed on its side
    /// are retried. Returns the requests that could not be sent (the caller reports
    /// them and makes them due again).
    pub async fn send_all(&self, requests: &[SyncRequest]) -> Result<Vec<SyncRequest>> {
        let mut unsent = Vec::new();
        for chunk in requests.chunks(BATCH_SIZE) {
            // Entry ids are the index within the chunk.
            let mut pending: Vec<usize> = (0..chunk.len()).collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                let entries = pending
                    .iter()
                    .map(|&i| {
                        let body = serde_json::to_string(&chunk[i])
                            .map_err(|e| Error::internal("serializing a sync request", e))?;
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(body)
                            .build()
                            .map_err(|e| Error::internal("building an SQS entry", e))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let out = self
                    .client
                    .get()
                    .await
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| Error::internal("sqs SendMessageBatch failed", e))?;
                let mut retry = Vec::new();
                for failed in out.failed() {
                    let Ok(i) = failed.id().parse::<usize>() else {
                        continue;
                    };
                    tracing::warn!(
                        org = %chunk[i].org,
                        provider = %chunk[i].provider,
                        code = failed.code(),
                        sender_fault = failed.sender_fault(),
                        "sqs refused a sync request"
                    );
                    // Our fault (e.g. a malformed entry) does not get better by retrying.
                    if failed.sender_fault() || attempt >= SEND_ATTEMPTS {
                        unsent.push(chunk[i].clone());
                    } else {
                        retry.push(i);
                    }
                }
                pending = retry;
                if !pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)))
                        .await;
                }
            }
        }
        Ok(unsent)
    }
}

/// One SQS message: sync this connection. Only names, never a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub org: OrgId,
    pub provider: String,
    /// 0 from the tick; n for the n-th continuation after a deadline.
    #[serde(default)]
    pub continuation: u32,
    /// The tick that enqueued it (epoch seconds), kept by its continuations: the next
    /// sync is scheduled from the connection's slot at or before this instant
    /// ([`next_due`]), however long the message waited in the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
    /// On a continuation: what the run's earlier parts did, so the run is recorded
    /// once with the whole of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub so_far: Option<RunSoFar>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::run::{RequestCounts, RunSoFar};

    #[test]
    fn sync_requests_carry_names_only() {
        let r = SyncRequest {
            org: OrgId::parse("acme").unwrap(),
            provider: "pagerduty".into(),
            continuation: 2,
            due_at: None,
            so_far: None,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"org": "acme", "provider": "pagerduty", "continuation": 2})
        );
        let from_tick: SyncRequest =
            serde_json::from_str(r#"{"org":"acme","provider":"pagerduty"}"#).unwrap();
        assert_eq!(from_tick.continuation, 0);
        assert_eq!(
            from_tick.due_at, None,
            "a message from before due_at still reads"
        );
        let from_tick = SyncRequest {
            due_at: Some(1_790_000_000),
            ..r
        };
        assert_eq!(
            serde_json::to_value(&from_tick).unwrap(),
            serde_json::json!({"org": "acme", "provider": "pagerduty", "continuation": 2, "due_at": 1_790_000_000})
        );
        // A continuation carries its run's earlier parts: counts and a time, no secret.
        let continued = SyncRequest {
            so_far: Some(RunSoFar {
                started_at: "2026-11-23T10:00:00Z".into(),
                parts: 1,
                activity_events: 40,
                days_written: 3,
                requests: RequestCounts {
                    requests: 7,
                    retries: 1,
                    rate_limited: 0,
                },
            }),
            ..from_tick
        };
        let json = serde_json::to_string(&continued).unwrap();
        assert_eq!(
            serde_json::from_str::<SyncRequest>(&json).unwrap(),
            continued
        );
    }
}
