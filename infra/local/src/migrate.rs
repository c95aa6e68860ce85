//! `cargo xtask migrate-activity --table NAME [--endpoint URL]`: packs the per-(seat,
//! day) activity items written before issue 16 into day items, in a deployed table
//! (the AWS SDK's default credential and region chains) or a local one (`--endpoint`).
//! Idempotent; safe to stop and run again (`shared/src/store/migration.rs`).

use anyhow::{bail, Context as _};
use seatscope_core::store::DynamoDbStore;

const USAGE: &str = "usage: cargo xtask migrate-activity --table NAME [--endpoint URL]

  Packs every per-(seat, day) item (sort key DAY#<day>#SEAT#<id>, the layout before
  issue 16) into one item per day (ACTIVITY#<day>#<part>) and deletes it. Run once after
  deploying this version, before or after its first syncs; a second run does nothing.
  Credentials and region come from the AWS SDK's default chains (AWS_PROFILE,
  AWS_REGION, …); --endpoint points at DynamoDB Local.";

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut table = None;
    let mut endpoint = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--table" => table = Some(it.next().context("--table needs a name")?.clone()),
            "--endpoint" => endpoint = Some(it.next().context("--endpoint needs a URL")?.clone()),
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown option {other:?}\n{USAGE}"),
        }
    }
    let Some(table) = table else {
        bail!("--table is required\n{USAGE}");
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let mut loader = seatscope_core::aws::sdk_config_loader();
            if let Some(url) = &endpoint {
                loader = loader.endpoint_url(url);
            }
            let sdk = loader.load().await;
            let store = DynamoDbStore::new(seatscope_core::aws::dynamodb_client(&sdk), &table);
            eprintln!("migrate-activity: scanning {table} for per-(seat, day) items…");
            let report = store
                .migrate_seat_day_items(|r| {
                    eprintln!(
                        "  {} partitions done: {} old items, {} days packed, {} kept as a sync wrote them",
                        r.partitions, r.old_items, r.days_packed, r.days_kept
                    )
                })
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.chain()))?;
            println!(
                "migrate-activity: {} partitions, {} old items packed into {} days and deleted; {} days kept as a sync wrote them",
                report.partitions, report.old_items, report.days_packed, report.days_kept
            );
            Ok(())
        })
}
