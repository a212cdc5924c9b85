//! Running a stack's built images the way its Pod templates say, with podman and no cluster:
//! one podman pod per Pod (shared network, IPC and UTS namespaces), the initContainers run to
//! completion in order first, emptyDir volumes as podman volumes shared by the Pod's containers,
//! PVCs as podman volumes that outlive a Pod, ConfigMap/Secret volumes as read-only files from the
//! manifests, env as the kubelet builds it, and the containers' command/args/workingDir as written.
//!
//! Every sandbox has its own podman network, on which each Pod answers to the names of the
//! Services that select it (aardvark-dns), as cluster DNS would; a Pod's ports are published on
//! 127.0.0.1 only. Dropping the [`Sandbox`] removes its pods, volumes and network, also when a
//! test panics. What a killed process could not remove, [`sweep_leftovers`] does: everything
//! carries [`SANDBOX_LABEL`]`=<sandbox>` and [`OWNER_LABEL`]`=<pid>-<process start time>`.
//!
//! Rootful podman only: readiness probes and Pod IPs are the Pods' bridge addresses, which only
//! rootful podman routes from the host (rootless podman keeps them in its own network namespace).

use super::builder::Builder;
use super::tag::ImageBuild;
use crate::stack::{MountedFile, Stack};
use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Names the sandbox (network, pods and volumes alike) everything belongs to.
pub const SANDBOX_LABEL: &str = "io.seaworthy.sandbox";
/// The process that made it: `<pid>-<start time>` (`/proc/<pid>/stat` field 22), so that a
/// leftover of a killed run is told apart from a sandbox of a run still going.
pub const OWNER_LABEL: &str = "io.seaworthy.sandbox-owner";

