//! counter (shared/seeds/004): a PHP page (php-fpm, 3 replicas) that counts its views in redis
//! and names the backend that served it, behind nginx whose upstream is in a ConfigMap.
//!
//! `local` runs the stack on loopback with Debian's redis-server, php-fpm and nginx: redis with
//! the ConfigMap's redis.conf and the manifest's command, one php-fpm per replica with the
//! image's own config and the env the kubelet builds (ConfigMap envFrom), nginx with the
//! ConfigMap's server block. Cluster DNS is played by a rewrite: a value that names a Service of
//! the stack becomes 127.0.0.1 and that Service's local port; any other name is looked up for
//! real, and fails as it would in the cluster. Volumes keep their kind: the PVC's folder outlives
//! a redis "Pod", an emptyDir's does not.
//! `manifests` checks the wiring the cluster checks rely on.

mod support;

mod manifests {
    use seaworthy::stack::Stack;
    use std::collections::BTreeMap;

    fn stack() -> Stack {
        Stack::find("counter").expect("fixtures/counter loads and validates")
    }

    #[test]
    fn the_app_reaches_redis_by_service_name_and_the_wrong_host_variant_does_not() {
        let route = |s: &Stack| -> Result<String, String> {
            let env: BTreeMap<_, _> = s.container_env("counter-app", "counter-app").unwrap().into_iter().collect();
            let host = &env["REDIS_HOST"];
            let port: i32 = env["REDIS_PORT"].parse().unwrap();
            let svc = s.service(host).ok_or(format!("REDIS_HOST {host:?} names no Service"))?;
            let spec = svc.spec.clone().unwrap();
            let sp = spec.ports.unwrap().into_iter().find(|p| p.port == port).ok_or(format!("no port {port}"))?;
            let labels = s.deployment("counter-redis").unwrap().spec.clone().unwrap().template.metadata.unwrap().labels.unwrap();
            let selector = spec.selector.unwrap();
            if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                return Err(format!("Service {host} does not select the redis Pods"));
            }
            Ok(format!("{host}:{} -> {:?}", sp.port, sp.target_port))
        };
        let good = stack();
        assert!(route(&good).unwrap().starts_with("counter-redis:6379"));
        let bad = good.variant("wrong-redis-host").unwrap();
        assert_eq!(route(&bad).unwrap_err(), "REDIS_HOST \"counter-redis-wrong\" names no Service");
    }

    #[test]
    fn three_app_replicas_and_redis_data_on_a_claim_that_the_negative_drops() {
        let good = stack();
        assert_eq!(good.deployment("counter-app").unwrap().spec.as_ref().unwrap().replicas, Some(3));
        let redis = good.deployment("counter-redis").unwrap().spec.clone().unwrap();
        assert_eq!(redis.strategy.unwrap().type_.as_deref(), Some("Recreate"), "a RWO claim cannot be shared by two Pods");
        let data = |s: &Stack| s.pod_spec("counter-redis").unwrap().volumes.clone().unwrap().into_iter().find(|v| v.name == "data").unwrap();
        assert_eq!(data(&good).persistent_volume_claim.unwrap().claim_name, "counter-redis-data");
        let bad = good.variant("emptydir-redis").unwrap();
        assert!(data(&bad).empty_dir.is_some());
        assert!(bad.get("PersistentVolumeClaim", "counter-redis-data").is_none());
    }
}

mod local {
    use crate::support::http::{self, Client, Response};
    use crate::support::{php, pod};
    use anyhow::{Context, Result, ensure};
    use nix::sys::signal::Signal;
    use seaworthy::local::{self, Nginx, Proc};
    use seaworthy::stack::Stack;
    use std::collections::BTreeSet;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::{Duration, Instant};

    const HTTP: Client = http::client("localhost", 30);

    fn get(port: u16, path: &str) -> Result<Response> {
        HTTP.get(port, path)
    }

    trait Count {
        /// N of "visited N times".
        fn count(&self) -> Option<u64>;
    }

