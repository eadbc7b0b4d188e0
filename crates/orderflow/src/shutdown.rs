//! How a process stops: on SIGTERM or Ctrl-C (or when a test says so) it stops taking work,
//! lets what is in flight finish within a grace period, then ends.

use std::time::Duration;
use tokio::sync::watch;

/// Whether shutdown was requested. Cheap to clone.
#[derive(Clone)]
pub struct Shutdown {
    requested: watch::Receiver<bool>,
}

/// Requests shutdown when `request` is called or when it is dropped.
pub struct ShutdownTrigger(watch::Sender<bool>);

impl ShutdownTrigger {
    pub fn request(&self) {
        let _ = self.0.send(true);
    }
}

impl Drop for ShutdownTrigger {
    fn drop(&mut self) {
        self.request();
    }
}

impl Shutdown {
    /// Shutdown on request, e.g. when a test ends.
    pub fn on_request() -> (Self, ShutdownTrigger) {
        let (tell, requested) = watch::channel(false);
        (Self { requested }, ShutdownTrigger(tell))
    }

    /// Shutdown on SIGTERM or Ctrl-C, listened for from now on.
    pub fn on_signals() -> Self {
        let (shutdown, trigger) = Self::on_request();
        tokio::spawn(async move {
            signal().await;
            trigger.request();
            // Keep the sender: a dropped one would read as "never requested".
            std::future::pending::<()>().await;
        });
        shutdown
    }

    /// Resolves once shutdown is requested.
    pub async fn requested(&self) {
        let _ = self.requested.clone().wait_for(|requested| *requested).await;
    }

    /// A `'static` future resolving once shutdown is requested (for `with_graceful_shutdown`).
    pub fn when_requested(&self) -> impl Future<Output = ()> + Send + 'static {
        let shutdown = self.clone();
        async move { shutdown.requested().await }
    }

    /// Resolves `grace` after shutdown was requested: work still in flight then is abandoned.
    pub async fn deadline(&self, grace: Duration) {
        self.requested().await;
        tokio::time::sleep(grace).await;
    }
}

/// Ends the process when the shutdown grace period is over with work still in flight: a step
/// that was cut off is retried by another worker once its timeout passes (every step is
/// idempotent), and an HTTP request cut off gets a broken connection, which the client retries.
pub fn exit_after_grace(grace: Duration) -> ! {
    tracing::warn!(
        "shutdown grace period of {} ms is over; exiting with work in flight (other workers \
         retry it)",
        grace.as_millis()
    );
    std::process::exit(0)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight work");
}
