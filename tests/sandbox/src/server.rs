//! The HTTP server lifecycle every sandbox shares: bind 127.0.0.1, serve with graceful
//! shutdown in a tokio task, stop on `shutdown()` or on drop.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server running in a tokio task. Dropping it stops the server.
pub(crate) struct Server {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds 127.0.0.1:port (0 = a free port), then serves the router that `build` makes
    /// from the base URL (e.g. `http://127.0.0.1:4321`) until dropped / shut down. `build`
    /// runs before serving, so generating data there keeps the first request as fast as
    /// the rest; what it returns besides the router is handed back.
    pub(crate) async fn start<T>(
        name: &'static str,
        port: u16,
        build: impl FnOnce(String) -> (Router, T),
    ) -> anyhow::Result<(Server, T)> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .map_err(|e| anyhow::anyhow!("binding 127.0.0.1:{port}: {e}"))?;
        let addr = listener.local_addr()?;
        let (router, built) = build(format!("http://{addr}"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "{name} sandbox server stopped");
            }
        });
        let server = Server {
            shutdown: Some(tx),
            task: Some(task),
        };
        Ok((server, built))
    }

    /// Stops accepting connections and waits (up to 5 s) for in-flight requests.
    pub(crate) async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Stops serving (as [`shutdown`](Self::shutdown)), leaving the port free.
    pub(crate) async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Dropping must not leave a server running behind the caller's back.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
