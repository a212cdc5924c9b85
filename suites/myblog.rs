//! myblog (shared/seeds/001): a Django blog under gunicorn + MySQL, as Deployments.
//!
//! `local` runs the fixture's own app code for real on loopback: Debian's MariaDB, the
//! initContainer's migration command and the container's gunicorn command from the manifest, with
//! the env the kubelet would give it (ConfigMap + Secret), only the in-cluster addresses rewritten.
//! `manifests` proves, without a cluster, what the cluster checks of stack.toml rely on.

mod support;

mod manifests {
    use seaworthy::stack::Stack;
    use std::collections::BTreeMap;

    fn stack() -> Stack {
        Stack::find("myblog").expect("fixtures/myblog loads and validates")
    }

    /// What a Pod of `workload` needs to reach its database through cluster DNS: MYSQL_HOST must
    /// name a Service of the stack, on MYSQL_PORT, whose selector picks the Pods of `db_workload`
    /// and whose targetPort is a port that container listens on.
    fn database_route(stack: &Stack, workload: &str, db_workload: &str) -> anyhow::Result<String> {
        let env: BTreeMap<String, String> = stack.container_env(workload, workload)?.into_iter().collect();
        let host = env.get("MYSQL_HOST").ok_or_else(|| anyhow::anyhow!("no MYSQL_HOST"))?;
        let port: i32 = env.get("MYSQL_PORT").ok_or_else(|| anyhow::anyhow!("no MYSQL_PORT"))?.parse()?;
        let svc = stack
            .service(host)
            .ok_or_else(|| anyhow::anyhow!("MYSQL_HOST {host:?} names no Service of the stack: the app's DNS lookup fails"))?;
        let spec = svc.spec.as_ref().ok_or_else(|| anyhow::anyhow!("Service {host} has no spec"))?;
        let sp = spec
            .ports
            .iter()
            .flatten()
            .find(|p| p.port == port)
            .ok_or_else(|| anyhow::anyhow!("Service {host} has no port {port}"))?;
        let deploy = stack.deployment(db_workload).ok_or_else(|| anyhow::anyhow!("no Deployment {db_workload}"))?;
        let labels = deploy
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let selector = spec.selector.clone().unwrap_or_default();
        anyhow::ensure!(
            !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
            "Service {host} selector {selector:?} does not pick the {db_workload} Pods {labels:?}"
        );
        let target = match &sp.target_port {
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p)) => *p,
            None => sp.port,
            Some(other) => anyhow::bail!("targetPort {other:?} is not a number"),
        };
        let db = stack.container(db_workload, db_workload)?;
        anyhow::ensure!(
            db.ports.iter().flatten().any(|p| p.container_port == target),
            "Service {host} targets port {target}, which container {db_workload} does not declare"
        );
        Ok(format!("{host}:{port} -> {db_workload}:{target}"))
    }

    #[test]
    fn the_app_reaches_mysql_by_service_name_and_the_wrong_host_variant_does_not() {
        let good = stack();
        assert_eq!(database_route(&good, "myblog", "mysql").unwrap(), "mysql:3306 -> mysql:3306");
        // The initContainer migrates through the same route, or Pods never start.
        let init_env: BTreeMap<_, _> = good.container_env("myblog", "migrate").unwrap().into_iter().collect();
        assert_eq!(init_env["MYSQL_HOST"], "mysql");

        let bad = good.variant("wrong-mysql-host").unwrap();
        let err = database_route(&bad, "myblog", "mysql").unwrap_err().to_string();
        assert!(err.contains("\"mysqldb\" names no Service"), "{err}");
    }

    #[test]
    fn the_database_logs_in_with_the_apps_credentials() {
        // Both sides read the one Secret: the database creates the user the app logs in as.
        let s = stack();
        let app: BTreeMap<_, _> = s.container_env("myblog", "myblog").unwrap().into_iter().collect();
        let db: BTreeMap<_, _> = s.container_env("mysql", "mysql").unwrap().into_iter().collect();
        for key in ["MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD"] {
            assert!(!app[key].is_empty(), "{key} is empty");
            assert_eq!(app[key], db[key], "{key} differs between myblog and mysql");
        }
        assert_ne!(app["MYSQL_USER"], "root", "the mysql image refuses MYSQL_USER=root (seed 001)");
    }

    #[test]
    fn negative_variants_break_exactly_what_their_check_needs() {
        let good = stack();
        let readiness = |s: &Stack| s.container("myblog", "myblog").unwrap().readiness_probe.clone();
        assert!(readiness(&good).is_some());
        let no_probe = good.variant("no-readiness-probe").unwrap();
        assert!(readiness(&no_probe).is_none());
        assert!(no_probe.container("myblog", "myblog").unwrap().liveness_probe.is_some(), "only readiness goes");

        let data_volume = |s: &Stack| {
            let spec = s.pod_spec("mysql").unwrap();
            spec.volumes.iter().flatten().find(|v| v.name == "mysql-data").cloned().unwrap()
        };
        assert_eq!(data_volume(&good).persistent_volume_claim.unwrap().claim_name, "mysql-data");
        assert!(good.get("PersistentVolumeClaim", "mysql-data").is_some());
        let empty = good.variant("emptydir-mysql").unwrap();
        assert!(data_volume(&empty).empty_dir.is_some());
        assert!(empty.get("PersistentVolumeClaim", "mysql-data").is_none());
        let mount = empty.container("mysql", "mysql").unwrap().volume_mounts.clone().unwrap();
        assert!(mount.iter().any(|m| m.name == "mysql-data" && m.mount_path == "/var/lib/mysql"));
    }

    #[test]
    fn mysql_recreates_and_myblog_rolls() {
        let s = stack();
        let strategy = |name: &str| s.deployment(name).unwrap().spec.clone().unwrap().strategy.unwrap();
        assert_eq!(strategy("mysql").type_.as_deref(), Some("Recreate"));
        let rolling = strategy("myblog");
        assert_eq!(rolling.type_.as_deref(), Some("RollingUpdate"));
        let ru = rolling.rolling_update.unwrap();
        assert!(ru.max_surge.is_some() && ru.max_unavailable.is_some());
        let db = s.container("mysql", "mysql").unwrap();
        let tcp = db.readiness_probe.as_ref().and_then(|p| p.tcp_socket.as_ref()).expect("tcpSocket readiness on mysql");
        assert_eq!(tcp.port, k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(3306));
    }
}

