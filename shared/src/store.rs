//! DynamoDB adapter: every access pattern is a GetItem, Query or conditional write
//! (never a Scan); items go through serde_dynamo.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, PutRequest, ReturnValue, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;

use crate::aws::LazyClient;
use crate::domain::{keys, Connection, ConnectionStatus, OAuthState, SyncSummary};
use crate::error::{Error, Result};

// The audit trail: changes and their entries in one transaction.
mod audit;
pub use audit::{AuditPage, Write};
// Connecting, invites, disconnecting and purging (connection management).
mod management;
pub use management::ConnectionGrant;
// The tick's claims, checkpoints and paused runs (sync scheduling).
mod scheduling;
pub use scheduling::Checkpoint;

/// DynamoDB's BatchWriteItem limit.
const BATCH_SIZE: usize = 25;

#[derive(Clone)]
pub struct DynamoDbStore {
    client: LazyClient<Client>,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn ddb_err<E>(op: &'static str) -> impl FnOnce(E) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| Error::internal(format!("dynamodb {op} failed"), e)
}

/// A conditional write's outcome: `None` when its condition did not hold, the
/// output when it did; any other failure is an error.
fn unless_condition_failed<T, E, R>(
    result: std::result::Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
    op: &'static str,
) -> Result<Option<T>>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if e.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(None)
        }
        Err(e) => Err(ddb_err(op)(e)),
    }
}

fn to_item<T: Serialize>(value: &T) -> Result<HashMap<String, AttributeValue>> {
    serde_dynamo::to_item(value).map_err(|e| Error::internal("serializing an item", e))
}

