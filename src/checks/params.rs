//! Every check's `[checks.params]`, typed. One struct per check, read by the check itself
//! ([`CheckContext::params_as`](super::CheckContext::params_as)), refused by `fixtures lint` when
//! wrong ([`problems`]), listed by `seaworthy checks` and written into the JSON Schema of
//! stack.toml ([`stack_schema`]): the doc comments below are the documentation a user reads, and
//! the `default_*` functions the only place a default lives.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A check's parameters: what serde cannot say about them is said by [`CheckParams::check`].
pub trait CheckParams: DeserializeOwned + JsonSchema {
    /// The check these are the params of, as stack.toml names it.
    const NAME: &'static str;

    /// Rules across keys (one of two keys, ordering of durations): `(key, what is wrong)`.
    fn check(&self) -> Result<(), (String, String)> {
        Ok(())
    }
}

/// One check as `seaworthy checks` and the schema know it.
pub struct CheckInfo {
    pub name: &'static str,
    schema: fn(&mut SchemaGenerator) -> Schema,
    validate: fn(&toml::Table) -> Result<(), ParamError>,
}

impl CheckInfo {
    pub fn schema(&self, generator: &mut SchemaGenerator) -> Schema {
        (self.schema)(generator)
    }
}

const fn info<P: CheckParams>() -> CheckInfo {
    CheckInfo { name: P::NAME, schema: P::json_schema, validate: validate_as::<P> }
}

/// The checks of shared/STACKS.md, in its order.
pub const CHECKS: &[CheckInfo] = &[
    info::<ConfigOverride>(),
    info::<EndpointsFollowReadiness>(),
    info::<RolloutZero5xx>(),
    info::<HpaScale>(),
    info::<PdbDrain>(),
    info::<Persistence>(),
    info::<RolloutUndo>(),
    info::<ServiceDiscovery>(),
    info::<StaleDnsProxy>(),
    info::<InsufficientResources>(),
];

pub fn find(name: &str) -> Option<&'static CheckInfo> {
    CHECKS.iter().find(|c| c.name == name)
}

/// What is wrong with one check's params: the key (a dotted path inside `[checks.params]`, empty
/// for the table itself) and a sentence that says what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ParamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() { write!(f, "{}", self.message) } else { write!(f, "{}: {}", self.key, self.message) }
    }
}

/// The params of `check` read as its struct; `None` for a check seaworthy does not know.
pub fn problems(check: &str, params: &toml::Table) -> Option<Result<(), ParamError>> {
    find(check).map(|c| (c.validate)(params))
}

fn validate_as<P: CheckParams>(params: &toml::Table) -> Result<(), ParamError> {
    parse::<P>(params).map(drop)
}

/// Read `params` as `P`, with the error said as `fixtures lint` says it.
pub fn parse<P: CheckParams>(params: &toml::Table) -> Result<P, ParamError> {
    let p: P = serde_path_to_error::deserialize(toml::Value::Table(params.clone())).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        // toml appends "in `key`" on lines of its own; the path says that better.
        let msg = e.into_inner().to_string();
        explain(params, &path, msg.lines().next().unwrap_or_default())
    })?;
    p.check().map_err(|(key, message)| ParamError { key, message })?;
    Ok(p)
}

/// serde's sentence turned into the key it is about, what was expected, and for a misspelt key
/// the nearest valid one.
fn explain(params: &toml::Table, path: &str, serde_msg: &str) -> ParamError {
    let join = |key: &str| if path.is_empty() { key.to_string() } else if path == key || path.ends_with(&format!(".{key}")) { path.to_string() } else { format!("{path}.{key}") };
    let quoted: Vec<&str> = serde_msg.split('`').skip(1).step_by(2).collect();
    if let Some(rest) = serde_msg.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or_default();
        let valid: Vec<&str> = quoted.iter().skip(1).copied().collect();
        let mut message = format!("unknown parameter; the valid ones here are {}", list(&valid));
        if let Some(near) = nearest(key, &valid) {
            message.push_str(&format!("; did you mean `{near}`?"));
        }
        // Inside an internally tagged enum serde has buffered the table and lost the path.
        let key = if path.is_empty() { find_key(params, key, "").unwrap_or_else(|| key.to_string()) } else { join(key) };
        return ParamError { key, message };
    }
    if let Some(rest) = serde_msg.strip_prefix("unknown variant `") {
        let value = rest.split('`').next().unwrap_or_default();
        let valid: Vec<&str> = quoted.iter().skip(1).copied().collect();
        let mut message = format!("{value:?} is not one of {}", list(&valid));
        if let Some(near) = nearest(value, &valid) {
            message.push_str(&format!("; did you mean {near:?}?"));
        }
        // An internally tagged enum's tag is `store`; serde names no field for it.
        let key = if path.is_empty() { "store".to_string() } else { path.to_string() };
        return ParamError { key, message };
    }
    if serde_msg.starts_with("missing field `") {
        let key = quoted.first().copied().unwrap_or_default();
        return ParamError { key: join(key), message: "missing: this parameter is required".into() };
    }
    if let Some(rest) = serde_msg.strip_prefix("duplicate field `") {
        let key = rest.split('`').next().unwrap_or_default();
        return ParamError { key: join(key), message: "given twice (under two of its names)".into() };
    }
    if let Some(rest) = serde_msg.strip_prefix("invalid type: ").or_else(|| serde_msg.strip_prefix("invalid value: ")) {
        let (got, want) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        return ParamError { key: path.to_string(), message: format!("expected {}, found {got}", plain_type(want)) };
    }
    if let Some(rest) = serde_msg.strip_prefix("invalid length ") {
        let (n, want) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        return ParamError { key: path.to_string(), message: format!("expected {want}, found {n} item(s)") };
    }
    ParamError { key: path.to_string(), message: serde_msg.to_string() }
}

