//! EndpointSlice judgements: how many endpoints of a Service take traffic, and where one Pod
//! stands.
//!
//! discovery.k8s.io/v1 conditions, as kube-proxy reads them:
//! - `ready`: takes new connections. nil means ready. Forced to false for a terminating Pod
//!   (unless the Service publishes not-ready addresses).
//! - `serving`: the Pod's Ready condition regardless of termination (beta and on by default from
//!   1.22, GA in 1.26). nil defers to `ready` — which also covers slices written before the field
//!   existed, where a not-ready endpoint had ready=false and nothing else.
//! - `terminating`: the Pod is being deleted. nil means not terminating.
//!
//! A Pod in its preStop hook therefore shows ready=false, serving=true, terminating=true, and
//! ready=false, serving=false, terminating=true once its container has exited (both captured on
//! 1.24 in tests-data).

use std::collections::BTreeMap;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

use super::Progress;

/// The label tying an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One endpoint's conditions with the nil defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointState {
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

pub fn endpoint_state(ep: &Endpoint) -> EndpointState {
    let c = ep.conditions.clone().unwrap_or_default();
    let ready = c.ready.unwrap_or(true);
    EndpointState {
        ready,
        serving: c.serving.unwrap_or(ready),
        terminating: c.terminating.unwrap_or(false),
    }
}

/// Is this slice one of the Service's?
pub fn belongs_to(slice: &EndpointSlice, service: &str) -> bool {
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SERVICE_NAME_LABEL))
        .map(String::as_str)
        == Some(service)
}

/// The Service's endpoints across all its slices, once each: while the controller moves an
/// endpoint between slices it can briefly appear in two, so they are keyed by the Pod's UID (or
/// the first address when there is no targetRef). The later slice in the input wins.
pub fn service_endpoints<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    service: &str,
) -> Vec<&'a Endpoint> {
    let mut by_key: BTreeMap<String, &Endpoint> = BTreeMap::new();
    for slice in slices.into_iter().filter(|s| belongs_to(s, service)) {
        for ep in &slice.endpoints {
            let key = ep
                .target_ref
                .as_ref()
                .and_then(|r| r.uid.clone())
                .or_else(|| ep.addresses.first().cloned())
                .unwrap_or_default();
            by_key.insert(key, ep);
        }
    }
    by_key.into_values().collect()
}

/// Endpoint counts for a Service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointCounts {
    pub total: usize,
    /// Taking new connections.
    pub ready: usize,
    /// Terminating but still serving (in preStop): kube-proxy falls back to these only when a
    /// Service has no ready endpoint at all.
    pub terminating_serving: usize,
    /// Neither ready nor serving.
    pub not_serving: usize,
}

pub fn count_endpoints<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    service: &str,
) -> EndpointCounts {
    let mut n = EndpointCounts::default();
    for ep in service_endpoints(slices, service) {
        let s = endpoint_state(ep);
        n.total += 1;
        if s.ready {
            n.ready += 1;
        } else if s.serving && s.terminating {
            n.terminating_serving += 1;
        } else if !s.serving {
            n.not_serving += 1;
        }
    }
    n
}

/// Does the Service have exactly `want` ready endpoints? Exactly, so that a wait after a scale-down
/// or a Pod going unready does not pass on a stale larger count.
pub fn ready_endpoints<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    service: &str,
    want: usize,
) -> Progress {
    let n = count_endpoints(slices, service);
    if n.ready == want {
        return Progress::Done;
    }
    Progress::Waiting(format!(
        "service {service}: {} ready endpoints, want {want} ({} total, {} terminating but serving, {} not serving)",
        n.ready, n.total, n.terminating_serving, n.not_serving
    ))
}

/// Where one Pod stands in the Service's EndpointSlices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodEndpoint {
    /// Takes new connections.
    Ready,
    /// Listed but not taking new connections.
    NotReady { serving: bool, terminating: bool },
    /// Not in any of the Service's slices (not selected, no IP yet, or already removed).
    Absent,
}