/// Run podman; stdout on success, an error with its stderr otherwise.
pub fn podman(args: &[&str]) -> Result<String> {
    let out = Command::new("podman").args(args).stdin(Stdio::null()).output().context("running podman")?;
    if !out.status.success() {
        bail!("podman {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The Pods, volumes and network of one test. Removed on Drop.
pub struct Sandbox {
    /// Prefix of everything created (unique per sandbox).
    pub name: String,
    pub network: String,
    pub base: String,
    dir: tempfile::TempDir,
    pods: Vec<String>,
    volumes: Vec<String>,
    counter: usize,
}

/// How to run one Pod of a workload.
#[derive(Debug, Clone, Default)]
pub struct PodOptions {
    /// The Pod's name (hostname, `POD_NAME`). Default: `<workload>-<n>`, or `<statefulset>-<ordinal>`.
    pub name: Option<String>,
    /// StatefulSet ordinal: the Pod is `<name>-<ordinal>` with its own volumeClaimTemplate volumes.
    pub ordinal: Option<usize>,
    /// `(container, "image:version")` replacing a container's image, as `kubectl set image` does.
    pub images: Vec<(String, String)>,
    /// Container ports published on 127.0.0.1 (a free host port each).
    pub publish: Vec<i32>,
}

/// One running (or created) Pod.
#[derive(Debug, Clone)]
pub struct Pod {
    /// The Pod's name, as Kubernetes would have it (also its hostname and POD_NAME).
    pub name: String,
    /// podman's name for it (unique on the machine).
    pub podman_name: String,
    pub workload: String,
    /// Its address on the sandbox network.
    pub ip: String,
    /// Container port -> 127.0.0.1 port.
    pub ports: BTreeMap<i32, u16>,
    /// `(container, podman container name)`, initContainers first.
    pub init_containers: Vec<(String, String)>,
    pub containers: Vec<(String, String)>,
    /// The podman volumes of its emptyDirs (they go with the Pod).
    pub empty_dirs: Vec<String>,
    stack: Stack,
}

/// One container of a Pod ended by [`Pod::terminate`], times counted from the start.
#[derive(Debug, Clone)]
pub struct Terminated {
    pub container: String,
    pub hook_done: Duration,
    pub exited: Duration,
}

impl Sandbox {
    /// A fresh sandbox; `label` goes into the names (e.g. the stack and test).
    pub fn new(label: &str) -> Result<Sandbox> {
        if !Builder::Podman.works() {
            bail!("running images as Pods needs podman (apt-get install podman; then ci/podman-setup.sh)");
        }
        check_rootful()?;
        let clean: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
        let name = format!("sw-{}-{:06x}", clean.trim_matches('-'), rand::random::<u32>() & 0xff_ffff);
        let dir = tempfile::Builder::new().prefix(&format!("{name}-")).tempdir()?;
        let mut sandbox = Sandbox { network: name.clone(), name, base: super::base(), dir, pods: vec![], volumes: vec![], counter: 0 };
        let labels = sandbox.labels();
        podman(&["network", "create", "--label", &labels[0], "--label", &labels[1], &sandbox.network])?;
        // Only now is there something for Drop to remove.
        sandbox.counter = 1;
        Ok(sandbox)
    }

    /// `--label` values of everything this sandbox creates.
    fn labels(&self) -> [String; 2] {
        [format!("{SANDBOX_LABEL}={}", self.name), format!("{OWNER_LABEL}={}", owner_of(std::process::id()).unwrap_or_default())]
    }

    /// Where this sandbox keeps host-side files (ConfigMap/Secret contents).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The podman image reference of `<image>:<version>` (as a manifest writes it), built
    /// first if needed.
    pub fn image(&self, stack: &Stack, manifest_image: &str) -> Result<String> {
        let (image, version) = super::parse_manifest_image(stack, manifest_image)?;
        let b = ImageBuild::new(stack, image, version, &self.base)?;
        super::build::build_image(Builder::Podman, &b, false)?;
        Ok(b.tag)
    }

    /// Create and start one Pod of `workload`: initContainers to completion (each within
    /// `init_timeout`), then its containers. Not waited for readiness: see [`Pod::wait_ready`].
    pub fn run_pod(&mut self, stack: &Stack, workload: &str, opts: &PodOptions, init_timeout: Duration) -> Result<Pod> {
        let pod = self.create_pod(stack, workload, opts)?;
        pod.start(init_timeout)?;
        Ok(pod)
    }

    /// Create one Pod of `workload` (its containers created, none started but the pod's own
    /// infra container, so that the Pod has its address).
    pub fn create_pod(&mut self, stack: &Stack, workload: &str, opts: &PodOptions) -> Result<Pod> {
        let object = stack
            .objects
            .iter()
            .find(|o| o.resource.name() == workload && o.resource.pod_template().is_some())
            .ok_or_else(|| anyhow!("stack {}: no workload {workload:?} with a Pod template", stack.name()))?;
        let (template, _) = object.resource.pod_template().expect("checked above");
        let spec = template.spec.as_ref().ok_or_else(|| anyhow!("workload {workload}: the Pod template has no spec"))?;
        let labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        let sts = stack.stateful_set(workload);

        let pod_name = match (&opts.name, opts.ordinal) {
            (Some(n), _) => n.clone(),
            (None, Some(i)) => format!("{workload}-{i}"),
            (None, None) if sts.is_some() => bail!("StatefulSet {workload}: give the Pod's ordinal"),
            (None, None) => {
                self.counter += 1;
                format!("{workload}-{}", self.counter - 1)
            }
        };
        let podman_name = format!("{}-{pod_name}", self.name);

        // The Services selecting this Pod: their names resolve to it, as cluster DNS does.
        let mut aliases = vec![pod_name.clone()];
        for o in &stack.objects {
            if let crate::stack::Resource::Service(s) = &o.resource {
                let selector = s.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
                if !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                    aliases.push(o.resource.name().to_string());
                }
            }
        }
        let mut ports = BTreeMap::new();
        let mut create: Vec<String> = vec![
            "pod".into(),
            "create".into(),
            "--name".into(),
            podman_name.clone(),
            "--hostname".into(),
            pod_name.clone(),
            "--network".into(),
            self.network.clone(),
        ];
        for l in self.labels() {
            create.extend(["--label".into(), l]);
        }
        for a in &aliases {
            create.extend(["--network-alias".into(), a.clone()]);
        }
        for p in &opts.publish {
            let host = crate::local::free_port();
            ports.insert(*p, host);
            create.extend(["--publish".into(), format!("127.0.0.1:{host}:{p}")]);
        }
        podman(&create.iter().map(String::as_str).collect::<Vec<_>>())?;
        self.pods.push(podman_name.clone());
        podman(&["pod", "start", &podman_name])?;
        let infra = podman(&["pod", "inspect", "--format", "{{.InfraContainerID}}", &podman_name])?;
        let ip = podman(&["inspect", "--format", &format!("{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}", self.network), &infra])?;
        if ip.is_empty() {
            bail!("pod {podman_name} has no address on network {}", self.network);
        }

        // Volumes by name: what to mount for each.
        let mut volumes: BTreeMap<String, String> = BTreeMap::new();
        let mut empty_dirs = Vec::new();
        self.counter += 1;
        let instance = self.counter;
        for v in spec.volumes.iter().flatten() {
            let podman_volume = if v.empty_dir.is_some() {
                // Per Pod instance: a replacement Pod of the same name starts with a new one.
                let name = format!("{podman_name}-{}-{instance}", v.name);
                empty_dirs.push(name.clone());
                Some(name)
            } else if let Some(pvc) = &v.persistent_volume_claim {
                Some(format!("{}-pvc-{}", self.name, pvc.claim_name))
            } else {
                None
            };
            if let Some(name) = podman_volume {
                self.ensure_volume(&name)?;
                volumes.insert(v.name.clone(), name);
            }
        }
        if let Some(claims) = sts.and_then(|s| s.spec.as_ref()).and_then(|s| s.volume_claim_templates.as_ref()) {
            for c in claims {
                let claim = c.metadata.name.clone().unwrap_or_default();
                // The PVC a StatefulSet Pod gets: <template>-<pod>, the same for a replaced Pod.
                let name = format!("{}-pvc-{claim}-{pod_name}", self.name);
                self.ensure_volume(&name)?;
                volumes.entry(claim).or_insert(name);
            }
        }

        let pod = Pod {
            name: pod_name.clone(),
            podman_name: podman_name.clone(),
            workload: workload.to_string(),
            ip: ip.clone(),
            ports,
            init_containers: vec![],
            containers: vec![],
            empty_dirs,
            stack: stack.clone(),
        };
        let mut pod = pod;
        let grace = spec.termination_grace_period_seconds.unwrap_or(30);
        for (is_init, c) in spec.init_containers.iter().flatten().map(|c| (true, c)).chain(spec.containers.iter().map(|c| (false, c))) {
            let ctr = format!("{podman_name}-{}", c.name);
            let args = self.container_args(stack, workload, c, opts, &pod, &volumes, &ctr, grace)?;
            podman(&args.iter().map(String::as_str).collect::<Vec<_>>()).with_context(|| format!("creating container {} of {pod_name}", c.name))?;
            if is_init {
                pod.init_containers.push((c.name.clone(), ctr));
            } else {
                pod.containers.push((c.name.clone(), ctr));
            }
        }
        Ok(pod)
    }

    fn ensure_volume(&mut self, name: &str) -> Result<()> {
        if !self.volumes.iter().any(|v| v == name) {
            let labels = self.labels();
            podman(&["volume", "create", "--label", &labels[0], "--label", &labels[1], name])?;
            self.volumes.push(name.to_string());
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn container_args(
        &self,
        stack: &Stack,
        workload: &str,
        c: &Container,
        opts: &PodOptions,
        pod: &Pod,
        volumes: &BTreeMap<String, String>,
        ctr: &str,
        grace: i64,
    ) -> Result<Vec<String>> {
        let manifest_image = opts
            .images
            .iter()
            .find(|(name, _)| *name == c.name)
            .map(|(_, i)| i.clone())
            .or_else(|| c.image.clone())
            .ok_or_else(|| anyhow!("container {} has no image", c.name))?;
        let image = self.image(stack, &manifest_image)?;
        let mut a: Vec<String> = vec![
            "create".into(),
            "--pod".into(),
            pod.podman_name.clone(),
            "--name".into(),
            ctr.into(),
            // What the kubelet gives before SIGKILL; `podman pod stop` without -t uses it.
            "--stop-timeout".into(),
            grace.to_string(),
        ];
        // The env of the kubelet: ConfigMap/Secret refs resolved by the loader, the downward
        // API's Pod fields filled in here.
        let mut env = stack.container_env(workload, &c.name)?;
        for e in c.env.iter().flatten() {
            let Some(field) = e.value_from.as_ref().and_then(|f| f.field_ref.as_ref()) else { continue };
            let value = match field.field_path.as_str() {
                "metadata.name" => pod.name.clone(),
                "metadata.namespace" => self.name.clone(),
                "status.podIP" | "status.podIPs" => pod.ip.clone(),
                "spec.nodeName" | "status.hostIP" => "127.0.0.1".to_string(),
                other => bail!("container {}: env {} uses fieldRef {other}, which the sandbox does not provide", c.name, e.name),
            };
            env.retain(|(k, _)| *k != e.name);
            env.push((e.name.clone(), value));
        }
        for (k, v) in env {
            a.extend(["--env".into(), format!("{k}={v}")]);
        }
        if let Some(wd) = &c.working_dir {
            a.extend(["--workdir".into(), wd.clone()]);
        }
        // ConfigMap/Secret contents, as files on the host mounted read-only where the manifest says.
        let files = stack.mounted_files(workload, &c.name)?;
        let mounts: Vec<&Path> = c.volume_mounts.iter().flatten().map(|m| Path::new(&m.mount_path)).collect();
        let spec_volumes = stack.pod_spec(workload).and_then(|s| s.volumes.clone()).unwrap_or_default();
        for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
            let ro = if m.read_only == Some(true) { ":ro" } else { "" };
            if let Some(v) = volumes.get(&m.name) {
                if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
                    bail!("container {}: subPath on volume {} is not supported by the sandbox", c.name, m.name);
                }
                // nocopy: an emptyDir or a new PVC starts empty, whatever the image has there.
                a.extend(["--volume".into(), format!("{v}:{}:nocopy{}", m.mount_path, ro.replace(':', ","))]);
                continue;
            }
            let Some(vol) = spec_volumes.iter().find(|v| v.name == m.name) else {
                bail!("container {}: volumeMount {} names no volume of the Pod", c.name, m.name);
            };
            if vol.config_map.is_none() && vol.secret.is_none() {
                bail!("container {}: volume {} is neither emptyDir, PVC, ConfigMap nor Secret: not supported by the sandbox", c.name, m.name);
            }
            let host = self.dir().join(&pod.name).join(&c.name).join(format!("mount-{i}"));
            let mount = Path::new(&m.mount_path);
            if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
                let f = files
                    .iter()
                    .find(|f| f.path == mount)
                    .ok_or_else(|| anyhow!("container {}: no file for subPath mount {}", c.name, m.mount_path))?;
                std::fs::create_dir_all(&host)?;
                let file = host.join("file");
                std::fs::write(&file, &f.content)?;
                a.extend(["--volume".into(), format!("{}:{}:ro", file.display(), m.mount_path)]);
            } else {
                // The whole folder is the volume's, as in a Pod: the image's files there are hidden.
                write_volume_files(&host, mount, &mounts, &files).with_context(|| format!("container {}: volume {}", c.name, m.name))?;
                a.extend(["--volume".into(), format!("{}:{}:ro", host.display(), m.mount_path)]);
            }
        }
        if let Some(cmd) = &c.command {
            a.extend(["--entrypoint".into(), serde_json::to_string(cmd)?]);
        }
        a.push(image);
        a.extend(c.args.iter().flatten().cloned());
        Ok(a)
    }

    /// Remove one Pod now (its containers killed at once), e.g. to replace it.
    pub fn remove_pod(&mut self, pod: &Pod) -> Result<()> {
        podman(&["pod", "rm", "--force", "--time", "0", &pod.podman_name])?;
        self.pods.retain(|p| *p != pod.podman_name);
        for v in &pod.empty_dirs {
            podman(&["volume", "rm", "--force", v])?;
            self.volumes.retain(|x| x != v);
        }
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.counter == 0 {
            return;
        }
        for p in self.pods.drain(..) {
            let _ = Command::new("podman").args(["pod", "rm", "--force", "--time", "0", &p]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        for v in self.volumes.drain(..) {
            let _ = Command::new("podman").args(["volume", "rm", "--force", &v]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        let _ = Command::new("podman").args(["network", "rm", "--force", &self.network]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// Write the files of one ConfigMap/Secret volume mounted (whole) at `mount` into `host`, at
/// their paths inside the volume: an `items[].path` with folders (`conf/site/a.conf`) gets them.
/// `files` are all the container's mounted files; those under a deeper mount of `mounts` belong
/// to that one.
pub fn write_volume_files(host: &Path, mount: &Path, mounts: &[&Path], files: &[MountedFile]) -> Result<()> {
    std::fs::create_dir_all(host)?;
    for f in files {
        let Ok(rel) = f.path.strip_prefix(mount) else { continue };
        if rel.as_os_str().is_empty() {
            continue;
        }
        let deeper = mounts.iter().any(|m| m.as_os_str().len() > mount.as_os_str().len() && m.starts_with(mount) && f.path.starts_with(m));
        if deeper {
            continue;
        }
        if !rel.components().all(|c| matches!(c, std::path::Component::Normal(_))) {
            bail!("{}: a volume file must stay inside its volume", f.path.display());
        }
        let to = host.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&to, &f.content).with_context(|| format!("writing {}", to.display()))?;
    }
    Ok(())
}

/// Fails, saying what to do, when podman runs rootless: the sandbox reaches Pods at their
/// bridge addresses, which rootless podman does not route from the host.
pub fn check_rootful() -> Result<()> {
    if podman(&["info", "--format", "{{.Host.Security.Rootless}}"]).is_ok_and(|r| r == "true") {
        bail!(
            "podman runs rootless here, and the image tests reach Pods at their bridge addresses, which only rootful podman \
             routes from the host: run them as root (sudo -E cargo test --test images)"
        );
    }
    Ok(())
}

/// `<pid>-<start time>` of a running process (the start time in clock ticks since boot, field 22
/// of /proc/<pid>/stat), or None when it is not running.
fn owner_of(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so count from the last ')'.
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?;
    Some(format!("{pid}-{start}"))
}

/// Whether a sandbox with this owner label is a leftover: its process is gone (or the label
/// predates owners, or is unreadable). `alive(pid)` is [`owner_of`] on the live system.
fn is_leftover(owner: Option<&str>, alive: impl Fn(u32) -> Option<String>) -> bool {
    let Some(owner) = owner.filter(|o| !o.is_empty()) else { return true };
    let Some(pid) = owner.split_once('-').and_then(|(p, _)| p.parse::<u32>().ok()) else { return true };
    alive(pid).as_deref() != Some(owner)
}

/// Remove the pods, volumes and networks of sandboxes whose process is gone (a test run that was
/// killed before its Drop could run), and their host-side folders. Sandboxes of processes still
/// running, this one's included, are left alone. Returns the sandbox names swept.
pub fn sweep_leftovers() -> Result<Vec<String>> {
    let label = format!("label={SANDBOX_LABEL}");
    let mut swept = std::collections::BTreeSet::new();
    // Pods first (their containers use the volumes and the network), then volumes, then networks.
    for (what, list, remove) in [
        ("pod", vec!["pod", "ps", "--filter", label.as_str(), "--format", "json"], vec!["pod", "rm", "--force", "--time", "0"]),
        ("volume", vec!["volume", "ls", "--filter", label.as_str(), "--format", "json"], vec!["volume", "rm", "--force"]),
        ("network", vec!["network", "ls", "--filter", label.as_str(), "--format", "json"], vec!["network", "rm", "--force"]),
    ] {
        let out = podman(&list)?;
        let items: Vec<serde_json::Value> = if out.trim().is_empty() { vec![] } else { serde_json::from_str(&out).with_context(|| format!("podman {what} list"))? };
        for item in items {
            let field = |v: &serde_json::Value, key: &str| v.get(key).or_else(|| v.get(key.to_ascii_lowercase())).cloned();
            let Some(name) = field(&item, "Name").and_then(|n| n.as_str().map(str::to_string)) else { continue };
            let labels = field(&item, "Labels").unwrap_or_default();
            let owner = labels.get(OWNER_LABEL).and_then(|o| o.as_str());
            if !is_leftover(owner, owner_of) {
                continue;
            }
            let mut args = remove.clone();
            args.push(&name);
            podman(&args).with_context(|| format!("removing leftover {what} {name}"))?;
            // The sandbox's name; a label from before sandbox names were labelled says `1`.
            match labels.get(SANDBOX_LABEL).and_then(|s| s.as_str()).filter(|s| s.starts_with("sw-")) {
                Some(sandbox) => swept.insert(sandbox.to_string()),
                None => swept.insert(name.clone()),
            };
        }
    }
    // The host-side files of a swept sandbox: `<tmp>/<sandbox>-XXXXXX` (see Sandbox::new).
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if swept.iter().any(|s| s.starts_with("sw-") && n.starts_with(&format!("{s}-"))) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(swept.into_iter().collect())
}

impl Pod {
    fn podman_container(&self, container: &str) -> Result<&str> {
        self.init_containers
            .iter()
            .chain(&self.containers)
            .find(|(n, _)| n == container)
            .map(|(_, p)| p.as_str())
            .ok_or_else(|| anyhow!("pod {} has no container {container:?}", self.name))
    }

    /// Run the initContainers one after the other (each must exit 0 within `init_timeout`),
    /// then start the containers.
    pub fn start(&self, init_timeout: Duration) -> Result<()> {
        for (name, ctr) in &self.init_containers {
            podman(&["start", ctr])?;
            let deadline = Instant::now() + init_timeout;
            loop {
                let state = podman(&["inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", ctr])?;
                let (status, code) = state.split_once(' ').unwrap_or((state.as_str(), ""));
                if status == "exited" || status == "stopped" {
                    if code != "0" {
                        bail!("pod {}: initContainer {name} exited with {code}; its log:\n{}", self.name, self.logs(name));
                    }
                    break;
                }
                if Instant::now() >= deadline {
                    bail!("pod {}: initContainer {name} did not finish within {init_timeout:?}; its log:\n{}", self.name, self.logs(name));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        let names: Vec<&str> = self.containers.iter().map(|(_, p)| p.as_str()).collect();
        let mut args = vec!["start"];
        args.extend(&names);
        podman(&args)?;
        Ok(())
    }

    /// `http://127.0.0.1:<host port><path>` of a published container port.
    pub fn url(&self, port: i32, path: &str) -> Result<String> {
        let host = self.ports.get(&port).ok_or_else(|| anyhow!("pod {}: port {port} is not published", self.name))?;
        Ok(format!("http://127.0.0.1:{host}{path}"))
    }

    /// The 127.0.0.1 port a container port is published on.
    pub fn host_port(&self, port: i32) -> Result<u16> {
        self.ports.get(&port).copied().ok_or_else(|| anyhow!("pod {}: port {port} is not published", self.name))
    }

    /// Both output streams of a container so far.
    pub fn logs(&self, container: &str) -> String {
        let Ok(ctr) = self.podman_container(container) else { return String::new() };
        match Command::new("podman").args(["logs", ctr]).output() {
            Ok(o) => format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
            Err(e) => format!("(podman logs failed: {e})"),
        }
    }

    /// `podman exec` in a container.
    pub fn exec(&self, container: &str, cmd: &[&str]) -> Result<Output> {
        let ctr = self.podman_container(container)?;
        Command::new("podman").arg("exec").arg(ctr).args(cmd).stdin(Stdio::null()).output().context("running podman exec")
    }

    /// `created`, `running`, `exited`, ...
    pub fn status(&self, container: &str) -> Result<String> {
        podman(&["inspect", "--format", "{{.State.Status}}", self.podman_container(container)?])
    }

    pub fn exit_code(&self, container: &str) -> Result<i32> {
        Ok(podman(&["inspect", "--format", "{{.State.ExitCode}}", self.podman_container(container)?])?.parse()?)
    }

    /// Stop the Pod's containers as the kubelet does once preStop hooks are done: all of them
    /// get their stop signal at once, SIGKILL after `grace`. The pod's network stays until they
    /// have exited (`podman pod stop` would stop the infra container alongside them, and the
    /// port forwarding of answers still being sent would go with it). Returns how long it took.
    pub fn stop(&self, grace: Duration) -> Result<Duration> {
        let start = Instant::now();
        let secs = grace.as_secs().to_string();
        let mut args = vec!["stop", "--time", secs.as_str()];
        args.extend(self.containers.iter().map(|(_, p)| p.as_str()));
        podman(&args)?;
        Ok(start.elapsed())
    }

    /// Terminate the Pod as the kubelet does when it is deleted: every container's preStop hook
    /// runs at once (from the manifest), each container gets its stop signal as soon as its own
    /// hook has ended, and SIGKILL comes when the Pod's `grace` (terminationGracePeriodSeconds,
    /// counted from the start, hooks included) is used up. This is the order that decides
    /// whether one container of a Pod stops before another still needs it (kubelet
    /// `killContainersWithSyncResult`: one goroutine per container, hook then stop). Returns, per
    /// container, when its hook ended and when it had exited, from the start.
    ///
    /// Which hook ends first is a race the kubelet does not decide (each is an exec through the
    /// runtime; on a busy node they end hundreds of ms apart). `late` gives that race a side: the
    /// named container's stop signal comes that much after its hook ended, so a test can prove a
    /// Pod right in the order that hurts it, every time, instead of in half the runs.
    pub fn terminate(&self, grace: Duration, late: &[(&str, Duration)]) -> Result<Vec<Terminated>> {
        let spec = self.stack.pod_spec(&self.workload).ok_or_else(|| anyhow!("no workload {}", self.workload))?;
        let start = Instant::now();
        let deadline = start + grace;
        let results: Vec<Result<Terminated>> = std::thread::scope(|scope| {
            let handles: Vec<_> = spec
                .containers
                .iter()
                .map(|c| {
                    scope.spawn(move || -> Result<Terminated> {
                        let hook: Vec<&str> = c
                            .lifecycle
                            .as_ref()
                            .and_then(|l| l.pre_stop.as_ref())
                            .and_then(|h| h.exec.as_ref())
                            .and_then(|e| e.command.as_ref())
                            .map(|cmd| cmd.iter().map(String::as_str).collect())
                            .unwrap_or_default();
                        if !hook.is_empty() {
                            // The kubelet bounds the hook by the grace period; a hook that fails
                            // is logged and the stop goes on, so its exit status is not judged.
                            let ctr = self.podman_container(&c.name)?;
                            let secs = deadline.saturating_duration_since(Instant::now()).as_secs_f64();
                            let timeout = format!("{secs:.1}");
                            let _ = Command::new("timeout")
                                .args(["-s", "KILL", &timeout, "podman", "exec", ctr])
                                .args(&hook)
                                .stdin(Stdio::null())
                                .output()
                                .context("running the preStop hook with podman exec")?;
                        }
                        let hook_done = start.elapsed();
                        if let Some((_, lag)) = late.iter().find(|(name, _)| *name == c.name) {
                            std::thread::sleep((*lag).min(deadline.saturating_duration_since(Instant::now())));
                        }
                        let remaining = deadline.saturating_duration_since(Instant::now());
                        // podman's --time is whole seconds: round up, never SIGKILL early.
                        let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
                        podman(&["stop", "--time", &secs.to_string(), self.podman_container(&c.name)?])?;
                        Ok(Terminated { container: c.name.clone(), hook_done, exited: start.elapsed() })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a termination thread panicked")))).collect()
        });
        results.into_iter().collect()
    }

    /// Stop one container (stop signal, SIGKILL after `grace`); how long it took.
    pub fn stop_container(&self, container: &str, grace: Duration) -> Result<Duration> {
        let start = Instant::now();
        podman(&["stop", "--time", &grace.as_secs().to_string(), self.podman_container(container)?])?;
        Ok(start.elapsed())
    }

    /// Wait until every container runs and passes its readinessProbe from the manifest
    /// (evaluated against the Pod's address, as the kubelet does). A container that exits
    /// fails at once, with its log.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let spec = self.stack.pod_spec(&self.workload).ok_or_else(|| anyhow!("no workload {}", self.workload))?;
        let mut last = String::new();
        loop {
            let mut all = true;
            for c in &spec.containers {
                let status = self.status(&c.name)?;
                if status != "running" {
                    bail!("pod {}: container {} is {status}; its log:\n{}", self.name, c.name, self.logs(&c.name));
                }
                if let Some(probe) = &c.readiness_probe {
                    match self.probe(c, probe) {
                        Ok(()) => {}
                        Err(e) => {
                            last = format!("container {}: {e:#}", c.name);
                            all = false;
                        }
                    }
                }
            }
            if all {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = spec.containers.iter().map(|c| format!("--- {} ---\n{}", c.name, self.logs(&c.name))).collect();
                bail!("pod {} not ready within {timeout:?}: {last}\n{}", self.name, logs.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// One run of a probe: httpGet and tcpSocket against the Pod's address, exec in the container.
    pub fn probe(&self, c: &Container, probe: &Probe) -> Result<()> {
        let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
        let port_of = |p: &IntOrString| -> Result<u16> {
            match p {
                IntOrString::Int(n) => Ok(*n as u16),
                IntOrString::String(name) => c
                    .ports
                    .iter()
                    .flatten()
                    .find(|cp| cp.name.as_deref() == Some(name.as_str()))
                    .map(|cp| cp.container_port as u16)
                    .ok_or_else(|| anyhow!("no container port named {name:?}")),
            }
        };
        if let Some(h) = &probe.http_get {
            let port = port_of(&h.port)?;
            let host = h.host.clone().unwrap_or_else(|| self.ip.clone());
            let url = format!("http://{host}:{port}{}", h.path.as_deref().unwrap_or("/"));
            let client = reqwest::blocking::Client::builder().timeout(timeout).redirect(reqwest::redirect::Policy::none()).build()?;
            let mut req = client.get(&url);
            for hh in h.http_headers.iter().flatten() {
                req = req.header(hh.name.as_str(), hh.value.as_str());
            }
            let status = req.send().with_context(|| format!("GET {url}"))?.status();
            if !(200..400).contains(&status.as_u16()) {
                bail!("GET {url}: {status}");
            }
            Ok(())
        } else if let Some(t) = &probe.tcp_socket {
            let port = port_of(&t.port)?;
            let addr: SocketAddr = format!("{}:{port}", self.ip).parse()?;
            TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connect {addr}"))?;
            Ok(())
        } else if let Some(e) = &probe.exec {
            let cmd: Vec<&str> = e.command.iter().flatten().map(String::as_str).collect();
            let out = self.exec(&c.name, &cmd)?;
            if !out.status.success() {
                bail!("exec {cmd:?}: {}", out.status);
            }
            Ok(())
        } else {
            bail!("probe kind not supported by the sandbox (grpc?)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::{Stack, StackSpec, parse_documents};
    use std::path::PathBuf;

    /// A stack of one Deployment whose container mounts a ConfigMap with `items` in folders, a
    /// whole Secret, and a ConfigMap folder under the Secret's (a deeper mount).
    fn stack() -> Stack {
        let manifests = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: conf}
data:
  site: "server {}\n"
  main: "main\n"
  ignored: "not an item\n"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: inner}
data: {inner.txt: "inner\n"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
data:
  password: c2VjcmV0LXB3
stringData:
  user: admin
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: web:v1
        volumeMounts:
        - {name: conf, mountPath: /etc/app}
        - {name: creds, mountPath: /run/secrets/db, readOnly: true}
        - {name: inner, mountPath: /run/secrets/db/extra}
      volumes:
      - name: conf
        configMap:
          name: conf
          items:
          - {key: site, path: sites/enabled/site.conf}
          - {key: main, path: main.conf}
      - name: creds
        secret: {secretName: creds}
      - name: inner
        configMap: {name: inner}
"#;
        let mut problems = Vec::new();
        let objects = parse_documents(Path::new("m.yaml"), manifests, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let spec: StackSpec = toml::from_str("name = \"t\"\nseed = \"s\"\n[entry]\nservice = \"web\"\nport = 80\npath = \"/\"\n").unwrap();
        Stack { dir: PathBuf::from("/nonexistent"), spec, objects, variant: None }
    }

    fn tree(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    out.push((p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read_to_string(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn configmap_items_in_folders_and_secrets_become_files() {
        let s = stack();
        let files = s.mounted_files("web", "web").unwrap();
        let mounts = [Path::new("/etc/app"), Path::new("/run/secrets/db"), Path::new("/run/secrets/db/extra")];
        let t = tempfile::tempdir().unwrap();

        let conf = t.path().join("conf");
        write_volume_files(&conf, mounts[0], &mounts, &files).unwrap();
        assert_eq!(
            tree(&conf),
            [("main.conf".to_string(), "main\n".to_string()), ("sites/enabled/site.conf".to_string(), "server {}\n".to_string())],
            "the items, at their paths (folders made), and no other key"
        );

        let creds = t.path().join("creds");
        write_volume_files(&creds, mounts[1], &mounts, &files).unwrap();
        assert_eq!(
            tree(&creds),
            [("password".to_string(), "secret-pw".to_string()), ("user".to_string(), "admin".to_string())],
            "every key of the Secret, data decoded and stringData as is; the deeper mount's file is not the Secret's"
        );

        let inner = t.path().join("inner");
        write_volume_files(&inner, mounts[2], &mounts, &files).unwrap();
        assert_eq!(tree(&inner), [("inner.txt".to_string(), "inner\n".to_string())]);
    }

    #[test]
    fn a_volume_file_cannot_leave_its_volume() {
        let t = tempfile::tempdir().unwrap();
        let files = [MountedFile { path: PathBuf::from("/etc/app/../../x"), content: b"x".to_vec() }];
        let e = write_volume_files(t.path(), Path::new("/etc/app"), &[Path::new("/etc/app")], &files).unwrap_err();
        assert!(e.to_string().contains("must stay inside its volume"), "{e}");
    }

    #[test]
    fn leftovers_are_sandboxes_whose_process_is_gone() {
        let me = owner_of(std::process::id()).expect("this process's own /proc/<pid>/stat");
        let (pid, start) = me.split_once('-').unwrap();
        assert_eq!(pid, std::process::id().to_string());
        assert!(start.parse::<u64>().is_ok(), "{me}");
        // This process: not a leftover; the same pid with another start time (pid reused): one.
        assert!(!is_leftover(Some(&me), owner_of));
        assert!(is_leftover(Some(&format!("{pid}-1")), owner_of));
        // A process that is gone, and sandboxes made before owners were labelled.
        assert!(is_leftover(Some("4194305-17"), |_| None));
        assert!(is_leftover(None, owner_of));
        assert!(is_leftover(Some(""), owner_of));
        assert!(is_leftover(Some("garbage"), owner_of));
    }
}