/// The dotted path of the first `key` in nested tables.
fn find_key(t: &toml::Table, key: &str, prefix: &str) -> Option<String> {
    if t.contains_key(key) {
        return Some(format!("{prefix}{key}"));
    }
    t.iter().find_map(|(k, v)| v.as_table().and_then(|inner| find_key(inner, key, &format!("{prefix}{k}."))))
}

fn list(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
}

/// Rust's names for what serde expected, as a TOML user reads them.
fn plain_type(want: &str) -> String {
    match want {
        "f64" | "f32" => "a number".into(),
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "usize" => "an integer".into(),
        "a boolean" | "a string" | "a sequence" | "a map" => want.replace("a sequence", "an array").replace("a map", "a table"),
        w if w.starts_with("struct ") => "a table".into(),
        w if w.starts_with("an array of length") => w.to_string(),
        w => w.to_string(),
    }
}

/// The valid key closest to a misspelt one, if any is close enough to be what was meant.
pub fn nearest<'a>(key: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|v| (strsim::damerau_levenshtein(key, v), *v))
        .filter(|(d, v)| *d <= (v.len().max(key.len()) / 2).max(1) || v.contains(key) || key.contains(v))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

// ---------------------------------------------------------------------------------------------
// Defaults: the only place they live.

fn d_rps_20() -> f64 {
    20.0
}
fn d_rps_10() -> f64 {
    10.0
}
fn d_lead_s() -> f64 {
    5.0
}
fn d_slack_s() -> f64 {
    5.0
}
fn d_propagation_s() -> f64 {
    3.0
}
fn d_tail_s_rollout() -> f64 {
    5.0
}
fn d_tail_s_stale() -> f64 {
    20.0
}
fn d_slow_rps() -> f64 {
    2.0
}
fn d_rate_hpa() -> f64 {
    24.0
}
fn d_ramp_s() -> f64 {
    60.0
}
fn d_duration_s() -> f64 {
    180.0
}
fn d_scale_up_within_s() -> f64 {
    150.0
}
fn d_scale_down_slack_s() -> f64 {
    90.0
}
fn d_retry_s() -> f64 {
    5.0
}
fn d_drain_timeout_s() -> f64 {
    300.0
}
fn d_hold_s_drain() -> f64 {
    30.0
}
fn d_recovery_s() -> f64 {
    240.0
}
fn d_increments() -> u32 {
    5
}
/// myblog's Pods (100m CPU, two sync gunicorn workers) serve about 4 req/s each; at 5 req/s
/// across two or three Pods the load measures the rollouts, not the app's capacity, and a
/// request every 200 ms still places a failure burst next to the Pod whose termination caused it.
fn d_rps_5() -> f64 {
    5.0
}
fn d_hold_s_undo() -> f64 {
    5.0
}
fn d_status_200() -> u16 {
    200
}
fn d_fail_within_s() -> f64 {
    60.0
}
fn d_method() -> String {
    "POST".into()
}
fn d_pattern() -> String {
    "{value}".into()
}

