//! PersistentVolumeClaim judgements.

use k8s_openapi::api::core::v1::{Event, PersistentVolumeClaim};

use super::events::{describe, latest_warning_about};
use super::{Progress, name_of};

/// Is the claim Bound? `Lost` (its volume disappeared) fails. While Pending, the reason is only
/// in events (e.g. ProvisioningFailed for a StorageClass that does not exist), so the latest
/// Warning about the claim in `events` goes into the message; with WaitForFirstConsumer binding a
/// claim stays Pending until a Pod using it is scheduled, which is normal.
pub fn pvc_bound(pvc: &PersistentVolumeClaim, events: &[Event]) -> Progress {
    let name = name_of(&pvc.metadata);
    let phase = pvc
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    match phase {
        "Bound" => Progress::Done,
        "Lost" => Progress::Failed(format!(
            "pvc {name} is Lost: its PersistentVolume no longer exists"
        )),
        _ => {
            let class = pvc
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.as_deref())
                .map(|c| format!("storageClassName {c:?}"))
                .unwrap_or_else(|| "the default StorageClass".to_string());
            let why = latest_warning_about(
                events,
                "PersistentVolumeClaim",
                name,
                pvc.metadata.uid.as_deref(),
            )
            .map(|e| format!("; last warning {}", describe(e)))
            .unwrap_or_default();
            Progress::Waiting(format!("pvc {name} is {phase} ({class}){why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{from_value, load, load_list, value};

    #[test]
    fn bound_claim_is_done() {
        let pvc: PersistentVolumeClaim = load("pvc-bound.json");
        assert_eq!(pvc_bound(&pvc, &[]), Progress::Done);
    }

    #[test]
    fn pending_claim_names_its_storage_class() {
        let pvc: PersistentVolumeClaim = load("pvc-pending.json");
        let events: Vec<Event> = load_list("events-failedscheduling.json");
        // The events are about a Pod, not this claim: nothing to attach.
        assert_eq!(
            pvc_bound(&pvc, &events),
            Progress::Waiting(
                "pvc pending is Pending (storageClassName \"does-not-exist\")".into()
            )
        );
    }

    #[test]
    fn pending_claim_carries_its_latest_warning() {
        // Derived: the sample FailedScheduling event re-pointed at the pending claim, with the
        // ProvisioningFailed reason and message the README records for it.
        let mut list = value("events-failedscheduling.json");
        let e = &mut list["items"][0];
        e["involvedObject"] = serde_json::json!({"kind": "PersistentVolumeClaim", "name": "pending", "namespace": "samples"});
        e["reason"] = "ProvisioningFailed".into();
        e["message"] = "storageclass.storage.k8s.io \"does-not-exist\" not found".into();
        let events: Vec<Event> = vec![from_value(e.clone())];
        let pvc: PersistentVolumeClaim = load("pvc-pending.json");
        let p = pvc_bound(&pvc, &events);
        assert!(p.reason().ends_with("last warning ProvisioningFailed: storageclass.storage.k8s.io \"does-not-exist\" not found"), "{p}");
    }

    #[test]
    fn lost_claim_fails() {
        let mut v = value("pvc-bound.json");
        v["status"]["phase"] = "Lost".into();
        assert!(pvc_bound(&from_value(v), &[]).is_failed());
    }
}
