//! sms-web (shared/seeds/002): Flask web under gunicorn + celery worker + celery beat + redis.
//!
//! `manifests` proves, without a cluster, the seed's settings and pitfalls: env values must be
//! strings, the CPU requests must fit a node (and the `too-much-cpu` variant must not).
//! `local` runs the fixture's own code for real on loopback: Debian's redis, and the web, worker
//! and beat containers with their commands and env from the manifests (dumb-init, Debian's
//! gunicorn and celery), only the redis address and in-Pod paths rewritten.

mod support;

use support::pod;

use anyhow::{Context, Result, ensure};
use seaworthy::stack::Stack;

fn stack() -> Stack {
    Stack::find("sms-web").expect("fixtures/sms-web loads and validates")
}

/// The number after `--graceful-timeout` in the web container's command.
fn web_graceful_timeout(stack: &Stack) -> Result<u64> {
    let argv = pod::argv_of(stack, "sms-web", "sms-web")?;
    let words: Vec<&str> = argv.iter().flat_map(|a| a.split_whitespace()).collect();
    let i = words.iter().position(|w| *w == "--graceful-timeout").context("the web command sets no --graceful-timeout")?;
    Ok(words.get(i + 1).context("--graceful-timeout without a value")?.parse()?)
}

mod manifests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn the_web_deployment_keeps_the_seeds_settings() -> Result<()> {
        let s = stack();
        let d = s.deployment("sms-web").context("no Deployment sms-web")?.spec.clone().unwrap_or_default();
        assert_eq!(d.replicas, Some(6));
        assert_eq!(d.revision_history_limit, Some(5));
        assert_eq!(d.min_ready_seconds, Some(10));
        assert_eq!(d.strategy.and_then(|s| s.type_).as_deref(), Some("RollingUpdate"));
        let spec = s.pod_spec("sms-web").unwrap();
        let grace = spec.termination_grace_period_seconds.context("no terminationGracePeriodSeconds")? as u64;
        assert_eq!(grace, 180);
        // gunicorn gives up on a drain after graceful-timeout; past the grace period the kubelet
        // SIGKILLs. The drain must end first, or the long grace period buys nothing.
        let drain = web_graceful_timeout(&s)?;
        assert!(drain < grace, "graceful-timeout {drain}s >= grace {grace}s");

        // The logs go to the emptyDir, where the app writes them.
        let env: std::collections::BTreeMap<_, _> = s.container_env("sms-web", "sms-web")?.into_iter().collect();
        let c = s.container("sms-web", "sms-web")?;
        let mount = c.volume_mounts.iter().flatten().find(|m| m.mount_path == env["LOG_DIR"]).context("LOG_DIR is not a mount")?;
        let vol = spec.volumes.iter().flatten().find(|v| v.name == mount.name).context("no log volume")?;
        assert!(vol.empty_dir.is_some(), "the log volume is not an emptyDir");

