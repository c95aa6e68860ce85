//! The dependencies every operation needs, built once per cold start.

use std::time::Duration;

use crate::aws::{LazyClient, LazySdkConfig};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::queue::SqsSyncQueue;
use crate::store::DynamoDbStore;
use crate::vault::SecretsManagerVault;

pub struct Deps {
    pub config: Config,
    pub store: DynamoDbStore,
    pub vault: SecretsManagerVault,
    /// For vendor APIs and token endpoints (`App::http`), built on first use.
    http: std::sync::OnceLock<reqwest::Client>,
    /// The sync fan-out queue, where SYNC_QUEUE_URL is configured.
    pub queue: Option<SqsSyncQueue>,
}

impl Deps {
    /// Config from the environment; the AWS SDK's configuration and clients from the
    /// default chains, built by the first call that needs each (`aws`), so a cold start
    /// reads no credentials and no CA certificates.
    pub async fn from_env() -> Result<Deps> {
        let config = Config::from_env()?;
        let sdk = LazySdkConfig::new();
        let mut deps = Deps::from_clients(
            config,
            LazyClient::on_first_use(sdk.clone(), crate::aws::dynamodb_client),
            LazyClient::on_first_use(sdk.clone(), aws_sdk_secretsmanager::Client::new),
        )?;
        deps.queue = deps.config.sync_queue_url.as_ref().map(|url| {
            SqsSyncQueue::new(LazyClient::on_first_use(sdk, aws_sdk_sqs::Client::new), url)
        });
        Ok(deps)
    }

    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<Deps> {
        Ok(Deps::from_clients(
            config,
            crate::aws::dynamodb_client(sdk),
            aws_sdk_secretsmanager::Client::new(sdk),
        )?
        .with_queue(aws_sdk_sqs::Client::new(sdk)))
    }

    /// Attaches the sync queue named by SYNC_QUEUE_URL (nothing if it is not set).
    pub fn with_queue(mut self, sqs: aws_sdk_sqs::Client) -> Deps {
        self.queue = self
            .config
            .sync_queue_url
            .as_ref()
            .map(|url| SqsSyncQueue::new(sqs, url));
        self
    }

    /// The sync queue; a configuration error where SYNC_QUEUE_URL is not set.
    pub fn sync_queue(&self) -> Result<&SqsSyncQueue> {
        self.queue
            .as_ref()
            .ok_or_else(|| Error::Config("environment variable SYNC_QUEUE_URL is required".into()))
    }

    /// With clients built elsewhere (the local runner points each at its emulator).
    pub fn from_clients(
        config: Config,
        dynamodb: impl Into<LazyClient<aws_sdk_dynamodb::Client>>,
        secrets: impl Into<LazyClient<aws_sdk_secretsmanager::Client>>,
    ) -> Result<Deps> {
        Ok(Deps {
            store: DynamoDbStore::new(dynamodb, &config.table_name),
            vault: SecretsManagerVault::new(secrets, &config.secret_prefix),
            http: std::sync::OnceLock::new(),
            queue: None,
            config,
        })
    }
}

impl Deps {
    /// The client for vendor APIs and token endpoints (no redirects, explicit timeouts),
    /// built by the first call that needs it: its TLS configuration is work a cold start
    /// that talks to no vendor should not do.
    pub fn http(&self) -> Result<&reqwest::Client> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = http_client()?;
        Ok(self.http.get_or_init(|| client))
    }
}

pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("seatscope/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal("building the HTTP client", e))
}
