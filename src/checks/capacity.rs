//! Room on the cluster for a check before its namespace is applied. Stacks run in parallel
//! (`--jobs`), and on a small cluster two of them can ask the scheduler for more than the nodes
//! have: on the one-node v1.24 lab cluster (2 CPUs), phpdemo's `rollout undo` and wordpress's
//! rolling update ran at the same moment and each got a surge Pod the scheduler refused
//! ("0/1 nodes are available: 1 Insufficient cpu"), failing two checks for a reason that was
//! not theirs. So each check variant reserves its stack's peak requests (every workload at its
//! most replicas, plus the surge of a rolling update) out of what the schedulable nodes have
//! left once the Pods that are not seaworthy's are placed, and waits until that much is free.
//! A stack that needs more than the whole cluster runs alone.

use crate::stack::{Resource, Stack};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use tokio::sync::{OnceCell, Semaphore, SemaphorePermit};

/// CPU in millicores and memory in MiB: the units the scheduler's "Insufficient" is about.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_m: u64,
    pub mem_mib: u64,
}

impl Resources {
    pub fn add(self, o: Resources) -> Resources {
        Resources { cpu_m: self.cpu_m + o.cpu_m, mem_mib: self.mem_mib + o.mem_mib }
    }

    fn times(self, n: u64) -> Resources {
        Resources { cpu_m: self.cpu_m * n, mem_mib: self.mem_mib * n }
    }

    fn max(self, o: Resources) -> Resources {
        Resources { cpu_m: self.cpu_m.max(o.cpu_m), mem_mib: self.mem_mib.max(o.mem_mib) }
    }

    /// Does this fit into `room`, in CPU and in memory?
    pub fn within(self, room: Resources) -> bool {
        self.cpu_m <= room.cpu_m && self.mem_mib <= room.mem_mib
    }

    pub fn describe(&self) -> String {
        format!("{:.2} CPU, {} MiB", self.cpu_m as f64 / 1000.0, self.mem_mib)
    }

    fn of(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let get = |k: &str| list.and_then(|l| l.get(k)).map(|q| q.0.as_str());
        Resources { cpu_m: get("cpu").and_then(cpu_millis).unwrap_or(0), mem_mib: get("memory").and_then(mebibytes).unwrap_or(0) }
    }
}

/// A quantity (`100m`, `1k`, `64Mi`, `129e6`, `1500u`) as a plain number: every suffix the
/// API's canonical form uses, since the API rewrites what a manifest says (`cpu: "1000"` is read
/// back as `1k`).
pub fn quantity(q: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 16] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("", 1.0),
    ];
    let q = q.trim();
    SUFFIXES.iter().find_map(|(suffix, factor)| {
        let num = q.strip_suffix(suffix)?;
        // `1e3` is an exponent, not exa; `1E` is exa (a number never ends in `e`/`E`).
        num.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).map(|v| v * factor)
    })
}

/// CPU as millicores, rounded up.
pub fn cpu_millis(q: &str) -> Option<u64> {
    quantity(q).map(|v| (v * 1000.0 - 1e-9).ceil().max(0.0) as u64)
}

/// Memory as MiB, rounded up.
pub fn mebibytes(q: &str) -> Option<u64> {
    quantity(q).map(|v| (v / 1048576.0 - 1e-9).ceil().max(0.0) as u64)
}

/// What one Pod asks of a node: the containers' requests added up, or the largest init
/// container's if that is more (each init container runs alone before them).
pub fn pod_requests(spec: &PodSpec) -> Resources {
    let req = |c: &k8s_openapi::api::core::v1::Container| Resources::of(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let containers = spec.containers.iter().map(req).fold(Resources::default(), Resources::add);
    spec.init_containers.iter().flatten().map(req).fold(containers, Resources::max)
}

/// The most Pods a Deployment has during a rolling update beyond its replicas: maxSurge (25 %
/// by default, rounded up, as the Deployment controller does).
fn surge(d: &Deployment, replicas: u64) -> u64 {
    let strategy = d.spec.as_ref().and_then(|s| s.strategy.as_ref());
    if strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        return 0;
    }
    match strategy.and_then(|s| s.rolling_update.as_ref()).and_then(|r| r.max_surge.as_ref()) {
        Some(IntOrString::Int(n)) => (*n).max(0) as u64,
        Some(IntOrString::String(p)) => p.trim_end_matches('%').parse::<f64>().map(|p| (replicas as f64 * p / 100.0).ceil() as u64).unwrap_or(1),
        None => (replicas as f64 * 0.25).ceil() as u64,
    }
}

