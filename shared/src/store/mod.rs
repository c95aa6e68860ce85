//! DynamoDB adapter: every access pattern is a GetItem, Query or conditional write
//! (never a Scan); items go through serde_dynamo. Records carry no keys: the store
//! adds `pk` and `sk` (built in `keys.rs` only) when it writes, and the public
//! methods take an [`OrgId`](crate::domain::org::OrgId), so every item an org reads
//! or writes is under that org's keys.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::aws::LazyClient;

use crate::domain::org::OrgId;
use crate::error::{Error, Result};

// One org's synced data of one app (seats, days, rollups, summary, settings, runs).
mod app_data;
// How a day's activity is packed into items.
mod day_counts;
// `cargo xtask migrate-activity`: per-(seat, day) items packed into day items.
mod migration;
pub use app_data::{AppData, RunsPage, StoredSummary};
pub use migration::MigrationReport;
// The audit trail: changes and their entries in one transaction.
mod audit;
pub use audit::{AuditPage, Write};
// Connections: connecting, disconnecting, purging.
mod connections;
pub use connections::ConnectionGrant;
// Page cursors (opaque positions in a listing).
pub mod cursor;
// Invite links and the org's index of them.
mod invites;
// The key layout: the only place a pk or sk is built. Public for the tools and tests
// that read the table directly; `shared/` and `functions/` use it only here (a CI check).
pub mod keys;
// Pending OAuth authorizations.
mod oauth_state;
mod people;
pub use people::{PeopleSnapshot, StoredPeople};
// The tick's claims, leases, checkpoints, refresh locks and paused runs.
mod scheduling;
pub use scheduling::{Checkpoint, ConnectionLock, SyncOutcome};

/// DynamoDB's BatchWriteItem limit.
const BATCH_SIZE: usize = 25;
/// BatchWriteItem calls one write keeps in flight. Bounded so one sync cannot hog a
/// partition's write throughput or the client's connections; every call retries its
/// unprocessed items with backoff, and the SDK retries throttling (`aws.rs`).
const WRITES_IN_FLIGHT: usize = 4;

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

/// A record as an item at (pk, sk): records carry no keys of their own.
fn to_keyed_item<T: Serialize>(
    pk: &str,
    sk: &str,
    value: &T,
) -> Result<HashMap<String, AttributeValue>> {
    let mut item = to_item(value)?;
    item.insert("pk".into(), s(pk));
    item.insert("sk".into(), s(sk));
    Ok(item)
}

fn from_item<T: DeserializeOwned>(item: HashMap<String, AttributeValue>) -> Result<T> {
    serde_dynamo::from_item(item).map_err(|e| Error::internal("reading a stored item", e))
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
        org: &OrgId,
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

    /// Writes `value` at (pk, sk).
    async fn put_keyed<T: Serialize>(&self, pk: &str, sk: &str, value: &T) -> Result<()> {
        self.client
            .get()
            .await
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_keyed_item(pk, sk, value)?))
            .send()
            .await
            .map_err(ddb_err("PutItem"))?;
        Ok(())
    }

    /// Writes many records of partition `pk`, each at the sort key `sk_of` gives it,
    /// 25 per request, [`WRITES_IN_FLIGHT`] requests at once, retrying unprocessed
    /// items with backoff.
    async fn put_all_keyed<T: Serialize>(
        &self,
        pk: &str,
        values: &[T],
        sk_of: impl Fn(&T) -> String,
    ) -> Result<()> {
        use futures::{StreamExt as _, TryStreamExt as _};
        let batches = values
            .chunks(BATCH_SIZE)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|v| {
                        let put = PutRequest::builder()
                            .set_item(Some(to_keyed_item(pk, &sk_of(v), v)?))
                            .build()
                            .map_err(|e| Error::internal("building a put request", e))?;
                        Ok(WriteRequest::builder().put_request(put).build())
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        futures::stream::iter(batches.into_iter().map(|b| self.write_batch(b)))
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await?;
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

    async fn delete(&self, pk: &str, sk: &str) -> Result<()> {
        self.delete_at(s(pk), s(sk))
            .await
            .send()
            .await
            .map_err(ddb_err("DeleteItem"))?;
        Ok(())
    }

    async fn get<T: DeserializeOwned>(&self, pk: &str, sk: &str) -> Result<Option<T>> {
        self.get_raw(pk, sk).await?.map(from_item).transpose()
    }

    /// One item as DynamoDB returned it (for attributes no record type carries).
    async fn get_raw(&self, pk: &str, sk: &str) -> Result<Option<HashMap<String, AttributeValue>>> {
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

    /// The items at `keys` that exist, with their (pk, sk) (BatchGetItem, 100 keys
    /// per request, all requests at once, unprocessed keys retried with backoff).
    /// Order is not kept.
    async fn get_many_keyed<T: DeserializeOwned>(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<(String, String, T)>> {
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
            items
                .into_iter()
                .map(|item| {
                    let key = |name: &str| {
                        item.get(name)
                            .and_then(|v| v.as_s().ok())
                            .cloned()
                            .unwrap_or_default()
                    };
                    let (pk, sk) = (key("pk"), key("sk"));
                    Ok((pk, sk, from_item(item)?))
                })
                .collect::<Result<Vec<(String, String, T)>>>()
        });
        Ok(futures::future::try_join_all(batches)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// All items of a partition whose sort key starts with `prefix`, in key order.
    async fn query_prefix<T: DeserializeOwned>(&self, pk: &str, prefix: &str) -> Result<Vec<T>> {
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
    async fn query_between<T: DeserializeOwned>(
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

    /// The `n` items with the greatest sort keys under `prefix`, greatest first.
    async fn last_n_with_prefix<T: DeserializeOwned>(
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

    /// A Query on the table, to be given its key condition.
    async fn query_builder(
        &self,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client.get().await.query().table_name(&self.table)
    }

    /// A Query of partition `pk`: every page, or the first `limit` items.
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
                .query_builder()
                .await
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
}
