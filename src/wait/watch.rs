//! Watch-driven waits: watches feed a [`Snapshot`] of the latest objects, a judgement from the
//! sibling modules decides after every change, and a deadline bounds the whole thing.
//!
//! `kube::runtime::wait::await_condition` is not used because it watches one object and, on a
//! timeout, forgets what it saw; these waits need several kinds at once (a rollout is judged on
//! the Deployment, its ReplicaSets, their Pods and the Pods' events) and must say, when the
//! deadline passes, what the last state was.
//!
//! A judgement only runs once every watch has delivered its initial list (`InitDone`): before
//! that, an empty cache would read as "pod gone" or "0 endpoints".

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolumeClaim, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::endpoints::{self, SERVICE_NAME_LABEL};
use super::hpa::{self, ReplicaTarget};
use super::{Progress, controlled_by, jobs, name_of, nodes, pods, pvc, rollout};
use crate::checks::capacity::{Resources, pod_requests};

/// Why a wait ended without its condition holding.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// A judgement said it will not happen (fail fast).
    #[error("{what}: {reason}")]
    Failed { what: String, reason: String },
    /// The deadline passed; `last` is the last state the judgement saw.
    #[error("{what}: not done after {}s; last state: {last}", after.as_secs())]
    Timeout {
        what: String,
        after: Duration,
        last: String,
    },
}

/// The latest objects of one kind, as a watch has delivered them (keyed by name: every wait here
/// is within one namespace, or over cluster-scoped Nodes).
pub struct Cache<K> {
    items: BTreeMap<String, K>,
    relisting: Option<BTreeMap<String, K>>,
    synced: bool,
    watched: bool,
}

impl<K> Default for Cache<K> {
    fn default() -> Self {
        Cache {
            items: BTreeMap::new(),
            relisting: None,
            synced: false,
            watched: false,
        }
    }
}

impl<K: Resource + Clone> Cache<K> {
    /// Apply one watcher event. A (re)list replaces the contents atomically at `InitDone`, so
    /// objects deleted while the watch was down disappear.
    pub fn apply(&mut self, event: watcher::Event<K>) {
        match event {
            watcher::Event::Init => self.relisting = Some(BTreeMap::new()),
            watcher::Event::InitApply(o) => {
                self.relisting.get_or_insert_default().insert(key(&o), o);
            }
            watcher::Event::InitDone => {
                if let Some(items) = self.relisting.take() {
                    self.items = items;
                }
                self.synced = true;
            }
            watcher::Event::Apply(o) => {
                self.items.insert(key(&o), o);
            }
            watcher::Event::Delete(o) => {
                self.items.remove(&key(&o));
            }
        }
    }

    /// Has the initial list arrived (or is this kind not watched at all)?
    pub fn synced(&self) -> bool {
        !self.watched || self.synced
    }

    pub fn get(&self, name: &str) -> Option<&K> {
        self.items.get(name)
    }

    pub fn objects(&self) -> Vec<K> {
        self.items.values().cloned().collect()
    }
}

fn key<K: Resource>(o: &K) -> String {
    o.meta().name.clone().unwrap_or_default()
}

/// Everything the watches of one wait have seen.
#[derive(Default)]
pub struct Snapshot {
    pub deployments: Cache<Deployment>,
    pub stateful_sets: Cache<StatefulSet>,
    pub replica_sets: Cache<ReplicaSet>,
    pub pods: Cache<Pod>,
    pub endpoint_slices: Cache<EndpointSlice>,
    pub pvcs: Cache<PersistentVolumeClaim>,
    pub hpas: Cache<HorizontalPodAutoscaler>,
    pub nodes: Cache<Node>,
    pub events: Cache<Event>,
    pub jobs: Cache<Job>,
    pub apiservices: Cache<APIService>,
    /// Room that terminating Pods of the watched ones are giving back (see [`Freeing`]).
    pub freeing: Freeing,
}

