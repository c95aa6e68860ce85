//! `cargo xtask migrate-activity` (issue 16): the per-(seat, day) items of the layout
//! before it are packed into day items, on DynamoDB Local, after a real sync.

mod common;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use seatscope_core::domain::OrgId;
use seatscope_core::store::MigrationReport;
use seatscope_local::stack::{Stack, StackOptions};
use seatscope_sandbox::PagerDutyConfig;
use serde_json::Value;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Rewrites the org's day items in the layout before issue 16: one item per
/// (seat, day) at `DAY#<day>#SEAT#<id>` with `date`, `seat_id`, `features`, `total`.
async fn downgrade_to_seat_day_items(stack: &Stack, pk: &str) -> usize {
    let packed = items_with_prefix(stack, pk, DAY_ITEMS).await.unwrap();
    let mut written = 0;
    for item in &packed {
        let date = item["date"].as_str().unwrap();
        for (seat, features) in &day_item_counts(item) {
            let counts: HashMap<String, AttributeValue> = features
                .as_object()
                .unwrap()
                .iter()
                .map(|(f, n)| (f.clone(), AttributeValue::N(n.to_string())))
                .collect();
            let total: u64 = features
                .as_object()
                .unwrap()
                .values()
                .map(|n| n.as_u64().unwrap())
                .sum();
            stack
                .dynamodb
                .put_item()
                .table_name(&stack.table_name)
                .item("pk", s(pk))
                .item("sk", s(&format!("DAY#{date}#SEAT#{seat}")))
                .item("date", s(date))
                .item("seat_id", s(seat))
                .item("features", AttributeValue::M(counts))
                .item("total", AttributeValue::N(total.to_string()))
                .send()
                .await
                .unwrap();
            written += 1;
        }
        stack
            .dynamodb
            .delete_item()
            .table_name(&stack.table_name)
            .key("pk", s(pk))
            .key("sk", s(item["sk"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
    }
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_seat_day_items_are_packed_into_day_items_once_and_a_later_sync_agrees() {
    let stack = Stack::start(StackOptions {
        sandbox: PagerDutyConfig {
            users: 12,
            days: 40,
            events_per_day: 60,
            ..PagerDutyConfig::default()
        },
        ..StackOptions::default()
    })
    .await
    .expect("the local stack starts");
    let org = "migrated";
    let pk = format!("ORG#{org}#APP#pagerduty");
    let truth = truth_counts(&stack.sandbox.ground_truth().daily);
    assert!(!truth.is_empty());
    connect(&stack, org).await.expect("connect");
    assert_eq!(stack.tick().await.unwrap()["synced"], 1);
    let rollups_before: Vec<Value> = items_with_prefix(&stack, &pk, "ROLLUP#").await.unwrap();
    let day_items = items_with_prefix(&stack, &pk, DAY_ITEMS).await.unwrap();
    assert_eq!(stored_day_counts(&day_items), truth);

    // The table as the version before issue 16 left it (days without activity had no
    // item); one day (the newest with activity) also already rewritten by a sync in the new layout, with the counts the sync found.
    let active_days: Vec<&Value> = day_items
        .iter()
        .filter(|d| !day_item_counts(d).is_empty())
        .collect();
    let newest = (*active_days.last().unwrap()).clone();
    let old_items = downgrade_to_seat_day_items(&stack, &pk).await;
    assert!(old_items > active_days.len(), "{old_items} old items");
    assert!(items_with_prefix(&stack, &pk, DAY_ITEMS)
        .await
        .unwrap()
        .is_empty());
    let mut kept = serde_dynamo::to_item::<_, HashMap<String, AttributeValue>>(&newest).unwrap();
    kept.insert("written_by".into(), s("a-sync-run"));
    stack
        .dynamodb
        .put_item()
        .table_name(&stack.table_name)
        .set_item(Some(kept))
        .send()
        .await
        .unwrap();

    let store = &stack.deps.store;
    let calls = std::sync::Mutex::new(0);
    let report = store
        .migrate_seat_day_items(|_| *calls.lock().unwrap() += 1)
        .await
        .unwrap();
    assert_eq!(*calls.lock().unwrap(), 1, "progress after each partition");
    assert_eq!(report.partitions, 1);
    assert_eq!(report.old_items, old_items);
    assert_eq!(report.days_kept, 1, "{report:?}");
    assert_eq!(report.days_packed + 1, active_days.len(), "{report:?}");
    assert!(items_with_prefix(&stack, &pk, "DAY#")
        .await
        .unwrap()
        .is_empty());
    let migrated = items_with_prefix(&stack, &pk, DAY_ITEMS).await.unwrap();
    assert_eq!(stored_day_counts(&migrated), truth);
    let kept_now = migrated
        .iter()
        .find(|i| i["date"] == newest["date"])
        .unwrap();
    assert_eq!(
        kept_now["written_by"], "a-sync-run",
        "the sync's day is kept"
    );

    // A second run has nothing to do and changes nothing.
    let again = store.migrate_seat_day_items(|_| {}).await.unwrap();
    assert_eq!(again, MigrationReport::default());
    assert_eq!(
        items_with_prefix(&stack, &pk, DAY_ITEMS).await.unwrap(),
        migrated
    );

    // The core reads the migrated days: every seat day of the truth is there.
    let data = store.app_data(&OrgId::parse(org).unwrap(), "pagerduty");
    let (first, last) = (
        time::macros::date!(2000 - 01 - 01),
        time::macros::date!(2100 - 01 - 01),
    );
    assert_eq!(data.seat_days(first, last).await.unwrap().len(), old_items);

    // A sync after the migration recomputes the same rollups from the migrated days.
    let (status, _) = post_json(&stack, org, "/api/connections/pagerduty/sync")
        .await
        .unwrap();
    assert_eq!(status, 202);
    assert_eq!(stack.tick().await.unwrap()["synced"], 1);
    let rollups_after: Vec<Value> = items_with_prefix(&stack, &pk, "ROLLUP#").await.unwrap();
    let numbers = |rollups: &[Value]| -> Vec<(Value, Value, Value, Value)> {
        rollups
            .iter()
            .map(|r| {
                (
                    r["date"].clone(),
                    r["dau"].clone(),
                    r["wau"].clone(),
                    r["mau"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(numbers(&rollups_after), numbers(&rollups_before));
    assert_eq!(
        stored_day_counts(&items_with_prefix(&stack, &pk, DAY_ITEMS).await.unwrap()),
        truth
    );
}
