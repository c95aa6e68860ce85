//! The AWS SDK's configuration and clients, built on first use rather than at cold start.
//!
//! Building an SDK client validates its HTTP client, which builds a TLS configuration and
//! reads and parses every system CA certificate (`rustls-native-certs`); the default
//! credentials chain builds an STS client for web identity too. Done at start-up, that was
//! most of a handler's init time (`cargo xtask bench-init`). Here the configuration is
//! loaded, and each client built, by the first call that needs it; a request that needs no
//! AWS call (the page, its files, the sign-in config, a refused input) never pays for it.

use std::sync::Arc;

use aws_config::SdkConfig;
use tokio::sync::OnceCell;

/// The AWS SDK's configuration loader with the one HTTP client every AWS call uses:
/// hyper 1 + rustls 0.23 on ring (the same TLS stack as reqwest), trusting the system's
/// CA certificates.
pub fn sdk_config_loader() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http)
}

/// The DynamoDB client: the SDK's standard retries (exponential backoff with jitter;
/// `ProvisionedThroughputExceededException`, `ThrottlingException` and
/// `RequestLimitExceeded` are throttling errors) with more attempts than the default
/// three, since a sync writes in bursts (several batches at once).
pub fn dynamodb_client(sdk: &SdkConfig) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(8))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The SDK configuration from the environment (the default chains), loaded once, when
/// the first client is built.
#[derive(Default)]
pub struct LazySdkConfig {
    cell: OnceCell<SdkConfig>,
}

impl LazySdkConfig {
    pub fn new() -> Arc<LazySdkConfig> {
        Arc::new(LazySdkConfig::default())
    }

    pub async fn get(&self) -> &SdkConfig {
        // Boxed: the loader's future is large, and every store call awaits this one.
        self.cell
            .get_or_init(|| Box::pin(sdk_config_loader().load()))
            .await
    }
}

/// An SDK client: given (tests and the local runner point each at its emulator), or built
/// from the shared [`LazySdkConfig`] by the first call that needs it. Clones share it.
pub struct LazyClient<C>(Arc<Source<C>>);

impl<C> Clone for LazyClient<C> {
    fn clone(&self) -> Self {
        LazyClient(self.0.clone())
    }
}

enum Source<C> {
    Ready(C),
    OnFirstUse {
        sdk: Arc<LazySdkConfig>,
        make: fn(&SdkConfig) -> C,
        cell: OnceCell<C>,
    },
}

impl<C> LazyClient<C> {
    /// Built by `make` (e.g. `aws_sdk_dynamodb::Client::new`) on first use.
    pub fn on_first_use(sdk: Arc<LazySdkConfig>, make: fn(&SdkConfig) -> C) -> LazyClient<C> {
        LazyClient(Arc::new(Source::OnFirstUse {
            sdk,
            make,
            cell: OnceCell::new(),
        }))
    }

    pub async fn get(&self) -> &C {
        match self.0.as_ref() {
            Source::Ready(client) => client,
            Source::OnFirstUse { sdk, make, cell } => {
                if let Some(client) = cell.get() {
                    return client;
                }
                // Boxed, so the future of every call that awaits a client stays small.
                let build: std::pin::Pin<Box<dyn std::future::Future<Output = C> + Send + '_>> =
                    Box::pin(async { make(sdk.get().await) });
                cell.get_or_init(|| build).await
            }
        }
    }

    /// Whether the client exists yet (for tests of the laziness itself).
    pub fn is_built(&self) -> bool {
        match self.0.as_ref() {
            Source::Ready(_) => true,
            Source::OnFirstUse { cell, .. } => cell.initialized(),
        }
    }
}

impl<C> From<C> for LazyClient<C> {
    fn from(client: C) -> Self {
        LazyClient(Arc::new(Source::Ready(client)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_is_built_by_its_first_use_and_shared_by_its_clones() {
        let sdk = LazySdkConfig::new();
        let client = LazyClient::on_first_use(sdk.clone(), aws_sdk_dynamodb::Client::new);
        let clone = client.clone();
        assert!(!client.is_built(), "nothing is built at start-up");
        assert!(sdk.cell.get().is_none(), "no SDK configuration loaded yet");
        let _ = client.get().await;
        assert!(clone.is_built(), "the clone shares the built client");
        assert!(sdk.cell.get().is_some());
        let ready: LazyClient<u8> = 7.into();
        assert!(ready.is_built());
        assert_eq!(*ready.get().await, 7);
    }
}
