//! Everything that happens in a run's namespace while a check runs, as one timestamped log:
//! Pods (created, ready, not ready, terminating, deleted), EndpointSlice membership, HPA replica
//! changes, the namespace's Events, and the actions the check itself took. The traffic timeline is
//! joined with it on wall-clock time, so a failed request lands next to what caused it.

mod diff;
mod watch;

pub use diff::{event_line, hpa_changes, pod_changes, pod_deleted, slice_changes};
pub use watch::Observer;

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Pod,
    EndpointSlice,
    Hpa,
    /// A Kubernetes Event object (scheduler, kubelet, controllers).
    Event,
    /// Something the check did: a patch, an eviction (and its 429), a readiness flip.
    Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds since the Unix epoch when seaworthy saw it (the Events' own timestamps have
    /// only second precision and come from other clocks).
    pub at_ms: u64,
    pub source: Source,
    /// `Kind/name` of the object concerned.
    pub object: String,
    pub message: String,
}

/// The shared, append-only log of one check.
#[derive(Debug, Clone, Default)]
pub struct EventLog(Arc<Mutex<Vec<Entry>>>);

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl EventLog {
    pub fn push(&self, source: Source, object: impl Into<String>, message: impl Into<String>) {
        self.push_at(now_ms(), source, object, message);
    }

    pub fn push_at(&self, at_ms: u64, source: Source, object: impl Into<String>, message: impl Into<String>) {
        let entry = Entry { at_ms, source, object: object.into(), message: message.into() };
        tracing::debug!(object = entry.object, message = entry.message, "observed");
        self.0.lock().expect("event log lock").push(entry);
    }

    /// Every entry so far, in time order.
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = self.0.lock().expect("event log lock").clone();
        entries.sort_by_key(|e| e.at_ms);
        entries
    }

    /// Entries within `[from_ms - before, to_ms + after]`: what was happening around a failure.
    pub fn around(&self, from_ms: u64, to_ms: u64, before_ms: u64, after_ms: u64) -> Vec<Entry> {
        self.entries()
            .into_iter()
            .filter(|e| e.at_ms + before_ms >= from_ms && e.at_ms <= to_ms + after_ms)
            .collect()
    }
}