/// A stack's peak requests: every Deployment and StatefulSet at its most replicas (an HPA's
/// maxReplicas where one targets it), a Deployment's rolling-update surge on top.
pub fn stack_peak(stack: &Stack) -> Resources {
    let hpa_max = |kind: &str, name: &str| {
        stack.objects.iter().find_map(|o| match &o.resource {
            Resource::HorizontalPodAutoscaler(h) => {
                let spec = h.spec.as_ref()?;
                (spec.scale_target_ref.kind == kind && spec.scale_target_ref.name == name).then_some(spec.max_replicas.max(0) as u64)
            }
            _ => None,
        })
    };
    let mut total = Resources::default();
    for o in &stack.objects {
        let name = o.resource.name();
        let (replicas, template, extra) = match &o.resource {
            Resource::Deployment(d) => {
                let spec = d.spec.as_ref();
                let replicas = spec.and_then(|s| s.replicas).unwrap_or(1).max(0) as u64;
                let replicas = replicas.max(hpa_max("Deployment", name).unwrap_or(0));
                (replicas, spec.and_then(|s| s.template.spec.as_ref()), surge(d, replicas))
            }
            Resource::StatefulSet(s) => {
                let spec = s.spec.as_ref();
                let replicas = spec.and_then(|s| s.replicas).unwrap_or(1).max(0) as u64;
                (replicas.max(hpa_max("StatefulSet", name).unwrap_or(0)), spec.and_then(|s| s.template.spec.as_ref()), 0)
            }
            _ => continue,
        };
        if let Some(pod) = template {
            total = total.add(pod_requests(pod).times(replicas + extra));
        }
    }
    total
}

/// What the schedulable nodes have left: their allocatable, less the requests of the Pods on
/// them (system Pods, someone else's; measured before this run has applied anything, so a
/// seaworthy namespace there is a leftover that really holds its room).
pub fn free_for_checks(nodes: &[Node], pods: &[Pod]) -> Resources {
    let schedulable: Vec<&Node> = nodes
        .iter()
        .filter(|n| !n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false))
        .filter(|n| !n.spec.as_ref().and_then(|s| s.taints.as_ref()).is_some_and(|t| t.iter().any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")))
        .collect();
    let allocatable = schedulable.iter().map(|n| Resources::of(n.status.as_ref().and_then(|s| s.allocatable.as_ref()))).fold(Resources::default(), Resources::add);
    let on_them = |p: &&Pod| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| schedulable.iter().any(|s| s.metadata.name.as_deref() == Some(n)));
    let running = |p: &&Pod| !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
    let used = pods.iter().filter(on_them).filter(running).filter_map(|p| p.spec.as_ref()).map(pod_requests).fold(Resources::default(), Resources::add);
    Resources { cpu_m: allocatable.cpu_m.saturating_sub(used.cpu_m), mem_mib: allocatable.mem_mib.saturating_sub(used.mem_mib) }
}

struct Room {
    free: Resources,
    cpu: Semaphore,
    mem: Semaphore,
}

static ROOM: OnceCell<Room> = OnceCell::const_new();

/// Held while a check variant's namespace exists.
pub struct Reserved {
    _cpu: Option<SemaphorePermit<'static>>,
    _mem: Option<SemaphorePermit<'static>>,
}

