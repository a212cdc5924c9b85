//! Running a stack's built images the way its Pod templates say, with podman and no cluster:
//! one podman pod per Pod (shared network, IPC and UTS namespaces), the initContainers run to
//! completion in order first, emptyDir volumes as podman volumes shared by the Pod's containers,
//! PVCs as podman volumes that outlive a Pod, ConfigMap/Secret volumes as read-only files from the
//! manifests, env as the kubelet builds it, and the containers' command/args/workingDir as written.
//!
//! Every sandbox has its own podman network, on which each Pod answers to the names of the
//! Services that select it (aardvark-dns), as cluster DNS would; a Pod's ports are published on
//! 127.0.0.1 only. Dropping the [`Sandbox`] removes its pods, volumes and network, also when a
//! test panics.

use super::builder::Builder;
use super::tag::ImageBuild;
use crate::stack::Stack;
use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

impl Sandbox {
    /// A fresh sandbox; `label` goes into the names (e.g. the stack and test).
    pub fn new(label: &str) -> Result<Sandbox> {
        if !Builder::Podman.works() {
            bail!("running images as Pods needs podman (apt-get install podman; then ci/podman-setup.sh)");
        }
        let clean: String = label.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
        let name = format!("sw-{}-{:06x}", clean.trim_matches('-'), rand::random::<u32>() & 0xff_ffff);
        let dir = tempfile::Builder::new().prefix(&format!("{name}-")).tempdir()?;
        let mut sandbox = Sandbox { network: name.clone(), name, base: super::base(), dir, pods: vec![], volumes: vec![], counter: 0 };
        podman(&["network", "create", "--label", "io.seaworthy.sandbox=1", &sandbox.network])?;
        // Only now is there something for Drop to remove.
        sandbox.counter = 1;
        Ok(sandbox)
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
            "--label".into(),
            format!("io.seaworthy.sandbox={}", self.name),
        ];
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
            podman(&["volume", "create", "--label", &format!("io.seaworthy.sandbox={}", self.name), name])?;
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
                std::fs::create_dir_all(&host)?;
                for f in files.iter().filter(|f| f.path.parent() == Some(mount)) {
                    std::fs::write(host.join(f.path.file_name().expect("a file under the mount")), &f.content)?;
                }
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
