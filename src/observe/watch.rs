//! The watchers that feed the log while a check runs.

use super::{EventLog, Source, diff};
use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use std::collections::HashMap;
use tokio::task::JoinHandle;

/// Watches a namespace until dropped or stopped.
pub struct Observer {
    pub log: EventLog,
    tasks: Vec<JoinHandle<()>>,
}

impl Observer {
    pub fn start(client: &kube::Client, ns: &str, log: EventLog) -> Observer {
        let tasks = vec![
            spawn_diffing::<Pod>(client, ns, log.clone(), Source::Pod, "Pod", |old, new| diff::pod_changes(old, new), |p| Some(diff::pod_deleted(p))),
            spawn_diffing::<EndpointSlice>(client, ns, log.clone(), Source::EndpointSlice, "EndpointSlice", |old, new| diff::slice_changes(old, new), |_| None),
            spawn_diffing::<HorizontalPodAutoscaler>(client, ns, log.clone(), Source::Hpa, "HorizontalPodAutoscaler", |old, new| diff::hpa_changes(old, new), |_| None),
            spawn_events(client, ns, log.clone()),
        ];
        Observer { log, tasks }
    }

    pub fn stop(self) -> EventLog {
        for t in &self.tasks {
            t.abort();
        }
        self.log.clone()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

type Differ<K> = fn(Option<&K>, &K) -> Vec<String>;
type Deleted<K> = fn(&K) -> Option<String>;

fn spawn_diffing<K>(client: &kube::Client, ns: &str, log: EventLog, source: Source, kind: &'static str, changes: Differ<K>, deleted: Deleted<K>) -> JoinHandle<()>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    tokio::spawn(async move {
        let mut seen: HashMap<String, K> = HashMap::new();
        let mut stream = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Apply(obj) | WatchEvent::InitApply(obj)) => {
                    let name = obj.meta().name.clone().unwrap_or_default();
                    for line in changes(seen.get(&name), &obj) {
                        log.push(source, format!("{kind}/{name}"), line);
                    }
                    seen.insert(name, obj);
                }
                Ok(WatchEvent::Delete(obj)) => {
                    let name = obj.meta().name.clone().unwrap_or_default();
                    if let Some(line) = deleted(&obj) {
                        log.push(source, format!("{kind}/{name}"), line);
                    }
                    seen.remove(&name);
                }
                Ok(WatchEvent::Init | WatchEvent::InitDone) => {}
                // The watcher retries by itself; a gap is worth a line so nobody trusts a hole.
                Err(e) => log.push(Source::Action, format!("{kind}/*"), format!("watch error (retrying): {e}")),
            }
        }
    })
}

fn spawn_events(client: &kube::Client, ns: &str, log: EventLog) -> JoinHandle<()> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    tokio::spawn(async move {
        let mut counts: HashMap<String, i32> = HashMap::new();
        let mut stream = watcher::watcher(api, watcher::Config::default()).default_backoff().boxed();
        while let Some(event) = stream.next().await {
            if let Ok(WatchEvent::Apply(e) | WatchEvent::InitApply(e)) = event {
                // An Event object is updated in place when it repeats; log each new count once.
                let key = e.metadata.name.clone().unwrap_or_default();
                let count = e.count.unwrap_or(1);
                if counts.get(&key).is_some_and(|c| *c >= count) {
                    continue;
                }
                counts.insert(key, count);
                let (object, line) = diff::event_line(&e);
                log.push(Source::Event, object, line);
            }
        }
    })
}
