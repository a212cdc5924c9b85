//! Taking a run's namespaces out of the cluster, and its cordons off the nodes, whatever
//! happens: on success, on failure (unless kept for inspection), on panic, and on
//! Ctrl-C/SIGTERM. A second Ctrl-C aborts the cleanup and says what was left.
//!
//! Cordons are here, not only in the check that makes them, because the Ctrl-C path ends the
//! process with `exit`, which runs no destructor: a check's own guard would leave the nodes
//! cordoned, and every later Pod of the cluster Pending.

use crate::apply::{self, CORDONED_BY};
use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DELETE_DEADLINE: Duration = Duration::from_secs(180);

/// The namespaces this run created and has not deleted yet, and the nodes it cordoned.
#[derive(Clone)]
pub struct Cleanup {
    client: kube::Client,
    run_id: String,
    open: Arc<Mutex<Vec<String>>>,
    /// Kept namespaces (`--keep-on-failure`), by stack: they hold the stack's NodePorts.
    kept: Arc<Mutex<Vec<(String, String)>>>,
    cordoned: Arc<Mutex<Vec<String>>>,
    /// Set once the final cleanup has started: what it has not seen must not be created.
    closing: Arc<AtomicBool>,
}

/// The merge patch that cordons a node for `run_id`, or undoes that. A null removes the field
/// whoever set it (`kubectl cordon` owns spec.unschedulable under its own manager).
pub fn cordon_patch(run_id: &str, cordon: bool) -> serde_json::Value {
    if cordon {
        serde_json::json!({"metadata": {"annotations": {CORDONED_BY: run_id}}, "spec": {"unschedulable": true}})
    } else {
        serde_json::json!({"metadata": {"annotations": {CORDONED_BY: null}}, "spec": {"unschedulable": null}})
    }
}

/// Whether this run may uncordon the node: only if the node says this run cordoned it. One the
/// user (or another run) cordoned has no such annotation, or another run's.
pub fn cordoned_by(node: &Node, run_id: &str) -> bool {
    node.metadata.annotations.as_ref().and_then(|a| a.get(CORDONED_BY)).is_some_and(|r| r == run_id)
}

fn unschedulable(node: &Node) -> bool {
    node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false)
}

