//! The table's key layout: the only place a partition or sort key is built.
//! Partition keys start with the org, so tenants cannot collide.

use time::Date;

use crate::domain::org::OrgId;
use crate::domain::time::day;

pub fn org(org: &OrgId) -> String {
    format!("ORG#{org}")
}
pub fn connection_sk(provider: &str) -> String {
    format!("CONN#{provider}")
}
pub const CONNECTION_PREFIX: &str = "CONN#";
/// Partition of everything synced for one app of one org.
pub fn app(org: &OrgId, provider: &str) -> String {
    format!("ORG#{org}#APP#{provider}")
}
/// Partition of an earlier vendor account's data, kept apart when the connection moved
/// to another account (its items keep their sort keys).
pub fn app_archive(org: &OrgId, provider: &str, archive_id: &str) -> String {
    format!("ORG#{org}#APP#{provider}#ARCHIVE#{archive_id}")
}
pub fn seat_sk(seat_id: &str) -> String {
    format!("SEAT#{seat_id}")
}
pub const SEAT_PREFIX: &str = "SEAT#";
/// One part of a day's activity item (every seat's counts of the day), by the day as
/// stored (`YYYY-MM-DD`); see `store/day_counts.rs`.
pub fn activity_day_sk(date: &str, part: u32) -> String {
    format!("ACTIVITY#{date}#{part:03}")
}
pub const ACTIVITY_PREFIX: &str = "ACTIVITY#";
pub fn activity_day_prefix(date: Date) -> String {
    format!("ACTIVITY#{}#", day(date))
}
/// Before issue 16: one item per (seat, day), `DAY#<day>#SEAT#<id>`; read only by the
/// migration that packs them into activity items.
pub const SEAT_DAY_PREFIX: &str = "DAY#";
pub fn seat_day_sk(date: &str, seat_id: &str) -> String {
    format!("DAY#{date}#SEAT#{seat_id}")
}
pub fn rollup_sk(date: Date) -> String {
    rollup_sk_of(&day(date))
}
/// A rollup item, by its day as stored (`YYYY-MM-DD`).
pub fn rollup_sk_of(date: &str) -> String {
    format!("ROLLUP#{date}")
}
pub const ROLLUP_PREFIX: &str = "ROLLUP#";
pub fn run_sk(started: &str, run_id: &str) -> String {
    format!("RUN#{started}#{run_id}")
}
pub const RUN_PREFIX: &str = "RUN#";
pub const PLAN_SK: &str = "PLAN";
/// The org's settings of one app (threshold, grace period, exemptions, price).
pub const SETTINGS_SK: &str = "SETTINGS";
/// The app's headline numbers, computed when a sync finishes or settings change.
pub const SUMMARY_SK: &str = "SUMMARY";
/// The parts of the seat-list snapshot written with the summary.
pub const SEAT_SNAPSHOT_PREFIX: &str = "SEATLIST#";
/// OAuth state is keyed by the SHA-256 of the state value, not the value itself.
pub fn oauth_state(state_hash: &str) -> String {
    format!("OAUTH_STATE#{state_hash}")
}
pub const OAUTH_STATE_SK: &str = "OAUTH_STATE";
/// Sharded partition of the DueIndex GSI so the scheduler's reads spread out.
pub fn due_shard(org: &OrgId, provider: &str, shards: u32) -> String {
    let h = org
        .bytes()
        .chain(provider.bytes())
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    due_shard_name(h % shards)
}
pub const DUE_SHARDS: u32 = 4;
/// The name of DueIndex shard `n`.
pub fn due_shard_name(n: u32) -> String {
    format!("DUE#{n}")
}
/// The (org, provider) a connection item's keys name; None for any other item.
pub fn connection_of(pk: &str, sk: &str) -> Option<(OrgId, String)> {
    let org = OrgId::parse(pk.strip_prefix("ORG#")?).ok()?;
    let provider = sk.strip_prefix(CONNECTION_PREFIX)?;
    Some((org, provider.to_string()))
}
/// The org's audit trail: one partition per org (a few writes a day).
pub fn audit(org: &OrgId) -> String {
    format!("ORG#{org}#AUDIT")
}
pub const AUDIT_PREFIX: &str = "AUDIT#";
/// An attempt's entry: the time (fixed width, so the sort key orders entries by
/// time) and the request id.
pub fn audit_sk(at: time::OffsetDateTime, request_id: &str) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "AUDIT#{}T{:02}:{:02}:{:02}.{:06}Z#{request_id}",
        day(at.date()),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// Invite links: keyed by the SHA-256 of the token, never the token itself.
pub fn invite_pk(token_hash: &str) -> String {
    format!("INVITE#{token_hash}")
}
pub const INVITE_SK: &str = "INVITE";
/// The org's pending invites of one app, listed without a Scan: one item under the
/// org's partition whose `invites` map holds, per invite id, what the list shows
/// and the token hash (never the token).
pub fn invites_index_sk(provider: &str) -> String {
    format!("INVITES#{provider}")
}

/// The org's people snapshot (the joined people list, see `store/people.rs`): a small
/// head item naming the version and the parts, and the parts.
pub const PEOPLE_SNAPSHOT_SK: &str = "PEOPLE";
pub const PEOPLE_SNAPSHOT_PREFIX: &str = "PEOPLE#";
pub fn people_snapshot_part_sk(part: u32) -> String {
    format!("{PEOPLE_SNAPSHOT_PREFIX}{part:04}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_start_with_the_org_and_audit_entries_sort_by_time() {
        let acme = OrgId::parse("acme").unwrap();
        assert_eq!(org(&acme), "ORG#acme");
        assert_eq!(app(&acme, "pagerduty"), "ORG#acme#APP#pagerduty");
        assert_eq!(audit(&acme), "ORG#acme#AUDIT");
        let at = time::macros::datetime!(2026-11-23 10:00:00.5 UTC);
        assert_eq!(audit_sk(at, "r-1"), "AUDIT#2026-11-23T10:00:00.500000Z#r-1");
        assert_eq!(
            connection_of("ORG#acme", "CONN#sendgrid"),
            Some((acme, "sendgrid".to_string()))
        );
        assert_eq!(connection_of("ORG#acme#APP#x", "SEAT#1"), None);
        assert_eq!(connection_of("ORG#a b", "CONN#x"), None);
    }
}