        // NodePort 31090 -> 8004, where gunicorn binds and the probe asks.
        let svc = s.service("sms-web").context("no Service sms-web")?.spec.clone().unwrap_or_default();
        assert_eq!(svc.type_.as_deref(), Some("NodePort"));
        let port = &svc.ports.unwrap_or_default()[0];
        assert_eq!((port.node_port, port.target_port.clone()), (Some(31090), Some(IntOrString::Int(8004))));
        assert!(pod::argv_of(&s, "sms-web", "sms-web")?.iter().any(|a| a.contains("-b 0.0.0.0:8004 ")));
        let probe = c.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref()).context("no httpGet readiness probe")?;
        assert_eq!(probe.port, IntOrString::Int(8004));
        Ok(())
    }

    #[test]
    fn web_worker_and_beat_share_one_image_and_one_redis() -> Result<()> {
        let s = stack();
        let mut brokers = Vec::new();
        for w in ["sms-web", "sms-celery", "sms-beat"] {
            let c = s.pod_spec(w).with_context(|| format!("no {w}"))?.containers[0].clone();
            assert_eq!(c.image.as_deref(), Some("sms-web:v1"), "{w}");
            let env: std::collections::BTreeMap<_, _> = s.container_env(w, &c.name)?.into_iter().collect();
            brokers.push((env["CELERY_BROKER_URL"].clone(), env["CELERY_RESULT_BACKEND"].clone()));
        }
        assert!(brokers.windows(2).all(|w| w[0] == w[1]), "{brokers:?}");
        // ...and the host in those URLs is the redis Service.
        assert!(brokers[0].0.starts_with("redis://sms-redis:6379/"));
        assert!(s.service("sms-redis").is_some());
        let beat = s.deployment("sms-beat").unwrap().spec.clone().unwrap_or_default();
        assert_eq!(beat.replicas, Some(1), "more than one beat schedules every task more than once");
        assert_eq!(beat.strategy.and_then(|s| s.type_).as_deref(), Some("Recreate"));
        Ok(())
    }

    /// The seed's pitfall: `value: true` is not a string, and Kubernetes refuses the object. The
    /// loader refuses it before any cluster does, naming the field.
    #[test]
    fn an_unquoted_env_value_is_refused_and_the_quoted_one_is_a_string() -> Result<()> {
        let s = stack();
        let env: std::collections::BTreeMap<_, _> = s.container_env("sms-celery", "sms-celery")?.into_iter().collect();
        assert_eq!(env["C_FORCE_ROOT"], "true");

        let tmp = tempfile::tempdir()?;
        let copy = tmp.path().join("sms-web");
        support::fs::copy_dir(&s.dir, &copy)?;
        let worker = copy.join("manifests/sms-celery.yaml");
        let text = std::fs::read_to_string(&worker)?;
        std::fs::write(&worker, seaworthy::local::rewrite(&text, &[("value: 'true'", "value: true")])?)?;
        let err = Stack::load(&copy).expect_err("an env value `true` was accepted");
        let problems = err.problems();
        assert!(
            problems.iter().any(|p| p.field.as_deref() == Some("spec.template.spec.containers[0].env[0].value")
                && p.message.contains("expected a string")),
            "{err}"
        );
        Ok(())
    }

    fn requests_millis(stack: &Stack, workload: &str) -> Result<(u64, u64)> {
        let c = &stack.pod_spec(workload).context("no workload")?.containers[0];
        let r = c.resources.clone().unwrap_or_default();
        let get = |m: &Option<std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.as_ref().and_then(|m| m.get("cpu")).map(|q| pod::cpu_millis(&q.0)).transpose().map(|v| v.unwrap_or(0))
        };
        Ok((get(&r.requests)?, get(&r.limits)?))
    }

    #[test]
    fn the_good_stack_fits_a_small_node_and_too_much_cpu_fits_none() -> Result<()> {
        let s = stack();
        // Every Pod of the stack together, against a 2-CPU node (this project's CI machine) of
        // which the cluster's own Pods take some: the seed's Pods stayed Pending at 0.2 CPU each.
        let mut total = 0;
        for w in ["sms-web", "sms-celery", "sms-beat", "sms-redis"] {
            let replicas = s.deployment(w).and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas).unwrap_or(1) as u64;
            let (req, lim) = requests_millis(&s, w)?;
            assert!(req > 0 && req <= lim, "{w}: request {req}m, limit {lim}m");
            total += replicas * req;
        }
        assert!(total <= 1000, "the stack requests {total}m CPU");

        let check = s.spec.checks.iter().find(|c| c.name == "insufficient-resources").context("no insufficient-resources check")?;
        let cpu = check.params.get("cpu").and_then(|v| v.as_str()).context("the check names no cpu")?;
        let variant = check.params.get("variant").and_then(|v| v.as_str()).context("the check names no variant")?;
        let v = s.variant(variant)?;
        let (req, lim) = requests_millis(&v, "sms-web")?;
        // The variant is the check's edit: the same CPU, as request and limit.
        assert_eq!((req, lim), (pod::cpu_millis(cpu)?, pod::cpu_millis(cpu)?));
        assert!(req >= 256_000, "{req}m fits a large node");
        // Nothing else changes: the Pods would otherwise fail for another reason.
        for w in ["sms-celery", "sms-beat", "sms-redis"] {
            assert_eq!(serde_json::to_value(v.pod_spec(w))?, serde_json::to_value(s.pod_spec(w))?, "{w}");
        }
        Ok(())
    }
}

