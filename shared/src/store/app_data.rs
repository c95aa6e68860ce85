//! One app's synced data of one org: everything under the app's partition (seats,
//! day counts, rollups, plan credits, settings, summary and its seat-list snapshot,
//! runs). An [`AppData`] is made from an [`OrgId`] and a provider, so every read and
//! write of it stays inside that tenant's partition.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::Date;

use super::cursor::Position;
use super::day_counts::{self, DayCountsPart};
use super::{keys, s, Write};
use crate::domain::org::OrgId;
use crate::domain::plan::PlanItem;
use crate::domain::rollup::DailyRollup;
use crate::domain::run::SyncRun;
use crate::domain::seat::{Seat, SeatDay, SeatStatus};
use crate::domain::settings::AppSettings;
use crate::domain::summary::Summary;
use crate::error::{Error, Result};

use super::DynamoDbStore;

/// The settings item: the settings and who changed them last.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SettingsItem {
    #[serde(flatten)]
    settings: AppSettings,
    updated_by: String,
    updated_at: String,
}

/// The app's summary as stored, with the size of the seat-list snapshot written with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSummary {
    #[serde(flatten)]
    pub summary: Summary,
    /// How many parts the seat-list snapshot written with this summary has (None
    /// before the first one): the seat list reads them instead of every seat item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat_snapshot_parts: Option<u32>,
}

/// A page of runs, newest first, and where the next (older) page starts.
pub struct RunsPage {
    pub runs: Vec<SyncRun>,
    pub next: Option<Position>,
}

/// One org's data of one app.
pub struct AppData<'s> {
    store: &'s DynamoDbStore,
    org: OrgId,
    provider: String,
    pk: String,
}

impl DynamoDbStore {
    pub fn app_data(&self, org: &OrgId, provider: &str) -> AppData<'_> {
        AppData {
            store: self,
            org: org.clone(),
            provider: provider.to_string(),
            pk: keys::app(org, provider),
        }
    }

    /// Each listed app's stored summary and plan credits (two BatchGetItems, whatever
    /// the number of apps), by provider id.
    pub async fn summaries_and_plans(
        &self,
        org: &OrgId,
        providers: &[&str],
    ) -> Result<(HashMap<String, Summary>, HashMap<String, PlanItem>)> {
        let keys_of = |sk: &str| -> Vec<(String, String)> {
            providers
                .iter()
                .map(|p| (keys::app(org, p), sk.to_string()))
                .collect()
        };
        let (summary_keys, plan_keys) = (keys_of(keys::SUMMARY_SK), keys_of(keys::PLAN_SK));
        let (summaries, plans) = tokio::try_join!(
            self.get_many_keyed::<StoredSummary>(&summary_keys),
            self.get_many_keyed::<PlanItem>(&plan_keys),
        )?;
        let provider_of = |pk: &str| {
            providers
                .iter()
                .find(|p| keys::app(org, p) == pk)
                .map(|p| p.to_string())
        };
        Ok((
            summaries
                .into_iter()
                .filter_map(|(pk, _, s)| provider_of(&pk).map(|p| (p, s.summary)))
                .collect(),
            plans
                .into_iter()
                .filter_map(|(pk, _, plan)| provider_of(&pk).map(|p| (p, plan)))
                .collect(),
        ))
    }
}