/// `workload` may also be spelt `deployment` or `statefulset` (serde aliases), which the schema
/// cannot say by itself: the aliases become properties of their own, and one of the three is
/// required.
fn workload_aliases(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else { return };
    if let Some(props) = obj.get_mut("properties").and_then(|p| p.as_object_mut())
        && let Some(w) = props.get("workload").cloned()
    {
        for alias in ["deployment", "statefulset"] {
            let mut a = w.clone();
            a["description"] = format!("Same as `workload` (for a {}).", if alias == "deployment" { "Deployment" } else { "StatefulSet" }).into();
            props.insert(alias.into(), a);
        }
    }
    if let Some(req) = obj.get_mut("required").and_then(|r| r.as_array_mut()) {
        req.retain(|k| k != "workload");
    }
    obj.insert(
        "oneOf".into(),
        serde_json::json!([{"required": ["workload"]}, {"required": ["deployment"]}, {"required": ["statefulset"]}]),
    );
}

/// `container` or `containers`, one of them.
fn containers_of(container: &Option<String>, containers: &[String]) -> Result<Vec<String>, (String, String)> {
    match (container, containers.is_empty()) {
        (Some(c), true) => Ok(vec![c.clone()]),
        (None, false) => Ok(containers.to_vec()),
        (Some(_), false) => Err(("container".into(), "give `container` or `containers`, not both".into())),
        (None, true) => Err(("container".into(), "missing: name the container to update (`container = \"...\"` or `containers = [...]`)".into())),
    }
}

fn positive(key: &str, v: f64) -> Result<(), (String, String)> {
    if v > 0.0 && v.is_finite() { Ok(()) } else { Err((key.into(), format!("must be above 0, is {v}"))) }
}

// ---------------------------------------------------------------------------------------------

/// The ConfigMap's config is what the app serves, never the image's own; after the ConfigMap
/// changes and a `rollout restart`, every Pod serves the new one and no request fails.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigOverride {
    /// The Deployment whose Pods mount the ConfigMap; it is restarted after the change.
    pub deployment: String,
    /// The ConfigMap the check changes.
    pub configmap: String,
    /// The page that prints the config the app sees.
    pub path: String,
    /// The body that page must answer with while the ConfigMap is mounted.
    pub expect: String,
    /// The image's baked-in config: seeing it means the ConfigMap was not used.
    pub baked_in: String,
    /// The body every new Pod must answer with after the change and restart.
    pub expect_after_change: String,
    /// The change written into the ConfigMap before the restart.
    pub change: ConfigChange,
    /// Requests per second through the entry point during the restart.
    #[serde(default = "d_rps_20")]
    pub rps: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigChange {
    /// File name -> new content, merged into the ConfigMap's data.
    pub data: BTreeMap<String, String>,
}

impl CheckParams for ConfigOverride {
    const NAME: &'static str = "config-override";

    fn check(&self) -> Result<(), (String, String)> {
        if self.change.data.is_empty() {
            return Err(("change.data".into(), "names no file to change".into()));
        }
        positive("rps", self.rps)
    }
}

/// A Pod made unready (a file its readiness probe looks for) leaves the Service's endpoints in
/// time, no request reaches it after that, and it comes back once ready.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = workload_aliases)]
pub struct EndpointsFollowReadiness {
    /// The Deployment or StatefulSet one of whose Pods is made unready.
    #[serde(alias = "deployment", alias = "statefulset")]
    pub workload: String,
    /// The container whose readiness probe is failed on purpose.
    pub container: String,
    /// The Service whose endpoints must follow readiness (default: the entry's Service).
    pub service: Option<String>,
    /// The file whose presence fails the probe (default: the container's env
    /// SEAWORTHY_UNREADY_FILE, else /tmp/seaworthy-unready).
    pub file: Option<String>,
    /// The path the load asks for (default: the entry path).
    pub path: Option<String>,
    /// Requests per second of the load.
    #[serde(default = "d_rps_10")]
    pub rps: f64,
    /// Allowed beyond the probe's period x failureThreshold for the Pod to leave the endpoints.
    #[serde(default = "d_slack_s")]
    pub slack_s: f64,
    /// How long after the Pod left the endpoints a request may still reach it (proxies, DNS).
    #[serde(default = "d_propagation_s")]
    pub propagation_s: f64,
    /// Load before the Pod is made unready.
    #[serde(default = "d_lead_s")]
    pub lead_s: f64,
    /// How long the Pod stays unready (default: max(propagation_s + 7, 10)).
    pub hold_s: Option<f64>,
    /// Load after the Pod is back (default: propagation_s + 7).
    pub after_s: Option<f64>,
}

impl EndpointsFollowReadiness {
    pub fn hold_s(&self) -> f64 {
        self.hold_s.unwrap_or((self.propagation_s + 7.0).max(10.0))
    }
    pub fn after_s(&self) -> f64 {
        self.after_s.unwrap_or(self.propagation_s + 7.0)
    }
}

