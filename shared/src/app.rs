//! The dependencies every operation needs, built once per cold start.

use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::DynamoDbStore;
use crate::vault::SecretsManagerVault;

pub struct App {
    pub config: Config,
    pub store: DynamoDbStore,
    pub vault: SecretsManagerVault,
    /// For vendor APIs and token endpoints: no redirects, explicit timeouts.
    pub http: reqwest::Client,
}

impl App {
    /// Config from the environment; AWS clients from the default chain (locally,
    /// `AWS_ENDPOINT_URL` points them at DynamoDB Local and moto).
    pub async fn from_env() -> Result<App> {
        let config = Config::from_env()?;
        let sdk = aws_config::load_from_env().await;
        App::new(config, &sdk)
    }

    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<App> {
        App::from_clients(
            config,
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_secretsmanager::Client::new(sdk),
        )
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
            config,
        })
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