mod local {
    use crate::support::http::{self, Client, Response, receive};
    use crate::support::pod;
    use anyhow::{Context, Result, bail, ensure};
    use nix::sys::signal::Signal;
    use seaworthy::local::{self, MariaDb, Proc};
    use seaworthy::stack::Stack;
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// The Pod name the downward API would give; the local stand-in of `metadata.name`.
    const POD_NAME: &str = "myblog-7c96c9f76b-local";

    const HTTP: Client = http::client("myblog.luffy.com", 30);

    fn get(port: u16, path: &str) -> Result<Response> {
        HTTP.get(port, path)
    }

    fn get_with(port: u16, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
        HTTP.request(port, "GET", path, headers, None)
    }

    fn post_form(port: u16, path: &str, form: &str) -> Result<Response> {
        HTTP.request(port, "POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], Some(form.as_bytes()))
    }

    // ---- the stack, run locally ----

    fn app_dir(stack: &Stack) -> PathBuf {
        stack.dir.join("app/myblog")
    }

    /// The container's working directory (`/app`, where the Dockerfile copies the app) is the
    /// build context here.
    fn local_workdir(stack: &Stack, container: &str) -> Result<PathBuf> {
        let c = stack.container("myblog", container)?;
        ensure!(c.working_dir.as_deref() == Some("/app"), "container {container} workingDir is {:?}, the image's app is in /app", c.working_dir);
        let dockerfile = std::fs::read_to_string(app_dir(stack).join("Dockerfile"))?;
        ensure!(dockerfile.contains("WORKDIR /app"), "the Dockerfile no longer puts the app in /app");
        Ok(app_dir(stack))
    }

    /// The env the kubelet gives `container` (ConfigMap + Secret), with the in-cluster database
    /// address rewritten to the local MariaDB, plus what the image and the downward API provide.
    fn local_env(stack: &Stack, container: &str, db_port: u16, version: &str, unready_file: &Path) -> Result<Vec<(String, String)>> {
        let mut env = stack.container_env("myblog", container)?;
        for (k, v) in env.iter_mut() {
            let rewritten = match k.as_str() {
                // The whole value is the Service name; a partial match would be a different host.
                "MYSQL_HOST" if v == "mysql" => local::rewrite(v, &[("mysql", "127.0.0.1")])?,
                "MYSQL_HOST" => bail!("MYSQL_HOST is {v:?}, not the Service name `mysql` the local run stands in for"),
                "MYSQL_PORT" => local::rewrite(v, &[("3306", &db_port.to_string())])?,
                _ => continue,
            };
            *v = rewritten;
        }
        let dockerfile = std::fs::read_to_string(stack.dir.join("app/myblog/Dockerfile"))?;
        // The image bakes --build-arg VERSION into this variable; a local run is that build.
        ensure!(dockerfile.contains("SEAWORTHY_VERSION=${VERSION}"), "the Dockerfile no longer bakes VERSION into SEAWORTHY_VERSION");
        env.extend([
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
            ("SEAWORTHY_VERSION".into(), version.into()),
            // Tests run side by side on one host: each gets its own readiness file.
            ("SEAWORTHY_UNREADY_FILE".into(), unready_file.display().to_string()),
        ]);
        if container == "myblog" {
            // env POD_NAME is a fieldRef (metadata.name): no value outside a Pod.
            pod::ensure_field_ref(stack, "myblog", container, "POD_NAME", "metadata.name")?;
            env.push(("POD_NAME".into(), POD_NAME.into()));
        }
        Ok(env)
    }

    struct Blog {
        stack: Stack,
        tmp: tempfile::TempDir,
        db: MariaDb,
        app: Option<Proc>,
        port: u16,
        version: String,
        starts: u32,
    }

    impl Blog {
        /// MariaDB with the database and user of the ConfigMap/Secret, migrated by the
        /// initContainer's command, and gunicorn started as the container would be.
        fn start() -> Result<Blog> {
            Self::start_with(Stack::find("myblog")?)
        }

        fn start_with(stack: Stack) -> Result<Blog> {
            let tmp = tempfile::tempdir()?;
            let db = MariaDb::start(&tmp.path().join("db"))?;
            let version = pod::image_version(&stack, "myblog", "myblog", "myblog")?;
            let mut blog = Blog { stack, tmp, db, app: None, port: local::free_port(), version, starts: 0 };
            blog.create_database()?;
            blog.migrate()?;
            blog.start_app()?;
            Ok(blog)
        }

        fn unready_file(&self) -> PathBuf {
            self.tmp.path().join("seaworthy-unready")
        }

        fn env(&self, container: &str) -> Result<Vec<(String, String)>> {
            local_env(&self.stack, container, self.db.port, &self.version, &self.unready_file())
        }

        /// What the mysql image's entrypoint does on an empty volume, from the same Secret.
        fn create_database(&self) -> Result<()> {
            let env: BTreeMap<String, String> = self.stack.container_env("mysql", "mysql")?.into_iter().collect();
            let (db, user, pw) = (&env["MYSQL_DATABASE"], &env["MYSQL_USER"], &env["MYSQL_PASSWORD"]);
            let q = |s: &str| s.replace('\\', "\\\\").replace('\'', "''");
            self.db.sql(&format!(
                "CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; \
                 CREATE USER '{u}'@'%' IDENTIFIED BY '{p}'; GRANT ALL PRIVILEGES ON `{db}`.* TO '{u}'@'%';",
                u = q(user),
                p = q(pw)
            ))?;
            Ok(())
        }

        /// The initContainer `migrate`, run as the kubelet would run it.
        fn migrate(&self) -> Result<String> {
            let argv = pod::argv_of(&self.stack, "myblog", "migrate")?;
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]).current_dir(local_workdir(&self.stack, "migrate")?).env_clear().envs(self.env("migrate")?);
            let mut proc = Proc::spawn("migrate", cmd, self.tmp.path())?;
            let status = proc.wait_timeout(Duration::from_secs(120)).context("the migrate initContainer did not finish in 120 s")?;
            ensure!(status.success(), "the migrate initContainer failed ({status}):\n{}", proc.log());
            Ok(proc.log())
        }

