//! Connections in DynamoDB: reading an org's connections, saving one (connect and
//! Reconnect), "sync now", disconnecting and deleting.

use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, PutRequest, ReturnValue, WriteRequest,
};
use time::OffsetDateTime;

use super::keys;
use super::{ddb_err, n, s, DynamoDbStore, Write, BATCH_SIZE};
use crate::domain::audit::AuditEntry;
use crate::domain::catalog::AuthMode;
use crate::domain::connection::{
    ArchivedAccount, Connection, ConnectionStatus, OldData, PendingAccountChange,
};
use crate::domain::org::OrgId;
use crate::domain::time::rfc3339;
use crate::error::{Error, Result};

/// What a successful connect (OAuth, API key or invite) writes on the connection.
#[derive(Debug, Clone)]
pub struct ConnectionGrant<'a> {
    pub org: &'a OrgId,
    pub provider: &'a str,
    pub auth_mode: AuthMode,
    pub secret_name: &'a str,
    /// The dashboard user, or for an invite the vendor account that consented.
    pub connected_by: &'a str,
    /// The dashboard user who sent the invite link, if it came through one.
    pub invited_by: Option<&'a str>,
    pub vendor_account: Option<&'a str>,
    /// The vendor account's identity (`Connection::vendor_account_id`).
    pub vendor_account_id: Option<&'a str>,
    /// The scopes granted (see `Connection::scopes`).
    pub scopes: Option<&'a [String]>,
    pub now: OffsetDateTime,
}

impl DynamoDbStore {
    pub async fn connection(&self, org: &OrgId, provider: &str) -> Result<Option<Connection>> {
        self.get(&keys::org(org), &keys::connection_sk(provider))
            .await
    }

    pub async fn connections(&self, org: &OrgId) -> Result<Vec<Connection>> {
        self.query_prefix(&keys::org(org), keys::CONNECTION_PREFIX)
            .await
    }

    /// Makes a scheduled connection due now ("sync now"). Not found if absent or
    /// not scheduled (disconnected).
    pub async fn make_due(
        &self,
        org: &OrgId,
        provider: &str,
        now: OffsetDateTime,
        entry: &AuditEntry,
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

    /// Writes a connected connection. An existing record (a Reconnect, also after a
    /// disconnect) keeps its sync history and checkpoints — seats, days, rollups
    /// and runs live in the app partition and are not touched; credentials,
    /// status, who connected and the schedule are replaced, and the connection is
    /// due at once.
    pub async fn save_connection(
        &self,
        grant: &ConnectionGrant<'_>,
        entry: &AuditEntry,
    ) -> Result<()> {
        let write = self.connection_grant(grant).await?;
        self.commit(vec![write], entry).await?;
        Ok(())
    }

    /// The write of [`save_connection`](Self::save_connection), to be made with
    /// other writes (an invite used up) in one transaction.
    pub async fn connection_grant(&self, grant: &ConnectionGrant<'_>) -> Result<Write> {
        let (update, set, remove) = self.grant_update(grant).await?;
        Ok(Write::Update(update.update_expression(format!(
            "SET {} REMOVE {}",
            set.join(", "),
            remove.join(", ")
        ))))
    }

    /// The connection's grant and schedule, as [`connection_grant`](Self::connection_grant)
    /// writes them, with the SET and REMOVE clauses still open.
    async fn grant_update(
        &self,
        grant: &ConnectionGrant<'_>,
    ) -> Result<(
        aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        Vec<&'static str>,
        Vec<&'static str>,
    )> {
        let mode = serde_dynamo::to_attribute_value(grant.auth_mode)
            .map_err(|e| Error::internal("serializing auth mode", e))?;
        let mut set = vec![
            "org_id = :org",
            "provider = :p",
            "#st = :st",
            "auth_mode = :mode",
            "secret_name = :secret",
            "connected_by = :by",
            "connected_at = :at",
            "next_sync_at = :next",
            "due_shard = :shard",
            "consecutive_failures = :zero",
        ];
        let mut remove = vec!["status_reason", "disconnected_at", "disconnected_by"];
        let mut update = self
            .update_connection(grant.org, grant.provider)
            .await
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":org", s(grant.org))
            .expression_attribute_values(":p", s(grant.provider))
            .expression_attribute_values(":st", s("connected"))
            .expression_attribute_values(":mode", mode)
            .expression_attribute_values(":secret", s(grant.secret_name))
            .expression_attribute_values(":by", s(grant.connected_by))
            .expression_attribute_values(":at", s(rfc3339(grant.now)))
            .expression_attribute_values(":next", n(grant.now.unix_timestamp()))
            .expression_attribute_values(
                ":shard",
                s(keys::due_shard(grant.org, grant.provider, keys::DUE_SHARDS)),
            )
            .expression_attribute_values(":zero", n(0));
        // Optional fields are omitted rather than written as NULL (domain.rs).
        match grant.vendor_account {
            Some(a) => {
                set.push("vendor_account = :acct");
                update = update.expression_attribute_values(":acct", s(a));
            }
            None => remove.push("vendor_account"),
        }
        // An identity once known is kept when a later connect tells none (an
        // account-level key), so a change of account can still be seen after it.
        if let Some(id) = grant.vendor_account_id {
            set.push("vendor_account_id = :acct_id");
            update = update.expression_attribute_values(":acct_id", s(id));
        }
        match grant.invited_by {
            Some(u) => {
                set.push("invited_by = :inv");
                update = update.expression_attribute_values(":inv", s(u));
            }
            None => remove.push("invited_by"),
        }
        match grant.scopes {
            Some(scopes) => {
                set.push("scopes = :scopes");
                update = update.expression_attribute_values(
                    ":scopes",
                    AttributeValue::L(scopes.iter().map(|v| s(v.as_str())).collect()),
                );
            }
            None => remove.push("scopes"),
        }
        Ok((update, set, remove))
    }