impl Cleanup {
    pub fn new(client: kube::Client, run_id: &str) -> Cleanup {
        Cleanup {
            client,
            run_id: run_id.to_string(),
            open: Arc::default(),
            kept: Arc::default(),
            cordoned: Arc::default(),
            closing: Arc::default(),
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Note a namespace about to be created; refused once the final cleanup has begun, since that
    /// cleanup would not see it.
    pub fn track(&self, ns: &str) -> Result<()> {
        let mut open = self.open.lock().expect("cleanup lock");
        if self.closing() {
            bail!("the run is being cleaned up (interrupted): {ns} is not created");
        }
        open.push(ns.to_string());
        Ok(())
    }

    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// A namespace of `stack` kept by `--keep-on-failure`, if any.
    pub fn kept_of(&self, stack: &str) -> Option<String> {
        self.kept.lock().expect("cleanup lock").iter().find(|(s, _)| s == stack).map(|(_, ns)| ns.clone())
    }

    /// Cordon a node for this run: annotated with the run id, so that this run, or `down --runs`
    /// after it died, can undo it. A node that is already unschedulable is someone else's
    /// business: left alone, and `Ok(false)`.
    pub async fn cordon(&self, node: &str) -> Result<bool> {
        if self.closing() {
            bail!("the run is being cleaned up (interrupted): {node} is not cordoned");
        }
        let api = Api::<Node>::all(self.client.clone());
        if unschedulable(&api.get(node).await.with_context(|| format!("reading node {node}"))?) {
            return Ok(false);
        }
        // Recorded first: a Ctrl-C between the patch and the record would leave it cordoned.
        {
            let mut cordoned = self.cordoned.lock().expect("cleanup lock");
            if self.closing() {
                bail!("the run is being cleaned up (interrupted): {node} is not cordoned");
            }
            cordoned.push(node.to_string());
        }
        api.patch(node, &PatchParams::default(), &Patch::Merge(&cordon_patch(&self.run_id, true))).await.with_context(|| format!("cordoning node {node}"))?;
        Ok(true)
    }

    /// Undo this run's cordon of a node; a node that does not carry this run's annotation (the
    /// user cordoned it, or uncordoned it and someone cordoned it again) is left as it is.
    pub async fn uncordon(&self, node: &str) -> Result<bool> {
        let api = Api::<Node>::all(self.client.clone());
        let live = api.get(node).await.with_context(|| format!("reading node {node}"))?;
        let ours = cordoned_by(&live, &self.run_id);
        if ours {
            api.patch(node, &PatchParams::default(), &Patch::Merge(&cordon_patch(&self.run_id, false)))
                .await
                .with_context(|| format!("uncordoning node {node} (run `kubectl uncordon {node}`)"))?;
        }
        self.cordoned.lock().expect("cleanup lock").retain(|n| n != node);
        Ok(ours)
    }

    pub fn cordoned(&self) -> Vec<String> {
        self.cordoned.lock().expect("cleanup lock").clone()
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

    /// Keep a namespace of `stack` (for `--keep-on-failure`): no longer ours to delete in this run.
    pub fn keep(&self, stack: &str, ns: &str) {
        eprintln!("kept namespace {ns} for inspection; remove it with `seaworthy down --runs`");
        self.open.lock().expect("cleanup lock").retain(|n| n != ns);
        self.kept.lock().expect("cleanup lock").push((stack.to_string(), ns.to_string()));
    }

    /// The run's end (or its interruption): uncordon this run's nodes, then delete every
    /// namespace still open, concurrently. Nothing new is tracked or cordoned once this has begun.
    pub async fn all(&self) {
        {
            // Under both locks, so that a track or cordon is either in the snapshots below or refused.
            let _open = self.open.lock().expect("cleanup lock");
            let _cordoned = self.cordoned.lock().expect("cleanup lock");
            self.closing.store(true, Ordering::SeqCst);
        }
        self.sweep().await;
    }

    /// Undo what is open now, leaving the run able to go on (a test binary goes on to its next
    /// case after one panicked).
    pub async fn sweep(&self) {
        for node in self.cordoned() {
            match self.uncordon(&node).await {
                Ok(true) => eprintln!("cleanup: uncordoned node {node}"),
                Ok(false) => eprintln!("cleanup: node {node} no longer carries this run's cordon; left as it is"),
                Err(e) => eprintln!("cleanup: {e:#}"),
            }
        }
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
            eprintln!("interrupted: uncordoning this run's nodes and deleting its namespaces (Ctrl-C again to abort the cleanup)");
            tokio::select! {
                _ = cleanup.all() => std::process::exit(130),
                _ = wait_signal() => {
                    let mut left = cleanup.left();
                    left.extend(cleanup.cordoned().into_iter().map(|n| format!("node {n} cordoned")));
                    eprintln!("cleanup aborted; left behind: {}. Remove them with `seaworthy down --runs`.", left.join(", "));
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
        if !std::thread::panicking() || (self.0.left().is_empty() && self.0.cordoned().is_empty()) {
            return;
        }
        let cleanup = self.0.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                rt.block_on(cleanup.sweep());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn node(annotation: Option<&str>, unschedulable: bool) -> Node {
        let mut v = serde_json::json!({"metadata": {"name": "kind-worker"}, "spec": {"unschedulable": unschedulable}});
        if let Some(run) = annotation {
            v["metadata"]["annotations"] = serde_json::json!({CORDONED_BY: run});
        }
        serde_json::from_value(v).unwrap()
    }

    /// A client that is never used to connect: these paths decide without the API.
    fn offline() -> Cleanup {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        Cleanup::new(kube::Client::try_from(config).unwrap(), "run1")
    }

    #[tokio::test]
    async fn a_kept_namespace_is_no_longer_deleted_and_blocks_its_stack() {
        let c = offline();
        c.track("sw-wordpress-pdb-drain-run1").unwrap();
        c.track("sw-counter-persistence-run1").unwrap();
        c.keep("wordpress", "sw-wordpress-pdb-drain-run1");
        assert_eq!(c.left(), vec!["sw-counter-persistence-run1".to_string()]);
        assert_eq!(c.kept_of("wordpress").as_deref(), Some("sw-wordpress-pdb-drain-run1"));
        assert_eq!(c.kept_of("counter"), None);
    }

    #[tokio::test]
    async fn nothing_is_created_once_the_final_cleanup_has_begun() {
        let c = offline();
        // Nothing open, nothing cordoned: the cleanup itself needs no API call.
        c.all().await;
        assert!(c.track("sw-counter-persistence-run1").is_err());
        assert!(c.left().is_empty());
        let refused = c.cordon("kind-worker").await.unwrap_err();
        assert!(refused.to_string().contains("not cordoned"), "{refused}");
        assert!(c.cordoned().is_empty());
    }

    #[test]
    fn only_this_runs_cordon_is_undone() {
        assert!(cordoned_by(&node(Some("run1"), true), "run1"));
        // Cordoned by the user, or by another run: not ours to undo.
        assert!(!cordoned_by(&node(None, true), "run1"));
        assert!(!cordoned_by(&node(Some("run2"), true), "run1"));
    }

    #[test]
    fn the_cordon_names_the_run_and_its_undo_removes_both() {
        let on = cordon_patch("run1", true);
        assert_eq!(on["spec"]["unschedulable"], true);
        assert_eq!(on["metadata"]["annotations"][CORDONED_BY], "run1");
        // `down --runs` recognises it as this run's.
        assert_eq!(apply::node_cleanup(&node(Some("run1"), true)), apply::NodeCleanup::Uncordon { run: "run1".into() });
        let off = cordon_patch("run1", false);
        assert!(off["spec"]["unschedulable"].is_null() && off["metadata"]["annotations"][CORDONED_BY].is_null());
    }
}
