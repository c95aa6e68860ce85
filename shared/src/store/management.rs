//! Connection management in DynamoDB: saving a connection (connect and Reconnect),
//! invite links (single use, like OAuth state), disconnecting and purging.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, WriteRequest};
use time::OffsetDateTime;

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;

use super::{
    ddb_err, from_item, n, s, to_item, unless_condition_failed, DynamoDbStore, Write, BATCH_SIZE,
};
use crate::audit::AuditEntry;
use crate::catalog::AuthMode;
use crate::domain::{
    invite_id, invite_pk, invites_index_sk, keys, rfc3339, Connection, Invite, InviteEntry,
    INVITE_MAX_REFUSED_KEYS, INVITE_SK,
};
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
    /// The scopes granted (see `Connection::scopes`).
    pub scopes: Option<&'a [String]>,
    pub now: OffsetDateTime,
}

impl DynamoDbStore {
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
    /// `due_shard` goes (out of the DueIndex, and `acquire_lease` requires it) and
    /// so does the lease, so a run in flight fails `finish_run`'s owner check.
    /// Synced data stays. None if there is no connection.
    pub async fn mark_disconnected(
        &self,
        org: &str,
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
            .delete_at(s(keys::org(org)), s(keys::connection_sk(provider)))
            .await
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(ddb_err("DeleteItem(connection)"))?;
        Ok(out.attributes.is_some())
    }

    // --- invite links ------------------------------------------------------------

    /// Stores a new invite and lists it in its org's index of the app, with its
    /// audit entry, in one transaction.
    pub async fn create_invite(
        &self,
        invite: &Invite,
        token_hash: &str,
        entry: &AuditEntry,
    ) -> Result<()> {
        let key = |b: UpdateItemFluentBuilder| {
            b.table_name(&self.table)
                .key("pk", s(keys::org(&invite.org_id)))
                .key("sk", s(invites_index_sk(&invite.provider)))
        };
        // A map must exist before one of its keys can be set (and a transaction
        // writes an item once): the empty index is made first, harmlessly.
        key(self.client.get().await.update_item())
            .update_expression("SET invites = if_not_exists(invites, :empty)")
            .expression_attribute_values(":empty", AttributeValue::M(Default::default()))
            .send()
            .await
            .map_err(ddb_err("UpdateItem(invites index)"))?;
        let listed = InviteEntry {
            token_hash: token_hash.to_string(),
            created_by: invite.created_by.clone(),
            created_at: invite.created_at.clone(),
            expires_at: invite.expires_at,
        };
        let put = self
            .put_builder()
            .await
            .set_item(Some(to_item(invite)?))
            .condition_expression("attribute_not_exists(pk)");
        let index = key(self.client.get().await.update_item())
            .update_expression("SET invites.#id = :entry")
            .expression_attribute_names("#id", invite_id(token_hash))
            .expression_attribute_values(":entry", AttributeValue::M(to_item(&listed)?));
        if !self
            .commit(vec![Write::Put(put), Write::Update(index)], entry)
            .await?
        {
            return Err(Error::Conflict("an invite with this token exists".into()));
        }
        Ok(())
    }

