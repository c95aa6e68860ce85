//! `cargo xtask migrate-activity`: packs the per-(seat, day) items of the layout before
//! issue 16 (`DAY#<day>#SEAT#<id>`) into day items (`ACTIVITY#<day>#<part>`,
//! `day_counts.rs`), then deletes them. A one-off, and the only Scan in the code: it
//! finds the partitions that still hold old items.
//!
//! Idempotent and safe to stop at any point: a day is written before its old items are
//! deleted; a day a sync has already written in the new layout (a sync recounts whole
//! days) is kept as the sync wrote it; a second run finds nothing left to do.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use time::Date;

use super::day_counts::{self, DayCountsPart};
use super::{ddb_err, keys, s, DynamoDbStore, BATCH_SIZE};
use crate::domain::seat::SeatDay;
use crate::domain::time::parse_day;
use crate::error::{Error, Result};

/// The stamp of the day items the migration writes.
const MIGRATION_WRITER: &str = "migration";

/// What a migration run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// App partitions that held old items.
    pub partitions: usize,
    /// Old per-(seat, day) items read (and deleted).
    pub old_items: usize,
    /// Days written as day items.
    pub days_packed: usize,
    /// Days left as a sync had already written them.
    pub days_kept: usize,
}

impl DynamoDbStore {
    /// Packs every old per-(seat, day) item of the table into day items and deletes
    /// it; `progress` is called after each partition.
    pub async fn migrate_seat_day_items(
        &self,
        progress: impl Fn(&MigrationReport),
    ) -> Result<MigrationReport> {
        let mut report = MigrationReport::default();
        for pk in self.partitions_with_old_day_items().await? {
            let old: Vec<SeatDay> = self.query_prefix(&pk, keys::SEAT_DAY_PREFIX).await?;
            if old.is_empty() {
                continue;
            }
            let existing: Vec<DayCountsPart> =
                self.query_prefix(&pk, keys::ACTIVITY_PREFIX).await?;
            let written_by_a_sync: BTreeSet<String> = existing
                .into_iter()
                .filter(|p| p.written_by != MIGRATION_WRITER)
                .map(|p| p.date)
                .collect();
            let old_keys: Vec<(String, String)> = old
                .iter()
                .map(|d| (pk.clone(), keys::seat_day_sk(&d.date, &d.seat_id)))
                .collect();
            report.old_items += old.len();
            let mut days: Vec<Date> = Vec::new();
            let mut counts: Vec<SeatDay> = Vec::new();
            for (date, seats) in day_counts::group_by_day(old) {
                if written_by_a_sync.contains(&date) {
                    report.days_kept += 1;
                    continue;
                }
                let Some(d) = parse_day(&date) else {
                    return Err(Error::Internal {
                        context: format!("an old day item in {pk} has the date {date:?}"),
                        source: None,
                    });
                };
                days.push(d);
                counts.extend(seats);
            }
            let parts = day_counts::pack(&days, &counts, MIGRATION_WRITER);
            self.put_all_keyed(&pk, &parts, |p| keys::activity_day_sk(&p.date, p.part))
                .await?;
            report.days_packed += days.len();
            self.delete_keys(&old_keys).await?;
            report.partitions += 1;
            progress(&report);
        }
        Ok(report)
    }

    /// The app partitions holding an item whose sort key starts with `DAY#` (a Scan,
    /// keys only).
    async fn partitions_with_old_day_items(&self) -> Result<BTreeSet<String>> {
        let mut found = BTreeSet::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .get()
                .await
                .scan()
                .table_name(&self.table)
                .projection_expression("#pk")
                .filter_expression("begins_with(#sk, :old)")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":old", s(keys::SEAT_DAY_PREFIX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(ddb_err("Scan(old day items)"))?;
            for item in page.items.unwrap_or_default() {
                if let Some(pk) = item.get("pk").and_then(|v| v.as_s().ok()) {
                    found.insert(pk.clone());
                }
            }
            match page.last_evaluated_key {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        Ok(found)
    }

    /// Deletes the items at `keys`, 25 per request.
    async fn delete_keys(&self, keys: &[(String, String)]) -> Result<()> {
        for chunk in keys.chunks(BATCH_SIZE) {
            let requests = chunk
                .iter()
                .map(|(pk, sk)| {
                    let delete = DeleteRequest::builder()
                        .key("pk", s(pk))
                        .key("sk", s(sk))
                        .build()
                        .map_err(|e| Error::internal("building a delete request", e))?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<Vec<_>>>()?;
            self.write_batch(requests).await?;
        }
        Ok(())
    }
}
