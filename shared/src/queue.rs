//! SQS adapter: the sync fan-out queue (DESIGN §5). The tick sends one message per
//! due connection; a sync that reaches the Lambda deadline sends its continuation.
//! Messages carry only the org and the provider (never a credential).

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use crate::aws::LazyClient;
use crate::error::{Error, Result};
use crate::sync::SyncRequest;

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
