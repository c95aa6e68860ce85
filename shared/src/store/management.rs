//! Connection management in DynamoDB: saving a connection (connect and Reconnect),
//! invite links (single use, like OAuth state), disconnecting and purging.

use aws_sdk_dynamodb::types::{DeleteRequest, ReturnValue, WriteRequest};
use time::OffsetDateTime;

use super::{
    ddb_err, from_item, n, s, to_item, unless_condition_failed, DynamoDbStore, BATCH_SIZE,
};
use crate::catalog::AuthMode;
use crate::domain::{invite_pk, keys, rfc3339, Connection, Invite, INVITE_SK};
use crate::error::{Error, Result};

/// What a successful connect (OAuth, API key or invite) writes on the connection.
#[derive(Debug, Clone)]
pub struct ConnectionGrant<'a> {
    pub org: &'a str,
    pub provider: &'a str,
    pub auth_mode: AuthMode,
    pub secret_name: &'a str,
    /// The dashboard user, or for an invite the vendor account that consented.
    pub connected_by: &'a str,
    /// The dashboard user who sent the invite link, if it came through one.
    pub invited_by: Option<&'a str>,
    pub vendor_account: Option<&'a str>,
    pub now: OffsetDateTime,
}

impl DynamoDbStore {
    /// Writes a connected connection. An existing record (a Reconnect, also after a
    /// disconnect) keeps its sync history and checkpoints — seats, days, rollups
    /// and runs live in the app partition and are not touched; credentials,
    /// status, who connected and the schedule are replaced, and the connection is
    /// due at once.
    pub async fn save_connection(&self, grant: &ConnectionGrant<'_>) -> Result<()> {
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
        update
            .update_expression(format!(
                "SET {} REMOVE {}",
                set.join(", "),
                remove.join(", ")
            ))
            .send()
            .await
            .map_err(ddb_err("UpdateItem(connection)"))?;
        Ok(())
    }

    /// Marks the connection disconnected and takes it out of the schedule:
    /// `due_shard` goes (out of the DueIndex, and `acquire_lease` requires it) and
    /// so does the lease, so a run in flight fails `finish_run`'s owner check.
    /// Synced data stays. None if there is no connection.
    pub async fn mark_disconnected(
        &self,
        org: &str,
        provider: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Connection>> {
        let result = self
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
            .expression_attribute_values(":by", s(by))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match unless_condition_failed(result, "UpdateItem(disconnect)")? {
            Some(out) => out.attributes.map(from_item).transpose(),
            None => Ok(None),
        }
    }

    /// Deletes every item of a partition (a Query of keys, then batch deletes with
    /// unprocessed items retried); returns how many were deleted.
    pub async fn delete_partition(&self, pk: &str) -> Result<usize> {
        let mut deleted = 0;
        let mut start = None;
        loop {
            let page = self
                .client
                .get()
                .await
                .query()
                .table_name(&self.table)
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
    pub async fn delete_connection(&self, org: &str, provider: &str) -> Result<bool> {
        let out = self
            .client
            .get()
            .await
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(keys::org(org)))
            .key("sk", s(keys::connection_sk(provider)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(ddb_err("DeleteItem(connection)"))?;
        Ok(out.attributes.is_some())
    }

    // --- invite links ------------------------------------------------------------

    pub async fn put_invite(&self, invite: &Invite) -> Result<()> {
        self.client
            .get()
            .await
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(invite)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(ddb_err("PutItem(invite)"))?;
        Ok(())
    }

    /// The invite if it exists and has not expired (TTL deletion lags, so the
    /// expiry is checked here too). Does not use it up.
    pub async fn invite(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<Invite>> {
        let invite: Option<Invite> = self.get(&invite_pk(token_hash), INVITE_SK).await?;
        Ok(invite.filter(|i| i.expires_at > now.unix_timestamp()))
    }

    /// Deletes the invite if it exists and has not expired, returning it: an invite
    /// can be used once. Unknown, used and expired all come back as None.
    pub async fn consume_invite(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Invite>> {
        let result = self
            .client
            .get()
            .await
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(invite_pk(token_hash)))
            .key("sk", s(INVITE_SK))
            .condition_expression("attribute_exists(pk) AND expires_at > :now")
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match unless_condition_failed(result, "DeleteItem(invite)")? {
            Some(out) => out.attributes.map(from_item).transpose(),
            None => Ok(None),
        }
    }
}
