//! The one handle every sandbox is driven through: start it, read its ground truth and
//! counters, arm faults, shut it down.
//!
//! [`SandboxHandle<S>`] holds the running server and the vendor's shared state `S` (which
//! owns the fault switch its routes consult). What every vendor has in common lives here
//! once; what only one vendor has (PagerDuty's token overrides, PandaDoc's stats,
//! SendGrid's key revocation, ...) is an `impl SandboxHandle<ThatVendorsState>` block in
//! the vendor's module. [`crate::PagerDutySandbox`], [`crate::PandaDocSandbox`] and
//! [`crate::SendGridSandbox`] name the three handles.

use std::sync::Arc;

use axum::Router;

use crate::faults::{Fault, FaultStats, FaultSwitch};
use crate::server::Server;

mod sealed {
    /// Only this crate's vendors are sandboxes.
    pub trait Sealed {}
}

pub(crate) use sealed::Sealed;

/// One vendor's sandbox: what [`SandboxHandle`] needs from the vendor's shared state.
/// Implemented by [`crate::PagerDutyState`], [`crate::PandaDocState`] and
/// [`crate::SendGridState`] (sealed).
pub trait Vendor: Sealed + Send + Sync + Sized + 'static {
    /// How the account is generated and which credentials it accepts.
    type Config;
    /// What a correct client must compute from the vendor's API.
    type GroundTruth: Clone;
    /// The vendor's name in logs and in the `sandbox` binary's listening line.
    const NAME: &'static str;

    /// Refuses configurations that would not fit in memory or in the calendar, before
    /// generating.
    #[doc(hidden)]
    fn check(config: &Self::Config) -> anyhow::Result<()>;
    /// Generates the account; `base_url` is where the sandbox is served.
    #[doc(hidden)]
    fn new(config: Self::Config, base_url: String) -> Self;
    /// Every route the sandbox serves, faults included.
    #[doc(hidden)]
    fn router(state: Arc<Self>) -> Router;
    #[doc(hidden)]
    fn faults(&self) -> &FaultSwitch;
    #[doc(hidden)]
    fn ground_truth(&self) -> &Self::GroundTruth;
    /// Vendor API requests received, whatever their outcome.
    #[doc(hidden)]
    fn api_requests(&self) -> u64;
    /// Vendor API requests answered 429.
    #[doc(hidden)]
    fn rate_limited(&self) -> u64;
}

/// A running sandbox of vendor `S`. Dropping it stops the server.
pub struct SandboxHandle<S> {
    state: Arc<S>,
    base_url: String,
    server: Server,
}

impl<S: Vendor> SandboxHandle<S> {
    /// Binds 127.0.0.1:port (0 = a free port), generates the account, then serves in a
    /// tokio task until dropped / shut down.
    pub async fn start(config: S::Config, port: u16) -> anyhow::Result<SandboxHandle<S>> {
        S::check(&config)?;
        let (server, (state, base_url)) = Server::start(S::NAME, port, |base_url| {
            let state = Arc::new(S::new(config, base_url.clone()));
            (S::router(state.clone()), (state, base_url))
        })
        .await?;
        Ok(SandboxHandle {
            state,
            base_url,
            server,
        })
    }

    /// The base of every route, e.g. `http://127.0.0.1:4321` (each vendor's module says
    /// which vendor hosts it stands for).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// What a correct client must compute from the sandbox's API.
    pub fn ground_truth(&self) -> S::GroundTruth {
        self.state.ground_truth().clone()
    }

    /// Number of vendor API requests received, whatever their outcome (401, 404 and 429
    /// included); OAuth and `/_sandbox` routes are not API requests.
    pub fn api_requests(&self) -> u64 {
        self.state.api_requests()
    }

    /// API requests answered 429, by the rate limit or a fault.
    pub fn rate_limited(&self) -> u64 {
        self.state.rate_limited()
    }

    /// Arms `fault` on the vendor API routes (replacing any armed one), like
    /// `POST /_sandbox/faults`.
    pub fn set_fault(&self, fault: Fault) -> anyhow::Result<()> {
        self.state.faults().arm(fault).map_err(anyhow::Error::msg)
    }

    /// Disarms the fault switch, like `DELETE /_sandbox/faults`.
    pub fn clear_faults(&self) {
        self.state.faults().clear();
    }

    /// The armed fault and what faults injected so far, like `GET /_sandbox/faults`.
    pub fn fault_stats(&self) -> FaultStats {
        self.state.faults().stats()
    }

    /// Replaces this sandbox by a new one of `config` on the same port: the same vendor
    /// URL now serves another account (a Reconnect landing on another vendor account).
    pub async fn restart_as(&mut self, config: S::Config) -> anyhow::Result<()> {
        let port = url::Url::parse(&self.base_url)?
            .port()
            .ok_or_else(|| anyhow::anyhow!("{} has no port", self.base_url))?;
        self.server.stop().await;
        *self = SandboxHandle::start(config, port).await?;
        Ok(())
    }

    /// Stops accepting connections and waits (up to 5 s) for in-flight requests.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl<S> SandboxHandle<S> {
    /// The vendor's shared state, for the vendor-specific methods.
    pub(crate) fn state(&self) -> &S {
        &self.state
    }
}