fn from_item<T: DeserializeOwned>(item: HashMap<String, AttributeValue>) -> Result<T> {
    serde_dynamo::from_item(item).map_err(|e| Error::internal("reading a stored item", e))
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

impl DynamoDbStore {
    pub fn new(client: impl Into<LazyClient<Client>>, table: impl Into<String>) -> Self {
        DynamoDbStore {
            client: client.into(),
            table: table.into(),
        }
    }

    /// An UpdateItem on the connection item of (org, provider).
    async fn update_connection(
        &self,
        org: &str,
        provider: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.update_at(s(keys::org(org)), s(keys::connection_sk(provider)))
            .await
    }

    /// A DeleteItem on the item at (pk, sk).
    async fn delete_at(
        &self,
        pk: AttributeValue,
        sk: AttributeValue,
    ) -> aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder {
        self.client
            .get()
            .await
            .delete_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
    }

    /// An UpdateItem on the item at (pk, sk).
    async fn update_at(
        &self,
        pk: AttributeValue,
        sk: AttributeValue,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .get()
            .await
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub async fn put<T: Serialize>(&self, value: &T) -> Result<()> {
        self.client
            .get()
            .await
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(value)?))
            .send()
            .await
            .map_err(ddb_err("PutItem"))?;
        Ok(())
    }

    /// Writes many items, 25 per request, retrying unprocessed items with backoff.
    pub async fn put_all<T: Serialize>(&self, values: &[T]) -> Result<()> {
        for chunk in values.chunks(BATCH_SIZE) {
            let requests = chunk
                .iter()
                .map(|v| {
                    let put = PutRequest::builder()
                        .set_item(Some(to_item(v)?))
                        .build()
                        .map_err(|e| Error::internal("building a put request", e))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>>>()?;
            self.write_batch(requests).await?;
        }
        Ok(())
    }

    /// One BatchWriteItem of at most 25 requests, retrying unprocessed ones with backoff.
    async fn write_batch(&self, mut requests: Vec<WriteRequest>) -> Result<()> {
        let mut attempt = 0u32;
        while !requests.is_empty() {
            let out = self
                .client
                .get()
                .await
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(ddb_err("BatchWriteItem"))?;
            requests = out
                .unprocessed_items
                .and_then(|mut m| m.remove(&self.table))
                .unwrap_or_default();
            if !requests.is_empty() {
                attempt += 1;
                if attempt > 10 {
                    return Err(Error::Internal {
                        context: format!(
                            "dynamodb kept {} items unprocessed after 10 retries",
                            requests.len()
                        ),
                        source: None,
                    });
                }
                let wait = 50u64 * 2u64.pow(attempt.min(6));
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
        }
        Ok(())
    }

    pub async fn delete(&self, pk: &str, sk: &str) -> Result<()> {
        self.delete_at(s(pk), s(sk))
            .await
            .send()
            .await
            .map_err(ddb_err("DeleteItem"))?;
        Ok(())
    }

    pub async fn get<T: DeserializeOwned>(&self, pk: &str, sk: &str) -> Result<Option<T>> {
        self.get_raw(pk, sk).await?.map(from_item).transpose()
    }

    /// One item as DynamoDB returned it (for attributes no record type carries).
    pub(crate) async fn get_raw(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>> {
        let out = self
            .client
            .get()
            .await
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb_err("GetItem"))?;
        Ok(out.item)
    }

    /// The items at `keys` that exist (BatchGetItem, 100 keys per request, all
    /// requests at once, unprocessed keys retried with backoff). Order is not kept.
    pub async fn get_many<T: DeserializeOwned>(&self, keys: &[(String, String)]) -> Result<Vec<T>> {
        let batches = keys.chunks(100).map(|chunk| async move {
            let mut pending: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|(pk, sk)| {
                    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
                })
                .collect();
            let mut items = Vec::new();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::internal("building a batch get", e))?;
                let out = self
                    .client
                    .get()
                    .await
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(ddb_err("BatchGetItem"))?;
                items.extend(
                    out.responses
                        .and_then(|mut r| r.remove(&self.table))
                        .unwrap_or_default(),
                );
                pending = out
                    .unprocessed_keys
                    .and_then(|mut m| m.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > 10 {
                        return Err(Error::Internal {
                            context: format!(
                                "dynamodb kept {} keys unprocessed after 10 retries",
                                pending.len()
                            ),
                            source: None,
                        });
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(
                        50u64 * 2u64.pow(attempt.min(6)),
                    ))
                    .await;
                }
            }
            items.into_iter().map(from_item).collect::<Result<Vec<T>>>()
        });
        Ok(futures::future::try_join_all(batches)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// All items of a partition whose sort key starts with `prefix`, in key order.
    pub async fn query_prefix<T: DeserializeOwned>(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<T>> {
        self.query(
            pk,
            "begins_with(sk, :a)",
            vec![(":a", s(prefix))],
            true,
            None,
        )
        .await
    }

    /// Items with `from <= sk <= to`.
    pub async fn query_between<T: DeserializeOwned>(
        &self,
        pk: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<T>> {
        self.query(
            pk,
            "sk BETWEEN :a AND :b",
            vec![(":a", s(from)), (":b", s(to))],
            true,
            None,
        )
        .await
    }

    /// The item with the greatest sort key under `prefix`.
    pub async fn last_with_prefix<T: DeserializeOwned>(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Option<T>> {
        Ok(self
            .query(
                pk,
                "begins_with(sk, :a)",
                vec![(":a", s(prefix))],
                false,
                Some(1),
            )
            .await?
            .into_iter()
            .next())
    }

    /// A page of an app's recorded runs, newest first: up to `limit` runs older than
    /// the one whose sort key is `before`, and the sort key to page on from when older
    /// ones follow.
    pub async fn runs_page(
        &self,
        org: &str,
        provider: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<crate::domain::SyncRun>, Option<String>)> {
        let pk = keys::app(org, provider);
        let want = i32::try_from(limit + 1).unwrap_or(i32::MAX);
        let mut runs: Vec<crate::domain::SyncRun> = match before {
            None => {
                self.query(
                    &pk,
                    "begins_with(sk, :a)",
                    vec![(":a", s(keys::RUN_PREFIX))],
                    false,
                    Some(want),
                )
                .await?
            }
            // BETWEEN is inclusive: the run at `before` itself is dropped.
            Some(b) => self
                .query::<crate::domain::SyncRun>(
                    &pk,
                    "sk BETWEEN :a AND :b",
                    vec![(":a", s(keys::RUN_PREFIX)), (":b", s(b))],
                    false,
                    Some(want + 1),
                )
                .await?
                .into_iter()
                .filter(|r| r.sk != b)
                .collect(),
        };
        let more = runs.len() > limit;
        runs.truncate(limit);
        let next = more.then(|| runs.last().map(|r| r.sk.clone())).flatten();
        Ok((runs, next))
    }

    /// The `n` items with the greatest sort keys under `prefix`, greatest first.
    pub async fn last_n_with_prefix<T: DeserializeOwned>(
        &self,
        pk: &str,
        prefix: &str,
        n: i32,
    ) -> Result<Vec<T>> {
        self.query(
            pk,
            "begins_with(sk, :a)",
            vec![(":a", s(prefix))],
            false,
            Some(n),
        )
        .await
    }

    async fn query<T: DeserializeOwned>(
        &self,
        pk: &str,
        sk_condition: &str,
        values: Vec<(&str, AttributeValue)>,
        forward: bool,
        limit: Option<i32>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut q = self
                .client
                .get()
                .await
                .query()
                .table_name(&self.table)
                .key_condition_expression(format!("pk = :pk AND {sk_condition}"))
                .expression_attribute_values(":pk", s(pk))
                .scan_index_forward(forward)
                .set_limit(limit)
                .set_exclusive_start_key(start.take());
            for (k, v) in &values {
                q = q.expression_attribute_values(*k, v.clone());
            }
            let page = q.send().await.map_err(ddb_err("Query"))?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if limit.is_none() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    // --- OAuth state -------------------------------------------------------------

    pub async fn put_oauth_state(&self, state: &OAuthState) -> Result<()> {
        self.client
            .get()
            .await
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(state)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(ddb_err("PutItem(oauth state)"))?;
        Ok(())
    }

    /// Deletes the state if it exists and has not expired, returning it: a state can
    /// be consumed once. Unknown, replayed and expired all come back as None.
    pub async fn consume_oauth_state(
        &self,
        state_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<OAuthState>> {
        let result = self
            .delete_at(s(keys::oauth_state(state_hash)), s(keys::OAUTH_STATE_SK))
            .await
            .condition_expression("attribute_exists(pk) AND expires_at > :now")
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match unless_condition_failed(result, "DeleteItem(oauth state)")? {
            Some(out) => out.attributes.map(from_item).transpose(),
            None => Ok(None),
        }
    }

    // --- connections -------------------------------------------------------------

    pub async fn connection(&self, org: &str, provider: &str) -> Result<Option<Connection>> {
        self.get(&keys::org(org), &keys::connection_sk(provider))
            .await
    }

    pub async fn connections(&self, org: &str) -> Result<Vec<Connection>> {
        self.query_prefix(&keys::org(org), keys::CONNECTION_PREFIX)
            .await
    }

    /// Makes a scheduled connection due now ("sync now"). Not found if absent or
    /// not scheduled (disconnected).
    pub async fn make_due(
        &self,
        org: &str,
        provider: &str,
        now: OffsetDateTime,
        entry: &crate::audit::AuditEntry,
    ) -> Result<()> {
        let update = self
            .update_connection(org, provider)
            .await
            .update_expression("SET next_sync_at = :now")
            .condition_expression("attribute_exists(due_shard)")
            .expression_attribute_values(":now", n(now.unix_timestamp()));
        if self.commit(vec![Write::Update(update)], entry).await? {
            Ok(())
        } else {
            Err(Error::NotFound(format!("connection to {provider}")))
        }
    }

    /// (org, provider) of every connection due at `now`, from the sharded DueIndex.
    pub async fn due_connections(&self, now: OffsetDateTime) -> Result<Vec<(String, String)>> {
        let mut due = Vec::new();
        for shard in 0..keys::DUE_SHARDS {
            let mut start = None;
            loop {
                let page = self
                    .client
                    .get()
                    .await
                    .query()
                    .table_name(&self.table)
                    .index_name("DueIndex")
                    .key_condition_expression("due_shard = :s AND next_sync_at <= :now")
                    .expression_attribute_values(":s", s(format!("DUE#{shard}")))
                    .expression_attribute_values(":now", n(now.unix_timestamp()))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(ddb_err("Query(DueIndex)"))?;
                for item in page.items.unwrap_or_default() {
                    let pk = item.get("pk").and_then(|v| v.as_s().ok());
                    let sk = item.get("sk").and_then(|v| v.as_s().ok());
                    if let (Some(pk), Some(sk)) = (pk, sk) {
                        if let (Some(org), Some(provider)) = (
                            pk.strip_prefix("ORG#"),
                            sk.strip_prefix(keys::CONNECTION_PREFIX),
                        ) {
                            due.push((org.to_string(), provider.to_string()));
                        }
                    }
                }
                match page.last_evaluated_key {
                    Some(k) => start = Some(k),
                    None => break,
                }
            }
        }
        Ok(due)
    }

    /// Takes the connection's lease if it is free or expired. False if another run
    /// holds it (or the connection is gone / not scheduled).
    pub async fn acquire_lease(
        &self,
        org: &str,
        provider: &str,
        owner: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<bool> {
        let result = self
            .update_connection(org, provider)
            .await
            .update_expression("SET lease_owner = :me, lease_expires_at = :exp")
            .condition_expression(
                "attribute_exists(due_shard) AND \
                 (attribute_not_exists(lease_expires_at) OR lease_expires_at < :now)",
            )
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":exp", n((now + ttl).unix_timestamp()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await;
        Ok(unless_condition_failed(result, "UpdateItem(lease)")?.is_some())
    }

    /// Takes the connection's refresh lock if it is free or expired (one refresher
    /// at a time, independent of the run lease).
    pub async fn acquire_refresh_lock(
        &self,
        org: &str,
        provider: &str,
        owner: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<bool> {
        let result = self
            .update_connection(org, provider)
            .await
            .update_expression("SET refresh_lock_owner = :me, refresh_lock_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND \
                 (attribute_not_exists(refresh_lock_until) OR refresh_lock_until < :now)",
            )
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":until", n((now + ttl).unix_timestamp()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await;
        Ok(unless_condition_failed(result, "UpdateItem(refresh lock)")?.is_some())
    }

    /// Releases the refresh lock if `owner` still holds it.
    pub async fn release_refresh_lock(&self, org: &str, provider: &str, owner: &str) -> Result<()> {
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
        org: &str,
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
            .expression_attribute_values(":at", s(crate::domain::rfc3339(outcome.finished_at)))
            .expression_attribute_values(":fails", n(i64::from(outcome.consecutive_failures)))
            .expression_attribute_values(":me", s(owner))
            .condition_expression("lease_owner = :me");
        if let Some(summary) = &outcome.summary {
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