/// How long after the last terminating Pod left a refusal for lack of room still counts as
/// "the scheduler has not tried again yet": it retries a Pod it turned away when an assigned
/// Pod is deleted, after at most its 10 s backoff.
pub const ROOM_SETTLE: Duration = Duration::from_secs(15);

/// Requests that terminating Pods still hold, and when such Pods were last seen. On a full node
/// the Pods a rolling update adds are refused ("Insufficient cpu") while the ones they replace
/// run their preStop hooks, and placed as soon as those are gone: a 1.24 Deployment does not wait
/// for its terminating Pods before it adds the next. On the one-node lab cluster wordpress's
/// rollout (preStop 20 s, four Pods terminating at once at most) was judged failed on that
/// refusal although it went on to complete. A refusal is only taken as final when no room is
/// coming that would fit the Pod, so a Pod that asks for more than any Pod gives back (the
/// insufficient-resources check's 1000 CPUs) still fails at once.
#[derive(Debug, Default, Clone, Copy)]
pub struct Freeing {
    pub requests: Resources,
    pub seen: Option<Instant>,
}

impl Freeing {
    /// Note the terminating Pods among `pods` (the room they hold is remembered while they
    /// are there, and for [`ROOM_SETTLE`] after the last is gone).
    pub fn note<'a>(&mut self, pods: impl IntoIterator<Item = &'a Pod>, now: Instant) {
        let held = pods
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
            .filter_map(|p| p.spec.as_ref())
            .map(pod_requests)
            .fold(Resources::default(), Resources::add);
        if held != Resources::default() {
            self.requests = held;
            self.seen = Some(now);
        }
    }

    /// Will the room being given back fit this refused Pod (so the refusal is not final yet)?
    pub fn would_fit(&self, pod: &Pod, diagnosis: &pods::Diagnosis, now: Instant) -> bool {
        diagnosis.reason == "Unschedulable"
            && diagnosis.message.contains("Insufficient ")
            && self.seen.is_some_and(|t| now.saturating_duration_since(t) < ROOM_SETTLE)
            && pod.spec.as_ref().is_some_and(|spec| pod_requests(spec).within(self.requests))
    }
}

impl Snapshot {
    fn synced(&self) -> bool {
        self.deployments.synced()
            && self.stateful_sets.synced()
            && self.replica_sets.synced()
            && self.pods.synced()
            && self.endpoint_slices.synced()
            && self.pvcs.synced()
            && self.hpas.synced()
            && self.nodes.synced()
            && self.events.synced()
            && self.jobs.synced()
            && self.apiservices.synced()
    }
}

/// One change from one of the watches.
type Update = Box<dyn FnOnce(&mut Snapshot) + Send>;

fn watch<K>(
    api: Api<K>,
    config: watcher::Config,
    cache: fn(&mut Snapshot) -> &mut Cache<K>,
) -> BoxStream<'static, Result<Update, String>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    watcher(api, config)
        .default_backoff()
        .map(move |r| match r {
            Ok(ev) => Ok(Box::new(move |s: &mut Snapshot| cache(s).apply(ev)) as Update),
            Err(e) => Err(e.to_string()),
        })
        .boxed()
}

/// A set of watches over one namespace, run until a judgement passes, fails or times out.
pub struct Waiter {
    client: Client,
    namespace: String,
    streams: Vec<BoxStream<'static, Result<Update, String>>>,
    snapshot: Snapshot,
}

macro_rules! namespaced_watch {
    ($fn:ident, $k:ty, $field:ident) => {
        pub fn $fn(mut self, config: watcher::Config) -> Self {
            let api: Api<$k> = Api::namespaced(self.client.clone(), &self.namespace);
            self.snapshot.$field.watched = true;
            self.streams.push(watch(api, config, |s| &mut s.$field));
            self
        }
    };
}

