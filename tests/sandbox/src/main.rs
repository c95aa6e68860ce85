//! `sandbox pagerduty [options]`: serves the PagerDuty sandbox until Ctrl-C.
//!
//! Prints exactly one line on stdout once listening, so scripts can read the URL:
//! `pagerduty sandbox listening on http://127.0.0.1:PORT`. Logs go to stderr.

use anyhow::{bail, Context};
use seatscope_sandbox::{PagerDutyConfig, PagerDutySandbox};

const USAGE: &str = "usage: sandbox pagerduty [--port N] [--seed N] [--users N] [--days N] \
[--events-per-day N] [--end-date YYYY-MM-DD] [--api-token KEY] [--client-id ID] \
[--client-secret SECRET] [--rate-limit N] [--token-ttl SECS]";

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| anyhow::anyhow!("{flag} {value:?}: {e}"))
}

fn pagerduty_args(args: &[String]) -> anyhow::Result<(PagerDutyConfig, u16)> {
    let mut config = PagerDutyConfig::default();
    let mut port = 0u16;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--port" => port = parse(flag, value)?,
            "--seed" => config.seed = parse(flag, value)?,
            "--users" => config.users = parse(flag, value)?,
            "--days" => config.days = parse(flag, value)?,
            "--events-per-day" => config.events_per_day = parse(flag, value)?,
            "--end-date" => {
                let format = time::macros::format_description!("[year]-[month]-[day]");
                config.end_date = time::Date::parse(value, &format)
                    .map_err(|e| anyhow::anyhow!("--end-date {value:?}: {e}"))?;
            }
            "--api-token" => config.api_token = Some(value.clone()),
            "--client-id" => config.client_id = value.clone(),
            "--client-secret" => config.client_secret = value.clone(),
            "--rate-limit" => config.rate_limit_per_minute = parse(flag, value)?,
            "--token-ttl" => config.access_token_ttl_secs = parse(flag, value)?,
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    Ok((config, port))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.first().map(String::as_str) {
        Some("pagerduty") => pagerduty_args(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return Ok(());
        }
        _ => Err(anyhow::anyhow!("{USAGE}")),
    };
    // A usage error is the caller's fault: say what is wrong, no backtrace, exit 2.
    let (config, port) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let sandbox = PagerDutySandbox::start(config, port).await?;
    println!("pagerduty sandbox listening on {}", sandbox.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sandbox.shutdown().await;
    Ok(())
}