/// Find a Pod's endpoint by targetRef: by UID when given (a replacement Pod may reuse the name),
/// else by name.
pub fn pod_endpoint<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    service: &str,
    pod_name: &str,
    pod_uid: Option<&str>,
) -> PodEndpoint {
    let found = service_endpoints(slices, service).into_iter().find(|ep| {
        let Some(r) = ep.target_ref.as_ref() else {
            return false;
        };
        if r.kind.as_deref().is_some_and(|k| k != "Pod") {
            return false;
        }
        match pod_uid {
            Some(uid) => r.uid.as_deref() == Some(uid),
            None => r.name.as_deref() == Some(pod_name),
        }
    });
    match found.map(endpoint_state) {
        None => PodEndpoint::Absent,
        Some(s) if s.ready => PodEndpoint::Ready,
        Some(s) => PodEndpoint::NotReady {
            serving: s.serving,
            terminating: s.terminating,
        },
    }
}

/// Is the Pod listed as not ready (but still listed)? The judgement behind "take a Pod out of
/// rotation and see traffic avoid it".
pub fn pod_endpoint_not_ready<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    service: &str,
    pod_name: &str,
    pod_uid: Option<&str>,
) -> Progress {
    match pod_endpoint(slices, service, pod_name, pod_uid) {
        PodEndpoint::NotReady { .. } => Progress::Done,
        PodEndpoint::Ready => Progress::Waiting(format!(
            "pod {pod_name} is still a ready endpoint of service {service}"
        )),
        PodEndpoint::Absent => Progress::Waiting(format!(
            "pod {pod_name} is not an endpoint of service {service}"
        )),
    }
}

