//! The SSH sessions' own runtime: their drawing (the UI's event loop and
//! frames) and their commands' work run on a small tokio runtime with its own
//! OS thread, started with the SSH server and stopped with it, so that no SSH
//! user can keep the runtime that serves HTTP (and `/v1/auth`) busy. The
//! sessions reach the service over HTTP like any client.

use std::time::Duration;

use tokio::runtime::{Handle, Runtime};

/// Worker threads of the sessions' runtime: one, so that the HTTP runtime
/// keeps the other cores whatever the SSH users draw.
const WORKERS: usize = 1;

/// How long the sessions' tasks get to end when the SSH server stops.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// The runtime; dropping it without [`stop`](Self::stop) ends its tasks
/// without waiting.
pub struct SessionRuntime {
    runtime: Option<Runtime>,
}

impl SessionRuntime {
    pub fn start() -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .max_blocking_threads(4)
            .thread_name("keydeck-ssh")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the SSH sessions' runtime: {e}"))?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Where sessions are spawned.
    pub fn handle(&self) -> Handle {
        self.runtime
            .as_ref()
            .expect("the runtime until stopped")
            .handle()
            .clone()
    }

    /// Ends the runtime: its tasks get [`STOP_GRACE`] to finish.
    pub async fn stop(mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Waiting blocks a thread: not one of the caller runtime's workers.
            let _ = tokio::task::spawn_blocking(move || runtime.shutdown_timeout(STOP_GRACE)).await;
        }
    }
}

impl Drop for SessionRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_run_on_their_own_thread_and_stop_with_the_server() {
        let runtime = SessionRuntime::start().unwrap();
        let handle = runtime.handle();
        let thread = handle
            .spawn(async { std::thread::current().name().map(str::to_owned) })
            .await
            .unwrap();
        assert_eq!(thread.as_deref(), Some("keydeck-ssh"));
        let panicked = handle.spawn(async { panic!("one session only") }).await;
        assert!(panicked.unwrap_err().is_panic());
        let forever = handle.spawn(std::future::pending::<()>());
        runtime.stop().await;
        assert!(forever.await.unwrap_err().is_cancelled());
        assert!(
            handle.spawn(async {}).await.is_err(),
            "nothing runs after stop"
        );
    }
}