mod local {
    use super::pod::{self, Response, eventually, get, receive, send};
    use super::*;
    use seaworthy::local::{self, Proc, Redis};
    use std::path::PathBuf;
    use std::process::Command;
    use std::time::{Duration, Instant};

    const WEB_POD: &str = "sms-web-5d8f7c9b6d-local";
    const WORKER_POD: &str = "sms-celery-6c4b8d7f5-local";

    /// The stack on loopback: one redis, and any of its containers started on demand.
    struct Sms {
        stack: Stack,
        tmp: tempfile::TempDir,
        redis: Redis,
        version: String,
    }

    impl Sms {
        fn start() -> Result<Sms> {
            let stack = stack();
            let tmp = tempfile::tempdir()?;
            let redis = Redis::start(&tmp.path().join("redis"))?;
            let version = pod::image_version(&stack, "sms-web", "sms-web", "sms-web")?;
            Ok(Sms { stack, tmp, redis, version })
        }

        /// The image's code: the Dockerfile copies app/sms to /code, every container's workingDir.
        fn app_dir(&self, workload: &str) -> Result<PathBuf> {
            let c = self.stack.container(workload, workload)?;
            ensure!(c.working_dir.as_deref() == Some("/code"), "{workload} workingDir is {:?}, the image's code is in /code", c.working_dir);
            let app = self.stack.dir.join("app/sms");
            ensure!(std::fs::read_to_string(app.join("Dockerfile"))?.contains("WORKDIR /code"), "the Dockerfile moved the code");
            Ok(app)
        }

        fn dir(&self, name: &str) -> PathBuf {
            self.tmp.path().join(name)
        }

        /// The env the kubelet gives the container (ConfigMap via envFrom + env), the redis
        /// Service's address and in-Pod paths rewritten, plus the image's and the downward API's.
        fn env(&self, workload: &str, pod_name: Option<&str>, paths: &[(&str, &str)]) -> Result<Vec<(String, String)>> {
            let redis = format!("127.0.0.1:{}", self.redis.port);
            let mut pairs = vec![("sms-redis:6379", redis.as_str())];
            pairs.extend_from_slice(paths);
            let mut env = pod::rewrite_env(&self.stack.container_env(workload, workload)?, &pairs)?;
            let home = self.dir(workload);
            std::fs::create_dir_all(&home)?;
            env.extend(pod::image_env(&self.app_dir(workload)?.join("Dockerfile"), &self.version, &home)?);
            if let Some(name) = pod_name {
                pod::ensure_field_ref(&self.stack, workload, workload, "POD_NAME", "metadata.name")?;
                env.push(("POD_NAME".into(), name.into()));
            }
            env.push(("SEAWORTHY_UNREADY_FILE".into(), home.join("seaworthy-unready").display().to_string()));
            Ok(env)
        }

        fn log_dir(&self) -> PathBuf {
            self.dir("sms-web/log")
        }

