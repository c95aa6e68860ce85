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
use seatscope_sandbox::{PagerDutyConfig, PagerDutyState};
use seatscope_sandbox::{PandaDocConfig, PandaDocState};
use seatscope_sandbox::{SandboxHandle, Vendor};
use seatscope_sandbox::{SendGridConfig, SendGridSandboxKey, SendGridState};

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

fn parse_date(value: &str) -> anyhow::Result<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(value, &format).map_err(|e| anyhow::anyhow!("--end-date {value:?}: {e}"))
}

/// Parses `--flag value` pairs into a default config and a port (`--port`, 0 = any).
/// `set` handles the other flags; it answers `false` for one it does not know.
fn parse_flags<C: Default>(
    args: &[String],
    usage: &str,
    mut set: impl FnMut(&mut C, &str, &String) -> anyhow::Result<bool>,
) -> anyhow::Result<(C, u16)> {
    let mut config = C::default();
    let mut port = 0u16;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .with_context(|| format!("{flag} needs a value\n{usage}"))?;
        if flag == "--port" {
            port = parse(flag, value)?;
        } else if !set(&mut config, flag, value)? {
            bail!("unknown option {flag}\n{usage}");
        }
    }
    Ok((config, port))
}

/// A usage error is the caller's fault: say what is wrong, no backtrace, exit 2.
fn or_exit_2<T>(parsed: anyhow::Result<T>) -> T {
    match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}

/// Starts vendor `S`'s sandbox, prints the one documented stdout line, serves until
/// Ctrl-C, then shuts down.
async fn serve<S: Vendor>(config: S::Config, port: u16) -> anyhow::Result<()> {
    let sandbox = SandboxHandle::<S>::start(config, port).await?;
    println!("{} sandbox listening on {}", S::NAME, sandbox.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    sandbox.shutdown().await;
    Ok(())
}

fn pagerduty_args(args: &[String]) -> anyhow::Result<(PagerDutyConfig, u16)> {
    parse_flags(args, USAGE, |config: &mut PagerDutyConfig, flag, value| {
        match flag {
            "--seed" => config.seed = parse(flag, value)?,
            "--users" => config.users = parse(flag, value)?,
            "--days" => config.days = parse(flag, value)?,
            "--events-per-day" => config.events_per_day = parse(flag, value)?,
            "--end-date" => config.end_date = parse_date(value)?,
            "--api-token" => config.api_token = Some(value.clone()),
            "--client-id" => config.client_id = value.clone(),
            "--client-secret" => config.client_secret = value.clone(),
            "--rate-limit" => config.rate_limit_per_minute = parse(flag, value)?,
            "--token-ttl" => config.access_token_ttl_secs = parse(flag, value)?,
            _ => return Ok(false),
        }
        Ok(true)
    })
}

const SENDGRID_USAGE: &str = "usage: sandbox sendgrid [--port N] [--seed N] [--teammates N] \
[--pending-invites N] [--days N] [--emails-per-day N] [--end-date YYYY-MM-DD] [--api-key KEY]... \
[--monthly-credits N] [--rate-limit N]";

/// `--api-key KEY` adds a key with every scope of the default full key (repeatable); the
/// default keys stay valid.
fn sendgrid_args(args: &[String]) -> anyhow::Result<(SendGridConfig, u16)> {
    parse_flags(
        args,
        SENDGRID_USAGE,
        |config: &mut SendGridConfig, flag, value| {
            match flag {
                "--seed" => config.seed = parse(flag, value)?,
                "--teammates" => config.teammates = parse(flag, value)?,
                "--pending-invites" => config.pending_invites = parse(flag, value)?,
                "--days" => config.days = parse(flag, value)?,
                "--emails-per-day" => config.emails_per_day = parse(flag, value)?,
                "--end-date" => config.end_date = parse_date(value)?,
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
                _ => return Ok(false),
            }
            Ok(true)
        },
    )
}

/// `sandbox sendgrid ...`: usage errors exit 2, like the PagerDuty command.
async fn run_sendgrid(args: &[String]) -> anyhow::Result<()> {
    let (config, port) = or_exit_2(sendgrid_args(args));
    // The accepted keys go to the log (stderr): stdout stays the one documented line.
    for key in &config.api_keys {
        tracing::info!(key = %key.key, scopes = %key.scopes.join(" "), "sendgrid sandbox API key");
    }
    serve::<SendGridState>(config, port).await
}

const PANDADOC_USAGE: &str =
    "usage: sandbox pandadoc [--port N] [--seed N] [--users N] [--days N] \
[--events-per-day N] [--end-date YYYY-MM-DD] [--api-key KEY] [--client-id ID] \
[--client-secret SECRET] [--list-rate N] [--details-rate N] [--token-ttl SECS]";

fn pandadoc_args(args: &[String]) -> anyhow::Result<(PandaDocConfig, u16)> {
    parse_flags(
        args,
        PANDADOC_USAGE,
        |config: &mut PandaDocConfig, flag, value| {
            match flag {
                "--seed" => config.seed = parse(flag, value)?,
                "--users" => config.users = parse(flag, value)?,
                "--days" => config.days = parse(flag, value)?,
                "--events-per-day" => config.events_per_day = parse(flag, value)?,
                "--end-date" => config.end_date = parse_date(value)?,
                "--api-key" => config.api_key = Some(value.clone()),
                "--client-id" => config.client_id = value.clone(),
                "--client-secret" => config.client_secret = value.clone(),
                "--list-rate" => config.list_rate_per_minute = parse(flag, value)?,
                "--details-rate" => config.details_rate_per_minute = parse(flag, value)?,
                "--token-ttl" => config.access_token_ttl_secs = parse(flag, value)?,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )
}

/// `sandbox pandadoc ...`: usage errors exit 2, like the PagerDuty command.
async fn run_pandadoc(args: &[String]) -> anyhow::Result<()> {
    let (config, port) = or_exit_2(pandadoc_args(args));
    serve::<PandaDocState>(config, port).await
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
    let (config, port) = or_exit_2(parsed);
    serve::<PagerDutyState>(config, port).await
}