    impl Count for Response {
        fn count(&self) -> Option<u64> {
            let (_, rest) = self.body.split_once("visited ")?;
            rest.split_once(" times")?.0.parse().ok()
        }
    }

    // ---- the stack, on loopback ----

    /// The only port of a Service.
    fn service_port(stack: &Stack, name: &str) -> Result<i32> {
        let svc = stack.service(name).with_context(|| format!("no Service {name}"))?;
        let ports = svc.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
        ensure!(ports.len() == 1, "Service {name} has {} ports", ports.len());
        Ok(ports[0].port)
    }

    struct Counter {
        stack: Stack,
        tmp: tempfile::TempDir,
        redis: Proc,
        redis_port: u16,
        redis_starts: u32,
        apps: Vec<Proc>,
        app_ports: Vec<u16>,
        app_starts: u32,
        nginx: Nginx,
        port: u16,
    }

    impl Counter {
        fn start(stack: Stack) -> Result<Counter> {
            let tmp = tempfile::tempdir()?;
            // php-fpm's workers run as the pool's www-data when the test is root: let them in.
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
            let redis_port = local::free_port();
            let redis = start_redis(&stack, tmp.path(), redis_port, 1)?;

            let replicas = stack.deployment("counter-app").and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas).context("counter-app replicas")?;
            let app_ports: Vec<u16> = (0..replicas).map(|_| local::free_port()).collect();
            let apps = start_apps(&stack, tmp.path(), &app_ports, redis_port, 1)?;

            // nginx: the ConfigMap's block; the app Service's one address becomes its endpoints,
            // one per replica, which nginx rotates through as kube-proxy spreads connections.
            let conf = stack.mounted_file("counter-nginx", "nginx", "/etc/nginx/conf.d/default.conf")?.text();
            let svc_port = service_port(&stack, "counter-app")?;
            let endpoints: Vec<String> = app_ports.iter().map(|p| format!("server 127.0.0.1:{p};")).collect();
            let port = local::free_port();
            let conf = local::rewrite(
                &conf,
                &[
                    (&format!("server counter-app:{svc_port};"), &endpoints.join("\n        ")),
                    ("listen       80;", &format!("listen       127.0.0.1:{port};")),
                    ("root /srv/counter;", &format!("root {};", app_src(&stack)?.display())),
                    ("/tmp/seaworthy-unready", &tmp.path().join("seaworthy-unready").display().to_string()),
                ],
            )?;
            let argv = pod::argv_of(&stack, "counter-nginx", "nginx")?;
            let wrap = pod::wrapper(&argv, "nginx", &["-g", "daemon off;"])?;
            let nginx = Nginx::start_under(&tmp.path().join("nginx"), &conf, &wrap)?;
            Ok(Counter { stack, tmp, redis, redis_port, redis_starts: 1, apps, app_ports, app_starts: 1, nginx, port })
        }

        fn unready_file(&self) -> PathBuf {
            self.tmp.path().join("seaworthy-unready")
        }

        /// Every app Pod replaced: SIGTERM (graceful via dumb-init), then new ones.
        fn restart_apps(&mut self) -> Result<()> {
            for app in &mut self.apps {
                app.signal(Signal::SIGTERM)?;
                ensure!(app.wait_timeout(Duration::from_secs(20)).is_some(), "php-fpm did not stop on SIGTERM:\n{}", app.log());
            }
            self.app_starts += 1;
            self.apps = start_apps(&self.stack, self.tmp.path(), &self.app_ports, self.redis_port, self.app_starts)?;
            Ok(())
        }

        /// The redis Pod replaced; `kill` = the Pod dies without a clean shutdown.
        fn restart_redis(&mut self, kill: bool) -> Result<()> {
            self.redis.signal(if kill { Signal::SIGKILL } else { Signal::SIGTERM })?;
            ensure!(self.redis.wait_timeout(Duration::from_secs(20)).is_some(), "redis did not stop:\n{}", self.redis.log());
            self.redis_starts += 1;
            self.redis = start_redis(&self.stack, self.tmp.path(), self.redis_port, self.redis_starts)?;
            Ok(())
        }