impl CheckParams for EndpointsFollowReadiness {
    const NAME: &'static str = "endpoints-follow-readiness";

    fn check(&self) -> Result<(), (String, String)> {
        positive("rps", self.rps)
    }
}

/// Constant-rate load across a rolling update from one image version to another: no request
/// fails, and only the new version answers once the last old Pod is gone.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = workload_aliases)]
pub struct RolloutZero5xx {
    /// The Deployment or StatefulSet that is updated.
    #[serde(alias = "deployment", alias = "statefulset")]
    pub workload: String,
    /// The container whose image changes (init containers included).
    pub container: Option<String>,
    /// Several containers whose image changes together (instead of `container`).
    #[serde(default)]
    pub containers: Vec<String>,
    /// The image (as stack.toml's [[images]] names it) that changes version.
    pub image: String,
    /// The version the manifests run.
    pub from: String,
    /// The version the update brings.
    pub to: String,
    /// The path the load asks for (default: the entry path).
    pub path: Option<String>,
    /// Requests per second of the load.
    #[serde(default = "d_rps_20")]
    pub rps: f64,
    /// A path whose requests are held open, in flight whenever a Pod stops (a second load).
    pub slow_path: Option<String>,
    /// Or: a query added to the entry path for that second load.
    pub slow_query: Option<String>,
    /// Requests per second of the slow load.
    #[serde(default = "d_slow_rps")]
    pub slow_rps: f64,
    /// Load before the image changes.
    #[serde(default = "d_lead_s")]
    pub lead_s: f64,
    /// Load after the last old Pod is gone.
    #[serde(default = "d_tail_s_rollout")]
    pub tail_s: f64,
}

impl RolloutZero5xx {
    pub fn containers(&self) -> Vec<String> {
        containers_of(&self.container, &self.containers).unwrap_or_default()
    }
}

impl CheckParams for RolloutZero5xx {
    const NAME: &'static str = "rollout-zero-5xx";

    fn check(&self) -> Result<(), (String, String)> {
        containers_of(&self.container, &self.containers)?;
        if self.slow_path.is_some() && self.slow_query.is_some() {
            return Err(("slow_query".into(), "give `slow_path` or `slow_query`, not both".into()));
        }
        positive("rps", self.rps)
    }
}

/// The same update under load behind a proxy: a proxy that follows DNS keeps working when the
/// Pods' IPs change; one that resolved once does not.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = workload_aliases)]
pub struct StaleDnsProxy {
    /// The proxy's workload (Deployment) in front of the updated one.
    pub proxy: String,
    /// The Deployment or StatefulSet whose Pods are replaced (new IPs).
    #[serde(alias = "deployment", alias = "statefulset")]
    pub workload: String,
    /// The container whose image changes.
    pub container: Option<String>,
    /// Several containers whose image changes together (instead of `container`).
    #[serde(default)]
    pub containers: Vec<String>,
    /// The image that changes version.
    pub image: String,
    /// The version the manifests run.
    pub from: String,
    /// The version the update brings.
    pub to: String,
    /// The path the load asks for (default: the entry path).
    pub path: Option<String>,
    /// Requests per second of the load.
    #[serde(default = "d_rps_20")]
    pub rps: f64,
    /// Load before the update.
    #[serde(default = "d_lead_s")]
    pub lead_s: f64,
    /// Load after the update: longer than the proxy's and DNS's caching.
    #[serde(default = "d_tail_s_stale")]
    pub tail_s: f64,
}

impl StaleDnsProxy {
    pub fn containers(&self) -> Vec<String> {
        containers_of(&self.container, &self.containers).unwrap_or_default()
    }
}

impl CheckParams for StaleDnsProxy {
    const NAME: &'static str = "stale-dns-proxy";

    fn check(&self) -> Result<(), (String, String)> {
        containers_of(&self.container, &self.containers)?;
        positive("rps", self.rps)
    }
}

/// An HTTP form POST made before the check (e.g. an installer).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FormPost {
    /// The path posted to.
    pub path: String,
    /// Form fields.
    #[serde(default)]
    pub form: BTreeMap<String, String>,
}