impl AppData<'_> {
    pub fn org(&self) -> &OrgId {
        &self.org
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    // --- seats ---------------------------------------------------------------------

    /// Every seat item, removed ones included, in seat-id order.
    pub async fn seats(&self) -> Result<Vec<Seat>> {
        self.store.query_prefix(&self.pk, keys::SEAT_PREFIX).await
    }

    pub async fn put_seats(&self, seats: &[Seat]) -> Result<()> {
        self.store
            .put_all_keyed(&self.pk, seats, |seat| keys::seat_sk(&seat.seat_id))
            .await
    }

    /// The current seats: from the snapshot written with `summary` when it is whole,
    /// otherwise from the seat items (removed ones included; callers filter).
    pub async fn current_seats(&self, summary: Option<&StoredSummary>) -> Result<Vec<Seat>> {
        if let Some((parts, version)) =
            summary.and_then(|s| s.seat_snapshot_parts.zip(s.summary.computed_at.as_deref()))
        {
            let keys: Vec<(String, String)> = (0..parts)
                .map(|p| (self.pk.clone(), snapshot_part_sk(p)))
                .collect();
            let found = self.store.get_many_keyed::<SeatSnapshotPart>(&keys).await?;
            let found = found
                .into_iter()
                .map(|(_, sk, mut part)| {
                    part.part = snapshot_part_of(&sk);
                    part
                })
                .collect();
            if let Some(seats) = seats_from_snapshot(found, parts, version)? {
                return Ok(seats);
            }
        }
        self.seats().await
    }

    // --- day counts and rollups --------------------------------------------------------

    /// The seats' day counts of the days in `[from, until)` (see `day_counts.rs`).
    pub async fn seat_days(&self, from: Date, until: Date) -> Result<Vec<SeatDay>> {
        let parts: Vec<DayCountsPart> = self
            .store
            .query_between(
                &self.pk,
                &keys::activity_day_prefix(from),
                &keys::activity_day_prefix(until),
            )
            .await?;
        Ok(day_counts::unpack(parts))
    }

    /// Writes the seats' counts of `days`, each day whole (a day in `days` without
    /// counts is stored empty, replacing what was there); `written_by` stamps the write.
    pub async fn put_seat_days(
        &self,
        days: &[Date],
        counts: &[SeatDay],
        written_by: &str,
    ) -> Result<()> {
        let parts = day_counts::pack(days, counts, written_by);
        self.store
            .put_all_keyed(&self.pk, &parts, |p| keys::activity_day_sk(&p.date, p.part))
            .await
    }

    /// The rollups of the days from `from` to `to`, both included, oldest first.
    pub async fn rollups(&self, from: Date, to: Date) -> Result<Vec<DailyRollup>> {
        self.store
            .query_between(&self.pk, &keys::rollup_sk(from), &keys::rollup_sk(to))
            .await
    }

    /// The `n` latest rollups, newest first.
    pub async fn latest_rollups(&self, n: i32) -> Result<Vec<DailyRollup>> {
        self.store
            .last_n_with_prefix(&self.pk, keys::ROLLUP_PREFIX, n)
            .await
    }

    pub async fn put_rollups(&self, rollups: &[DailyRollup]) -> Result<()> {
        self.store
            .put_all_keyed(&self.pk, rollups, |r| keys::rollup_sk_of(&r.date))
            .await
    }

    // --- plan, settings, summary --------------------------------------------------------

    pub async fn plan(&self) -> Result<Option<PlanItem>> {
        self.store.get(&self.pk, keys::PLAN_SK).await
    }

    pub async fn put_plan(&self, plan: &PlanItem) -> Result<()> {
        self.store.put_keyed(&self.pk, keys::PLAN_SK, plan).await
    }

    /// The stored settings (None: the defaults apply).
    pub async fn settings(&self) -> Result<Option<AppSettings>> {
        Ok(self
            .store
            .get::<SettingsItem>(&self.pk, keys::SETTINGS_SK)
            .await?
            .map(|i| i.settings))
    }

    /// The write that stores `settings` (for a transaction with its audit entry).
    pub async fn settings_write(
        &self,
        settings: &AppSettings,
        updated_by: &str,
        updated_at: &str,
    ) -> Result<Write> {
        let item = SettingsItem {
            settings: settings.clone(),
            updated_by: updated_by.to_string(),
            updated_at: updated_at.to_string(),
        };
        self.store
            .put_write_keyed(&self.pk, keys::SETTINGS_SK, &item)
            .await
    }

    pub async fn summary(&self) -> Result<Option<StoredSummary>> {
        self.store.get(&self.pk, keys::SUMMARY_SK).await
    }

    /// Stores `summary` with a snapshot of `seats` (the current ones): the snapshot
    /// first, then the summary that points at it, so a reader sees the old summary
    /// with the old parts, or parts that do not match it and reads the seat items;
    /// then the parts `previous` had beyond this snapshot's are deleted.
    pub async fn save_summary(
        &self,
        summary: &Summary,
        seats: &[Seat],
        previous: Option<&StoredSummary>,
    ) -> Result<()> {
        let version = summary.computed_at.clone().unwrap_or_default();
        let parts = snapshot_parts(seats, &version)?;
        self.store
            .put_all_keyed(&self.pk, &parts, |p| snapshot_part_sk(p.part))
            .await?;
        let stored = StoredSummary {
            summary: summary.clone(),
            seat_snapshot_parts: Some(parts.len() as u32),
        };
        self.store
            .put_keyed(&self.pk, keys::SUMMARY_SK, &stored)
            .await?;
        let old_parts = previous.and_then(|b| b.seat_snapshot_parts).unwrap_or(0);
        for part in parts.len() as u32..old_parts {
            self.store.delete(&self.pk, &snapshot_part_sk(part)).await?;
        }
        Ok(())
    }

    // --- runs ------------------------------------------------------------------------

    pub async fn put_run(&self, run: &SyncRun) -> Result<()> {
        let sk = keys::run_sk(&run.started_at, &run.run_id);
        self.store.put_keyed(&self.pk, &sk, run).await
    }

    /// Up to `limit` recorded runs, newest first, older than `before` (the previous
    /// page's `next`).
    pub async fn runs(&self, before: Option<&Position>, limit: usize) -> Result<RunsPage> {
        let sk_of = |r: &SyncRun| keys::run_sk(&r.started_at, &r.run_id);
        let want = i32::try_from(limit + 1).unwrap_or(i32::MAX);
        let mut runs: Vec<SyncRun> = match before {
            None => {
                self.store
                    .last_n_with_prefix(&self.pk, keys::RUN_PREFIX, want)
                    .await?
            }
            // BETWEEN is inclusive: the run at `before` itself is dropped.
            Some(b) => self
                .store
                .query::<SyncRun>(
                    &self.pk,
                    "sk BETWEEN :a AND :b",
                    vec![(":a", s(keys::RUN_PREFIX)), (":b", s(b.sort_key()))],
                    false,
                    Some(want + 1),
                )
                .await?
                .into_iter()
                .filter(|r| sk_of(r) != b.sort_key())
                .collect(),
        };
        let more = runs.len() > limit;
        runs.truncate(limit);
        let next = more
            .then(|| {
                runs.last()
                    .map(|r| Position::at(&sk_of(r), keys::RUN_PREFIX))
            })
            .flatten();
        Ok(RunsPage { runs, next })
    }

    // --- purge -------------------------------------------------------------------------

    /// Deletes every item of the app's partition; how many there were.
    pub async fn delete_all(&self) -> Result<usize> {
        self.store.delete_partition(&self.pk).await
    }
}