        fn view(&self) -> Result<Response> {
            let r = get(self.port, "/")?;
            ensure!(r.status == 200, "GET / -> {r:?}\n{}", self.logs());
            Ok(r)
        }

        fn logs(&self) -> String {
            let apps: Vec<String> = self.apps.iter().map(|a| a.log()).collect();
            format!("redis:\n{}\nphp-fpm:\n{}\nnginx:\n{}", self.redis.log(), apps.join("\n"), self.nginx.error_log())
        }
    }

    /// One php-fpm per replica, as the image runs it, with the env the kubelet gives the
    /// container (ConfigMap envFrom) and Service names resolved the local way.
    fn start_apps(stack: &Stack, root: &Path, app_ports: &[u16], redis_port: u16, generation: u32) -> Result<Vec<Proc>> {
        let context = stack.dir.join("app/counter-app");
        let dockerfile = std::fs::read_to_string(context.join("Dockerfile"))?;
        ensure!(dockerfile.contains("ENV SEAWORTHY_VERSION=${VERSION}"), "app/counter-app/Dockerfile changed how it sets the version; update the local run");
        let image = stack.container("counter-app", "counter-app")?.image.clone().unwrap_or_default();
        let version = image.strip_prefix("counter-app:").with_context(|| format!("image {image}"))?.to_string();
        let argv = pod::argv_of(stack, "counter-app", "counter-app")?;
        let wrap = pod::wrapper(&argv, "php-fpm8.2", &["-F"])?;
        pod::ensure_field_ref(stack, "counter-app", "counter-app", "POD_NAME", "metadata.name")?;

        // Cluster DNS, locally: the Service named by REDIS_HOST is the local redis.
        let redis_svc_port = service_port(stack, "counter-redis")?.to_string();
        let mut env = stack.container_env("counter-app", "counter-app")?;
        let host_is_service = env.iter().any(|(k, v)| k == "REDIS_HOST" && stack.service(v).is_some());
        for (k, v) in env.iter_mut() {
            match k.as_str() {
                "REDIS_HOST" if host_is_service => *v = local::rewrite(v, &[("counter-redis", "127.0.0.1")])?,
                "REDIS_PORT" if host_is_service => *v = local::rewrite(v, &[(&redis_svc_port, &redis_port.to_string())])?,
                _ => {}
            }
        }
        env.push(("SEAWORTHY_VERSION".into(), version));

        let mut apps = Vec::new();
        for (i, port) in app_ports.iter().enumerate() {
            let dir = root.join(format!("app-{i}-{generation}"));
            let conf = php::image_config(&context, &dir, "listen = 9000", *port)?;
            let mut cmd = php::command(&wrap, &conf)?;
            cmd.envs(env.iter().cloned()).env("POD_NAME", backend_name(i));
            apps.push(php::start(&format!("php-fpm-{i}"), cmd, &dir, *port)?);
        }
        Ok(apps)
    }

    fn backend_name(i: usize) -> String {
        format!("counter-app-6d9f7c-local{i}")
    }

    /// The app's code folder in the image (`root` of the nginx block) is the build context's src/.
    fn app_src(stack: &Stack) -> Result<PathBuf> {
        let dockerfile = std::fs::read_to_string(stack.dir.join("app/counter-app/Dockerfile"))?;
        ensure!(dockerfile.contains("COPY src/ /srv/counter/"), "the Dockerfile no longer puts the app in /srv/counter");
        Ok(stack.dir.join("app/counter-app/src"))
    }

    /// redis as the manifest runs it: its command, the ConfigMap's redis.conf, and `dir` on the
    /// volume mounted there, which lives as long as that volume does.
    fn start_redis(stack: &Stack, root: &Path, port: u16, pod: u32) -> Result<Proc> {
        let argv = pod::argv_of(stack, "counter-redis", "redis")?;
        ensure!(argv.len() == 2 && argv[0] == "redis-server", "redis runs {argv:?}; the local run knows `redis-server <conf>`");
        let conf = stack.mounted_file("counter-redis", "redis", &argv[1])?.text();
        let data_dir = conf.lines().find_map(|l| l.trim().strip_prefix("dir ")).context("redis.conf sets no dir")?.to_string();
        let spec = stack.pod_spec("counter-redis").context("no counter-redis Pod spec")?;
        let mount = stack
            .container("counter-redis", "redis")?
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == data_dir)
            .with_context(|| format!("nothing is mounted at redis' dir {data_dir}: data would live in the container layer"))?
            .clone();
        let volume = spec.volumes.iter().flatten().find(|v| v.name == mount.name).context("the data mount has no volume")?;
        let dir = if let Some(pvc) = &volume.persistent_volume_claim {
            root.join(format!("pvc-{}", pvc.claim_name))
        } else if volume.empty_dir.is_some() {
            root.join(format!("emptydir-{}-pod{pod}", volume.name))
        } else {
            anyhow::bail!("redis data volume {} is neither a PVC nor an emptyDir", volume.name);
        };
        std::fs::create_dir_all(&dir)?;
        let conf = local::rewrite(
            &conf,
            &[("bind 0.0.0.0", "bind 127.0.0.1"), ("port 6379", &format!("port {port}")), (&format!("dir {data_dir}"), &format!("dir {}", dir.display()))],
        )?;
        let conf_path = root.join(format!("redis-{pod}.conf"));
        std::fs::write(&conf_path, conf)?;
        let mut cmd = Command::new("/usr/bin/redis-server");
        cmd.arg(&conf_path);
        let proc = Proc::serve(&format!("redis-{pod}"), cmd, root, port, Duration::from_secs(10))?;
        // Listening is not ready: redis answers LOADING while it reads its data back. The
        // Service only sends traffic once the readiness probe passes, so the local run waits
        // for the same probe.
        let probe = stack.container("counter-redis", "redis")?.readiness_probe.clone().context("redis has no readiness probe")?;
        let probe = probe.exec.and_then(|e| e.command).context("redis' readiness probe is not an exec")?;
        let probe: Vec<String> = probe
            .iter()
            .map(|a| {
                if a.contains("redis-cli ping") {
                    let unready = root.join(format!("redis-{pod}-unready"));
                    local::rewrite(a, &[("redis-cli ping", &format!("redis-cli -p {port} ping")), ("/tmp/seaworthy-unready", &unready.display().to_string())])
                } else {
                    Ok(a.clone())
                }
            })
            .collect::<Result<_>>()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Command::new(&probe[0]).args(&probe[1..]).status()?.success() {
            ensure!(Instant::now() < deadline, "redis never passed its readiness probe {probe:?}:\n{}", proc.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(proc)
    }

    fn param(stack: &Stack, check: &str, key: &str) -> String {
        let check = stack.spec.checks.iter().find(|c| c.name == check).unwrap_or_else(|| panic!("no check {check}"));
        check.params.get(key).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("check {} has no param {key}", check.name)).to_string()
    }

    fn negative(stack: &Stack, check: &str) -> Stack {
        let name = stack.spec.checks.iter().find(|c| c.name == check).and_then(|c| c.negative.clone()).expect("the check names its negative control");
        stack.variant(&name).unwrap()
    }

    // ---- the proofs ----

    #[test]
    fn every_view_counts_once_and_names_its_backend() {
        let stack = Stack::find("counter").unwrap();
        let expect_body = param(&stack, "service-discovery", "expect_body");
        let c = Counter::start(stack).unwrap();
        let mut backends = BTreeSet::new();
        for expected in 1..=6u64 {
            let r = c.view().unwrap();
            assert_eq!(r.count(), Some(expected), "{r:?}");
            assert!(r.body.contains(&expect_body), "{r:?}");
            let backend = r.header("X-Seaworthy-Backend").expect("the backend header").to_string();
            assert!(r.body.starts_with(&format!("Hello World by {backend} from 127.0.0.1 !")), "{r:?}");
            assert_eq!(r.header("X-Seaworthy-Version"), Some("v1"));
            backends.insert(backend);
        }
        let all: BTreeSet<String> = (0..3).map(backend_name).collect();
        assert_eq!(backends, all, "the 3 replicas all served");
    }

    #[test]
    fn the_count_survives_app_and_redis_restarts() {
        let mut c = Counter::start(Stack::find("counter").unwrap()).unwrap();
        for _ in 0..3 {
            c.view().unwrap();
        }
        c.restart_apps().unwrap();
        assert_eq!(c.view().unwrap().count(), Some(4), "after new app Pods");
        // Killed, not stopped: only the append-only file can have kept the last INCR.
        c.restart_redis(true).unwrap();
        assert_eq!(c.view().unwrap().count(), Some(5), "after redis was killed\n{}", c.logs());
        c.restart_redis(false).unwrap();
        assert_eq!(c.view().unwrap().count(), Some(6), "after redis was stopped");
    }

    #[test]
    fn with_an_emptydir_the_count_starts_over() {
        let stack = Stack::find("counter").unwrap();
        let mut c = Counter::start(negative(&stack, "persistence")).unwrap();
        for _ in 0..3 {
            c.view().unwrap();
        }
        c.restart_redis(false).unwrap();
        assert_eq!(c.view().unwrap().count(), Some(1), "a new Pod's emptyDir is empty");
    }

    #[test]
    fn a_wrong_redis_host_fails_with_the_apps_error() {
        let stack = Stack::find("counter").unwrap();
        let c = Counter::start(negative(&stack, "service-discovery")).unwrap();
        let r = get(c.port, "/").unwrap();
        assert_eq!(r.status, 503, "{r:?}");
        let expected = param(&stack, "service-discovery", "expect_error");
        assert!(r.body.contains(&expected), "{r:?} lacks {expected:?}");
        assert!(r.header("X-Seaworthy-Backend").is_some_and(|b| b.starts_with("counter-app-")), "{r:?}");
        assert!(c.logs().contains(&expected), "the app logs its error too:\n{}", c.logs());
    }

    #[test]
    fn redis_down_is_the_same_clear_error_and_recovers() {
        let stack = Stack::find("counter").unwrap();
        let mut c = Counter::start(stack).unwrap();
        assert_eq!(c.view().unwrap().count(), Some(1));
        c.redis.signal(Signal::SIGTERM).unwrap();
        assert!(c.redis.wait_timeout(Duration::from_secs(10)).is_some());
        let r = get(c.port, "/").unwrap();
        assert_eq!(r.status, 503, "{r:?}");
        assert!(r.body.starts_with("counter: cannot reach redis at 127.0.0.1:"), "{r:?}");
        c.redis_starts += 1;
        c.redis = start_redis(&c.stack, c.tmp.path(), c.redis_port, c.redis_starts).unwrap();
        assert_eq!(c.view().unwrap().count(), Some(2));
    }

    #[test]
    fn nginx_readiness_follows_the_unready_file() {
        let c = Counter::start(Stack::find("counter").unwrap()).unwrap();
        let probe = c.stack.container("counter-nginx", "nginx").unwrap().readiness_probe.clone().unwrap();
        let path = probe.http_get.unwrap().path.unwrap();
        assert_eq!(get(c.port, &path).unwrap().status, 200);
        std::fs::write(c.unready_file(), "").unwrap();
        assert_eq!(get(c.port, &path).unwrap().status, 503);
        // Probes are answered by nginx alone: they must not count as views.
        assert_eq!(c.view().unwrap().count(), Some(1));
    }
}

// ---- against a cluster: one case per check (the good stack) and per negative control ----

support::cluster::on_cluster! {
    stack: "counter",
    checks: [persistence: "persistence", service_discovery: "service-discovery"],
    negatives: [persistence: "persistence", service_discovery: "service-discovery"],
}
