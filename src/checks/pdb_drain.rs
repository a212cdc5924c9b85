//! `pdb-drain` (shared/STACKS.md): a node drain as `kubectl drain` does it — cordon, then evict
//! every PDB-covered Pod of the node through the Eviction API at once, each retried every few
//! seconds while the API answers 429 — with traffic running. Passes when an eviction that would
//! exceed maxUnavailable is refused with 429 and retried, no more than maxUnavailable Pods are
//! unavailable at any moment, and no request fails. The negative control (no PDB): every eviction
//! is accepted at once and availability drops below the budget; reported.
//!
//! Only the covered Pods are evicted, not MySQL next to them: the check is about the budget, and
//! a single-replica database without one would take the site down by design.
//!
//! Unavailable = desired replicas - Pods that are Ready and not being deleted (the disruption
//! controller's "healthy"), replayed from the Observer's Pod lines (`created`, `ready`, `not
//! ready`, `terminating`, `deleted`), which come from one watch stream in API order. Covered Pods
//! are told by their ReplicaSet's generateName, which replacements share.
//!
//! Room to drain: with one schedulable node (or when every node holding the Pods must be
//! cordoned to evict more than maxUnavailable of them), replacements have nowhere to go and a
//! drain cannot finish — exactly what a budget is for. Then the check verifies that the budget
//! held (one eviction accepted, the rest refused with 429 and retried for `hold_s`), uncordons,
//! and waits for the Service to have every replica ready again. With room, the drain must finish
//! within `drain_timeout_s`. Nodes are cordoned only if they were schedulable, and uncordoned at
//! the end whatever happens (also on an error or a cancelled run, from Drop).

use super::hpa_scale::Traffic;
use crate::cleanup::Cleanup;
use super::{CheckContext, Verdict};
use crate::cluster::NodeInfo;
use crate::observe::{Entry, EventLog, Source, now_ms};
use crate::traffic::Schedule;
use crate::wait::eviction::EvictionOutcome;
use crate::wait::watch as waits;
use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// minAvailable or maxUnavailable as the disruption controller resolves it: a percentage of the
/// expected Pods, rounded up (GetScaledValueFromIntOrPercent with roundUp, for both fields).
pub fn resolve_int_or_percent(field: &str, v: &IntOrString, expected: i32) -> Result<i32> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: i64 = s.strip_suffix('%').and_then(|p| p.parse().ok()).with_context(|| format!("{field} {s:?} is neither a number nor a percentage"))?;
            Ok(((pct * expected as i64 + 99) / 100) as i32)
        }
    }
}

/// What a PodDisruptionBudget allows: `desired_healthy` of `expected` Pods must stay healthy. The
/// eviction API refuses (429) whenever `disruptions_allowed` is 0, and `kubectl drain` retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub pdb: String,
    /// `minAvailable 2` / `maxUnavailable 34%`, as written.
    pub spelt: String,
    pub expected: i32,
    pub desired_healthy: i32,
    /// From the PDB's status when the disruption controller has seen its spec; `None` when the
    /// budget was resolved from the spec alone (a control without the PDB, or a status not
    /// written yet).
    pub status: Option<(i32, i32)>,
}

impl Budget {
    /// The status the disruption controller wrote when it is current, else the spec resolved
    /// against `expected` as the controller would.
    pub fn of(pdb: &PodDisruptionBudget, expected: i32) -> Result<Budget> {
        let name = pdb.metadata.name.clone().unwrap_or_default();
        let spec = pdb.spec.clone().unwrap_or_default();
        let (spelt, field, value) = match (&spec.min_available, &spec.max_unavailable) {
            (Some(v), None) => (format!("minAvailable {}", show(v)), "minAvailable", v),
            (None, Some(v)) => (format!("maxUnavailable {}", show(v)), "maxUnavailable", v),
            (Some(_), Some(_)) => bail!("pdb {name} sets both minAvailable and maxUnavailable (the API server refuses that)"),
            (None, None) => bail!("pdb {name} sets neither minAvailable nor maxUnavailable"),
        };
        let current = pdb.status.as_ref().filter(|s| s.observed_generation.is_some() && s.observed_generation >= pdb.metadata.generation && s.expected_pods > 0);
        if let Some(s) = current {
            return Ok(Budget { pdb: name, spelt, expected: s.expected_pods, desired_healthy: s.desired_healthy, status: Some((s.current_healthy, s.disruptions_allowed)) });
        }
        let resolved = resolve_int_or_percent(field, value, expected)?;
        let desired_healthy = if field == "minAvailable" { resolved } else { expected - resolved };
        Ok(Budget { pdb: name, spelt, expected, desired_healthy: desired_healthy.max(0), status: None })
    }

    /// How many of the expected Pods may be unavailable at once.
    pub fn allowed_unavailable(&self) -> i32 {
        (self.expected - self.desired_healthy).max(0)
    }

    /// What the budget allowed, for the reason.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} {}: {} of {} Pods must stay healthy, so {} may be unavailable at once",
            self.pdb,
            self.spelt,
            self.desired_healthy,
            self.expected,
            self.allowed_unavailable()
        );
        if let Some((healthy, allowed)) = self.status {
            s.push_str(&format!("; before the drain {healthy} were healthy and {allowed} disruption(s) allowed"));
        }
        s
    }
}

fn show(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// Which nodes to cordon and whether the drain can finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainPlan {
    pub cordon: Vec<String>,
    /// Replacements have a schedulable node to go to.
    pub can_finish: bool,
}