impl Waiter {
    pub fn new(client: &Client, namespace: &str) -> Self {
        Waiter {
            client: client.clone(),
            namespace: namespace.to_string(),
            streams: Vec::new(),
            snapshot: Snapshot::default(),
        }
    }

    namespaced_watch!(deployments, Deployment, deployments);
    namespaced_watch!(stateful_sets, StatefulSet, stateful_sets);
    namespaced_watch!(replica_sets, ReplicaSet, replica_sets);
    namespaced_watch!(pods, Pod, pods);
    namespaced_watch!(endpoint_slices, EndpointSlice, endpoint_slices);
    namespaced_watch!(pvcs, PersistentVolumeClaim, pvcs);
    namespaced_watch!(hpas, HorizontalPodAutoscaler, hpas);
    namespaced_watch!(events, Event, events);
    namespaced_watch!(jobs, Job, jobs);

    pub fn nodes(mut self, config: watcher::Config) -> Self {
        let api: Api<Node> = Api::all(self.client.clone());
        self.snapshot.nodes.watched = true;
        self.streams.push(watch(api, config, |s| &mut s.nodes));
        self
    }

    pub fn apiservices(mut self, config: watcher::Config) -> Self {
        let api: Api<APIService> = Api::all(self.client.clone());
        self.snapshot.apiservices.watched = true;
        self.streams.push(watch(api, config, |s| &mut s.apiservices));
        self
    }

    /// Run the watches until `judge` says done (the snapshot is returned) or failed, or until
    /// `timeout` passes (the error carries the last verdict and the last watch error, if any).
    pub async fn until(
        self,
        what: &str,
        timeout: Duration,
        mut judge: impl FnMut(&Snapshot) -> Progress,
    ) -> Result<Snapshot, WaitError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut snapshot = self.snapshot;
        let mut streams = self.streams;
        // Judgements that depend on time (a refusal for lack of room becomes final once
        // ROOM_SETTLE has passed without terminating Pods) are run again every second even
        // when no watch delivers anything.
        streams.push(
            futures::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Some((Ok(Box::new(|_: &mut Snapshot| {}) as Update), ()))
            })
            .boxed(),
        );
        let mut updates = futures::stream::select_all(streams);
        let mut last = "the watches have not delivered their initial lists".to_string();
        let mut last_error: Option<String> = None;
        let timed_out = |last: &str, err: &Option<String>| WaitError::Timeout {
            what: what.to_string(),
            after: timeout,
            last: match err {
                Some(e) => format!("{last} (last watch error: {e})"),
                None => last.to_string(),
            },
        };
        loop {
            let update = match tokio::time::timeout_at(deadline, updates.next()).await {
                Err(_) => return Err(timed_out(&last, &last_error)),
                // Watchers retry forever; an ended stream means there was nothing to watch.
                Ok(None) => {
                    tokio::time::sleep_until(deadline).await;
                    return Err(timed_out(&last, &last_error));
                }
                Ok(Some(u)) => u,
            };
            match update {
                Err(e) => last_error = Some(e),
                Ok(apply) => {
                    apply(&mut snapshot);
                    // Every update, so read in place: no copy of the namespace's Pods.
                    snapshot.freeing.note(snapshot.pods.items.values(), Instant::now());
                    if !snapshot.synced() {
                        continue;
                    }
                    match judge(&snapshot) {
                        Progress::Done => return Ok(snapshot),
                        Progress::Failed(reason) => {
                            return Err(WaitError::Failed {
                                what: what.to_string(),
                                reason,
                            });
                        }
                        Progress::Waiting(r) => last = r,
                    }
                }
            }
        }
    }
}

fn by_name(name: &str) -> watcher::Config {
    watcher::Config::default().fields(&format!("metadata.name={name}"))
}

fn events_about(kind: &str, name: &str) -> watcher::Config {
    watcher::Config::default().fields(&format!(
        "involvedObject.kind={kind},involvedObject.name={name}"
    ))
}

