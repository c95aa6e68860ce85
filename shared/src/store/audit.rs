//! The audit trail in DynamoDB: a change and its entry in one TransactWriteItems
//! (all or nothing), an attempt's outcome recorded once per request, and the org's
//! entries read newest first.
//!
//! The entries of an org live in their own partition (`keys::audit`), sorted by time:
//! a few writes a day per org, read by admins only.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::cursor::Position;
use super::{ddb_err, from_item, keys, s, to_keyed_item, unless_condition_failed, DynamoDbStore};
use crate::domain::audit::{Action, AuditEntry};
use crate::domain::org::OrgId;
use crate::error::{Error, Result};

/// One write of a change, as the store's own builders express it (their key,
/// expressions and condition), to be made in a transaction with the entry.
pub enum Write {
    Put(PutItemFluentBuilder),
    Update(UpdateItemFluentBuilder),
    Delete(DeleteItemFluentBuilder),
}

fn built<T, E: std::error::Error + Send + Sync + 'static>(
    r: std::result::Result<T, E>,
) -> Result<T> {
    r.map_err(|e| Error::internal("building a transaction item", e))
}

/// A transaction item's builder with the table, condition and expression attributes
/// of a single-item request's input (the parts every kind of write has).
macro_rules! conditioned {
    ($builder:expr, $input:expr) => {
        $builder
            .set_table_name($input.get_table_name().clone())
            .set_condition_expression($input.get_condition_expression().clone())
            .set_expression_attribute_names($input.get_expression_attribute_names().clone())
            .set_expression_attribute_values($input.get_expression_attribute_values().clone())
    };
}

impl Write {
    fn into_transact_item(self) -> Result<TransactWriteItem> {
        let item = TransactWriteItem::builder();
        Ok(match self {
            Write::Put(b) => {
                let i = b.as_input();
                let put = conditioned!(Put::builder(), i).set_item(i.get_item().clone());
                item.put(built(put.build())?).build()
            }
            Write::Update(b) => {
                let i = b.as_input();
                let update = conditioned!(Update::builder(), i)
                    .set_key(i.get_key().clone())
                    .set_update_expression(i.get_update_expression().clone());
                item.update(built(update.build())?).build()
            }
            Write::Delete(b) => {
                let i = b.as_input();
                let delete = conditioned!(Delete::builder(), i).set_key(i.get_key().clone());
                item.delete(built(delete.build())?).build()
            }
        })
    }
}

/// One page of an org's entries, newest first.
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// The position of the last entry returned, when older ones may follow.
    pub next: Option<Position>,
}

impl DynamoDbStore {
    /// A PutItem on the table.
    pub(super) async fn put_builder(&self) -> PutItemFluentBuilder {
        self.client.get().await.put_item().table_name(&self.table)
    }

    /// A Put of `value` (for a change's writes).
    pub(super) async fn put_write_keyed<T: serde::Serialize>(
        &self,
        pk: &str,
        sk: &str,
        value: &T,
    ) -> Result<Write> {
        Ok(Write::Put(
            self.put_builder()
                .await
                .set_item(Some(to_keyed_item(pk, sk, value)?)),
        ))
    }