        /// The container `myblog`: its command from the manifest, the bind address rewritten.
        fn start_app(&mut self) -> Result<()> {
            let argv = pod::rewrite_argv(&pod::argv_of(&self.stack, "myblog", "myblog")?, &[("0.0.0.0:8002", &format!("127.0.0.1:{}", self.port))])?;
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]).current_dir(local_workdir(&self.stack, "myblog")?).env_clear().envs(self.env("myblog")?);
            self.starts += 1;
            let proc = Proc::serve(&format!("gunicorn-{}", self.starts), cmd, self.tmp.path(), self.port, Duration::from_secs(60))?;
            self.app = Some(proc);
            Ok(())
        }

        fn app(&mut self) -> &mut Proc {
            self.app.as_mut().expect("gunicorn is running")
        }

        /// The kubelet's stop: SIGTERM to PID 1, then wait for the exit.
        fn stop_app(&mut self) -> Result<std::process::ExitStatus> {
            let app = self.app();
            app.signal(Signal::SIGTERM)?;
            let status = app.wait_timeout(Duration::from_secs(30)).context("gunicorn did not exit within 30 s of SIGTERM")?;
            Ok(status)
        }

        fn app_log(&self) -> String {
            self.app.as_ref().map(|p| p.log()).unwrap_or_default()
        }

        fn probe(&self, which: &str) -> Result<(String, Vec<(String, String)>)> {
            let c = self.stack.container("myblog", "myblog")?;
            let probe = match which {
                "readiness" => c.readiness_probe.as_ref(),
                _ => c.liveness_probe.as_ref(),
            }
            .with_context(|| format!("container myblog has no {which} probe"))?;
            let http = probe.http_get.as_ref().with_context(|| format!("the {which} probe is not httpGet"))?;
            ensure!(
                http.port == k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8002),
                "the {which} probe does not ask gunicorn's port 8002: {:?}",
                http.port
            );
            let headers = http.http_headers.iter().flatten().map(|h| (h.name.clone(), h.value.clone())).collect();
            Ok((http.path.clone().unwrap_or_else(|| "/".into()), headers))
        }

        /// A request as the kubelet's probe makes it (path and headers from the manifest).
        fn probe_status(&self, which: &str) -> Result<u16> {
            let (path, headers) = self.probe(which)?;
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Ok(get_with(self.port, &path, &headers)?.status)
        }
    }

    fn unique_title(tag: &str) -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("seaworthy-{tag}-{}-{nanos}", std::process::id())
    }

    fn assert_names_itself(r: &Response, version: &str) {
        assert_eq!(r.header("X-Seaworthy-Backend"), Some(POD_NAME), "{r:?}");
        assert_eq!(r.header("X-Seaworthy-Version"), Some(version), "{r:?}");
    }

    #[test]
    fn index_lists_rows_from_the_database_and_they_survive_restarts() -> Result<()> {
        let mut blog = Blog::start()?;
        let port = blog.port;
        let page = get(port, "/blog/index/")?;
        assert_eq!(page.status, 200, "{page:?}\n{}", blog.app_log());
        assert!(page.body.contains("我的博客列表") && page.body.contains("no articles yet"), "{page:?}");
        assert_names_itself(&page, &blog.version);

        let title = unique_title("row");
        let added = post_form(port, "/blog/add/", &format!("title={title}&content=written+by+the+local+proof"))?;
        assert_eq!(added.status, 201, "{added:?}\n{}", blog.app_log());
        assert_names_itself(&added, &blog.version);
        let page = get(port, "/blog/index/")?;
        assert!(page.body.contains(&title), "the added row is not listed: {page:?}");
        // The row is in MariaDB, not in the app's memory.
        let rows = blog.db.sql("SELECT title FROM myblog.blog_article")?;
        assert!(rows.lines().any(|l| l == title), "not in the database: {rows:?}");

        // A new app process (a replaced myblog Pod) finds it, without migrating again...
        let status = blog.stop_app()?;
        assert!(status.success(), "gunicorn exited {status} on SIGTERM:\n{}", blog.app_log());
        blog.start_app()?;
        let page = get(port, "/blog/index/")?;
        assert!(page.status == 200 && page.body.contains(&title), "lost across an app restart: {page:?}");

        // ...and so does the app after the database restarts on the same data (the PVC's job).
        blog.db.restart()?;
        let page = get(port, "/blog/index/")?;
        assert!(page.status == 200 && page.body.contains(&title), "lost across a database restart: {page:?}");

        // The initContainer of the next Pod migrates an already migrated database without harm.
        let log = blog.migrate()?;
        assert!(log.contains("is migrated") && log.contains("No migrations to apply"), "{log}");
        Ok(())
    }

    #[test]
    fn every_image_version_names_itself_in_header_and_page() -> Result<()> {
        let stack = Stack::find("myblog")?;
        let versions = stack.spec.images.iter().find(|i| i.name == "myblog").context("no image myblog")?.versions.clone();
        assert!(versions.len() >= 2, "rollout-undo needs two versions: {versions:?}");
        let mut blog = Blog::start_with(stack)?;
        for version in versions {
            if blog.app.is_some() {
                blog.stop_app()?;
            }
            blog.version = version.clone();
            blog.start_app()?;
            let page = get(blog.port, "/blog/index/")?;
            assert_eq!(page.status, 200, "{page:?}");
            assert_names_itself(&page, &version);
            assert!(page.body.contains(&format!("myblog {version}")), "page text does not name {version}: {page:?}");
        }
        Ok(())
    }

    #[test]
    fn with_the_database_down_the_page_fails_naming_the_database() -> Result<()> {
        let mut blog = Blog::start()?;
        assert_eq!(get(blog.port, "/blog/index/")?.status, 200);
        blog.db.stop()?;
        let page = get(blog.port, "/blog/index/")?;
        assert!(!(200..300).contains(&page.status), "a page that needs the database succeeded without it: {page:?}");
        assert_eq!(page.status, 503, "{page:?}");
        let expected = format!("MySQL database 'myblog' at 127.0.0.1:{}", blog.db.port);
        assert!(page.body.contains(&expected), "the error does not name the database ({expected}): {page:?}");
        assert_names_itself(&page, &blog.version);
        // The probes see it too: this Pod would leave the Endpoints and be restarted.
        assert_eq!(blog.probe_status("readiness")?, 503);
        assert_eq!(blog.probe_status("liveness")?, 503);
        assert!(blog.app_log().contains(&expected), "the container log does not name the database:\n{}", blog.app_log());

        // Once the database is back the same process serves again: no connection is kept broken.
        blog.db.restart()?;
        let page = get(blog.port, "/blog/index/")?;
        assert_eq!(page.status, 200, "{page:?}");
        Ok(())
    }

    #[test]
    fn the_readiness_file_fails_readiness_only() -> Result<()> {
        let blog = Blog::start()?;
        assert_eq!(blog.probe_status("readiness")?, 200);
        assert_eq!(blog.probe_status("liveness")?, 200);

        std::fs::write(blog.unready_file(), b"")?;
        let (path, _) = blog.probe("readiness")?;
        let r = get(blog.port, &path)?;
        assert_eq!(r.status, 503, "{r:?}");
        assert!(r.body.contains("unready"), "{r:?}");
        assert_names_itself(&r, &blog.version);
        // Liveness (same path, its header from the manifest) stays green, so the kubelet takes the
        // Pod out of the Endpoints without restarting it; the rest of the app still works.
        assert_eq!(blog.probe_status("liveness")?, 200);
        assert_eq!(get(blog.port, "/blog/slow/?seconds=0")?.status, 200);

        std::fs::remove_file(blog.unready_file())?;
        assert_eq!(blog.probe_status("readiness")?, 200);
        Ok(())
    }

    /// Start a slow request and return once a gunicorn worker is working on it (the view logs
    /// its start; the access log would only tell at the end).
    fn in_flight(blog: &Blog, seconds: u32) -> Result<std::thread::JoinHandle<Result<Response>>> {
        let marker = format!("slow request: sleeping {seconds}s");
        let before = blog.app_log().matches(&marker).count();
        let s = HTTP.send(blog.port, "GET", &format!("/blog/slow/?seconds={seconds}"), &[], None)?;
        let handle = std::thread::spawn(move || receive(s));
        let deadline = Instant::now() + Duration::from_secs(20);
        while blog.app_log().matches(&marker).count() == before {
            ensure!(!handle.is_finished(), "the slow request ended before the view started it:\n{}", blog.app_log());
            ensure!(Instant::now() < deadline, "no worker took the slow request within 20 s:\n{}", blog.app_log());
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(handle)
    }

    #[test]
    fn sigterm_drains_an_in_flight_request_and_sigkill_cuts_it() -> Result<()> {
        let mut blog = Blog::start()?;
        assert_eq!(get(blog.port, "/blog/index/")?.status, 200);

        // Graceful: the kubelet's SIGTERM to PID 1 (gunicorn's master).
        let t0 = Instant::now();
        let request = in_flight(&blog, 3)?;
        blog.app().signal(Signal::SIGTERM)?;
        // gunicorn does not exit under the request (its idle worker goes at once)...
        std::thread::sleep(Duration::from_millis(500));
        assert!(blog.app().is_running(), "gunicorn exited with a request in flight:\n{}", blog.app_log());
        // ...the request runs to its end, and only then does gunicorn exit.
        let r = request.join().expect("client thread")?;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.contains("slept 3s"), "{r:?}");
        assert!(t0.elapsed() >= Duration::from_secs(3));
        let status = blog.app().wait_timeout(Duration::from_secs(30)).context("gunicorn did not exit after draining")?;
        assert!(status.success(), "gunicorn exited {status}:\n{}", blog.app_log());

        // Control: the same in-flight request against an abrupt kill is cut, so the drain above
        // is gunicorn's doing and not a request that had already been answered.
        blog.start_app()?;
        let request = in_flight(&blog, 3)?;
        blog.app().signal_group(Signal::SIGKILL)?;
        match request.join().expect("client thread") {
            Ok(r) => panic!("a SIGKILLed server answered the in-flight request: {r:?}"),
            Err(e) => assert!(format!("{e:#}").contains("no complete response") || format!("{e:#}").contains("reset"), "{e:#}"),
        }
        Ok(())
    }
}

// ---- against a cluster: one case per check (the good stack) and per negative control ----

support::cluster::on_cluster! {
    stack: "myblog",
    checks: [endpoints_follow_readiness: "endpoints-follow-readiness", persistence: "persistence", rollout_undo: "rollout-undo", service_discovery: "service-discovery"],
    negatives: [endpoints_follow_readiness: "endpoints-follow-readiness", persistence: "persistence", service_discovery: "service-discovery"],
}
