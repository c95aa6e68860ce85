//! The dependencies every operation needs, built once per cold start.

use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::queue::SqsSyncQueue;
use crate::store::DynamoDbStore;
use crate::vault::SecretsManagerVault;

pub struct App {
    pub config: Config,
    pub store: DynamoDbStore,
    pub vault: SecretsManagerVault,
    /// For vendor APIs and token endpoints: no redirects, explicit timeouts.
    pub http: reqwest::Client,
    /// The sync fan-out queue, where SYNC_QUEUE_URL is configured.
    pub queue: Option<SqsSyncQueue>,
}

impl App {
    /// Config from the environment; AWS clients from the default chain (locally,
    /// `AWS_ENDPOINT_URL` points them at DynamoDB Local and moto).
    pub async fn from_env() -> Result<App> {
        let config = Config::from_env()?;
        let sdk = sdk_config_loader().load().await;
        App::new(config, &sdk)
    }

    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<App> {
        Ok(App::from_clients(
            config,
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_secretsmanager::Client::new(sdk),
        )?
        .with_queue(aws_sdk_sqs::Client::new(sdk)))
    }

    /// Attaches the sync queue named by SYNC_QUEUE_URL (nothing if it is not set).
    pub fn with_queue(mut self, sqs: aws_sdk_sqs::Client) -> App {
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
        dynamodb: aws_sdk_dynamodb::Client,
        secrets: aws_sdk_secretsmanager::Client,
    ) -> Result<App> {
        Ok(App {
            store: DynamoDbStore::new(dynamodb, &config.table_name),
            vault: SecretsManagerVault::new(secrets, &config.secret_prefix),
            http: http_client()?,
            queue: None,
            config,
        })
    }
}

/// The AWS SDK's configuration loader with the one HTTP client every AWS call uses:
/// hyper 1 + rustls 0.23 on ring (the same TLS stack as reqwest), trusting the system's
/// CA certificates, which it reads on the first connection rather than at start-up.
pub fn sdk_config_loader() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http)
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