/// Wait until the cluster has room for `need` (at most all of it), telling `waiting` once if it
/// has to. The room is measured once per process, at the first reservation, before any check
/// has applied anything. Without the API's answer, no reservation is made (the scheduler will
/// still say what it thinks).
pub async fn reserve(client: &kube::Client, need: Resources, waiting: impl FnOnce(&str)) -> Reserved {
    let room = ROOM
        .get_or_try_init(|| async {
            let nodes = kube::Api::<Node>::all(client.clone()).list(&Default::default()).await?.items;
            let pods = kube::Api::<Pod>::all(client.clone()).list(&Default::default()).await?.items;
            let free = free_for_checks(&nodes, &pods);
            tracing::info!(free = free.describe(), "room on the cluster for the checks");
            anyhow::Ok(Room { free, cpu: Semaphore::new(free.cpu_m as usize), mem: Semaphore::new(free.mem_mib as usize) })
        })
        .await;
    let Ok(room) = room else {
        return Reserved { _cpu: None, _mem: None };
    };
    let cpu = need.cpu_m.min(room.free.cpu_m) as u32;
    let mem = need.mem_mib.min(room.free.mem_mib) as u32;
    if room.cpu.available_permits() < cpu as usize || room.mem.available_permits() < mem as usize {
        waiting(&format!(
            "waiting for room on the cluster: this stack may ask for {} at its peak, {} of {} is free now",
            need.describe(),
            Resources { cpu_m: room.cpu.available_permits() as u64, mem_mib: room.mem.available_permits() as u64 }.describe(),
            room.free.describe()
        ));
    }
    // Always CPU first, then memory: two waiters can never hold one each.
    let c = room.cpu.acquire_many(cpu).await.ok();
    let m = room.mem.acquire_many(mem).await.ok();
    Reserved { _cpu: c, _mem: m }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_read_as_the_scheduler_reads_them() {
        assert_eq!(cpu_millis("100m"), Some(100));
        assert_eq!(cpu_millis("1"), Some(1000));
        assert_eq!(cpu_millis("0.25"), Some(250));
        assert_eq!(cpu_millis("1500u"), Some(2));
        // What the API gives back for a manifest's `cpu: "1000"` (the insufficient-resources
        // variant): read as 0 before, which made a 1000-CPU Pod look like it would fit.
        assert_eq!(cpu_millis("1k"), Some(1_000_000));
        assert_eq!(cpu_millis("2e3"), Some(2_000_000));
        assert_eq!(cpu_millis("250000n"), Some(1));
        assert_eq!(cpu_millis("lots"), None);
        assert_eq!(mebibytes("1E"), Some(953_674_316_407));
        assert_eq!(mebibytes("64Mi"), Some(64));
        assert_eq!(mebibytes("1Gi"), Some(1024));
        assert_eq!(mebibytes("128974848"), Some(123));
        assert_eq!(mebibytes("129e6"), Some(124));
        assert_eq!(mebibytes("100M"), Some(96));
        assert_eq!(cpu_millis("lots"), None);
    }

    /// The two stacks whose surge Pods the lab node refused at the same moment: together, at
    /// their peaks, they ask for more CPU than its 2 cores.
    #[test]
    fn peaks_count_replicas_surge_and_hpa_max() {
        let phpdemo = stack_peak(&Stack::find("phpdemo").unwrap());
        // 2 replicas + maxSurge 1, each php-fpm 50m + nginx 50m (the init container's 10m is less).
        assert_eq!(phpdemo.cpu_m, 300);
        let wordpress = Stack::find("wordpress").unwrap();
        let peak = stack_peak(&wordpress);
        let pod = pod_requests(wordpress.pod_spec("wordpress").unwrap());
        assert_eq!(pod.cpu_m, 300, "nginx 100m + php-fpm 200m");
        // The HPA's maxReplicas (6), not the 3 replicas, plus maxSurge 1, plus MariaDB.
        let mysql = pod_requests(wordpress.pod_spec("wordpress-mysql").unwrap());
        assert_eq!(peak.cpu_m, 7 * 300 + mysql.cpu_m);
        assert!(peak.cpu_m + phpdemo.cpu_m > 2000);
    }

    #[test]
    fn room_is_what_schedulable_nodes_have_left_after_their_pods() {
        let node = |name: &str, cpu: &str, unschedulable: bool| -> Node {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name},
                "spec": {"unschedulable": unschedulable},
                "status": {"allocatable": {"cpu": cpu, "memory": "4Gi"}}
            }))
            .unwrap()
        };
        let pod = |ns: &str, node: &str, cpu: &str, phase: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "namespace": ns},
                "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "100Mi"}}}]},
                "status": {"phase": phase}
            }))
            .unwrap()
        };
        let nodes = [node("a", "2", false), node("b", "4", true)];
        let pods = [
            pod("kube-system", "a", "250m", "Running"),
            pod("sw-phpdemo-x-1", "a", "500m", "Running"),
            pod("kube-system", "b", "1", "Running"),
            pod("default", "a", "1", "Succeeded"),
        ];
        assert_eq!(free_for_checks(&nodes, &pods), Resources { cpu_m: 1250, mem_mib: 4096 - 200 });
    }
}
