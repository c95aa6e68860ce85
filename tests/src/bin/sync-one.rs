//! Syncs one connection in its own process, like one worker invocation, against
//! the local stack named by the environment: the functions' variables (as
//! `Stack::env`) plus `SEATSCOPE_LOCAL_DYNAMODB` and `SEATSCOPE_LOCAL_MOTO`
//! (emulator endpoints). Usage: `sync-one <org> <provider>`. The fan-out tests
//! SIGKILL it mid-sync to show that the next run resumes from its checkpoint.

use anyhow::Context as _;
use seatscope_core::config::Config;
use seatscope_core::ops::sync::{self, RunResult};
use seatscope_core::Deps;
use seatscope_local::services::local_sdk_config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(org), Some(provider)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: sync-one <org> <provider>");
    };
    let endpoint = |k: &str| std::env::var(k).with_context(|| format!("{k} is required"));
    let dynamodb = aws_sdk_dynamodb::Client::new(
        &local_sdk_config(&endpoint("SEATSCOPE_LOCAL_DYNAMODB")?).await,
    );
    let secrets = aws_sdk_secretsmanager::Client::new(
        &local_sdk_config(&endpoint("SEATSCOPE_LOCAL_MOTO")?).await,
    );
    let deps = Deps::from_clients(Config::from_env()?, dynamodb, secrets)?;
    let now = deps.config.clock.now();
    let result = sync::sync_connection(
        &deps,
        &seatscope_core::domain::OrgId::parse(&org)?,
        &provider,
        now,
    )
    .await?;
    println!(
        "{}",
        match result {
            RunResult::Synced(_) => "synced",
            RunResult::Paused(_) => "paused",
            RunResult::Skipped => "skipped",
            RunResult::Failed { .. } => "failed",
        }
    );
    Ok(())
}
