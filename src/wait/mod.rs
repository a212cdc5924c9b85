//! Waiting on a cluster: pure judgements over API objects, and thin watch-driven waits on top.
//!
//! Every decision a wait makes lives in one of the judgement modules as a plain function over
//! k8s-openapi objects, so it can be unit-tested on objects captured from a real cluster
//! (`tests-data/`, see its README). The async waits in [`watch`] only feed those functions the
//! latest objects a watch has seen, and turn their verdict into a result or a timeout message.

pub mod endpoints;
pub mod events;
pub mod eviction;
pub mod hpa;
pub mod nodes;
pub mod pods;
pub mod pvc;
pub mod rollout;
pub mod watch;

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The verdict of a judgement on the latest state seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The condition holds.
    Done,
    /// Not yet; the string says what is still missing, for the timeout message.
    Waiting(String),
    /// It will not hold without someone changing something: stop waiting now.
    Failed(String),
}

impl Progress {
    pub fn is_done(&self) -> bool {
        matches!(self, Progress::Done)
    }

    pub fn is_waiting(&self) -> bool {
        matches!(self, Progress::Waiting(_))
    }

    pub fn is_failed(&self) -> bool {
        matches!(self, Progress::Failed(_))
    }

    /// The human reason ("" for `Done`).
    pub fn reason(&self) -> &str {
        match self {
            Progress::Done => "",
            Progress::Waiting(r) | Progress::Failed(r) => r,
        }
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Done => f.write_str("done"),
            Progress::Waiting(r) => write!(f, "waiting: {r}"),
            Progress::Failed(r) => write!(f, "failed: {r}"),
        }
    }
}

pub(crate) fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("<unnamed>")
}

/// True when `meta` names `owner_uid` as its managing controller (the ownerReference with
/// `controller: true`), which is how ReplicaSets belong to a Deployment and Pods to a ReplicaSet
/// or StatefulSet; names can be reused, UIDs cannot.
pub(crate) fn controlled_by(meta: &ObjectMeta, owner_uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == owner_uid)
}

#[cfg(test)]
pub(crate) mod samples {
    //! Loading the captured API objects in `tests-data/`.
    use serde::de::DeserializeOwned;
    use std::path::PathBuf;

    fn path(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests-data")
            .join(name)
    }

    pub fn value(name: &str) -> serde_json::Value {
        let p = path(name);
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    pub fn from_value<T: DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v)
            .unwrap_or_else(|e| panic!("not a {}: {e}", std::any::type_name::<T>()))
    }

    pub fn load<T: DeserializeOwned>(name: &str) -> T {
        from_value(value(name))
    }

    /// The items of a `kind: List` file (`kubectl get ... -o json` of several objects).
    pub fn load_list<T: DeserializeOwned>(name: &str) -> Vec<T> {
        let v = value(name);
        let items = v["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no items"));
        items.iter().cloned().map(from_value).collect()
    }
}
