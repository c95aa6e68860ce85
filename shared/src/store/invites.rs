//! Invite links in DynamoDB: single use (like OAuth state), keyed by the SHA-256 of
//! the token, burnt by too many refused keys, and listed through one index item per
//! org and app (no Scan).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use time::OffsetDateTime;

use super::{
    ddb_err, from_item, keys, n, s, to_item, to_keyed_item, unless_condition_failed, DynamoDbStore,
    Write,
};
use crate::domain::audit::AuditEntry;
use crate::domain::invite::{invite_id, Invite, InviteEntry, INVITE_MAX_REFUSED_KEYS};
use crate::domain::org::OrgId;
use crate::error::{Error, Result};

impl DynamoDbStore {
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
                .key("sk", s(keys::invites_index_sk(&invite.provider)))
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
            .set_item(Some(to_keyed_item(
                &keys::invite_pk(token_hash),
                keys::INVITE_SK,
                invite,
            )?))
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
        let item: Option<std::collections::HashMap<String, AttributeValue>> = self
            .get_raw(&keys::invite_pk(token_hash), keys::INVITE_SK)
            .await?;
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
            .delete_at(s(keys::invite_pk(token_hash)), s(keys::INVITE_SK))
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
            .update_at(s(keys::invite_pk(token_hash)), s(keys::INVITE_SK))
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
    pub async fn delete_invite(&self, org: &OrgId, provider: &str, token_hash: &str) -> Result<()> {
        self.delete_at(s(keys::invite_pk(token_hash)), s(keys::INVITE_SK))
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
        org: &OrgId,
        provider: &str,
    ) -> Result<std::collections::BTreeMap<String, InviteEntry>> {
        let item = self
            .get_raw(&keys::org(org), &keys::invites_index_sk(provider))
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
    async fn unindex_invite(&self, org: &OrgId, provider: &str, token_hash: &str) {
        let result = self
            .update_at(s(keys::org(org)), s(keys::invites_index_sk(provider)))
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
        org: &OrgId,
        provider: &str,
        id: &str,
        entry: &AuditEntry,
    ) -> Result<bool> {
        let Some(listed) = self.invite_entries(org, provider).await?.remove(id) else {
            return Ok(false);
        };
        let delete = self
            .delete_at(s(keys::invite_pk(&listed.token_hash)), s(keys::INVITE_SK))
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
    async fn unindex_write(&self, org: &OrgId, provider: &str, token_hash: &str) -> Write {
        Write::Update(
            self.update_at(s(keys::org(org)), s(keys::invites_index_sk(provider)))
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
