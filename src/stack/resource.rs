//! One manifest document as a typed Kubernetes object.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, PodTemplateSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

macro_rules! resources {
    ($($variant:ident => $api:literal),* $(,)?) => {
        /// The kinds a stack may hold, each at the API version that Kubernetes 1.24 and every
        /// later release serve.
        #[derive(Debug, Clone)]
        #[allow(clippy::large_enum_variant)]
        pub enum Resource {
            $($variant($variant),)*
        }

        impl Resource {
            pub const KNOWN: &'static [(&'static str, &'static str)] = &[$(($api, stringify!($variant)),)*];

            /// Parse `value` as `api_version`/`kind`. `Ok(None)` means the pair is not one we know.
            pub(super) fn parse(
                api_version: &str,
                kind: &str,
                value: serde_json::Value,
            ) -> Result<Option<Resource>, serde_path_to_error::Error<serde_json::Error>> {
                match (api_version, kind) {
                    $(($api, stringify!($variant)) => serde_path_to_error::deserialize(value).map(|o| Some(Resource::$variant(o))),)*
                    _ => Ok(None),
                }
            }

            pub fn kind(&self) -> &'static str {
                match self { $(Resource::$variant(_) => stringify!($variant),)* }
            }

            pub fn api_version(&self) -> &'static str {
                match self { $(Resource::$variant(_) => $api,)* }
            }

            /// What the API needs to address this kind (group, version, plural).
            pub fn api_resource(&self) -> kube::core::ApiResource {
                match self { $(Resource::$variant(_) => kube::core::ApiResource::erase::<$variant>(&()),)* }
            }

            pub fn metadata(&self) -> &ObjectMeta {
                match self { $(Resource::$variant(o) => &o.metadata,)* }
            }

            /// The object as JSON, the form patches and server-side apply take.
            pub fn to_json(&self) -> serde_json::Value {
                let value = match self { $(Resource::$variant(o) => serde_json::to_value(o),)* };
                value.expect("k8s-openapi objects always serialize")
            }
        }
    };
}

resources! {
    Namespace => "v1",
    ConfigMap => "v1",
    Secret => "v1",
    Service => "v1",
    ServiceAccount => "v1",
    PersistentVolume => "v1",
    PersistentVolumeClaim => "v1",
    Pod => "v1",
    Deployment => "apps/v1",
    StatefulSet => "apps/v1",
    DaemonSet => "apps/v1",
    Job => "batch/v1",
    CronJob => "batch/v1",
    Ingress => "networking.k8s.io/v1",
    NetworkPolicy => "networking.k8s.io/v1",
    PodDisruptionBudget => "policy/v1",
    HorizontalPodAutoscaler => "autoscaling/v2",
}

/// Why an apiVersion that once existed is refused: the seeds use some of these.
pub fn removed_api_hint(api_version: &str, kind: &str) -> Option<String> {
    let now = match (api_version, kind) {
        ("extensions/v1beta1" | "networking.k8s.io/v1beta1", "Ingress") => "networking.k8s.io/v1 (v1beta1 was removed in Kubernetes 1.22)",
        ("extensions/v1beta1" | "apps/v1beta1" | "apps/v1beta2", "Deployment" | "StatefulSet" | "DaemonSet") => {
            "apps/v1 (the beta versions were removed in Kubernetes 1.16)"
        }
        ("policy/v1beta1", "PodDisruptionBudget") => "policy/v1 (v1beta1 was removed in Kubernetes 1.25)",
        ("autoscaling/v1" | "autoscaling/v2beta1" | "autoscaling/v2beta2", "HorizontalPodAutoscaler") => {
            "autoscaling/v2 (served since Kubernetes 1.23; the betas were removed in 1.25/1.26)"
        }
        ("batch/v1beta1", "CronJob") => "batch/v1 (v1beta1 was removed in Kubernetes 1.25)",
        _ => return None,
    };
    Some(format!("use apiVersion {now}"))
}

impl Resource {
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    /// The Pod template of a workload, with the JSON path to its spec for error messages.
    pub fn pod_template(&self) -> Option<(&PodTemplateSpec, &'static str)> {
        match self {
            Resource::Deployment(d) => d.spec.as_ref().map(|s| (&s.template, "spec.template")),
            Resource::StatefulSet(s) => s.spec.as_ref().map(|s| (&s.template, "spec.template")),
            Resource::DaemonSet(d) => d.spec.as_ref().map(|s| (&s.template, "spec.template")),
            Resource::Job(j) => j.spec.as_ref().map(|s| (&s.template, "spec.template")),
            Resource::CronJob(c) => c
                .spec
                .as_ref()
                .and_then(|s| s.job_template.spec.as_ref())
                .map(|s| (&s.template, "spec.jobTemplate.spec.template")),
            _ => None,
        }
    }

    /// Cluster-scoped kinds get no namespace when rendered.
    pub fn is_namespaced(&self) -> bool {
        !matches!(self, Resource::Namespace(_) | Resource::PersistentVolume(_))
    }
}
