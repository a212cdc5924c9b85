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
pub mod jobs;
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