/// A ramp of load drives the HPA from its minimum to `scale_to` replicas within a deadline while
/// requests succeed; after the load it falls back to its minimum.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HpaScale {
    /// The HorizontalPodAutoscaler.
    pub hpa: String,
    /// The Deployment it scales (for the reader; the HPA's scaleTargetRef decides).
    pub deployment: Option<String>,
    /// The HPA's minReplicas, checked against the live object.
    pub min: Option<i32>,
    /// The HPA's maxReplicas, checked against the live object.
    pub max: Option<i32>,
    /// The replica count that passes (default: min + 1).
    pub scale_to: Option<i32>,
    /// The path the load asks for (default: the entry path).
    pub path: Option<String>,
    /// Peak requests per second; the ramp starts at rate/6.
    #[serde(default = "d_rate_hpa")]
    pub rate: f64,
    /// Seconds to reach the peak.
    #[serde(default = "d_ramp_s")]
    pub ramp_s: f64,
    /// Seconds of load in all.
    #[serde(default = "d_duration_s")]
    pub duration_s: f64,
    /// The HPA must reach `scale_to` this long after the load started.
    #[serde(default = "d_scale_up_within_s")]
    pub scale_up_within_s: f64,
    /// Allowed beyond the HPA's scale-down window to fall back to min.
    #[serde(default = "d_scale_down_slack_s")]
    pub scale_down_slack_s: f64,
    /// A form POST before the load (e.g. an app's installer), answered 2xx.
    pub setup: Option<FormPost>,
}

impl CheckParams for HpaScale {
    const NAME: &'static str = "hpa-scale";

    fn check(&self) -> Result<(), (String, String)> {
        if self.scale_up_within_s > self.duration_s {
            return Err(("scale_up_within_s".into(), format!("{} is longer than duration_s ({})", self.scale_up_within_s, self.duration_s)));
        }
        if self.ramp_s >= self.duration_s {
            return Err(("ramp_s".into(), format!("{} is not below duration_s ({})", self.ramp_s, self.duration_s)));
        }
        positive("rate", self.rate)
    }
}

/// A node drain as `kubectl drain` does it, with traffic: evictions beyond the budget are refused
/// with 429 and retried, never more Pods are unavailable than the budget allows, no request fails.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PdbDrain {
    /// The PodDisruptionBudget (minAvailable or maxUnavailable, integer or percentage).
    pub pdb: String,
    /// The Deployment whose Pods it covers.
    pub deployment: String,
    /// Optional: the Pods the budget lets go at once, checked against what the PDB resolves to.
    pub max_unavailable: Option<i32>,
    /// The Service that must have every replica ready again after the uncordon (default: the
    /// entry's Service).
    pub service: Option<String>,
    /// The path the load asks for (default: the entry path).
    pub path: Option<String>,
    /// Requests per second during the drain.
    #[serde(default = "d_rps_10")]
    pub rate: f64,
    /// Seconds between retries of a refused eviction (kubectl drain's rhythm).
    #[serde(default = "d_retry_s")]
    pub retry_s: f64,
    /// How long a drain with room for the replacements may take.
    #[serde(default = "d_drain_timeout_s")]
    pub drain_timeout_s: f64,
    /// With no room (one node): how long refused evictions are retried before the uncordon.
    #[serde(default = "d_hold_s_drain")]
    pub hold_s: f64,
    /// How long every replica may take to be ready again after the uncordon.
    #[serde(default = "d_recovery_s")]
    pub recovery_s: f64,
}

impl CheckParams for PdbDrain {
    const NAME: &'static str = "pdb-drain";

    fn check(&self) -> Result<(), (String, String)> {
        positive("rate", self.rate)?;
        positive("retry_s", self.retry_s)
    }
}

/// Data written through the entry point survives deleting every Pod of the listed workloads and
/// reads back unchanged. `store` says how the data is written and read; `http` fits any app.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "store", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Persistence {
    /// Any app: an HTTP write, then a read whose body must show the written value. The value is
    /// unique per run: `{value}` in the write's path, form, JSON body and in the read's path and
    /// pattern is replaced with it.
    Http {
        /// Workloads whose Pods are deleted, in order (database first); each one's replacements
        /// are ready before the next is deleted.
        delete: Vec<String>,
        /// The request that writes the value.
        write: HttpWrite,
        /// The request that reads it back.
        read: HttpRead,
    },
    /// POST a form field to `write_path`; the value then appears in `read_path`.
    FormRow {
        /// Workloads whose Pods are deleted, in order.
        delete: Vec<String>,
        /// The path the form is posted to.
        write_path: String,
        /// The form field that carries the value.
        write_field: String,
        /// The page the value must appear in.
        read_path: String,
    },
    /// Each GET of `path` counts one visit, the page says how many; the count carries on.
    Counter {
        /// Workloads whose Pods are deleted, in order.
        delete: Vec<String>,
        /// The page that counts.
        path: String,
        /// Literal text around one `(\d+)`, e.g. `visited (\d+) times`.
        count_pattern: String,
        /// Visits before the Pods are deleted.
        #[serde(default = "d_increments")]
        increments: u32,
    },
    /// Files on each Pod's own volume (a StatefulSet): `write = "PUT /data/{name}"` lands on one
    /// Pod, named in X-Seaworthy-Backend; `read` must get the same bytes back from that Pod.
    PodFiles {
        /// Workloads whose Pods are deleted, in order.
        delete: Vec<String>,
        /// The workload whose Pods hold the files.
        workload: String,
        /// `METHOD /path` with `{name}`.
        write: String,
        /// `METHOD /path` with `{name}`.
        read: String,
    },
    /// WordPress: install, log in, take a REST nonce, create a post, read it logged out.
    WordpressPost {
        /// Workloads whose Pods are deleted, in order.
        delete: Vec<String>,
        /// The installer's form.
        setup: FormPost,
        /// The login form.
        login: FormPost,
        /// Where the REST nonce is read.
        nonce_path: String,
        /// Where the post is created.
        write_path: String,
        /// Where it is read back, with `{id}`.
        read_path: String,
    },
}