/// Pick the nodes holding the most covered Pods until more than `limit` Pods are to be evicted
/// (so that the budget has to refuse some), keeping a schedulable node free for replacements.
/// When that is impossible, every node holding the Pods is cordoned and the drain cannot finish.
/// `pods` are (Pod, node) of the covered Pods.
pub fn plan_drain(nodes: &[NodeInfo], pods: &[(String, String)], limit: i32) -> DrainPlan {
    // Room is a node new Pods can land on: a tainted control plane (kind's, k3d's) is no room.
    let schedulable: BTreeSet<&str> = nodes.iter().filter(|n| n.ready && n.schedulable).map(|n| n.name.as_str()).collect();
    let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, node) in pods {
        *per_node.entry(node.as_str()).or_default() += 1;
    }
    let mut by_count: Vec<(&str, usize)> = per_node.iter().map(|(n, c)| (*n, *c)).collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut cordon = Vec::new();
    let mut evicted = 0;
    for (node, count) in &by_count {
        if evicted > limit as usize {
            break;
        }
        let left = schedulable.iter().filter(|s| **s != *node && !cordon.iter().any(|c: &String| c == *s)).count();
        if left == 0 {
            break;
        }
        cordon.push(node.to_string());
        evicted += count;
    }
    if evicted > limit as usize {
        return DrainPlan { cordon, can_finish: true };
    }
    DrainPlan { cordon: by_count.iter().map(|(n, _)| n.to_string()).collect(), can_finish: false }
}

/// One unavailability step: from `at_ms` on, `unavailable` of the desired Pods were not serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub at_ms: u64,
    pub unavailable: i32,
    pub ready: Vec<String>,
}

/// desired - ready over `[from_ms, to_ms]`, replayed from the Observer's Pod lines of the Pods
/// whose names start with one of `prefixes`. The first step is the state at `from_ms`.
pub fn unavailability(entries: &[Entry], prefixes: &[String], desired: i32, from_ms: u64, to_ms: u64) -> Vec<Step> {
    let mut ready: BTreeSet<String> = BTreeSet::new();
    let step = |at_ms, ready: &BTreeSet<String>| Step { at_ms, unavailable: (desired - ready.len() as i32).max(0), ready: ready.iter().cloned().collect() };
    let mut steps = Vec::new();
    let mut started = false;
    let mut sorted: Vec<&Entry> = entries.iter().filter(|e| e.source == Source::Pod).collect();
    sorted.sort_by_key(|e| e.at_ms);
    for e in sorted {
        if e.at_ms > to_ms {
            break;
        }
        let Some(pod) = e.object.strip_prefix("Pod/").filter(|p| prefixes.iter().any(|x| p.starts_with(x.as_str()))) else { continue };
        if e.at_ms >= from_ms && !started {
            steps.push(step(from_ms, &ready));
            started = true;
        }
        let changed = match e.message.as_str() {
            "ready" => ready.insert(pod.to_string()),
            "not ready" => ready.remove(pod),
            m if m.starts_with("terminating") || m.starts_with("deleted") => ready.remove(pod),
            _ => false,
        };
        if changed && started {
            steps.push(step(e.at_ms, &ready));
        }
    }
    if !started {
        steps.push(step(from_ms, &ready));
    }
    steps
}

/// One eviction request and its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub at_ms: u64,
    pub pod: String,
    pub outcome: EvictionOutcome,
}

/// How the drain of one Pod ended.
#[derive(Debug, Clone, PartialEq)]
pub enum PodDrain {
    /// Evicted and gone.
    Gone { gone_ms: u64 },
    /// Evicted, but still there when the wait for its deletion ended.
    NotGone(String),
    /// Still refused when the drain's deadline came.
    Blocked,
    /// An answer that is neither success nor 429 (e.g. 500 for two budgets on one Pod).
    Error(String),
}

#[derive(Debug, Clone)]
pub struct Expect {
    pub max_unavailable: i32,
    pub desired: i32,
    pub pdb: String,
    /// What the budget allowed, in words ([`Budget::describe`]).
    pub budget: String,
}

#[derive(Debug, Clone)]
pub struct Observed {
    pub can_finish: bool,
    pub cordoned: Vec<String>,
    pub pdb_present: bool,
    pub attempts: Vec<Attempt>,
    pub drained: Vec<(String, PodDrain)>,
    pub drain_started_ms: u64,
    /// How long blocked evictions were retried, for the messages.
    pub retried_for: Duration,
    pub steps: Vec<Step>,
    pub traffic: Traffic,
    /// After the uncordon: every replica ready again, or why not.
    pub recovered: Result<Duration, String>,
    /// Covered Pods that were not ready at the end of the drain, with why (scheduler's words).
    pub stuck: Vec<String>,
}

