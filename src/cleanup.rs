//! Taking a run's namespaces out of the cluster whatever happens: on success, on failure (unless
//! kept for inspection), on panic, and on Ctrl-C/SIGTERM. A second Ctrl-C aborts the cleanup and
//! says what was left.

use crate::apply;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DELETE_DEADLINE: Duration = Duration::from_secs(180);

/// The namespaces this run created and has not deleted yet.
#[derive(Clone)]
pub struct Cleanup {
    client: kube::Client,
    run_id: String,
    open: Arc<Mutex<Vec<String>>>,
}

impl Cleanup {
    pub fn new(client: kube::Client, run_id: &str) -> Cleanup {
        Cleanup { client, run_id: run_id.to_string(), open: Arc::default() }
    }

    pub fn track(&self, ns: &str) {
        self.open.lock().expect("cleanup lock").push(ns.to_string());
    }

    pub fn left(&self) -> Vec<String> {
        self.open.lock().expect("cleanup lock").clone()
    }

    /// Delete one namespace of the run and wait for it to be gone.
    pub async fn delete(&self, ns: &str) -> anyhow::Result<()> {
        apply::delete_namespace(&self.client, ns, Some(&self.run_id), DELETE_DEADLINE).await?;
        self.open.lock().expect("cleanup lock").retain(|n| n != ns);
        Ok(())
    }

    /// Keep a namespace (for `--keep-on-failure`): no longer ours to delete in this run.
    pub fn keep(&self, ns: &str) {
        eprintln!("kept namespace {ns} for inspection; remove it with `seaworthy down --runs`");
        self.open.lock().expect("cleanup lock").retain(|n| n != ns);
    }

    /// Delete everything still open, concurrently.
    pub async fn all(&self) {
        let open = self.left();
        let results = futures::future::join_all(open.iter().map(|ns| self.delete(ns))).await;
        for (ns, r) in open.iter().zip(results) {
            if let Err(e) = r {
                eprintln!("cleanup: {ns}: {e:#}");
            }
        }
    }

    /// On the first Ctrl-C or SIGTERM, clean up and exit 130; on a second, exit at once and
    /// name what is left.
    pub fn on_signals(&self) -> tokio::task::JoinHandle<()> {
        let cleanup = self.clone();
        tokio::spawn(async move {
            wait_signal().await;
            eprintln!("interrupted: deleting this run's namespaces (Ctrl-C again to abort the cleanup)");
            tokio::select! {
                _ = cleanup.all() => std::process::exit(130),
                _ = wait_signal() => {
                    eprintln!("cleanup aborted; left behind: {}. Remove them with `seaworthy down --runs`.", cleanup.left().join(", "));
                    std::process::exit(130);
                }
            }
        })
    }

    /// A guard whose drop, during a panic, deletes what is still open (on a runtime of its own,
    /// since the panicking one cannot be awaited).
    pub fn panic_guard(&self) -> PanicGuard {
        PanicGuard(self.clone())
    }
}

pub struct PanicGuard(Cleanup);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if !std::thread::panicking() || self.0.left().is_empty() {
            return;
        }
        let cleanup = self.0.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(cleanup.all());
            }
        })
        .join();
    }
}

async fn wait_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