/// The write of the generic store.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpWrite {
    /// The HTTP method.
    #[serde(default = "d_method")]
    pub method: String,
    /// The path written to; may hold `{value}`.
    pub path: String,
    /// A form body (fields -> values, `{value}` replaced).
    pub form: Option<BTreeMap<String, String>>,
    /// A JSON body (any TOML value; `{value}` replaced in its strings).
    pub json: Option<serde_json::Value>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The status the write must answer with (default: any 2xx).
    pub status: Option<u16>,
}

/// The read of the generic store.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpRead {
    /// The path read (GET); may hold `{value}`.
    pub path: String,
    /// Text the 2xx body must contain; `{value}` is the written value.
    #[serde(default = "d_pattern")]
    pub pattern: String,
}

impl Persistence {
    pub fn delete(&self) -> &[String] {
        match self {
            Persistence::Http { delete, .. }
            | Persistence::FormRow { delete, .. }
            | Persistence::Counter { delete, .. }
            | Persistence::PodFiles { delete, .. }
            | Persistence::WordpressPost { delete, .. } => delete,
        }
    }
}

impl CheckParams for Persistence {
    const NAME: &'static str = "persistence";

    fn check(&self) -> Result<(), (String, String)> {
        if self.delete().is_empty() {
            return Err(("delete".into(), "names no workload: nothing would be replaced".into()));
        }
        if let Persistence::Http { write, read, .. } = self {
            if write.form.is_some() && write.json.is_some() {
                return Err(("write.json".into(), "give `form` or `json`, not both".into()));
            }
            if reqwest::Method::from_bytes(write.method.as_bytes()).is_err() {
                return Err(("write.method".into(), format!("{:?} is not an HTTP method", write.method)));
            }
            let carries = |s: &str| s.contains("{value}");
            let body_carries = write.form.as_ref().is_some_and(|f| f.values().any(|v| carries(v)))
                || write.json.as_ref().is_some_and(|j| carries(&j.to_string()))
                || carries(&write.path);
            if !body_carries {
                return Err(("write".into(), "nothing written carries `{value}` (in the path, form or json): the read could not tell this run's data".into()));
            }
            if !carries(&read.pattern) && !carries(&read.path) {
                return Err(("read.pattern".into(), "must contain `{value}`, the value this run wrote".into()));
            }
        }
        if let Persistence::Counter { count_pattern, .. } = self
            && !count_pattern.contains(r"(\d+)")
        {
            return Err(("count_pattern".into(), r"must contain one `(\d+)`".into()));
        }
        Ok(())
    }
}

/// v1 -> v2 -> `rollout undo` under one load: the served version follows v1, v2, v1, and the
/// revision history is kept.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutUndo {
    /// The Deployment rolled forward and back.
    pub deployment: String,
    /// The container whose image changes.
    pub container: String,
    /// The image that changes version.
    pub image: String,
    /// `[from, to]`: the version the manifests run, and the one rolled out before the undo.
    pub versions: [String; 2],
    /// The path the load asks for (default: the entry path).
    pub path: Option<String>,
    /// Requests per second of the load.
    #[serde(default = "d_rps_5")]
    pub rps: f64,
    /// Load between the steps.
    #[serde(default = "d_hold_s_undo")]
    pub hold_s: f64,
}

impl CheckParams for RolloutUndo {
    const NAME: &'static str = "rollout-undo";

    fn check(&self) -> Result<(), (String, String)> {
        if self.versions[0] == self.versions[1] {
            return Err(("versions".into(), "from and to are the same version".into()));
        }
        positive("rps", self.rps)
    }
}