/// The first fail-fast diagnosis among these Pods (terminating ones are on their way out and
/// do not count, nor does a refusal for room that terminating Pods are giving back).
fn first_diagnosis(s: &Snapshot, pods: &[Pod]) -> Option<String> {
    let events = s.events.objects();
    let now = Instant::now();
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .find_map(|p| pods::diagnose(p, &events).filter(|d| !s.freeing.would_fit(p, d, now)))
        .map(|d| d.to_string())
}

/// The Deployment rollout judgement over a snapshot: fail fast on a diagnosed Pod of the new
/// ReplicaSet, else `kubectl rollout status`'s verdict, then the old ReplicaSets at zero.
pub fn judge_deployment(s: &Snapshot, name: &str) -> Progress {
    let Some(d) = s.deployments.get(name) else {
        return Progress::Waiting(format!("deployment {name} does not exist"));
    };
    let rss = s.replica_sets.objects();
    if let Some(new_uid) = rollout::new_replica_set(d, &rss).and_then(|rs| rs.metadata.uid.clone())
    {
        let new_pods: Vec<Pod> = s
            .pods
            .objects()
            .into_iter()
            .filter(|p| controlled_by(&p.metadata, &new_uid))
            .collect();
        if let Some(d) = first_diagnosis(s, &new_pods) {
            return Progress::Failed(d);
        }
    }
    match rollout::deployment_rollout(d) {
        Progress::Done => rollout::old_replica_sets_scaled_down(d, &rss),
        other => other,
    }
}

/// The StatefulSet rollout judgement over a snapshot: fail fast on a diagnosed Pod, else
/// `kubectl rollout status`'s verdict, with unbound PVCs added to the waiting message.
pub fn judge_statefulset(s: &Snapshot, name: &str) -> Progress {
    let Some(sts) = s.stateful_sets.get(name) else {
        return Progress::Waiting(format!("statefulset {name} does not exist"));
    };
    let events = s.events.objects();
    if let Some(uid) = sts.metadata.uid.as_deref() {
        let owned: Vec<Pod> = s
            .pods
            .objects()
            .into_iter()
            .filter(|p| controlled_by(&p.metadata, uid))
            .collect();
        if let Some(d) = first_diagnosis(s, &owned) {
            return Progress::Failed(d);
        }
    }
    match rollout::statefulset_rollout(sts) {
        Progress::Waiting(r) => {
            let unbound: Vec<String> = s
                .pvcs
                .objects()
                .iter()
                .map(|c| pvc::pvc_bound(c, &events))
                .filter(|p| !p.is_done())
                .map(|p| p.reason().to_string())
                .collect();
            if unbound.is_empty() {
                Progress::Waiting(r)
            } else {
                Progress::Waiting(format!("{r}; {}", unbound.join("; ")))
            }
        }
        other => other,
    }
}