pub fn judge(obs: &Observed, want: &Expect) -> Verdict {
    let secs = |ms: u64| ms.saturating_sub(obs.drain_started_ms) as f64 / 1000.0;
    let accepted: BTreeSet<&str> = obs.attempts.iter().filter(|a| a.outcome == EvictionOutcome::Evicted).map(|a| a.pod.as_str()).collect();
    let refused: Vec<&Attempt> = obs.attempts.iter().filter(|a| matches!(a.outcome, EvictionOutcome::BlockedByBudget { .. })).collect();
    let refused_pods: BTreeSet<&str> = refused.iter().map(|a| a.pod.as_str()).collect();
    let worst = obs.steps.iter().max_by_key(|s| (s.unavailable, std::cmp::Reverse(s.at_ms)));
    let unavailable_max = worst.map(|s| s.unavailable).unwrap_or(0);
    let nodes = obs.cordoned.join(", ");
    // A 429 from API Priority and Fairness is a retry too, but says nothing about the budget.
    let throttled = obs.attempts.iter().filter(|a| matches!(a.outcome, EvictionOutcome::RetryLater { .. })).count();
    let evictions = format!(
        "{} evictions accepted, {} refused with 429 ({} times){}",
        accepted.len(),
        refused_pods.len(),
        refused.len(),
        if throttled > 0 { format!(", {throttled} throttled (429 without a budget cause)") } else { String::new() }
    );
    let metrics = |v: Verdict| {
        let mut v = v
            .with_metric("unavailable_max", unavailable_max as f64)
            .with_metric("allowed_unavailable", want.max_unavailable as f64)
            .with_metric("evictions_429", refused.len() as f64);
        let gone: Vec<u64> = obs.drained.iter().filter_map(|(_, d)| if let PodDrain::Gone { gone_ms } = d { Some(*gone_ms) } else { None }).collect();
        if obs.can_finish && gone.len() == obs.drained.len() && !gone.is_empty() {
            v = v.with_metric("drain_s", secs(*gone.iter().max().unwrap()));
        }
        v
    };

    if obs.drained.len() as i32 <= want.max_unavailable {
        return Verdict::skipped(format!(
            "the drained node(s) {nodes} hold only {} of the covered Pods: a budget that lets {} go ({}) is never put to the test",
            obs.drained.len(),
            want.max_unavailable,
            want.budget
        ));
    }
    if let Some((pod, PodDrain::Error(e))) = obs.drained.iter().find(|(_, d)| matches!(d, PodDrain::Error(_))) {
        return metrics(Verdict::fail(format!("evicting {pod} failed: {e}")));
    }
    if unavailable_max > want.max_unavailable {
        let w = worst.expect("a maximum");
        let why = if obs.pdb_present {
            format!("PodDisruptionBudget {} did not hold them back", want.pdb)
        } else {
            "no PodDisruptionBudget protects these Pods".to_string()
        };
        return metrics(Verdict::fail(format!(
            "{} of {} Pods unavailable at once {:.1}s into the drain of {nodes} (still ready: {}): {evictions}; {why}; the budget allows {} ({})",
            w.unavailable,
            want.desired,
            secs(w.at_ms),
            if w.ready.is_empty() { "none".to_string() } else { w.ready.join(", ") },
            want.max_unavailable,
            want.budget
        )));
    }
    if obs.traffic.sent == 0 {
        return metrics(Verdict::harness_error(format!("the load sent no request during the drain of {nodes}, so \"no failed requests\" was not tested")));
    }
    if obs.traffic.failed > 0 {
        return metrics(Verdict::fail(format!(
            "{} of {} requests failed during the drain of {nodes}: {}",
            obs.traffic.failed, obs.traffic.sent, obs.traffic.failures
        )));
    }
    if accepted.is_empty() {
        let cause = refused.last().map(|a| describe_outcome(&a.outcome)).unwrap_or_default();
        return metrics(Verdict::fail(format!("no eviction was accepted in {:.0}s: the budget allowed no disruption at all ({cause})", obs.retried_for.as_secs_f64())));
    }
    if refused.is_empty() {
        return metrics(Verdict::fail(format!("{evictions}: the budget never refused an eviction, so it was not put to the test")));
    }
    if obs.can_finish {
        let left: Vec<String> = obs.drained.iter().filter(|(_, d)| !matches!(d, PodDrain::Gone { .. })).map(|(p, d)| format!("{p} ({})", describe_drain(d))).collect();
        if !left.is_empty() {
            let stuck = if obs.stuck.is_empty() { String::new() } else { format!("; not ready: {}", obs.stuck.join("; ")) };
            return metrics(Verdict::fail(format!(
                "the drain of {nodes} did not finish within {:.0}s: {}{stuck}; {evictions}",
                obs.retried_for.as_secs_f64(),
                left.join(", ")
            )));
        }
    }
    if let Err(e) = &obs.recovered {
        return metrics(Verdict::fail(format!("after the uncordon of {nodes} the Pods did not all come back: {e}")));
    }
    let recovered = obs.recovered.as_ref().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let last_cause = refused.last().map(|a| describe_outcome(&a.outcome)).unwrap_or_default();
    let how = if obs.can_finish {
        let gone = obs.drained.iter().filter_map(|(_, d)| if let PodDrain::Gone { gone_ms } = d { Some(*gone_ms) } else { None }).max().unwrap_or(0);
        format!("the drain of {nodes} finished in {:.0}s", secs(gone))
    } else {
        format!(
            "{nodes} was the only room for these Pods, so the drain could not finish; refusals kept coming for {:.0}s",
            obs.retried_for.as_secs_f64()
        )
    };
    metrics(Verdict::pass(format!(
        "{how}: {evictions} and retried ({last_cause}); never more than {unavailable_max} of {} Pods unavailable (budget {}); 0 of {} requests failed; all {} ready {recovered:.0}s after the uncordon",
        want.desired, want.budget, obs.traffic.sent, want.desired
    )))
}

fn describe_outcome(o: &EvictionOutcome) -> String {
    match o {
        EvictionOutcome::Evicted => "evicted".into(),
        EvictionOutcome::BlockedByBudget { cause, .. } => cause.clone(),
        EvictionOutcome::RetryLater { message, .. } => format!("throttled: {message}"),
        EvictionOutcome::PodGone => "already gone".into(),
        EvictionOutcome::Rejected { code, reason, message } => format!("{code} {reason}: {message}"),
        EvictionOutcome::NoResponse(e) => format!("no response: {e}"),
    }
}

fn describe_drain(d: &PodDrain) -> String {
    match d {
        PodDrain::Gone { .. } => "gone".into(),
        PodDrain::NotGone(e) => format!("evicted, not gone: {e}"),
        PodDrain::Blocked => "still refused".into(),
        PodDrain::Error(e) => e.clone(),
    }
}

/// Nodes this check cordoned, through the run's [`Cleanup`] (which annotates them with the run
/// id and uncordons them on Ctrl-C, when no destructor runs). `undo` uncordons them; if it is
/// never reached (an error that skipped it, a panic, a cancelled run), Drop does it on the runtime.
struct Cordoned {
    cleanup: Cleanup,
    log: EventLog,
    nodes: Vec<String>,
}

impl Cordoned {
    async fn cordon(&mut self, node: &str) -> Result<()> {
        if self.cleanup.cordon(node).await? {
            self.nodes.push(node.to_string());
            self.log.push(Source::Action, format!("Node/{node}"), "cordoned");
        } else {
            self.log.push(Source::Action, format!("Node/{node}"), "already unschedulable: left as it is");
        }
        Ok(())
    }

    async fn undo(mut self) -> Result<()> {
        let mut errors = Vec::new();
        for node in std::mem::take(&mut self.nodes) {
            match self.cleanup.uncordon(&node).await {
                Ok(true) => self.log.push(Source::Action, format!("Node/{node}"), "uncordoned"),
                Ok(false) => self.log.push(Source::Action, format!("Node/{node}"), "no longer carries this run's cordon: left as it is"),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if !errors.is_empty() {
            bail!("could not uncordon {}", errors.join("; "));
        }
        Ok(())
    }
}

impl Drop for Cordoned {
    fn drop(&mut self) {
        if self.nodes.is_empty() {
            return;
        }
        let nodes = std::mem::take(&mut self.nodes);
        let cleanup = self.cleanup.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    for node in nodes {
                        if let Err(e) = cleanup.uncordon(&node).await {
                            eprintln!("pdb-drain: {e:#}");
                        }
                    }
                });
            }
            // The run's final cleanup still has them.
            Err(_) => eprintln!("pdb-drain: nodes still cordoned: {nodes:?}; the run's cleanup (or `seaworthy down --runs`) uncordons them"),
        }
    }
}