/// The app reaches its database by Service DNS name: the pages that need it answer.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceDiscovery {
    /// The app's Deployment.
    pub deployment: String,
    /// A page that needs the database (default: the entry path).
    pub path: Option<String>,
    /// The status that page answers with.
    #[serde(default = "d_status_200")]
    pub expect_status: u16,
    /// Text the page must contain.
    pub expect_body: Option<String>,
    /// The app's own error when the database is unreachable: the negative control is caught
    /// only when the reason quotes it (required with a negative control).
    pub expect_error: Option<String>,
    /// How long the app may take to be ready once what it depends on is (default: the run's
    /// ready timeout).
    pub app_ready_s: Option<f64>,
    /// The init container whose log says why the app is not ready (default: the ones blocking).
    pub init_container: Option<String>,
}

impl CheckParams for ServiceDiscovery {
    const NAME: &'static str = "service-discovery";
}

/// A workload asking for more CPU than any node has fails fast with the scheduler's reason.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InsufficientResources {
    /// The workload the variant changes.
    pub workload: String,
    /// The variant that asks for too much.
    pub variant: String,
    /// The container it changes.
    pub container: String,
    /// The CPU it sets as request and limit (the check refuses a variant that does not).
    pub cpu: String,
    /// The scheduler's words the failure must carry, e.g. "Insufficient cpu".
    pub expect_reason: String,
    /// The failure must come this long after the change, well before the rollout deadline.
    #[serde(default = "d_fail_within_s")]
    pub fail_within_s: f64,
}

impl CheckParams for InsufficientResources {
    const NAME: &'static str = "insufficient-resources";
}

// ---------------------------------------------------------------------------------------------
// The JSON Schema of stack.toml.

/// stack.toml's schema: the stack's own fields, and per check its params.
pub fn stack_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<crate::stack::StackSpec>();
    let mut v = schema.to_value();
    v["$id"] = "https://seaworthy.invalid/stack.schema.json".into();
    v["title"] = "seaworthy stack.toml".into();
    v
}

/// The schema as shipped in stack.schema.json (pretty, keys sorted).
pub fn stack_schema_text() -> String {
    serde_json::to_string_pretty(&stack_schema()).expect("a JSON value serializes")
}

/// `[[checks]]`: one alternative per check, so that an editor completes the params of the check
/// named.
pub(crate) fn check_spec_schema(generator: &mut SchemaGenerator) -> Schema {
    let alternatives: Vec<serde_json::Value> = CHECKS
        .iter()
        .map(|c| {
            let params = c.schema(generator).to_value();
            json_schema!({
                "type": "object",
                "additionalProperties": false,
                "required": ["name"],
                "properties": {
                    "name": { "const": c.name },
                    "negative": { "type": "string", "description": "The variant this check must catch." },
                    "params": params,
                }
            })
            .to_value()
        })
        .collect();
    json_schema!({
        "description": "A check of the stack; `seaworthy checks NAME` lists its params.",
        "type": "object",
        "required": ["name"],
        "properties": { "name": { "enum": CHECKS.iter().map(|c| c.name).collect::<Vec<_>>() } },
        "oneOf": alternatives,
    })
}

// ---------------------------------------------------------------------------------------------
// `seaworthy checks`: the same schemas, as text.

/// One parameter as the docs show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamDoc {
    pub key: String,
    pub kind: String,
    pub required: bool,
    pub default: Option<String>,
    pub meaning: String,
}

/// One form of a check's params: its tag (`store = "http": ...`), if the check has forms, and
/// the params it takes.
pub type ParamForm = (Option<String>, Vec<ParamDoc>);

/// A check's description and parameters; a check whose params come in forms (persistence's
/// stores) has one list per form, named by its tag.
pub fn docs(check: &CheckInfo) -> (String, Vec<ParamForm>) {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = check.schema(&mut generator).to_value();
    let defs = generator.definitions().clone();
    let description = schema.get("description").and_then(|d| d.as_str()).unwrap_or_default().to_string();
    let forms = match schema.get("oneOf").and_then(|o| o.as_array()) {
        Some(alts) if alts.iter().all(|a| a.get("properties").is_some()) => alts
            .iter()
            .map(|a| {
                let tag = a["properties"].as_object().and_then(|p| p.iter().find_map(|(k, v)| v.get("const").map(|c| format!("{k} = {c}"))));
                let about = a.get("description").and_then(|d| d.as_str()).unwrap_or_default();
                (tag.map(|t| if about.is_empty() { t } else { format!("{t}: {about}") }), props(a, &defs, ""))
            })
            .collect(),
        _ => vec![(None, props(&schema, &defs, ""))],
    };
    (description, forms)
}

