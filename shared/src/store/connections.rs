//! Connections in DynamoDB: reading an org's connections, saving one (connect and
//! Reconnect), "sync now", disconnecting and deleting.

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, WriteRequest};
use time::OffsetDateTime;

use super::keys;
use super::{ddb_err, n, s, DynamoDbStore, Write, BATCH_SIZE};
use crate::domain::audit::AuditEntry;
use crate::domain::catalog::AuthMode;
use crate::domain::connection::Connection;
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
        Ok(Write::Update(update.update_expression(format!(
            "SET {} REMOVE {}",
            set.join(", "),
            remove.join(", ")
        ))))
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
                 REMOVE due_shard, lease_owner, lease_expires_at, status_reason",
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
        let mut deleted = 0;
        let mut start = None;
        loop {
            let page = self
                .query_builder()
                .await
                .key_condition_expression("#pk = :pk")
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(ddb_err("Query(partition keys)"))?;
            let keys = page.items.unwrap_or_default();
            for chunk in keys.chunks(BATCH_SIZE) {
                let requests = chunk
                    .iter()
                    .map(|key| {
                        let delete = DeleteRequest::builder()
                            .set_key(Some(key.clone()))
                            .build()
                            .map_err(|e| Error::internal("building a delete request", e))?;
                        Ok(WriteRequest::builder().delete_request(delete).build())
                    })
                    .collect::<Result<Vec<_>>>()?;
                self.write_batch(requests).await?;
                deleted += chunk.len();
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(deleted)
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
