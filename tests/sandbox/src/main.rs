//! `sandbox pagerduty [options]`: serves the PagerDuty sandbox until Ctrl-C.
//!
//! Prints exactly one line on stdout once listening, so scripts can read the URL:
//! `pagerduty sandbox listening on http://127.0.0.1:PORT`. Logs go to stderr.
//!
//! `sandbox sendgrid [options]` serves the SendGrid sandbox the same way and prints
//! `sendgrid sandbox listening on http://127.0.0.1:PORT`.
//!
//! `sandbox pandadoc [options]` serves the PandaDoc sandbox the same way and prints
//! `pandadoc sandbox listening on http://127.0.0.1:PORT`.

use anyhow::{bail, Context};
use seatscope_sandbox::{PagerDutyConfig, PagerDutySandbox};
use seatscope_sandbox::{PandaDocConfig, PandaDocSandbox};
use seatscope_sandbox::{SendGridConfig, SendGridSandbox, SendGridSandboxKey};

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

const SENDGRID_USAGE: &str = "usage: sandbox sendgrid [--port N] [--seed N] [--teammates N] \
[--pending-invites N] [--days N] [--emails-per-day N] [--end-date YYYY-MM-DD] [--api-key KEY]... \
[--monthly-credits N] [--rate-limit N]";

/// `--api-key KEY` adds a key with every scope of the default full key (repeatable); the
/// default keys stay valid.
fn sendgrid_args(args: &[String]) -> anyhow::Result<(SendGridConfig, u16)> {
    let mut config = SendGridConfig::default();
    let mut port = 0u16;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{SENDGRID_USAGE}"))?;
        match flag.as_str() {
            "--port" => port = parse(flag, value)?,
            "--seed" => config.seed = parse(flag, value)?,
            "--teammates" => config.teammates = parse(flag, value)?,
            "--pending-invites" => config.pending_invites = parse(flag, value)?,
            "--days" => config.days = parse(flag, value)?,
            "--emails-per-day" => config.emails_per_day = parse(flag, value)?,
            "--end-date" => {
                let format = time::macros::format_description!("[year]-[month]-[day]");
                config.end_date = time::Date::parse(value, &format)
                    .map_err(|e| anyhow::anyhow!("--end-date {value:?}: {e}"))?;
            }
            "--api-key" => {
                if !config.api_keys.iter().any(|k| k.key == *value) {
                    config.api_keys.push(SendGridSandboxKey {
                        key: value.clone(),
                        scopes: SendGridSandboxKey::full().scopes,
                    });
                }
            }
            "--monthly-credits" => config.monthly_credits = parse(flag, value)?,
            "--rate-limit" => config.rate_limit_per_minute = parse(flag, value)?,
            other => bail!("unknown option {other}\n{SENDGRID_USAGE}"),
        }
    }
    Ok((config, port))
}

/// `sandbox sendgrid ...`: usage errors exit 2, like the PagerDuty command.
async fn run_sendgrid(args: &[String]) -> anyhow::Result<()> {
    let (config, port) = match sendgrid_args(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // The accepted keys go to the log (stderr): stdout stays the one documented line.
    for key in &config.api_keys {
        tracing::info!(key = %key.key, scopes = %key.scopes.join(" "), "sendgrid sandbox API key");
    }
    let sandbox = SendGridSandbox::start(config, port).await?;
    println!("sendgrid sandbox listening on {}", sandbox.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sandbox.shutdown().await;
    Ok(())
}

const PANDADOC_USAGE: &str =
    "usage: sandbox pandadoc [--port N] [--seed N] [--users N] [--days N] \
[--events-per-day N] [--end-date YYYY-MM-DD] [--api-key KEY] [--client-id ID] \
[--client-secret SECRET] [--list-rate N] [--details-rate N] [--token-ttl SECS]";

fn pandadoc_args(args: &[String]) -> anyhow::Result<(PandaDocConfig, u16)> {
    let mut config = PandaDocConfig::default();
    let mut port = 0u16;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{PANDADOC_USAGE}"))?;
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
            "--api-key" => config.api_key = Some(value.clone()),
            "--client-id" => config.client_id = value.clone(),
            "--client-secret" => config.client_secret = value.clone(),
            "--list-rate" => config.list_rate_per_minute = parse(flag, value)?,
            "--details-rate" => config.details_rate_per_minute = parse(flag, value)?,
            "--token-ttl" => config.access_token_ttl_secs = parse(flag, value)?,
            other => bail!("unknown option {other}\n{PANDADOC_USAGE}"),
        }
    }
    Ok((config, port))
}

/// `sandbox pandadoc ...`: usage errors exit 2, like the PagerDuty command.
async fn run_pandadoc(args: &[String]) -> anyhow::Result<()> {
    let (config, port) = match pandadoc_args(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let sandbox = PandaDocSandbox::start(config, port).await?;
    println!("pandadoc sandbox listening on {}", sandbox.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sandbox.shutdown().await;
    Ok(())
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
        Some("sendgrid") => return run_sendgrid(&args[1..]).await,
        Some("pandadoc") => return run_pandadoc(&args[1..]).await,
        Some("-h" | "--help") => {
            println!("{USAGE}");
            println!("{SENDGRID_USAGE}");
            println!("{PANDADOC_USAGE}");
            return Ok(());
        }
        _ => Err(anyhow::anyhow!(
            "{USAGE}\n{SENDGRID_USAGE}\n{PANDADOC_USAGE}"
        )),
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