/// Is the Pod a ready endpoint of the Service?
pub fn pod_endpoint_ready<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    service: &str,
    pod_name: &str,
    pod_uid: Option<&str>,
) -> Progress {
    match pod_endpoint(slices, service, pod_name, pod_uid) {
        PodEndpoint::Ready => Progress::Done,
        PodEndpoint::NotReady {
            serving,
            terminating,
        } => Progress::Waiting(format!(
            "pod {pod_name} is a not-ready endpoint of service {service} (serving={serving}, terminating={terminating})"
        )),
        PodEndpoint::Absent => Progress::Waiting(format!(
            "pod {pod_name} is not an endpoint of service {service}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{from_value, load, value};

    const ZXBCC: &str = "web-57d8bfc944-zxbcc";
    const T4S7F: &str = "web-57d8bfc944-t4s7f";
    const T4S7F_UID: &str = "941749f2-5832-4707-b244-5361bfb47e53";

    fn slice(name: &str) -> EndpointSlice {
        load(name)
    }

    #[test]
    fn all_ready() {
        let s = [slice("endpointslice-all-ready.json")];
        assert_eq!(
            count_endpoints(&s, "web"),
            EndpointCounts {
                total: 3,
                ready: 3,
                terminating_serving: 0,
                not_serving: 0
            }
        );
        assert_eq!(ready_endpoints(&s, "web", 3), Progress::Done);
        assert!(ready_endpoints(&s, "web", 2).is_waiting());
        assert_eq!(pod_endpoint(&s, "web", ZXBCC, None), PodEndpoint::Ready);
        // Another Service's name selects nothing.
        assert_eq!(count_endpoints(&s, "db").total, 0);
    }

    #[test]
    fn one_not_ready_after_the_readiness_probe_fails() {
        let s = [slice("endpointslice-one-not-ready.json")];
        assert_eq!(
            count_endpoints(&s, "web"),
            EndpointCounts {
                total: 3,
                ready: 2,
                terminating_serving: 0,
                not_serving: 1
            }
        );
        assert_eq!(
            pod_endpoint(&s, "web", ZXBCC, None),
            PodEndpoint::NotReady {
                serving: false,
                terminating: false
            }
        );
        assert_eq!(
            pod_endpoint_not_ready(
                &s,
                "web",
                ZXBCC,
                Some("f4570df3-51f9-4778-9c06-82bb19215e16")
            ),
            Progress::Done
        );
        assert!(
            ready_endpoints(&s, "web", 3)
                .reason()
                .contains("2 ready endpoints, want 3")
        );
    }

    #[test]
    fn terminating_in_prestop_is_serving_but_not_ready() {
        let s = [slice("endpointslice-terminating.json")];
        assert_eq!(
            count_endpoints(&s, "web"),
            EndpointCounts {
                total: 3,
                ready: 2,
                terminating_serving: 1,
                not_serving: 0
            }
        );
        assert_eq!(
            pod_endpoint(&s, "web", T4S7F, Some(T4S7F_UID)),
            PodEndpoint::NotReady {
                serving: true,
                terminating: true
            }
        );
        assert!(
            pod_endpoint_ready(&s, "web", T4S7F, None)
                .reason()
                .contains("serving=true, terminating=true")
        );
    }

    #[test]
    fn terminating_after_exit_is_neither() {
        let s = [slice("endpointslice-terminating-not-serving.json")];
        assert_eq!(
            count_endpoints(&s, "web"),
            EndpointCounts {
                total: 4,
                ready: 3,
                terminating_serving: 0,
                not_serving: 1
            }
        );
        assert_eq!(
            pod_endpoint(&s, "web", T4S7F, None),
            PodEndpoint::NotReady {
                serving: false,
                terminating: true
            }
        );
        assert_eq!(
            pod_endpoint(&s, "web", "web-57d8bfc944-h8qjv", None),
            PodEndpoint::Ready
        );
        // A Pod that was never selected.
        assert_eq!(
            pod_endpoint(&s, "web", "crashloop", None),
            PodEndpoint::Absent
        );
        // By UID: a replacement under the old name would not match the old UID.
        assert_eq!(
            pod_endpoint(&s, "web", T4S7F, Some("not-this-uid")),
            PodEndpoint::Absent
        );
    }

    #[test]
    fn an_endpoint_in_two_slices_counts_once() {
        // Derived: the all-ready slice and a second slice of the same Service holding one of its
        // endpoints (as during the controller's repacking), now not ready; the later one wins.
        let a = slice("endpointslice-all-ready.json");
        let b = slice("endpointslice-one-not-ready.json");
        assert_eq!(count_endpoints([&a, &b], "web").total, 3);
        assert_eq!(count_endpoints([&a, &b], "web").ready, 2);
        assert_eq!(count_endpoints([&b, &a], "web").ready, 3);
    }

    #[test]
    fn docs_example_with_only_ready_set_is_ready_and_serving() {
        // Kubernetes docs (EndpointSlices, discovery.k8s.io/v1): serving and terminating unset.
        let s = [slice("docs-endpointslice-example.json")];
        let ep = &s[0].endpoints[0];
        assert_eq!(
            endpoint_state(ep),
            EndpointState {
                ready: true,
                serving: true,
                terminating: false
            }
        );
        assert_eq!(ready_endpoints(&s, "example", 1), Progress::Done);
        // No targetRef: counted by address, never matched to a Pod.
        assert_eq!(
            pod_endpoint(&s, "example", "pod-1", None),
            PodEndpoint::Absent
        );
    }

    #[test]
    fn nil_conditions_mean_ready() {
        // discovery.k8s.io/v1: nil ready = ready, nil serving defers to ready, nil terminating =
        // not terminating. Derived from the docs example with its conditions removed.
        let mut v = value("docs-endpointslice-example.json");
        v["endpoints"][0]["conditions"] = serde_json::json!({});
        let s: EndpointSlice = from_value(v.clone());
        assert_eq!(
            endpoint_state(&s.endpoints[0]),
            EndpointState {
                ready: true,
                serving: true,
                terminating: false
            }
        );
        // ready=false alone (a pre-1.20 slice, no serving field) is not serving either.
        v["endpoints"][0]["conditions"] = serde_json::json!({"ready": false});
        let s: EndpointSlice = from_value(v);
        assert_eq!(
            endpoint_state(&s.endpoints[0]),
            EndpointState {
                ready: false,
                serving: false,
                terminating: false
            }
        );
    }
}