fn snapshot_part_sk(part: u32) -> String {
    format!("{}{part:04}", keys::SEAT_SNAPSHOT_PREFIX)
}

fn snapshot_part_of(sk: &str) -> u32 {
    sk.strip_prefix(keys::SEAT_SNAPSHOT_PREFIX)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Seats per snapshot part: ~150 bytes of JSON each before gzip, far below
/// DynamoDB's 400 KB item limit even for long names.
const SEATS_PER_PART: usize = 1000;

/// One part of the seat-list snapshot: the app's current seats as gzipped JSON
/// (base64), written with the summary. Reading 10 of these is what makes the seat
/// list of a 10k-seat app fast; `version` (the summary's `computed_at`) keeps a
/// reader from mixing parts of two snapshots.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SeatSnapshotPart {
    /// The part's number: its sort key's suffix, not an attribute.
    #[serde(skip)]
    part: u32,
    version: String,
    seats_gz: String,
}

fn encode_seats(seats: &[&Seat]) -> Result<String> {
    use base64::Engine as _;
    use std::io::Write as _;
    let json = serde_json::to_vec(seats).map_err(|e| Error::internal("encoding seats", e))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&json)
        .map_err(|e| Error::internal("compressing seats", e))?;
    let bytes = gz
        .finish()
        .map_err(|e| Error::internal("compressing seats", e))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn decode_seats(text: &str) -> Result<Vec<Seat>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Error::internal("reading a seat snapshot", e))?;
    serde_json::from_reader(flate2::read::GzDecoder::new(bytes.as_slice()))
        .map_err(|e| Error::internal("reading a seat snapshot", e))
}

/// The snapshot parts of `seats` (current ones only) at `version`.
fn snapshot_parts(seats: &[Seat], version: &str) -> Result<Vec<SeatSnapshotPart>> {
    let current: Vec<&Seat> = seats
        .iter()
        .filter(|s| s.status != SeatStatus::Removed)
        .collect();
    current
        .chunks(SEATS_PER_PART)
        .enumerate()
        .map(|(i, chunk)| {
            Ok(SeatSnapshotPart {
                part: i as u32,
                version: version.to_string(),
                seats_gz: encode_seats(chunk)?,
            })
        })
        .collect()
}

/// The seats of a snapshot, if all `parts` parts are there at `version`; None
/// (read the seat items instead) when a part is missing or from another snapshot.
fn seats_from_snapshot(
    mut parts: Vec<SeatSnapshotPart>,
    expected: u32,
    version: &str,
) -> Result<Option<Vec<Seat>>> {
    if parts.len() != expected as usize || parts.iter().any(|p| p.version != version) {
        return Ok(None);
    }
    parts.sort_by_key(|p| p.part);
    let mut seats = Vec::new();
    for p in parts {
        seats.extend(decode_seats(&p.seats_gz)?);
    }
    Ok(Some(seats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_snapshots_round_trip_in_parts_and_refuse_mixed_versions() {
        let old = "2026-01-01T00:00:00Z";
        let mut seats: Vec<Seat> = (0..2500)
            .map(|i| Seat::sample(&format!("P{i:05}"), Some("2026-11-20"), old, false))
            .collect();
        seats[7].status = SeatStatus::Removed;
        let parts = snapshot_parts(&seats, "v1").unwrap();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.seats_gz.len() < 100_000));
        let mut shuffled = parts.clone();
        shuffled.reverse();
        let back = seats_from_snapshot(shuffled, 3, "v1").unwrap().unwrap();
        let current: Vec<Seat> = seats
            .iter()
            .filter(|s| s.status != SeatStatus::Removed)
            .cloned()
            .collect();
        assert_eq!(back, current);
        assert!(seats_from_snapshot(parts.clone(), 4, "v1")
            .unwrap()
            .is_none());
        assert!(seats_from_snapshot(parts.clone(), 3, "v2")
            .unwrap()
            .is_none());
        let mut mixed = parts;
        mixed[1].version = "v0".into();
        assert!(seats_from_snapshot(mixed, 3, "v1").unwrap().is_none());
    }
}