    /// Makes the change's `writes` and puts its audit `entry`, all in one transaction.
    /// False when a write's condition did not hold: nothing was written, the entry
    /// neither. Any other failure (the entry's write included) is an error, and
    /// nothing was written either.
    pub async fn commit(&self, writes: Vec<Write>, entry: &AuditEntry) -> Result<bool> {
        let count = writes.len();
        let mut items = writes
            .into_iter()
            .map(Write::into_transact_item)
            .collect::<Result<Vec<_>>>()?;
        items.push(
            Write::Put(
                self.put_builder()
                    .await
                    .set_item(Some(entry_item(entry)?))
                    .condition_expression("attribute_not_exists(pk)"),
            )
            .into_transact_item()?,
        );
        let result = self
            .client
            .get()
            .await
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let condition_failed = match e.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                        .cancellation_reasons()
                        .iter()
                        .take(count)
                        .any(|r| r.code() == Some("ConditionalCheckFailed")),
                    _ => false,
                };
                if condition_failed {
                    Ok(false)
                } else {
                    Err(ddb_err("TransactWriteItems(change and audit entry)")(e))
                }
            }
        }
    }

    /// Records the outcome of an attempt that did not end as its transaction said:
    /// the entry is put if the attempt wrote none (refused, or failed before its
    /// change), else its outcome and error code are set on it (a failure after the
    /// change was made: `details.change_committed` says so).
    pub async fn record_outcome(&self, entry: &AuditEntry) -> Result<()> {
        let result = self
            .put_builder()
            .await
            .set_item(Some(entry_item(entry)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        if unless_condition_failed(result, "PutItem(audit entry)")?.is_some() {
            return Ok(());
        }
        let mut update = self
            .update_at(s(keys::audit(&entry.org_id)), s(entry_sk(entry)?))
            .await
            .expression_attribute_values(":o", s(entry.outcome.as_str()))
            .expression_attribute_values(":t", AttributeValue::Bool(true));
        update = match &entry.error_code {
            Some(code) => update
                .update_expression(
                    "SET outcome = :o, error_code = :c, details.change_committed = :t",
                )
                .expression_attribute_values(":c", s(code)),
            None => update.update_expression("SET outcome = :o, details.change_committed = :t"),
        };
        update
            .send()
            .await
            .map_err(ddb_err("UpdateItem(audit outcome)"))?;
        Ok(())
    }

    /// Adds facts learnt after the change (how many items a purge deleted).
    pub async fn annotate_entry(&self, entry: &AuditEntry, name: &str, value: i64) -> Result<()> {
        self.update_at(s(keys::audit(&entry.org_id)), s(entry_sk(entry)?))
            .await
            .update_expression("SET details.#n = :v")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#n", name)
            .expression_attribute_values(":v", super::n(value))
            .send()
            .await
            .map_err(ddb_err("UpdateItem(audit details)"))?;
        Ok(())
    }

    /// Up to `limit` of the org's entries, newest first, older than the entry whose
    /// sort key is `before` (the previous page's `next`), of `provider` and `action`
    /// where given.
    pub async fn audit_entries(
        &self,
        org: &OrgId,
        provider: Option<&str>,
        action: Option<Action>,
        before: Option<&Position>,
        limit: usize,
    ) -> Result<AuditPage> {
        let mut filters = Vec::new();
        let mut values: HashMap<String, AttributeValue> =
            HashMap::from([(":pk".to_string(), s(keys::audit(org)))]);
        values.insert(":prefix".into(), s(keys::AUDIT_PREFIX));
        if let Some(p) = provider {
            filters.push("provider = :p");
            values.insert(":p".into(), s(p));
        }
        if let Some(a) = action {
            filters.push("#action = :a");
            values.insert(":a".into(), s(a.as_str()));
        }
        let mut entries = Vec::new();
        let mut start = before.map(|position| {
            HashMap::from([
                ("pk".to_string(), s(keys::audit(org))),
                ("sk".to_string(), s(position.sort_key())),
            ])
        });
        loop {
            let mut q = self
                .query_builder()
                .await
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
                .set_exclusive_start_key(start.take());
            if !filters.is_empty() {
                q = q.filter_expression(filters.join(" AND "));
            }
            if action.is_some() {
                q = q.expression_attribute_names("#action", "action");
            }
            let page = q.send().await.map_err(ddb_err("Query(audit)"))?;
            for item in page.items.unwrap_or_default() {
                entries.push(from_item::<AuditEntry>(item)?);
                if entries.len() == limit {
                    let next = match entries.last() {
                        Some(e) => Some(Position::at(&entry_sk(e)?, keys::AUDIT_PREFIX)),
                        None => None,
                    };
                    return Ok(AuditPage { entries, next });
                }
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => {
                    return Ok(AuditPage {
                        entries,
                        next: None,
                    })
                }
            }
        }
    }
}

/// Where an entry is stored: the org's audit partition, at the attempt's time and
/// request id (so a later outcome of the same attempt lands on the same item).
fn entry_sk(entry: &AuditEntry) -> Result<String> {
    let at = time::OffsetDateTime::parse(&entry.at, &time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::internal("reading an audit entry's time", e))?;
    Ok(keys::audit_sk(at, &entry.request_id))
}

fn entry_item(entry: &AuditEntry) -> Result<HashMap<String, AttributeValue>> {
    to_keyed_item(&keys::audit(&entry.org_id), &entry_sk(entry)?, entry)
}