/// The budget of the good stack's PDB `name` (the variant being run may have removed it), from its
/// spec; else the check's `max_unavailable`.
fn promised_budget(ctx: &CheckContext, name: &str, desired: i32, param: Option<i32>) -> Result<Budget> {
    let good = crate::stack::Stack::load(&ctx.stack.dir).with_context(|| format!("reading the good stack in {}", ctx.stack.dir.display()))?;
    let declared = good.objects.iter().find_map(|o| match &o.resource {
        crate::stack::Resource::PodDisruptionBudget(p) if o.resource.name() == name => Some(p.clone()),
        _ => None,
    });
    match (declared, param) {
        (Some(p), _) => Budget::of(&p, desired),
        (None, Some(l)) => Ok(Budget { pdb: name.into(), spelt: format!("max_unavailable {l} (stack.toml)"), expected: desired, desired_healthy: desired - l, status: None }),
        (None, None) => bail!("no PodDisruptionBudget {name} in the stack and no max_unavailable param: nothing to hold the drain to"),
    }
}

/// `kubectl drain`'s eviction of one Pod: evict; on 429 wait `retry` and again, until
/// `deadline`; once accepted, wait for the Pod to be gone.
pub(crate) async fn drain_pod(ctx: &CheckContext, pod: &Pod, deadline: Instant, retry: Duration, attempts: &Mutex<Vec<Attempt>>) -> PodDrain {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let grace = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30).max(0) as u64;
    loop {
        let at_ms = now_ms();
        let outcome = ctx.actions.evict(&name).await;
        attempts.lock().expect("attempts").push(Attempt { at_ms, pod: name.clone(), outcome: outcome.clone() });
        match outcome {
            EvictionOutcome::Evicted => {
                return match waits::pod_gone(&ctx.client, &ctx.ns, &name, &uid, Duration::from_secs(grace + 30)).await {
                    Ok(()) => PodDrain::Gone { gone_ms: now_ms() },
                    Err(e) => PodDrain::NotGone(e.to_string()),
                };
            }
            EvictionOutcome::PodGone => return PodDrain::Gone { gone_ms: now_ms() },
            EvictionOutcome::BlockedByBudget { .. } | EvictionOutcome::RetryLater { .. } => {
                if Instant::now() + retry > deadline {
                    return PodDrain::Blocked;
                }
                // kubectl drain's own rhythm: "will retry after 5s".
                tokio::time::sleep(retry).await;
            }
            other => return PodDrain::Error(describe_outcome(&other)),
        }
    }
}

struct Drained {
    drained: Vec<(String, PodDrain)>,
    drain_started_ms: u64,
    retried_for: Duration,
    stuck: Vec<String>,
}

