//! Pending OAuth authorizations: single use (a conditional delete consumes one),
//! keyed by the SHA-256 of the state value.

use aws_sdk_dynamodb::types::ReturnValue;
use time::OffsetDateTime;

use super::{
    ddb_err, from_item, keys, n, s, to_keyed_item, unless_condition_failed, DynamoDbStore,
};
use crate::domain::oauth_state::OAuthState;
use crate::error::Result;

impl DynamoDbStore {
    /// Stores a pending authorization under the SHA-256 of its state value.
    pub async fn put_oauth_state(&self, state_hash: &str, state: &OAuthState) -> Result<()> {
        self.client
            .get()
            .await
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_keyed_item(
                &keys::oauth_state(state_hash),
                keys::OAUTH_STATE_SK,
                state,
            )?))
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
}