/// Wait for a Deployment rollout to complete (see [`judge_deployment`]).
pub async fn deployment_rollout(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<Deployment, WaitError> {
    let s = Waiter::new(client, ns)
        .deployments(by_name(name))
        .replica_sets(watcher::Config::default())
        .pods(watcher::Config::default())
        .events(watcher::Config::default().fields("involvedObject.kind=Pod"))
        .until(&format!("deployment {ns}/{name} rollout"), timeout, |s| {
            judge_deployment(s, name)
        })
        .await?;
    Ok(s.deployments.get(name).cloned().expect("judged present"))
}

/// Wait for a StatefulSet rollout to complete (see [`judge_statefulset`]).
pub async fn statefulset_rollout(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<StatefulSet, WaitError> {
    let s = Waiter::new(client, ns)
        .stateful_sets(by_name(name))
        .pods(watcher::Config::default())
        .pvcs(watcher::Config::default())
        .events(watcher::Config::default())
        .until(&format!("statefulset {ns}/{name} rollout"), timeout, |s| {
            judge_statefulset(s, name)
        })
        .await?;
    Ok(s.stateful_sets.get(name).cloned().expect("judged present"))
}

/// Wait for one Pod to be ready, failing fast on a diagnosis.
pub async fn pod_ready(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<Pod, WaitError> {
    let s = Waiter::new(client, ns)
        .pods(by_name(name))
        .events(events_about("Pod", name))
        .until(&format!("pod {ns}/{name} ready"), timeout, |s| {
            let Some(pod) = s.pods.get(name) else {
                return Progress::Waiting(format!("pod {name} does not exist"));
            };
            match pods::diagnose(pod, &s.events.objects()) {
                Some(d) => Progress::Failed(d.to_string()),
                None => pods::pod_ready(pod),
            }
        })
        .await?;
    Ok(s.pods.get(name).cloned().expect("judged present"))
}

/// Wait until at least `want` Pods matching the label selector are ready, failing fast on a
/// diagnosis of any of them.
pub async fn pods_ready(
    client: &Client,
    ns: &str,
    selector: &str,
    want: usize,
    timeout: Duration,
) -> Result<Vec<Pod>, WaitError> {
    let s = Waiter::new(client, ns)
        .pods(watcher::Config::default().labels(selector))
        .events(watcher::Config::default().fields("involvedObject.kind=Pod"))
        .until(
            &format!("{want} pods {ns}/{selector} ready"),
            timeout,
            |s| {
                let all = s.pods.objects();
                if let Some(d) = first_diagnosis(s, &all) {
                    return Progress::Failed(d);
                }
                let verdicts: Vec<Progress> = all.iter().map(pods::pod_ready).collect();
                let ready = verdicts.iter().filter(|p| p.is_done()).count();
                if ready >= want {
                    return Progress::Done;
                }
                let waiting: Vec<&str> = verdicts
                    .iter()
                    .filter(|p| !p.is_done())
                    .map(Progress::reason)
                    .collect();
                Progress::Waiting(format!(
                    "{ready} of {want} pods ready; {}",
                    waiting.join("; ")
                ))
            },
        )
        .await?;
    Ok(s.pods
        .objects()
        .into_iter()
        .filter(|p| pods::pod_ready(p).is_done())
        .collect())
}

fn slices_of(service: &str) -> watcher::Config {
    watcher::Config::default().labels(&format!("{SERVICE_NAME_LABEL}={service}"))
}

/// Wait until the Service has exactly `want` ready endpoints.
pub async fn endpoints_ready(
    client: &Client,
    ns: &str,
    service: &str,
    want: usize,
    timeout: Duration,
) -> Result<(), WaitError> {
    Waiter::new(client, ns)
        .endpoint_slices(slices_of(service))
        .until(
            &format!("service {ns}/{service} with {want} ready endpoints"),
            timeout,
            |s| endpoints::ready_endpoints(&s.endpoint_slices.objects(), service, want),
        )
        .await
        .map(drop)
}

/// Wait until the Pod is listed as a not-ready endpoint of the Service.
pub async fn pod_endpoint_not_ready(
    client: &Client,
    ns: &str,
    service: &str,
    pod: &Pod,
    timeout: Duration,
) -> Result<(), WaitError> {
    let name = name_of(&pod.metadata).to_string();
    let uid = pod.metadata.uid.clone();
    Waiter::new(client, ns)
        .endpoint_slices(slices_of(service))
        .until(
            &format!("pod {ns}/{name} not ready in service {service}"),
            timeout,
            |s| {
                endpoints::pod_endpoint_not_ready(
                    &s.endpoint_slices.objects(),
                    service,
                    &name,
                    uid.as_deref(),
                )
            },
        )
        .await
        .map(drop)
}

/// Wait for a PVC to be Bound; the waiting message carries its latest Warning event.
pub async fn pvc_bound(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<PersistentVolumeClaim, WaitError> {
    let s = Waiter::new(client, ns)
        .pvcs(by_name(name))
        .events(events_about("PersistentVolumeClaim", name))
        .until(&format!("pvc {ns}/{name} bound"), timeout, |s| {
            match s.pvcs.get(name) {
                Some(c) => pvc::pvc_bound(c, &s.events.objects()),
                None => Progress::Waiting(format!("pvc {name} does not exist")),
            }
        })
        .await?;
    Ok(s.pvcs.get(name).cloned().expect("judged present"))
}

/// Wait for an HPA's current replicas to reach the target, failing fast when it cannot.
pub async fn hpa_replicas(
    client: &Client,
    ns: &str,
    name: &str,
    target: ReplicaTarget,
    timeout: Duration,
) -> Result<HorizontalPodAutoscaler, WaitError> {
    let s = Waiter::new(client, ns)
        .hpas(by_name(name))
        .until(
            &format!("hpa {ns}/{name} {target} replicas"),
            timeout,
            |s| match s.hpas.get(name) {
                Some(h) => hpa::hpa_replicas(h, target),
                None => Progress::Waiting(format!("hpa {name} does not exist")),
            },
        )
        .await?;
    Ok(s.hpas.get(name).cloned().expect("judged present"))
}

/// Wait until the Pod with this UID no longer exists (a replacement under the same name does not
/// count as the Pod).
pub async fn pod_gone(
    client: &Client,
    ns: &str,
    name: &str,
    uid: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    Waiter::new(client, ns)
        .pods(by_name(name))
        .until(&format!("pod {ns}/{name} ({uid}) gone"), timeout, |s| {
            pods::pod_gone(&s.pods.objects(), uid)
        })
        .await
        .map(drop)
}

/// Wait until the node is cordoned (spec.unschedulable and the unschedulable taint).
pub async fn node_cordoned(
    client: &Client,
    name: &str,
    timeout: Duration,
) -> Result<Node, WaitError> {
    let s = Waiter::new(client, "")
        .nodes(by_name(name))
        .until(&format!("node {name} cordoned"), timeout, |s| {
            match s.nodes.get(name) {
                Some(n) => nodes::node_cordoned(n),
                None => Progress::Waiting(format!("node {name} does not exist")),
            }
        })
        .await?;
    Ok(s.nodes.get(name).cloned().expect("judged present"))
}

/// Wait for a Job to complete, failing fast when it has failed. A Job that is not there counts
/// as done: callers wait on Jobs they have just applied, so one that is gone was removed by its
/// `ttlSecondsAfterFinished`, after finishing.
pub async fn job_complete(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    Waiter::new(client, ns)
        .jobs(by_name(name))
        .until(&format!("job {ns}/{name} complete"), timeout, |s| match s.jobs.get(name) {
            Some(j) => jobs::job_complete(j),
            None => Progress::Done,
        })
        .await
        .map(drop)
}

/// Wait until an APIService (e.g. `v1beta1.metrics.k8s.io`) is Available: until then its group
/// is listed but every request to it is a 503.
pub async fn apiservice_available(
    client: &Client,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    use crate::cluster::info::{apiservice_available, apiservice_unavailable_reason};
    Waiter::new(client, "")
        .apiservices(by_name(name))
        .until(&format!("APIService {name} available"), timeout, |s| match s.apiservices.get(name) {
            Some(a) if apiservice_available(a) => Progress::Done,
            Some(a) => Progress::Waiting(apiservice_unavailable_reason(a)),
            None => Progress::Waiting(format!("APIService {name} does not exist")),
        })
        .await
        .map(drop)
}

/// Wait until every node is Ready (see [`nodes::all_nodes_ready`]).
pub async fn all_nodes_ready(client: &Client, timeout: Duration) -> Result<(), WaitError> {
    Waiter::new(client, "")
        .nodes(watcher::Config::default())
        .until("all nodes Ready", timeout, |s| nodes::all_nodes_ready(&s.nodes.objects()))
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{from_value, load, load_list, value};

    fn fill<K: Resource + Clone>(cache: &mut Cache<K>, objects: Vec<K>) {
        cache.watched = true;
        cache.apply(watcher::Event::Init);
        for o in objects {
            cache.apply(watcher::Event::InitApply(o));
        }
        cache.apply(watcher::Event::InitDone);
    }

    #[test]
    fn cache_is_not_synced_until_the_initial_list_is_complete() {
        let mut c: Cache<Pod> = Cache::default();
        assert!(c.synced(), "an unwatched kind never holds a wait up");
        c.watched = true;
        assert!(!c.synced());
        c.apply(watcher::Event::Init);
        c.apply(watcher::Event::InitApply(load("pod-terminating.json")));
        assert!(
            !c.synced() && c.objects().is_empty(),
            "partial lists are not visible"
        );
        c.apply(watcher::Event::InitDone);
        assert!(c.synced());
        assert_eq!(c.objects().len(), 1);
    }

    #[test]
    fn relist_drops_objects_deleted_while_the_watch_was_down() {
        let terminating: Pod = load("pod-terminating.json");
        let uid = terminating.metadata.uid.clone().unwrap();
        let mut c: Cache<Pod> = Cache::default();
        fill(
            &mut c,
            vec![terminating.clone(), load("pod-crashloopbackoff.json")],
        );
        assert!(pods::pod_gone(&c.objects(), &uid).is_waiting());
        // A relist that no longer contains the terminating pod: gone, without a Delete event.
        fill(&mut c, vec![load("pod-crashloopbackoff.json")]);
        assert_eq!(pods::pod_gone(&c.objects(), &uid), Progress::Done);
        // And a Delete event removes it too.
        fill(&mut c, vec![terminating.clone()]);
        c.apply(watcher::Event::Delete(terminating));
        assert_eq!(pods::pod_gone(&c.objects(), &uid), Progress::Done);
    }

    fn rollout_snapshot(deployment: &str) -> Snapshot {
        let mut s = Snapshot::default();
        fill(&mut s.deployments, vec![load(deployment)]);
        fill(
            &mut s.replica_sets,
            load_list("replicasets-after-rollout.json"),
        );
        fill(&mut s.pods, vec![load("pod-terminating.json")]);
        fill(&mut s.events, load_list("events-rollout.json"));
        s
    }

    #[test]
    fn deployment_judgement_on_a_snapshot() {
        assert_eq!(
            judge_deployment(&rollout_snapshot("deployment-rollout-complete.json"), "web"),
            Progress::Done
        );
        assert!(
            judge_deployment(
                &rollout_snapshot("deployment-rollout-observed-stale.json"),
                "web"
            )
            .is_waiting()
        );
        assert!(
            judge_deployment(
                &rollout_snapshot("deployment-rollout-complete.json"),
                "other"
            )
            .is_waiting()
        );
    }

    #[test]
    fn deployment_judgement_fails_fast_on_a_new_pod_that_cannot_schedule() {
        // Derived: the unschedulable pod made a member of web's new ReplicaSet.
        let mut s = rollout_snapshot("deployment-rollout-midway-observed.json");
        let rs_uid = s
            .replica_sets
            .get("web-57d8bfc944")
            .unwrap()
            .metadata
            .uid
            .clone()
            .unwrap();
        let mut v = value("pod-unschedulable.json");
        v["metadata"]["ownerReferences"] = serde_json::json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-57d8bfc944",
            "uid": rs_uid, "controller": true, "blockOwnerDeletion": true
        }]);
        s.pods.apply(watcher::Event::Apply(from_value(v)));
        let p = judge_deployment(&s, "web");
        assert_eq!(
            p,
            Progress::Failed(
                "pod unschedulable: Unschedulable: 0/1 nodes are available: 1 Insufficient cpu."
                    .into()
            )
        );
        // The same pod unowned does not concern this Deployment.
        let mut s = rollout_snapshot("deployment-rollout-midway-observed.json");
        s.pods
            .apply(watcher::Event::Apply(load("pod-unschedulable.json")));
        assert!(judge_deployment(&s, "web").is_waiting());
    }

    /// Derived: web's new ReplicaSet's Pod refused for lack of CPU (the captured unschedulable
    /// Pod, asking `cpu`), while the captured terminating Pod (10m, 16Mi) is still there.
    fn refused_beside_a_terminating_pod(cpu: &str) -> Snapshot {
        let mut s = rollout_snapshot("deployment-rollout-midway-observed.json");
        let rs_uid = s.replica_sets.get("web-57d8bfc944").unwrap().metadata.uid.clone().unwrap();
        let mut v = value("pod-unschedulable.json");
        v["metadata"]["ownerReferences"] = serde_json::json!([{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-57d8bfc944",
            "uid": rs_uid, "controller": true, "blockOwnerDeletion": true
        }]);
        v["spec"]["containers"][0]["resources"]["requests"]["cpu"] = cpu.into();
        s.pods.apply(watcher::Event::Apply(from_value(v)));
        s
    }

    #[test]
    fn a_refusal_for_room_that_terminating_pods_give_back_is_not_final_until_they_are_gone() {
        let now = Instant::now();
        // Asks for 10m: the terminating Pod gives back 10m, 16Mi. Not final while it is there.
        let mut s = refused_beside_a_terminating_pod("10m");
        s.freeing.note(&s.pods.objects(), now);
        assert!(judge_deployment(&s, "web").is_waiting(), "{:?}", judge_deployment(&s, "web"));
        // Nor just after it left (the scheduler tries again within its backoff) ...
        s.pods.apply(watcher::Event::Delete(load("pod-terminating.json")));
        s.freeing.note(&s.pods.objects(), now + Duration::from_secs(1));
        assert!(judge_deployment(&s, "web").is_waiting());
        // ... but once ROOM_SETTLE has passed with nothing terminating, the refusal stands.
        s.freeing.seen = Some(now - ROOM_SETTLE - Duration::from_secs(1));
        assert!(matches!(judge_deployment(&s, "web"), Progress::Failed(r) if r.contains("Insufficient cpu")));

        // More than any terminating Pod gives back (the insufficient-resources check's edit):
        // final at once.
        // `1k` is how the API hands back a manifest's `cpu: "1000"`.
        for cpu in ["50", "1k"] {
            let mut s = refused_beside_a_terminating_pod(cpu);
            s.freeing.note(&s.pods.objects(), now);
            assert!(matches!(judge_deployment(&s, "web"), Progress::Failed(r) if r.contains("Insufficient cpu")), "{cpu}");
        }
    }

    #[test]
    fn statefulset_judgement_mentions_unbound_claims() {
        let mut s = Snapshot::default();
        fill(
            &mut s.stateful_sets,
            vec![load("statefulset-updating.json")],
        );
        fill(&mut s.pods, vec![]);
        fill(
            &mut s.pvcs,
            vec![load("pvc-bound.json"), load("pvc-pending.json")],
        );
        let p = judge_statefulset(&s, "db");
        assert_eq!(
            p.reason(),
            "statefulset \"db\": waiting for 1 pods to be ready; pvc pending is Pending (storageClassName \"does-not-exist\")"
        );
        fill(
            &mut s.stateful_sets,
            vec![load("statefulset-update-complete.json")],
        );
        assert_eq!(judge_statefulset(&s, "db"), Progress::Done);
    }

    #[test]
    fn timeout_message_names_the_wait_and_the_last_state() {
        let e = WaitError::Timeout {
            what: "deployment ns/web rollout".into(),
            after: Duration::from_secs(90),
            last: "x".into(),
        };
        assert_eq!(
            e.to_string(),
            "deployment ns/web rollout: not done after 90s; last state: x"
        );
    }
}