pub async fn run(ctx: &CheckContext) -> Result<Verdict> {
    let p: super::params::PdbDrain = ctx.params_as()?;
    let (deployment, pdb_name) = (p.deployment.clone(), p.pdb.clone());
    let d = Api::<Deployment>::namespaced(ctx.client.clone(), &ctx.ns).get(&deployment).await.with_context(|| format!("reading deployment {deployment}"))?;
    let spec = d.spec.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    let selector = super::actions::selector_of(&spec.selector.match_labels.clone().unwrap_or_default());
    let pdb = Api::<PodDisruptionBudget>::namespaced(ctx.client.clone(), &ctx.ns).get_opt(&pdb_name).await?;
    let budget = match &pdb {
        Some(live) => Budget::of(live, desired)?,
        // The control without a PDB is held to the budget the stack promises: the good stack's.
        None => promised_budget(ctx, &pdb_name, desired, p.max_unavailable)?,
    };
    let max_unavailable = budget.allowed_unavailable();
    if let Some(l) = p.max_unavailable
        && l != max_unavailable
    {
        bail!("{}/stack.toml: check pdb-drain: max_unavailable = {l}, but pdb {pdb_name} lets {max_unavailable} go ({})", ctx.stack.dir.display(), budget.describe());
    }
    let want = Expect { max_unavailable, desired, pdb: pdb_name.clone(), budget: budget.describe() };

    let covered: Vec<Pod> = ctx
        .actions
        .pods(&selector)
        .await?
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
        .collect();
    let prefixes: Vec<String> = covered.iter().filter_map(|p| p.metadata.generate_name.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let on_node: Vec<(String, String)> =
        covered.iter().map(|p| (p.metadata.name.clone().unwrap_or_default(), p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default())).collect();
    let plan = plan_drain(&ctx.info.nodes, &on_node, max_unavailable);
    // A node that was already cordoned is someone else's business: it is neither cordoned nor
    // uncordoned here.
    let already: BTreeSet<&str> = ctx.info.nodes.iter().filter(|n| n.unschedulable).map(|n| n.name.as_str()).collect();
    let victims: Vec<&Pod> = covered.iter().filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| plan.cordon.iter().any(|c| c == n))).collect();

    let retry = Duration::from_secs_f64(p.retry_s);
    let drain_for = if plan.can_finish { p.drain_timeout_s } else { p.hold_s };
    let recovery_timeout = Duration::from_secs_f64(p.recovery_s);
    let service = p.service.clone().unwrap_or_else(|| ctx.stack.spec.entry.service.clone());
    let rate = p.rate;
    let path = p.path.as_deref();

    // The longest the phase can take; the load is stopped when the drain and recovery are done.
    let span = Duration::from_secs_f64(drain_for) + recovery_timeout + Duration::from_secs(300);
    let running = ctx.start_load(&format!("drain of {}", plan.cordon.join(", ")), ctx.load_config(path, Schedule::constant(rate, span)?)).await?;
    let window_from = now_ms();

    let mut cordoned = Cordoned { cleanup: ctx.cleanup.clone(), log: ctx.log.clone(), nodes: Vec::new() };
    let attempts = Mutex::new(Vec::new());
    let drained = async {
        for node in plan.cordon.iter().filter(|n| !already.contains(n.as_str())) {
            cordoned.cordon(node).await.with_context(|| format!("cordoning {node}"))?;
            waits::node_cordoned(&ctx.client, node, Duration::from_secs(60)).await?;
        }
        let drain_started_ms = now_ms();
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(drain_for);
        let results = futures::future::join_all(victims.iter().map(|p| drain_pod(ctx, p, deadline, retry, &attempts))).await;
        let retried_for = started.elapsed();
        let drained: Vec<(String, PodDrain)> = victims.iter().map(|p| p.metadata.name.clone().unwrap_or_default()).zip(results).collect();
        // Why covered Pods are not ready (a replacement the scheduler cannot place): in its words.
        let stuck = ctx
            .actions
            .pods(&selector)
            .await?
            .iter()
            .map(crate::wait::pods::pod_ready)
            .filter(|p| p.is_waiting())
            .map(|p| p.reason().to_string())
            .collect();
        anyhow::Ok(Drained { drained, drain_started_ms, retried_for, stuck })
    }
    .await;
    let uncordoned = cordoned.undo().await;
    let recovered = match (&drained, &uncordoned) {
        (Ok(_), Ok(())) => {
            let t = Instant::now();
            waits::endpoints_ready(&ctx.client, &ctx.ns, &service, desired as usize, recovery_timeout).await.map(|_| t.elapsed()).map_err(|e| e.to_string())
        }
        _ => Err("not waited for".into()),
    };
    let (phase, _) = ctx.finish_phase(running, true).await;
    let drained = drained?;
    uncordoned?;

    let steps = unavailability(&ctx.log.entries(), &prefixes, desired, window_from, phase.ended_ms);
    let obs = Observed {
        can_finish: plan.can_finish,
        cordoned: plan.cordon.clone(),
        pdb_present: pdb.is_some(),
        attempts: attempts.into_inner().expect("attempts"),
        drained: drained.drained,
        drain_started_ms: drained.drain_started_ms,
        retried_for: drained.retried_for,
        steps,
        traffic: Traffic::of(&phase),
        recovered,
        stuck: drained.stuck,
    };
    let mut v = judge(&obs, &want);
    v.phases = vec![phase];
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::observe::pod_changes;
    use crate::wait::eviction::classify_eviction;

    use crate::samples::value as sample;

    const T0: u64 = 1_795_000_000_000;

    fn node(name: &str) -> NodeInfo {
        NodeInfo { name: name.into(), internal_ip: None, ready: true, unschedulable: false, schedulable: true }
    }

    fn blocked() -> EvictionOutcome {
        classify_eviction(&serde_json::from_value(sample("eviction-blocked-429.json")).unwrap())
    }

    fn evicted() -> EvictionOutcome {
        classify_eviction(&serde_json::from_value(sample("eviction-allowed-response.json")).unwrap())
    }

    /// Pod states (ready / terminating) of the `web` Pods as the Observer writes them: produced
    /// by its own differ from the captured terminating Pod, renamed (derived).
    struct Pods {
        entries: Vec<Entry>,
        last: BTreeMap<String, Pod>,
    }

    impl Pods {
        fn new() -> Pods {
            Pods { entries: Vec::new(), last: BTreeMap::new() }
        }

        fn pod(name: &str, ready: bool, terminating: bool) -> Pod {
            let mut v = sample("pod-terminating.json");
            v["metadata"]["name"] = name.into();
            if !terminating {
                v["metadata"].as_object_mut().unwrap().remove("deletionTimestamp");
                v["metadata"].as_object_mut().unwrap().remove("deletionGracePeriodSeconds");
            }
            for c in v["status"]["conditions"].as_array_mut().unwrap() {
                if c["type"] == "Ready" {
                    c["status"] = if ready { "True" } else { "False" }.into();
                }
            }
            serde_json::from_value(v).unwrap()
        }

        fn at(&mut self, at_ms: u64, name: &str, ready: bool, terminating: bool) {
            let p = Pods::pod(name, ready, terminating);
            for line in pod_changes(self.last.get(name), &p) {
                self.entries.push(Entry { at_ms, source: Source::Pod, object: format!("Pod/{name}"), message: line });
            }
            self.last.insert(name.to_string(), p);
        }

        fn deleted(&mut self, at_ms: u64, name: &str) {
            let p = self.last.remove(name).unwrap();
            self.entries.push(Entry { at_ms, source: Source::Pod, object: format!("Pod/{name}"), message: crate::observe::pod_deleted(&p) });
        }
    }

    fn prefixes() -> Vec<String> {
        vec!["web-57d8bfc944-".into()]
    }

    fn three_ready() -> Pods {
        let mut p = Pods::new();
        for n in ["web-57d8bfc944-a", "web-57d8bfc944-b", "web-57d8bfc944-c"] {
            p.at(T0 - 120_000, n, false, false);
            p.at(T0 - 100_000, n, true, false);
        }
        // Another workload's Pod in the namespace does not count.
        p.at(T0 - 100_000, "mysql-6f7d-x", true, false);
        p.at(T0 + 5_000, "mysql-6f7d-x", false, true);
        p
    }

    fn expect() -> Expect {
        let pdb: PodDisruptionBudget = serde_json::from_value(sample("pdb.json")).unwrap();
        let budget = Budget::of(&pdb, 3).unwrap();
        Expect { max_unavailable: budget.allowed_unavailable(), desired: 3, pdb: "web".into(), budget: budget.describe() }
    }

    /// The captured PDB with its spec rewritten to `field: value` (derived: the disruption
    /// controller's status for it is then what it would write).
    fn pdb_with(field: &str, value: serde_json::Value, status: Option<(i32, i32, i32, i32)>) -> PodDisruptionBudget {
        let mut v = sample("pdb.json");
        v["spec"].as_object_mut().unwrap().remove("maxUnavailable");
        v["spec"][field] = value;
        match status {
            Some((expected, desired, current, allowed)) => {
                v["status"]["expectedPods"] = expected.into();
                v["status"]["desiredHealthy"] = desired.into();
                v["status"]["currentHealthy"] = current.into();
                v["status"]["disruptionsAllowed"] = allowed.into();
            }
            None => {
                v.as_object_mut().unwrap().remove("status");
            }
        }
        serde_json::from_value(v).unwrap()
    }

    fn attempts(list: &[(u64, &str, EvictionOutcome)]) -> Vec<Attempt> {
        list.iter().map(|(t, p, o)| Attempt { at_ms: *t, pod: p.to_string(), outcome: o.clone() }).collect()
    }

    fn traffic() -> Traffic {
        Traffic { sent: 900, failed: 0, backends: 3, failures: String::new() }
    }

    #[test]
    fn percentages_resolve_like_the_disruption_controller() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(resolve_int_or_percent("maxUnavailable", &IntOrString::Int(1), 3).unwrap(), 1);
        assert_eq!(resolve_int_or_percent("maxUnavailable", &pct("34%"), 3).unwrap(), 2, "rounded up");
        assert_eq!(resolve_int_or_percent("minAvailable", &pct("50%"), 3).unwrap(), 2, "rounded up too");
        let e = resolve_int_or_percent("minAvailable", &pct("one"), 3).unwrap_err().to_string();
        assert!(e.starts_with("minAvailable \"one\""), "{e}");
    }

    /// The budget as the eviction API applies it, read from the PDB's status (real objects).
    #[test]
    fn the_budget_is_read_from_the_pdb_status() {
        let before: PodDisruptionBudget = serde_json::from_value(sample("pdb.json")).unwrap();
        let b = Budget::of(&before, 99).unwrap();
        assert_eq!((b.expected, b.desired_healthy, b.allowed_unavailable(), b.status), (3, 2, 1, Some((3, 1))), "status wins over the replicas given");
        assert_eq!(b.describe(), "web maxUnavailable 1: 2 of 3 Pods must stay healthy, so 1 may be unavailable at once; before the drain 3 were healthy and 1 disruption(s) allowed");
        let after: PodDisruptionBudget = serde_json::from_value(sample("pdb-after-eviction.json")).unwrap();
        let b = Budget::of(&after, 3).unwrap();
        assert_eq!((b.allowed_unavailable(), b.status), (1, Some((2, 0))));
    }

    #[test]
    fn min_available_and_percentages_are_budgets_too() {
        // minAvailable 2 of 3: one may go, as with maxUnavailable 1.
        let b = Budget::of(&pdb_with("minAvailable", 2.into(), Some((3, 2, 3, 1))), 3).unwrap();
        assert_eq!((b.spelt.as_str(), b.allowed_unavailable()), ("minAvailable 2", 1));
        // minAvailable 1 of 3 lets two go at once.
        let b = Budget::of(&pdb_with("minAvailable", 1.into(), Some((3, 1, 3, 2))), 3).unwrap();
        assert_eq!(b.allowed_unavailable(), 2);
        // Spec only (a status not written yet): resolved against the replicas as the controller does.
        assert_eq!(Budget::of(&pdb_with("minAvailable", "50%".into(), None), 4).unwrap().allowed_unavailable(), 2);
        assert_eq!(Budget::of(&pdb_with("minAvailable", "51%".into(), None), 4).unwrap().allowed_unavailable(), 1);
        assert_eq!(Budget::of(&pdb_with("maxUnavailable", "34%".into(), None), 3).unwrap().allowed_unavailable(), 2);
        // A status of an older generation is not trusted.
        let mut stale = pdb_with("minAvailable", 2.into(), Some((3, 1, 3, 2)));
        stale.metadata.generation = Some(2);
        assert_eq!(Budget::of(&stale, 3).unwrap().allowed_unavailable(), 1);
    }

    #[test]
    fn a_min_available_budget_is_judged_and_named_in_the_reason() {
        let b = Budget::of(&pdb_with("minAvailable", 1.into(), Some((3, 1, 3, 2))), 3).unwrap();
        let want = Expect { max_unavailable: b.allowed_unavailable(), desired: 3, pdb: "web".into(), budget: b.describe() };
        // Two of three down at once is what minAvailable 1 allows.
        let mut p = three_ready();
        p.at(T0 + 1_000, "web-57d8bfc944-a", true, true);
        p.at(T0 + 1_000, "web-57d8bfc944-b", true, true);
        p.at(T0 + 40_000, "web-57d8bfc944-x", true, false);
        p.at(T0 + 41_000, "web-57d8bfc944-y", true, false);
        let obs = Observed {
            attempts: attempts(&[(T0 + 900, "web-57d8bfc944-a", evicted()), (T0 + 900, "web-57d8bfc944-b", evicted()), (T0 + 900, "web-57d8bfc944-c", blocked())]),
            drained: vec![
                ("web-57d8bfc944-a".into(), PodDrain::Gone { gone_ms: T0 + 24_000 }),
                ("web-57d8bfc944-b".into(), PodDrain::Gone { gone_ms: T0 + 24_000 }),
                ("web-57d8bfc944-c".into(), PodDrain::Blocked),
            ],
            steps: unavailability(&p.entries, &prefixes(), 3, T0, T0 + 50_000),
            ..single_node_with_budget()
        };
        let v = judge(&obs, &want);
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert!(v.reason.contains("never more than 2 of 3 Pods unavailable (budget web minAvailable 1: 1 of 3 Pods must stay healthy, so 2 may be unavailable at once; before the drain 3 were healthy and 2 disruption(s) allowed)"), "{}", v.reason);
        assert_eq!((v.metrics["unavailable_max"], v.metrics["allowed_unavailable"]), (2.0, 2.0));
        // The same drain held to maxUnavailable 1 fails, and says what the budget allowed.
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("the budget allows 1 (web maxUnavailable 1: 2 of 3 Pods must stay healthy"), "{}", v.reason);
    }

    #[test]
    fn plans_leave_room_or_say_the_drain_cannot_finish() {
        let pods = |list: &[(&str, &str)]| list.iter().map(|(p, n)| (p.to_string(), n.to_string())).collect::<Vec<_>>();
        // One node: everything on it, no room.
        let p = plan_drain(&[node("vm")], &pods(&[("a", "vm"), ("b", "vm"), ("c", "vm")]), 1);
        assert_eq!(p, DrainPlan { cordon: vec!["vm".into()], can_finish: false });
        // Two nodes, 2 + 1: the node with two is drained, the other takes the replacements.
        let p = plan_drain(&[node("n1"), node("n2")], &pods(&[("a", "n1"), ("b", "n2"), ("c", "n2")]), 1);
        assert_eq!(p, DrainPlan { cordon: vec!["n2".into()], can_finish: true });
        // Spread 1 + 1 + 1 over three nodes: two are drained, the third is the room.
        let p = plan_drain(&[node("n1"), node("n2"), node("n3")], &pods(&[("a", "n1"), ("b", "n2"), ("c", "n3")]), 1);
        assert_eq!(p, DrainPlan { cordon: vec!["n1".into(), "n2".into()], can_finish: true });
        // Spread over the only two schedulable nodes: only cordoning both puts more than one at stake.
        let mut cordoned = node("n3");
        cordoned.unschedulable = true;
        cordoned.schedulable = false;
        let p = plan_drain(&[node("n1"), node("n2"), cordoned], &pods(&[("a", "n1"), ("b", "n2")]), 1);
        assert_eq!(p, DrainPlan { cordon: vec!["n1".into(), "n2".into()], can_finish: false });
        // kind with one control plane (tainted NoSchedule) and one worker holding every Pod: the
        // control plane is no room, so the drain cannot finish.
        let control_plane = NodeInfo { schedulable: false, ..node("kind-control-plane") };
        let p = plan_drain(&[control_plane, node("kind-worker")], &pods(&[("a", "kind-worker"), ("b", "kind-worker"), ("c", "kind-worker")]), 1);
        assert_eq!(p, DrainPlan { cordon: vec!["kind-worker".into()], can_finish: false });
    }

    /// Single node, with the budget: one Pod evicted and terminating, its replacement Pending on
    /// the cordoned node, the other two refused with 429 every 5 s; after the uncordon the
    /// replacement becomes ready.
    fn single_node_with_budget() -> Observed {
        let mut p = three_ready();
        p.at(T0 + 1_000, "web-57d8bfc944-a", true, true);
        p.at(T0 + 1_200, "web-57d8bfc944-r", false, false);
        p.deleted(T0 + 24_000, "web-57d8bfc944-a");
        p.at(T0 + 45_000, "web-57d8bfc944-r", true, false);
        let mut list = vec![(T0 + 900, "web-57d8bfc944-a", evicted())];
        for i in 0..7 {
            list.push((T0 + 900 + i * 5_000, "web-57d8bfc944-b", blocked()));
            list.push((T0 + 900 + i * 5_000, "web-57d8bfc944-c", blocked()));
        }
        Observed {
            can_finish: false,
            cordoned: vec!["vm".into()],
            pdb_present: true,
            attempts: attempts(&list),
            drained: vec![
                ("web-57d8bfc944-a".into(), PodDrain::Gone { gone_ms: T0 + 24_000 }),
                ("web-57d8bfc944-b".into(), PodDrain::Blocked),
                ("web-57d8bfc944-c".into(), PodDrain::Blocked),
            ],
            drain_started_ms: T0 + 800,
            retried_for: Duration::from_secs(31),
            steps: unavailability(&p.entries, &prefixes(), 3, T0, T0 + 50_000),
            traffic: traffic(),
            recovered: Ok(Duration::from_secs(13)),
            stuck: vec!["pod web-57d8bfc944-r not ready (phase Pending, no Ready condition yet, PodScheduled=False Unschedulable: 0/1 nodes are available: 1 node(s) were unschedulable.)".into()],
        }
    }

    #[test]
    fn unavailability_is_replayed_from_the_observer_lines() {
        let obs = single_node_with_budget();
        let counts: Vec<(u64, i32)> = obs.steps.iter().map(|s| (s.at_ms - T0, s.unavailable)).collect();
        assert_eq!(counts, vec![(0, 0), (1_000, 1), (45_000, 0)]);
        assert_eq!(obs.steps[1].ready, vec!["web-57d8bfc944-b".to_string(), "web-57d8bfc944-c".to_string()]);
    }

    #[test]
    fn a_drain_without_traffic_proves_nothing() {
        let obs = Observed { traffic: Traffic::default(), ..single_node_with_budget() };
        let v = judge(&obs, &expect());
        assert_eq!((v.outcome, v.failure), (Outcome::Fail, crate::checks::FailureKind::Harness), "{}", v.reason);
        assert!(v.reason.contains("the load sent no request during the drain of vm"), "{}", v.reason);
    }

    #[test]
    fn single_node_budget_held_passes() {
        let v = judge(&single_node_with_budget(), &expect());
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert!(v.reason.starts_with("vm was the only room for these Pods, so the drain could not finish"), "{}", v.reason);
        assert!(v.reason.contains("1 evictions accepted, 2 refused with 429 (14 times) and retried (The disruption budget web needs 2 healthy pods and has 2 currently)"), "{}", v.reason);
        assert!(v.reason.contains("never more than 1 of 3 Pods unavailable (budget web maxUnavailable 1: 2 of 3 Pods must stay healthy, so 1 may be unavailable at once; before the drain 3 were healthy and 1 disruption(s) allowed); 0 of 900 requests failed; all 3 ready 13s after the uncordon"), "{}", v.reason);
        assert_eq!(v.metrics["allowed_unavailable"], 1.0);
        assert_eq!(v.metrics["unavailable_max"], 1.0);
        assert_eq!(v.metrics["evictions_429"], 14.0);
        assert!(!v.metrics.contains_key("drain_s"), "a drain that cannot finish has no duration");
        // A 429 of API Priority and Fairness (derived: the 429 body without its budget cause) is
        // retried and reported, but is no evidence of the budget.
        let mut throttled = sample("eviction-blocked-429.json");
        throttled["details"] = serde_json::json!({"retryAfterSeconds": 1});
        let mut obs = single_node_with_budget();
        obs.attempts.push(Attempt { at_ms: T0 + 2_000, pod: "web-57d8bfc944-b".into(), outcome: classify_eviction(&serde_json::from_value(throttled).unwrap()) });
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert!(v.reason.contains("2 refused with 429 (14 times), 1 throttled (429 without a budget cause)"), "{}", v.reason);
        assert_eq!(v.metrics["evictions_429"], 14.0);
    }

    #[test]
    fn without_a_budget_every_eviction_lands_at_once_and_is_caught() {
        let mut p = three_ready();
        for n in ["web-57d8bfc944-a", "web-57d8bfc944-b", "web-57d8bfc944-c"] {
            p.at(T0 + 1_000, n, true, true);
        }
        for n in ["web-57d8bfc944-x", "web-57d8bfc944-y", "web-57d8bfc944-z"] {
            p.at(T0 + 1_100, n, false, false);
            p.at(T0 + 50_000, n, true, false);
        }
        let obs = Observed {
            pdb_present: false,
            attempts: attempts(&[(T0 + 900, "web-57d8bfc944-a", evicted()), (T0 + 900, "web-57d8bfc944-b", evicted()), (T0 + 900, "web-57d8bfc944-c", evicted())]),
            drained: ["a", "b", "c"].iter().map(|n| (format!("web-57d8bfc944-{n}"), PodDrain::Gone { gone_ms: T0 + 25_000 })).collect(),
            steps: unavailability(&p.entries, &prefixes(), 3, T0, T0 + 60_000),
            ..single_node_with_budget()
        };
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.reason,
            "3 of 3 Pods unavailable at once 0.2s into the drain of vm (still ready: none): \
             3 evictions accepted, 0 refused with 429 (0 times); no PodDisruptionBudget protects these Pods; \
             the budget allows 1 (web maxUnavailable 1: 2 of 3 Pods must stay healthy, so 1 may be unavailable at once; \
             before the drain 3 were healthy and 1 disruption(s) allowed)"
        );
        assert_eq!(v.metrics["unavailable_max"], 3.0);
        assert_eq!(v.metrics["evictions_429"], 0.0);
    }

    #[test]
    fn multi_node_drain_finishes_one_pod_at_a_time() {
        // n2 held b and c: b is evicted at once, c is refused until b's replacement is ready.
        let mut p = three_ready();
        p.at(T0 + 1_000, "web-57d8bfc944-b", true, true);
        p.at(T0 + 1_100, "web-57d8bfc944-x", false, false);
        p.at(T0 + 12_000, "web-57d8bfc944-x", true, false);
        p.at(T0 + 16_000, "web-57d8bfc944-c", true, true);
        p.at(T0 + 16_100, "web-57d8bfc944-y", false, false);
        p.at(T0 + 27_000, "web-57d8bfc944-y", true, false);
        let obs = Observed {
            can_finish: true,
            cordoned: vec!["n2".into()],
            attempts: attempts(&[
                (T0 + 900, "web-57d8bfc944-b", evicted()),
                (T0 + 900, "web-57d8bfc944-c", blocked()),
                (T0 + 5_900, "web-57d8bfc944-c", blocked()),
                (T0 + 10_900, "web-57d8bfc944-c", blocked()),
                (T0 + 15_900, "web-57d8bfc944-c", evicted()),
            ]),
            drained: vec![
                ("web-57d8bfc944-b".into(), PodDrain::Gone { gone_ms: T0 + 24_000 }),
                ("web-57d8bfc944-c".into(), PodDrain::Gone { gone_ms: T0 + 40_800 }),
            ],
            steps: unavailability(&p.entries, &prefixes(), 3, T0, T0 + 60_000),
            stuck: vec![],
            ..single_node_with_budget()
        };
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert!(v.reason.starts_with("the drain of n2 finished in 40s: 2 evictions accepted, 1 refused with 429 (3 times)"), "{}", v.reason);
        assert_eq!(v.metrics["drain_s"], 40.0);
        assert_eq!(v.metrics["unavailable_max"], 1.0);

        // The same drain that never got c out: blocked until the deadline, and why.
        let stuck = Observed {
            drained: vec![("web-57d8bfc944-b".into(), PodDrain::Gone { gone_ms: T0 + 24_000 }), ("web-57d8bfc944-c".into(), PodDrain::Blocked)],
            stuck: vec!["pod web-57d8bfc944-x not ready (phase Pending, PodScheduled=False Unschedulable: 0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable.)".into()],
            ..obs
        };
        let v = judge(&stuck, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("the drain of n2 did not finish within 31s: web-57d8bfc944-c (still refused); not ready: pod web-57d8bfc944-x"), "{}", v.reason);
        assert!(!v.metrics.contains_key("drain_s"));
    }

    #[test]
    fn failed_requests_a_budget_that_refuses_all_and_too_few_pods() {
        let obs = Observed { traffic: Traffic { sent: 900, failed: 4, backends: 3, failures: "4 failures (502 x4) at 1.0-1.3s, backend web-57d8bfc944-a".into() }, ..single_node_with_budget() };
        let v = judge(&obs, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("4 of 900 requests failed during the drain of vm: 4 failures (502 x4)"), "{}", v.reason);

        let all_refused = Observed {
            attempts: attempts(&[(T0 + 900, "web-57d8bfc944-a", blocked()), (T0 + 900, "web-57d8bfc944-b", blocked())]),
            drained: vec![("web-57d8bfc944-a".into(), PodDrain::Blocked), ("web-57d8bfc944-b".into(), PodDrain::Blocked), ("web-57d8bfc944-c".into(), PodDrain::Blocked)],
            steps: vec![Step { at_ms: T0, unavailable: 0, ready: vec![] }],
            ..single_node_with_budget()
        };
        let v = judge(&all_refused, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("no eviction was accepted in 31s"), "{}", v.reason);

        let one = Observed { drained: vec![("web-57d8bfc944-a".into(), PodDrain::Gone { gone_ms: T0 + 24_000 })], ..single_node_with_budget() };
        assert_eq!(judge(&one, &expect()).outcome, Outcome::Skipped);

        let not_back = Observed { recovered: Err("service ns/wordpress with 3 ready endpoints: not done after 240s; last state: 2 ready".into()), ..single_node_with_budget() };
        let v = judge(&not_back, &expect());
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("after the uncordon of vm the Pods did not all come back"), "{}", v.reason);
    }
}
