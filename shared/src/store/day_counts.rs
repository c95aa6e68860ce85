//! How the seats' day counts are laid out in items: one item per UTC day holding every
//! seat's feature counts of that day (`ACTIVITY#<day>#<part>`), split into parts only
//! where a day would pass [`PART_BUDGET`] bytes (DynamoDB's item limit is 400 KB).
//!
//! The counts are one attribute of gzipped JSON (like the seat-list snapshot).
//! A day is always written whole (a sync recounts whole days), so writing needs no
//! read: each part carries who wrote it and how many parts the day has, and a reader
//! takes the parts of one write. Before issue 16 each (seat, day) was its own item
//! (`DAY#<day>#SEAT#<id>`); `cargo xtask migrate-activity` packs those
//! ([`super::DynamoDbStore::migrate_seat_day_items`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use time::Date;

use crate::domain::seat::SeatDay;
use crate::domain::time::day;

/// A part's size budget: its counts' estimated size (see [`seat_size`]) stays under
/// this, leaving room for the keys and DynamoDB's own per-attribute bytes.
pub(super) const PART_BUDGET: usize = 300 * 1024;

/// One stored part of a day's counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct DayCountsPart {
    pub date: String,
    pub part: u32,
    /// How many parts the write that made this part has.
    pub parts: u32,
    /// The write's stamp (the run that wrote it): a reader keeps one write's parts.
    pub written_by: String,
    /// Seat id → feature → count; only non-zero counts. Stored as gzipped JSON
    /// (base64, `counts_gz`): a fifth of the bytes (write units) of a nested map, and
    /// one attribute to parse instead of one per seat and feature.
    #[serde(rename = "counts_gz", with = "gzipped_json")]
    pub counts: BTreeMap<String, BTreeMap<String, u32>>,
}

/// A value as base64 of gzipped JSON, in one string attribute.
mod gzipped_json {
    use std::io::Write as _;

    use base64::Engine as _;
    use serde::de::{DeserializeOwned, Error as _};
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        let json = serde_json::to_vec(value).map_err(S::Error::custom)?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&json).map_err(S::Error::custom)?;
        let bytes = gz.finish().map_err(S::Error::custom)?;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(D::Error::custom)?;
        serde_json::from_reader(flate2::read::GzDecoder::new(bytes.as_slice()))
            .map_err(D::Error::custom)
    }
}

/// The bytes a seat's entry takes in an item, over-estimated: DynamoDB counts the
/// names and the numbers' digits; a few bytes per map entry cover its own framing.
fn seat_size(seat: &str, features: &BTreeMap<String, u32>) -> usize {
    seat.len() + 8 + features.keys().map(|f| f.len() + 16).sum::<usize>()
}

/// The parts of `days`, each day whole: the counts of `counts` whose day is one of
/// `days` (counts of other days are ignored), and one empty part for a day without
/// any, so a rewrite replaces what an earlier write of that day stored.
pub(super) fn pack(days: &[Date], counts: &[SeatDay], written_by: &str) -> Vec<DayCountsPart> {
    let mut by_day: BTreeMap<String, Vec<&SeatDay>> =
        days.iter().map(|d| (day(*d), Vec::new())).collect();
    for c in counts {
        if let Some(list) = by_day.get_mut(&c.date) {
            list.push(c);
        }
    }
    let mut out = Vec::new();
    for (date, mut seats) in by_day {
        seats.sort_by(|a, b| a.seat_id.cmp(&b.seat_id));
        let mut parts: Vec<BTreeMap<String, BTreeMap<String, u32>>> = vec![BTreeMap::new()];
        let mut used = 0usize;
        for s in seats {
            let features: BTreeMap<String, u32> = s
                .features
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(f, n)| (f.clone(), *n))
                .collect();
            if features.is_empty() {
                continue;
            }
            let size = seat_size(&s.seat_id, &features);
            if used + size > PART_BUDGET && !parts.last().is_some_and(BTreeMap::is_empty) {
                parts.push(BTreeMap::new());
                used = 0;
            }
            used += size;
            if let Some(last) = parts.last_mut() {
                last.insert(s.seat_id.clone(), features);
            }
        }
        let n = parts.len() as u32;
        out.extend(
            parts
                .into_iter()
                .enumerate()
                .map(|(i, counts)| DayCountsPart {
                    date: date.clone(),
                    part: i as u32,
                    parts: n,
                    written_by: written_by.to_string(),
                    counts,
                }),
        );
    }
    out
}

/// The seats' day counts in `parts` (any days, any order). Per day, the parts of one
/// write: part 0's (or, without it, the lowest part's); a part left from another
/// write (a day rewritten with fewer parts, or a write a run did not finish) is
/// skipped. A run that died mid-day has not moved its checkpoint past the day, so
/// the next run rewrites it whole.
pub(super) fn unpack(parts: Vec<DayCountsPart>) -> Vec<SeatDay> {
    let mut by_day: BTreeMap<String, Vec<DayCountsPart>> = BTreeMap::new();
    for p in parts {
        by_day.entry(p.date.clone()).or_default().push(p);
    }
    let mut out = Vec::new();
    for (_, mut day_parts) in by_day {
        day_parts.sort_by_key(|p| p.part);
        let Some(first) = day_parts.first() else {
            continue;
        };
        let (writer, parts) = (first.written_by.clone(), first.parts);
        for p in day_parts
            .into_iter()
            .filter(|p| p.written_by == writer && p.part < parts)
        {
            for (seat_id, features) in p.counts {
                out.push(SeatDay {
                    date: p.date.clone(),
                    seat_id,
                    total: features.values().sum(),
                    features,
                });
            }
        }
    }
    out
}