        /// The web container; returns it and its port.
        fn web(&self) -> Result<(Proc, u16)> {
            let port = local::free_port();
            let argv = pod::rewrite_argv(&pod::argv_of(&self.stack, "sms-web", "sms-web")?, &[("0.0.0.0:8004", &format!("127.0.0.1:{port}"))])?;
            let logs = self.log_dir().display().to_string();
            let env = self.env("sms-web", Some(WEB_POD), &[("/var/log/sms", &logs)])?;
            let mut proc = pod::run_container("sms-web", &argv, &self.app_dir("sms-web")?, &env, &self.dir("sms-web"))?;
            local::wait_for_server(&mut proc, port, Duration::from_secs(30))?;
            // The master listens before its workers have imported the app; a request sent now
            // waits in the backlog. Traffic starts, as in a Pod, once the readiness probe passes.
            let c = self.stack.container("sms-web", "sms-web")?;
            let ready = c.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref()).and_then(|h| h.path.clone()).context("no httpGet readiness probe")?;
            eventually(Duration::from_secs(30), "the web's readiness probe passes", || Ok((get(port, &ready)?.status == 200).then_some(())))
                .with_context(|| proc.log())?;
            Ok((proc, port))
        }

        /// The celery worker, once it says it is ready to take tasks.
        fn worker(&self) -> Result<Proc> {
            let argv = pod::argv_of(&self.stack, "sms-celery", "sms-celery")?;
            let env = self.env("sms-celery", Some(WORKER_POD), &[])?;
            let proc = pod::run_container("sms-celery", &argv, &self.app_dir("sms-celery")?, &env, &self.dir("sms-celery"))?;
            eventually(Duration::from_secs(60), "the celery worker becomes ready", || {
                let log = proc.log();
                ensure!(!log.contains("Traceback"), "the worker failed:\n{log}");
                Ok(log.contains(" ready.").then_some(()))
            })?;
            Ok(proc)
        }

        fn beat(&self) -> Result<Proc> {
            let state = self.dir("sms-beat/state");
            std::fs::create_dir_all(&state)?;
            let state = state.display().to_string();
            let argv = pod::rewrite_argv(&pod::argv_of(&self.stack, "sms-beat", "sms-beat")?, &[("/var/lib/sms-beat", &state)])?;
            let env = self.env("sms-beat", None, &[])?;
            pod::run_container("sms-beat", &argv, &self.app_dir("sms-beat")?, &env, &self.dir("sms-beat"))
        }

