//! moto in server mode: Secrets Manager (and SQS, and the rest of AWS) on one port.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;

use super::process::{free_port, ManagedChild, StartFailure};
use super::Tools;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const START_ATTEMPTS: usize = 3;

/// A `moto_server` process on a free port of 127.0.0.1. Killed on drop.
pub struct MotoServer {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    pub port: u16,
    /// Its stdout and stderr.
    pub log: PathBuf,
    /// From spawn until it answered `GET /moto-api/`.
    pub started_in: Duration,
    child: ManagedChild,
}

impl MotoServer {
    /// Starts it and waits until it answers (retrying on another port if the one
    /// picked was taken meanwhile).
    pub async fn start(tools: &Tools) -> anyhow::Result<MotoServer> {
        Self::start_on_port(tools, 0).await
    }

    /// On `port` (0: a free one, retried if taken meanwhile).
    pub async fn start_on_port(tools: &Tools, port: u16) -> anyhow::Result<MotoServer> {
        let python = tools.venv_python();
        if !python.exists() {
            anyhow::bail!(
                "moto is not installed: {} is missing (Tools::ensure installs it)",
                python.display()
            );
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .context("building the readiness-probe HTTP client")?;
        if port != 0 {
            return Self::start_on(tools, &http, port)
                .await
                .map_err(|f| f.error.context(format!("starting moto on port {port}")));
        }
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            match Self::start_on(tools, &http, port).await {
                Ok(started) => return Ok(started),
                Err(StartFailure {
                    port_taken: true, ..
                }) if attempt < START_ATTEMPTS => attempt += 1,
                Err(failure) => return Err(failure.error),
            }
        }
    }

    pub(super) async fn start_on(
        tools: &Tools,
        http: &reqwest::Client,
        port: u16,
    ) -> Result<MotoServer, StartFailure> {
        let logs = tools.logs_dir();
        let mut cmd = Command::new(tools.venv_python());
        cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .env("PYTHONUNBUFFERED", "1")
            .current_dir(&logs);
        let log = logs.join(format!("moto-{port}.log"));
        let mut child = ManagedChild::spawn("moto", cmd, &log).map_err(|error| StartFailure {
            port_taken: false,
            error,
        })?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let probe = format!("{endpoint}/moto-api/");
        let started_in = child
            .wait_until_ready(START_TIMEOUT, || async {
                http.get(&probe)
                    .send()
                    .await
                    .is_ok_and(|response| response.status().is_success())
            })
            .await?;
        tracing::info!(%endpoint, pid = child.pid(), ms = started_in.as_millis() as u64, "moto ready");
        Ok(MotoServer {
            endpoint,
            port,
            log: child.log().to_path_buf(),
            started_in,
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Kills and reaps it now (dropping does the same).
    pub fn stop(mut self) {
        self.child.stop();
    }
}