/// Old per-(seat, day) items grouped into whole days, for the migration: day → the
/// seats' counts. A later count of the same (seat, day) replaces an earlier one.
pub(super) fn group_by_day(items: Vec<SeatDay>) -> BTreeMap<String, Vec<SeatDay>> {
    let mut by_day: BTreeMap<String, HashMap<String, SeatDay>> = BTreeMap::new();
    for d in items {
        by_day
            .entry(d.date.clone())
            .or_default()
            .insert(d.seat_id.clone(), d);
    }
    by_day
        .into_iter()
        .map(|(date, seats)| (date, seats.into_values().collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    fn seat_day(date: &str, seat: &str, features: &[(&str, u32)]) -> SeatDay {
        let features: BTreeMap<String, u32> =
            features.iter().map(|(f, n)| (f.to_string(), *n)).collect();
        SeatDay {
            date: date.into(),
            seat_id: seat.into(),
            total: features.values().sum(),
            features,
        }
    }

    fn sorted(mut v: Vec<SeatDay>) -> Vec<SeatDay> {
        v.sort_by(|a, b| (&a.date, &a.seat_id).cmp(&(&b.date, &b.seat_id)));
        v
    }

    #[test]
    fn a_day_without_counts_is_one_empty_part_and_other_days_are_ignored() {
        let counts = vec![
            seat_day("2026-02-28", "P1", &[("acknowledge", 2), ("note", 0)]),
            seat_day("2026-03-02", "P1", &[("resolve", 1)]),
        ];
        let parts = pack(
            &[date!(2026 - 02 - 28), date!(2026 - 03 - 01)],
            &counts,
            "r1",
        );
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].date, "2026-02-28");
        assert_eq!(
            parts[0].counts["P1"],
            BTreeMap::from([("acknowledge".to_string(), 2)]),
            "zero counts are not stored"
        );
        assert_eq!((parts[1].date.as_str(), parts[1].parts), ("2026-03-01", 1));
        assert!(parts[1].counts.is_empty());
        assert_eq!(
            unpack(parts),
            vec![seat_day("2026-02-28", "P1", &[("acknowledge", 2)])]
        );
    }

    #[test]
    fn a_large_day_splits_into_parts_under_the_budget_and_reads_back_whole() {
        let long = "f".repeat(1000);
        let counts: Vec<SeatDay> = (0..1200)
            .map(|i| seat_day("2026-01-01", &format!("{i:05}"), &[(long.as_str(), 1)]))
            .collect();
        let parts = pack(&[date!(2026 - 01 - 01)], &counts, "r1");
        assert!(parts.len() >= 4, "{} parts", parts.len());
        for p in &parts {
            let size: usize = p.counts.iter().map(|(s, f)| seat_size(s, f)).sum();
            assert!(size <= PART_BUDGET, "part {} is {size} bytes", p.part);
            assert_eq!(p.parts, parts.len() as u32);
        }
        assert_eq!(sorted(unpack(parts)), sorted(counts));
    }

    #[test]
    fn a_reader_keeps_one_writes_parts() {
        let long = "f".repeat(1000);
        let big: Vec<SeatDay> = (0..600)
            .map(|i| seat_day("2026-01-01", &format!("{i:05}"), &[(long.as_str(), 1)]))
            .collect();
        let old = pack(&[date!(2026 - 01 - 01)], &big, "old");
        assert!(old.len() >= 2);
        // Rewritten later with one part: the old write's part 1 is still stored.
        let small = vec![seat_day("2026-01-01", "P9", &[("note", 3)])];
        let new = pack(&[date!(2026 - 01 - 01)], &small, "new");
        let stored: Vec<DayCountsPart> = new.into_iter().chain(old.into_iter().skip(1)).collect();
        assert_eq!(unpack(stored), small);
    }

    #[test]
    fn the_migration_groups_old_items_by_day() {
        let grouped = group_by_day(vec![
            seat_day("2026-01-02", "P1", &[("note", 1)]),
            seat_day("2026-01-01", "P1", &[("note", 2)]),
            seat_day("2026-01-01", "P2", &[("resolve", 1)]),
        ]);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped["2026-01-01"].len(), 2);
    }

    proptest! {
        #[test]
        fn packing_then_unpacking_gives_back_every_non_zero_count(
            raw in proptest::collection::vec(
                (0u8..3, 0u16..400, proptest::collection::btree_map("[a-z]{1,40}", 0u32..5, 1..4)),
                0..300,
            )
        ) {
            let days = [date!(2026 - 02 - 27), date!(2026 - 02 - 28), date!(2026 - 03 - 01)];
            let mut unique: BTreeMap<(String, String), BTreeMap<String, u32>> = BTreeMap::new();
            for (d, seat, features) in raw {
                unique.insert((day(days[d as usize]), format!("S{seat}")), features);
            }
            let counts: Vec<SeatDay> = unique
                .into_iter()
                .map(|((date, seat_id), features)| SeatDay {
                    date,
                    seat_id,
                    total: features.values().sum(),
                    features,
                })
                .collect();
            let want: Vec<SeatDay> = counts
                .iter()
                .map(|c| {
                    let features: BTreeMap<String, u32> =
                        c.features.iter().filter(|(_, n)| **n > 0).map(|(f, n)| (f.clone(), *n)).collect();
                    SeatDay { total: features.values().sum(), features, ..c.clone() }
                })
                .filter(|c| !c.features.is_empty())
                .collect();
            prop_assert_eq!(sorted(unpack(pack(&days, &counts, "w"))), sorted(want));
        }
    }
}