    // --- a connect that lands on another vendor account ---------------------------

    /// Parks a connect that landed on another vendor account on the connection (its
    /// credentials are already in the pending secret); the connection itself is left
    /// as it was. A newer pending change replaces an older one.
    pub async fn hold_account_change(
        &self,
        org: &OrgId,
        provider: &str,
        pending: &PendingAccountChange,
    ) -> Result<Write> {
        let value = serde_dynamo::to_attribute_value(pending)
            .map_err(|e| Error::internal("serializing a pending account change", e))?;
        Ok(Write::Update(
            self.update_connection(org, provider)
                .await
                .update_expression("SET pending_account_change = :pending")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":pending", value),
        ))
    }

    /// Starts switching the connection to its pending account: takes it out of the
    /// schedule (no new run can claim it) and fixes the archive id and the choice a
    /// retry reuses (the first choice made wins). None
    /// when there is no pending change; `Err(Conflict)` while a run holds the lease
    /// (its writes would land after the move).
    pub async fn begin_account_switch(
        &self,
        org: &OrgId,
        provider: &str,
        archive_id: &str,
        old_data: OldData,
        now: OffsetDateTime,
    ) -> Result<Option<Connection>> {
        let out = self
            .update_connection(org, provider)
            .await
            .update_expression(
                "SET pending_account_change.archive_id = \
                 if_not_exists(pending_account_change.archive_id, :id), \
                 pending_account_change.old_data = \
                 if_not_exists(pending_account_change.old_data, :old) REMOVE due_shard",
            )
            .condition_expression(
                "attribute_exists(pending_account_change) AND \
                 (attribute_not_exists(lease_expires_at) OR lease_expires_at < :now)",
            )
            .expression_attribute_values(":id", s(archive_id))
            .expression_attribute_values(":old", s(old_data.as_str()))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match super::unless_condition_failed(out, "UpdateItem(begin account switch)")? {
            Some(out) => out.attributes.map(super::from_item).transpose(),
            None => match self.connection(org, provider).await? {
                Some(c) if c.pending_account_change.is_some() => Err(Error::Conflict(
                    "a sync of the current account is running; choose again when it ends \
                     (the card shows it, within a few minutes)"
                        .into(),
                )),
                _ => Ok(None),
            },
        }
    }

    /// Finishes the switch: the pending grant becomes the connection's, its sync
    /// history starts afresh (checkpoints and last sync removed), it is due at once,
    /// and the old account's archive (when kept apart) is listed on it.
    pub async fn finish_account_switch(
        &self,
        grant: &ConnectionGrant<'_>,
        archive: Option<&ArchivedAccount>,
        entry: &AuditEntry,
    ) -> Result<()> {
        let (mut update, mut set, mut remove) = self.grant_update(grant).await?;
        remove.extend([
            "pending_account_change",
            "activity_synced_until",
            "seats_synced_at",
            "last_activity_pending_from",
            "last_sync_at",
            "last_sync_summary",
        ]);
        if let Some(archive) = archive {
            let value = serde_dynamo::to_attribute_value(archive)
                .map_err(|e| Error::internal("serializing an archive", e))?;
            set.push("archives = list_append(if_not_exists(archives, :none), :archive)");
            update = update
                .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
                .expression_attribute_values(":archive", AttributeValue::L(vec![value]));
        }
        let update = update
            .update_expression(format!(
                "SET {} REMOVE {}",
                set.join(", "),
                remove.join(", ")
            ))
            .condition_expression("attribute_exists(pending_account_change)");
        if self.commit(vec![Write::Update(update)], entry).await? {
            Ok(())
        } else {
            Err(Error::Conflict(
                "the account change was already decided (reload the page)".into(),
            ))
        }
    }

    /// Drops a pending account change (the admin keeps the current account) and puts
    /// the connection back on the schedule unless it is disconnected. None when there
    /// was none.
    pub async fn drop_account_change(
        &self,
        org: &OrgId,
        provider: &str,
        entry: &AuditEntry,
    ) -> Result<Option<PendingAccountChange>> {
        let Some(connection) = self.connection(org, provider).await? else {
            return Ok(None);
        };
        let Some(pending) = connection.pending_account_change.clone() else {
            return Ok(None);
        };
        let mut update = self
            .update_connection(org, provider)
            .await
            .condition_expression("attribute_exists(pending_account_change)");
        update = if connection.status == ConnectionStatus::Disconnected {
            update.update_expression("REMOVE pending_account_change")
        } else {
            update
                .update_expression("SET due_shard = :shard REMOVE pending_account_change")
                .expression_attribute_values(
                    ":shard",
                    s(keys::due_shard(org, provider, keys::DUE_SHARDS)),
                )
        };
        if self.commit(vec![Write::Update(update)], entry).await? {
            Ok(Some(pending))
        } else {
            Ok(None)
        }
    }

    /// Moves every item of the app's partition but its settings into the archive
    /// `archive_id` (a copy written first, then the original deleted, page by page, so
    /// a fault loses nothing and a retry moves the rest); how many items moved.
    pub async fn archive_app_data(
        &self,
        org: &OrgId,
        provider: &str,
        archive_id: &str,
    ) -> Result<usize> {
        let to = keys::app_archive(org, provider, archive_id);
        self.sweep_partition(&keys::app(org, provider), Some(&to), &[keys::SETTINGS_SK])
            .await
    }

    /// Deletes every item of the app's partition but its settings; how many.
    pub async fn purge_app_data_but_settings(&self, org: &OrgId, provider: &str) -> Result<usize> {
        self.sweep_partition(&keys::app(org, provider), None, &[keys::SETTINGS_SK])
            .await
    }

    /// Deletes an archive kept apart by an account change; how many items it held.
    pub async fn delete_archive(
        &self,
        org: &OrgId,
        provider: &str,
        archive_id: &str,
    ) -> Result<usize> {
        self.delete_partition(&keys::app_archive(org, provider, archive_id))
            .await
    }

    /// Marks the connection disconnected and takes it out of the schedule:
    /// `due_shard` goes (out of the DueIndex, and the lease requires it) and
    /// so does the lease, so a run in flight fails `finish_run`'s owner check.
    /// Synced data stays. None if there is no connection.
    pub async fn mark_disconnected(
        &self,
        org: &OrgId,
        provider: &str,
        by: &str,
        now: OffsetDateTime,
        entry: &AuditEntry,
    ) -> Result<Option<Connection>> {
        let Some(connection) = self.connection(org, provider).await? else {
            return Ok(None);
        };
        let update = self
            .update_connection(org, provider)
            .await
            .update_expression(
                "SET #st = :st, disconnected_at = :at, disconnected_by = :by \
                 REMOVE due_shard, lease_owner, lease_expires_at, status_reason, \
                 pending_account_change",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":st", s("disconnected"))
            .expression_attribute_values(":at", s(rfc3339(now)))
            .expression_attribute_values(":by", s(by));
        if !self.commit(vec![Write::Update(update)], entry).await? {
            return Ok(None);
        }
        Ok(Some(connection))
    }

    /// Deletes every item of a partition (a Query of keys, then batch deletes with
    /// unprocessed items retried); returns how many were deleted.
    pub(super) async fn delete_partition(&self, pk: &str) -> Result<usize> {
        self.sweep_partition(pk, None, &[]).await
    }

    /// Deletes every item of partition `pk` whose sort key is not in `keep`, page by
    /// page; with `copy_to`, each page is first written under that partition (same
    /// sort keys and attributes), so nothing is lost if the sweep stops midway. Returns
    /// how many items were swept.
    async fn sweep_partition(
        &self,
        pk: &str,
        copy_to: Option<&str>,
        keep: &[&str],
    ) -> Result<usize> {
        let mut swept = 0;
        let mut start = None;
        loop {
            let mut query = self
                .query_builder()
                .await
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if copy_to.is_none() {
                query = query
                    .projection_expression("#pk, #sk")
                    .expression_attribute_names("#sk", "sk");
            }
            let page = query.send().await.map_err(ddb_err("Query(partition)"))?;
            let items: Vec<_> = page
                .items
                .unwrap_or_default()
                .into_iter()
                .filter(|item| {
                    !matches!(item.get("sk"), Some(AttributeValue::S(sk)) if keep.contains(&sk.as_str()))
                })
                .collect();
            for chunk in items.chunks(BATCH_SIZE) {
                if let Some(to) = copy_to {
                    let copies = chunk
                        .iter()
                        .map(|item| {
                            let mut copy = item.clone();
                            copy.insert("pk".into(), s(to));
                            let put = PutRequest::builder()
                                .set_item(Some(copy))
                                .build()
                                .map_err(|e| Error::internal("building a put request", e))?;
                            Ok(WriteRequest::builder().put_request(put).build())
                        })
                        .collect::<Result<Vec<_>>>()?;
                    self.write_batch(copies).await?;
                }
                let deletes = chunk
                    .iter()
                    .map(|item| {
                        let key = ["pk", "sk"]
                            .into_iter()
                            .filter_map(|k| Some((k.to_string(), item.get(k)?.clone())))
                            .collect();
                        let delete = DeleteRequest::builder()
                            .set_key(Some(key))
                            .build()
                            .map_err(|e| Error::internal("building a delete request", e))?;
                        Ok(WriteRequest::builder().delete_request(delete).build())
                    })
                    .collect::<Result<Vec<_>>>()?;
                self.write_batch(deletes).await?;
                swept += chunk.len();
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(swept)
    }

    /// Deletes the connection item itself; true if there was one.
    pub async fn delete_connection(&self, org: &OrgId, provider: &str) -> Result<bool> {
        let out = self
            .delete_at(s(keys::org(org)), s(keys::connection_sk(provider)))
            .await
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(ddb_err("DeleteItem(connection)"))?;
        Ok(out.attributes.is_some())
    }
}
