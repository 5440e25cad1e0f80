//! Background jobs of `serve`. Each runs on an interval until shutdown is signalled,
//! and stops only between two units of work, so a claim is never left half done.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Tells jobs to stop.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    pub fn is_signalled(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps for `d`, or less if shutdown is signalled.
    pub async fn sleep(&mut self, d: Duration) {
        let _ = tokio::time::timeout(d, self.0.wait_for(|stop| *stop)).await;
    }
}

/// Runs `tick` every `every` until shutdown; errors are logged, never fatal.
pub fn every<F, Fut>(
    name: &'static str,
    every: Duration,
    mut shutdown: Shutdown,
    mut tick: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    tokio::spawn(async move {
        tracing::info!(
            job = name,
            every_ms = every.as_millis() as u64,
            "job started"
        );
        while !shutdown.is_signalled() {
            if let Err(e) = tick().await {
                tracing::warn!(job = name, error = format!("{e:#}"), "job run failed");
            }
            shutdown.sleep(every).await;
        }
        tracing::info!(job = name, "job stopped");
    })
}