    /// The invite if it exists, has not expired (TTL deletion lags, so the expiry is
    /// checked here too) and has not refused too many keys. Does not use it up.
    pub async fn invite(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<Invite>> {
        let item: Option<std::collections::HashMap<String, AttributeValue>> =
            self.get_raw(&invite_pk(token_hash), INVITE_SK).await?;
        let Some(item) = item else { return Ok(None) };
        if refused_keys(&item) >= INVITE_MAX_REFUSED_KEYS {
            return Ok(None);
        }
        let invite: Invite = from_item(item)?;
        Ok(Some(invite).filter(|i| i.expires_at > now.unix_timestamp()))
    }

    /// Uses the invite up if it exists, has not expired and has not refused too many
    /// keys, returning it: an invite can be used once. With it, in one transaction:
    /// its index entry goes, the `also` writes are made (the connection, for a key
    /// pasted into the link) and the audit entry `entry_of(invite)` is written.
    /// Unknown, used, burnt and expired all come back as None, nothing written.
    pub async fn use_invite(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        also: Vec<Write>,
        entry_of: impl FnOnce(&Invite) -> AuditEntry,
    ) -> Result<Option<Invite>> {
        let Some(invite) = self.invite(token_hash, now).await? else {
            return Ok(None);
        };
        let delete = self
            .delete_at(s(invite_pk(token_hash)), s(INVITE_SK))
            .await
            .condition_expression(USABLE_INVITE)
            .set_expression_attribute_values(Some(usable_invite_values(now)));
        let mut writes = vec![
            Write::Delete(delete),
            self.unindex_write(&invite.org_id, &invite.provider, token_hash)
                .await,
        ];
        writes.extend(also);
        if !self.commit(writes, &entry_of(&invite)).await? {
            return Ok(None);
        }
        Ok(Some(invite))
    }

    /// Counts one refused key on the invite (atomically) and returns the new count;
    /// None if the invite is gone, expired or already burnt.
    pub async fn record_refused_key(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<u32>> {
        let result = self
            .update_at(s(invite_pk(token_hash)), s(INVITE_SK))
            .await
            .update_expression("ADD refused_keys :one")
            .condition_expression(USABLE_INVITE)
            .set_expression_attribute_values(Some(usable_invite_values(now)))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        Ok(
            unless_condition_failed(result, "UpdateItem(invite refused key)")?
                .map(|out| refused_keys(&out.attributes.unwrap_or_default())),
        )
    }

    /// Deletes a burnt invite (and its index entry) whatever its count.
    pub async fn delete_invite(&self, org: &str, provider: &str, token_hash: &str) -> Result<()> {
        self.delete_at(s(invite_pk(token_hash)), s(INVITE_SK))
            .await
            .send()
            .await
            .map_err(ddb_err("DeleteItem(invite)"))?;
        self.unindex_invite(org, provider, token_hash).await;
        Ok(())
    }

    /// The org's index entries of the app, by invite id (expired and used ones included).
    pub async fn invite_entries(
        &self,
        org: &str,
        provider: &str,
    ) -> Result<std::collections::BTreeMap<String, InviteEntry>> {
        let item = self
            .get_raw(&keys::org(org), &invites_index_sk(provider))
            .await?;
        let mut out = std::collections::BTreeMap::new();
        if let Some(AttributeValue::M(map)) = item.and_then(|mut i| i.remove("invites")) {
            for (id, v) in map {
                if let AttributeValue::M(m) = v {
                    out.insert(id, from_item(m)?);
                }
            }
        }
        Ok(out)
    }

    /// Removes an invite from the index. Best effort: the invite itself is already
    /// gone, and the list checks every entry against its invite.
    async fn unindex_invite(&self, org: &str, provider: &str, token_hash: &str) {
        let result = self
            .update_at(s(keys::org(org)), s(invites_index_sk(provider)))
            .await
            .update_expression("REMOVE invites.#id")
            .condition_expression("attribute_exists(invites)")
            .expression_attribute_names("#id", invite_id(token_hash))
            .send()
            .await;
        if let Err(e) = unless_condition_failed(result, "UpdateItem(invites index)") {
            tracing::warn!(error = %e.chain(), "an invite was not removed from its index");
        }
    }

    /// Revokes the org's invite `id` of the app: the invite is deleted (only if it
    /// belongs to the org) and leaves the index, with the audit entry, in one
    /// transaction. False if the org has no such invite.
    pub async fn revoke_invite(
        &self,
        org: &str,
        provider: &str,
        id: &str,
        entry: &AuditEntry,
    ) -> Result<bool> {
        let Some(listed) = self.invite_entries(org, provider).await?.remove(id) else {
            return Ok(false);
        };
        let delete = self
            .delete_at(s(invite_pk(&listed.token_hash)), s(INVITE_SK))
            .await
            .condition_expression("attribute_not_exists(pk) OR (org_id = :org AND provider = :p)")
            .expression_attribute_values(":org", s(org))
            .expression_attribute_values(":p", s(provider));
        let unindex = self.unindex_write(org, provider, &listed.token_hash).await;
        if self
            .commit(vec![Write::Delete(delete), unindex], entry)
            .await?
        {
            return Ok(true);
        }
        Ok(false)
    }

    /// The write that takes an invite off its org's index of the app.
    async fn unindex_write(&self, org: &str, provider: &str, token_hash: &str) -> Write {
        Write::Update(
            self.update_at(s(keys::org(org)), s(invites_index_sk(provider)))
                .await
                .update_expression("REMOVE invites.#id")
                .expression_attribute_names("#id", invite_id(token_hash)),
        )
    }
}

/// The `refused_keys` count of an invite item (0 when absent).
fn refused_keys(item: &std::collections::HashMap<String, AttributeValue>) -> u32 {
    match item.get("refused_keys") {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(u32::MAX),
        _ => 0,
    }
}

/// What an invite item must be to be used (or to count a refused key): there, not
/// expired, and not burnt by too many refused keys.
const USABLE_INVITE: &str = "attribute_exists(pk) AND expires_at > :now \
     AND (attribute_not_exists(refused_keys) OR refused_keys < :max)";

fn usable_invite_values(now: OffsetDateTime) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (":now".to_string(), n(now.unix_timestamp())),
        (":max".to_string(), n(i64::from(INVITE_MAX_REFUSED_KEYS))),
    ])
}