fn resolve<'a>(s: &'a serde_json::Value, defs: &'a serde_json::Map<String, serde_json::Value>) -> &'a serde_json::Value {
    match s.get("$ref").and_then(|r| r.as_str()).and_then(|r| r.rsplit('/').next()) {
        Some(name) => defs.get(name).unwrap_or(s),
        None => s,
    }
}

/// A schema's properties, nested tables spelt out with dotted keys.
fn props(schema: &serde_json::Value, defs: &serde_json::Map<String, serde_json::Value>, prefix: &str) -> Vec<ParamDoc> {
    let schema = resolve(schema, defs);
    let required: Vec<&str> = schema.get("required").and_then(|r| r.as_array()).map(|r| r.iter().filter_map(|k| k.as_str()).collect()).unwrap_or_default();
    let mut out = Vec::new();
    let Some(properties) = schema.get("properties").and_then(|p| p.as_object()) else { return out };
    for (key, p) in properties {
        if p.get("const").is_some() {
            continue;
        }
        let target = nullable_inner(p);
        let target = resolve(target, defs);
        let key_path = format!("{prefix}{key}");
        let meaning = p.get("description").or_else(|| target.get("description")).and_then(|d| d.as_str()).unwrap_or_default().replace('\n', " ");
        out.push(ParamDoc {
            key: key_path.clone(),
            kind: kind_of(target, defs),
            required: required.contains(&key.as_str()),
            default: p.get("default").map(|d| d.to_string()),
            meaning,
        });
        if target.get("properties").is_some() {
            out.extend(props(target, defs, &format!("{key_path}.")));
        }
    }
    out
}

/// `Option<T>`'s schema is `T or null`; TOML has no null, so the docs show `T`.
fn nullable_inner(p: &serde_json::Value) -> &serde_json::Value {
    if let Some(any) = p.get("anyOf").and_then(|a| a.as_array())
        && let Some(inner) = any.iter().find(|s| s.get("type").and_then(|t| t.as_str()) != Some("null"))
    {
        return inner;
    }
    p
}

fn kind_of(s: &serde_json::Value, defs: &serde_json::Map<String, serde_json::Value>) -> String {
    let s = resolve(s, defs);
    let t = match s.get("type") {
        Some(serde_json::Value::String(t)) => t.clone(),
        Some(serde_json::Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str()).find(|t| *t != "null").unwrap_or("any").to_string(),
        _ => return "any".into(),
    };
    match t.as_str() {
        "number" => "number".into(),
        "integer" => "integer".into(),
        "array" => match s.get("items") {
            Some(items) => format!("array of {}", kind_of(items, defs)),
            None => match s.get("prefixItems").and_then(|p| p.as_array()) {
                Some(items) => format!("array of {} {}", items.len(), items.first().map(|i| kind_of(i, defs)).unwrap_or_default()),
                None => "array".into(),
            },
        },
        "object" => match s.get("additionalProperties") {
            Some(v) if v.is_object() => format!("table of {}", kind_of(v, defs)),
            _ if s.get("properties").is_some() => "table".into(),
            _ => "table".into(),
        },
        other => other.to_string(),
    }
}

/// `seaworthy checks [NAME]` as text.
pub fn render_docs(only: Option<&str>) -> Result<String, String> {
    let selected: Vec<&CheckInfo> = match only {
        Some(name) => match find(name) {
            Some(c) => vec![c],
            None => {
                let names: Vec<&str> = CHECKS.iter().map(|c| c.name).collect();
                let near = nearest(name, &names).map(|n| format!("; did you mean {n}?")).unwrap_or_default();
                return Err(format!("no check named {name:?}; the checks are: {}{near}", names.join(", ")));
            }
        },
        None => CHECKS.iter().collect(),
    };
    let mut out = String::new();
    for c in selected {
        let (about, forms) = docs(c);
        out.push_str(&format!("{}\n  {}\n", c.name, about.replace('\n', " ")));
        for (form, params) in forms {
            if let Some(f) = form {
                out.push_str(&format!("\n  {}\n", f.replace('\n', " ")));
            }
            for p in params {
                let when = match (&p.default, p.required) {
                    (Some(d), _) => format!("default {d}"),
                    (None, true) => "required".to_string(),
                    // The schema requires one of the three spellings (see workload_aliases).
                    (None, false) if p.meaning.starts_with("Same as `workload`") => "alias".to_string(),
                    (None, false) if p.key == "workload" => "required".to_string(),
                    (None, false) => "optional".to_string(),
                };
                out.push_str(&format!("    {:<22} {:<18} {:<18} {}\n", p.key, p.kind, when, p.meaning));
            }
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