        /// `redis-cli GET` in the database a redis:// URL of the ConfigMap names.
        fn redis_get(&self, env_name: &str, key: &str) -> Result<String> {
            let env: std::collections::BTreeMap<_, _> = self.stack.container_env("sms-web", "sms-web")?.into_iter().collect();
            let url = env.get(env_name).with_context(|| format!("no {env_name}"))?;
            let db = url.rsplit('/').next().context("no database in the URL")?;
            let out = Command::new("/usr/bin/redis-cli")
                .args(["-h", "127.0.0.1", "-p", &self.redis.port.to_string(), "-n", db, "GET", key])
                .output()?;
            ensure!(out.status.success(), "redis-cli: {}", String::from_utf8_lossy(&out.stderr));
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        }
    }

    fn assert_names_web(r: &Response, version: &str) {
        assert_eq!(r.header("X-Seaworthy-Backend"), Some(WEB_POD), "{r:?}");
        assert_eq!(r.header("X-Seaworthy-Version"), Some(version), "{r:?}");
    }

    #[test]
    fn a_web_request_runs_a_celery_task_whose_result_comes_back_through_redis() -> Result<()> {
        let sms = Sms::start()?;
        let mut worker = sms.worker()?;
        let (web, port) = sms.web()?;
        let path = &sms.stack.spec.entry.path;

        let r = get(port, path)?;
        assert_eq!(r.status, 200, "{r:?}\nweb:\n{}\nworker:\n{}", web.log(), worker.log());
        assert_names_web(&r, &sms.version);
        let body = r.json()?;
        assert_eq!(body["status"], "SUCCESS", "{r:?}");
        // The receipt is the worker's: it ran the task, not the web.
        assert_eq!(body["result"]["worker"], WORKER_POD, "{r:?}");
        assert_eq!((body["result"]["to"].as_str(), body["result"]["text"].as_str()), (Some("10086"), Some("seaworthy")), "{r:?}");

        // The result travelled through the result backend the ConfigMap names.
        let id = body["task_id"].as_str().context("no task_id")?;
        let stored = sms.redis_get("CELERY_RESULT_BACKEND", &format!("celery-task-meta-{id}"))?;
        assert!(stored.contains("SUCCESS") && stored.contains(WORKER_POD), "redis holds {stored:?}");
        // ...and the web logged it to its emptyDir.
        let log = std::fs::read_to_string(sms.log_dir().join("sms-web.log"))?;
        assert!(log.contains(id), "{log}");

        // Without a worker nothing answers the task: the web says so when its timeout runs out.
        pod::sigterm(&worker)?;
        worker.wait_timeout(Duration::from_secs(30)).context("the worker did not stop on SIGTERM")?;
        let env: std::collections::BTreeMap<_, _> = sms.stack.container_env("sms-web", "sms-web")?.into_iter().collect();
        let timeout: f64 = env["SMS_TASK_TIMEOUT_SECONDS"].parse()?;
        let t0 = Instant::now();
        let r = get(port, path)?;
        assert_eq!(r.status, 504, "{r:?}");
        assert!(r.body.contains("no result within"), "{r:?}");
        assert!(t0.elapsed() >= Duration::from_secs_f64(timeout), "gave up after {:?}", t0.elapsed());
        Ok(())
    }

    #[test]
    fn beat_schedules_a_heartbeat_that_a_worker_runs() -> Result<()> {
        let sms = Sms::start()?;
        let _worker = sms.worker()?;
        let (_web, port) = sms.web()?;
        // Nothing writes it but the scheduled task.
        assert_eq!(get(port, "/beat")?.status, 404);

        let beat = sms.beat()?;
        let env: std::collections::BTreeMap<_, _> = sms.stack.container_env("sms-beat", "sms-beat")?.into_iter().collect();
        let interval: f64 = env["BEAT_INTERVAL_SECONDS"].parse()?;
        let r = eventually(Duration::from_secs_f64(interval * 3.0 + 15.0), "a heartbeat", || {
            let r = get(port, "/beat")?;
            Ok((r.status == 200).then_some(r))
        })
        .with_context(|| format!("beat:\n{}", beat.log()))?;
        assert_eq!(r.json()?["heartbeat"]["worker"], WORKER_POD, "{r:?}");
        Ok(())
    }

    #[test]
    fn sigterm_drains_the_webs_in_flight_request() -> Result<()> {
        let sms = Sms::start()?;
        let (mut web, port) = sms.web()?;
        let s = send(port, "GET", "/slow?seconds=3", None)?;
        let request = std::thread::spawn(move || receive(s));
        std::thread::sleep(Duration::from_millis(700));
        ensure!(!request.is_finished(), "the slow request finished early");

        // The kubelet's SIGTERM reaches gunicorn through dumb-init and `sh -c exec`.
        let t0 = Instant::now();
        pod::sigterm(&web)?;
        let r = request.join().expect("client thread").with_context(|| format!("web:\n{}", web.log()))?;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.contains("slept 3s"), "{r:?}");
        assert_names_web(&r, &sms.version);
        let status = web.wait_timeout(Duration::from_secs(30)).context("gunicorn did not exit after draining")?;
        assert!(status.success(), "exited {status}:\n{}", web.log());
        assert!(t0.elapsed() >= Duration::from_secs(2), "gunicorn exited before the request was done");
        Ok(())
    }
}

// ---- against a cluster: one case per check (the good stack) and per negative control ----

support::cluster::on_cluster! {
    stack: "sms-web",
    checks: [insufficient_resources: "insufficient-resources"],
    negatives: [],
}
