//! wordpress (shared/seeds/003): WordPress from Debian's package behind nginx + php-fpm, three
//! replicas, MySQL (Debian's MariaDB) on a PVC, the password in a Secret, readiness probe,
//! Guaranteed QoS, soft anti-affinity, PDB, preStop, HPA, NodePort and Ingress.
//!
//! `manifests` checks the objects a cluster run relies on and that every negative control breaks
//! exactly what it must. `local` runs the Pod for real on loopback: Debian's nginx with the server
//! block of the ConfigMap, Debian's php-fpm with its packaged config plus the ConfigMap's pool
//! file, both under the manifest's dumb-init command, MariaDB set up as the image's entrypoint does.
//! Only in-Pod addresses and paths are rewritten.

mod support;

use seaworthy::stack::Stack;

const STACK: &str = "wordpress";

fn stack() -> Stack {
    Stack::find(STACK).unwrap()
}

fn params(stack: &Stack, check: &str) -> toml::Table {
    stack
        .spec
        .checks
        .iter()
        .find(|c| c.name == check)
        .map(|c| c.params.clone())
        .unwrap_or_else(|| panic!("stack.toml has no check {check}"))
}

fn param<'a>(table: &'a toml::Table, key: &str) -> &'a toml::Value {
    table.get(key).unwrap_or_else(|| panic!("stack.toml: no param {key} in {table:?}"))
}

/// The negative-control variant a check must catch, rendered.
fn negative(stack: &Stack, check: &str) -> Stack {
    let name = stack
        .spec
        .checks
        .iter()
        .find(|c| c.name == check)
        .and_then(|c| c.negative.clone())
        .unwrap_or_else(|| panic!("check {check} names no negative control"));
    stack.variant(&name).unwrap_or_else(|e| panic!("variant {name}: {e}"))
}

mod manifests {
    use super::*;
    use serde_json::{Value, json};

    fn raw<'a>(stack: &'a Stack, kind: &str, name: &str) -> &'a Value {
        &stack.get(kind, name).unwrap_or_else(|| panic!("no {kind} {name} in the stack")).raw
    }

    fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
        v.pointer(pointer).unwrap_or_else(|| panic!("no {pointer} in {v:#}"))
    }

    fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
        at(deployment, "/spec/template/spec/containers")
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }

    #[test]
    fn the_stack_and_every_variant_load() {
        let stack = stack();
        for name in stack.spec.variants.keys() {
            stack.variant(name).unwrap_or_else(|e| panic!("variant {name}: {e}"));
        }
        for check in &stack.spec.checks {
            if let Some(neg) = &check.negative {
                assert!(stack.spec.variants.contains_key(neg), "{}: {neg}", check.name);
            }
        }
    }

    #[test]
    fn everything_lives_in_the_stacks_own_namespace() {
        let stack = stack();
        assert!(stack.get("Namespace", "kube-example").is_some(), "the seed's namespace is declared");
        for o in stack.objects.iter().filter(|o| o.resource.is_namespaced()) {
            assert_eq!(o.raw.pointer("/metadata/namespace"), Some(&json!("kube-example")), "{}", o.label());
        }
    }

    #[test]
    fn wordpress_pods_are_guaranteed_spread_and_drained_gracefully() {
        let stack = stack();
        let d = raw(&stack, "Deployment", "wordpress");
        assert_eq!(at(d, "/spec/strategy"), &json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}));
        let term = at(d, "/spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/0/podAffinityTerm");
        assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
        let grace = at(d, "/spec/template/spec/terminationGracePeriodSeconds").as_i64().unwrap();
        for name in ["nginx", "php-fpm"] {
            let c = container(d, name);
            // Guaranteed QoS: both resources set, requests == limits, in every container.
            let (req, lim) = (&c["resources"]["requests"], &c["resources"]["limits"]);
            assert!(req["cpu"].is_string() && req["memory"].is_string(), "{name}: {req}");
            assert_eq!(req, lim, "{name}: requests must equal limits");
            assert_eq!(c["command"].as_array().unwrap()[..4], [json!("dumb-init"), json!("--rewrite"), json!("15:3"), json!("--")], "{name}");
            // nginx's hook is `sleep 20`; php-fpm's sleeps as long, then waits for nginx to let go
            // of port 80 (`sh -c "sleep 20; …"`).
            let hook = &c["lifecycle"]["preStop"]["exec"]["command"];
            let words: Vec<&str> = hook.as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
            let sleep = match words[..] {
                ["sleep", secs] => secs,
                ["sh", "-c", script] => script.strip_prefix("sleep ").and_then(|r| r.split(';').next()).unwrap_or(""),
                _ => "",
            };
            let secs: i64 = sleep.parse().unwrap_or_else(|_| panic!("{name}: preStop begins with a sleep: {hook}"));
            assert!(secs >= 5 && secs < grace, "{name}: preStop sleeps {secs}s of a {grace}s grace period");
        }
        let probe = &container(d, "nginx")["readinessProbe"]["httpGet"];
        assert_eq!(probe["path"], "/seaworthy/ready");
        // php-fpm's drain fits into what the grace period leaves after preStop.
        let fpm_conf = stack.mounted_file("wordpress", "php-fpm", "/etc/php/8.2/fpm/pool.d/zz-seaworthy.conf").unwrap().text();
        let drain: i64 = fpm_conf
            .lines()
            .find_map(|l| l.strip_prefix("process_control_timeout = "))
            .and_then(|v| v.trim().trim_end_matches('s').parse().ok())
            .expect("php-fpm waits for its workers (process_control_timeout)");
        assert!(drain > 0 && 20 + drain < grace, "process_control_timeout {drain}s, grace {grace}s");
    }

    #[test]
    fn pdb_hpa_and_entry_points_are_the_seeds() {
        let stack = stack();
        let pdb = raw(&stack, "PodDisruptionBudget", "wordpress-pdb");
        assert_eq!(pdb["apiVersion"], "policy/v1");
        assert_eq!(at(pdb, "/spec/maxUnavailable"), 1);
        let labels = at(raw(&stack, "Deployment", "wordpress"), "/spec/template/metadata/labels");
        assert_eq!(at(pdb, "/spec/selector/matchLabels"), labels, "the PDB covers exactly the WordPress Pods");

        let hpa = raw(&stack, "HorizontalPodAutoscaler", "wordpress");
        assert_eq!(hpa["apiVersion"], "autoscaling/v2");
        assert_eq!(at(hpa, "/spec/scaleTargetRef/name"), "wordpress");
        assert_eq!((at(hpa, "/spec/minReplicas"), at(hpa, "/spec/maxReplicas")), (&json!(3), &json!(6)));
        assert_eq!(at(hpa, "/spec/metrics/0/resource"), &json!({"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 20}}));
        let window = at(hpa, "/spec/behavior/scaleDown/stabilizationWindowSeconds").as_i64().unwrap();
        assert!(window <= 60, "a scale-down a check can wait for, not the default 300s: {window}");

        let svc = raw(&stack, "Service", "wordpress");
        assert_eq!(at(svc, "/spec/type"), "NodePort");
        assert_eq!(at(svc, "/spec/ports/0/nodePort").as_i64(), stack.spec.entry.node_port.map(i64::from));
        let ing = raw(&stack, "Ingress", "wordpress");
        assert_eq!(at(ing, "/spec/rules/0/host").as_str(), stack.spec.entry.ingress_host.as_deref());
    }

    #[test]
    fn mysql_keeps_its_data_and_both_sides_take_the_password_from_the_secret() {
        let stack = stack();
        let m = raw(&stack, "Deployment", "wordpress-mysql");
        assert_eq!(at(m, "/spec/strategy/type"), "Recreate");
        assert_eq!(at(m, "/spec/template/spec/volumes/0/persistentVolumeClaim/claimName"), "mysql-pvc");
        assert!(stack.get("PersistentVolumeClaim", "mysql-pvc").is_some());
        let secret_ref = |d: &Value, c: &str, var: &str| {
            container(d, c)["env"].as_array().unwrap().iter().find(|e| e["name"] == var).unwrap()["valueFrom"]["secretKeyRef"].clone()
        };
        let wp = raw(&stack, "Deployment", "wordpress");
        assert_eq!(secret_ref(wp, "php-fpm", "WORDPRESS_DB_PASSWORD"), json!({"name": "wordpress-db-pwd", "key": "dbpwd"}));
        assert_eq!(secret_ref(m, "mysql", "MYSQL_PASSWORD"), json!({"name": "wordpress-db-pwd", "key": "dbpwd"}));
        let env = stack.container_env("wordpress", "php-fpm").unwrap();
        assert!(env.contains(&("WORDPRESS_DB_HOST".into(), "wordpress-mysql:3306".into())), "reached by Service DNS name: {env:?}");
    }

    #[test]
    fn the_negative_controls_break_only_what_they_must() {
        let stack = stack();
        let abrupt = negative(&stack, "rollout-zero-5xx");
        let d = raw(&abrupt, "Deployment", "wordpress");
        for name in ["nginx", "php-fpm"] {
            let c = container(d, name);
            assert_eq!(c["command"][2], "15:9", "{name}");
            assert!(c.get("lifecycle").is_none(), "{name} still has a preStop");
            assert_eq!(c["resources"], container(raw(&stack, "Deployment", "wordpress"), name)["resources"]);
        }

        let hpa = negative(&stack, "hpa-scale");
        let h = raw(&hpa, "HorizontalPodAutoscaler", "wordpress");
        assert_eq!(at(h, "/spec/metrics/0/type"), "Pods", "a metric no adapter serves");
        assert_eq!(at(h, "/spec/scaleTargetRef/name"), "wordpress");

        let no_pdb = negative(&stack, "pdb-drain");
        assert!(no_pdb.get("PodDisruptionBudget", "wordpress-pdb").is_none());
        assert_eq!(no_pdb.objects.len(), stack.objects.len() - 1);

        let emptydir = negative(&stack, "persistence");
        assert!(emptydir.get("PersistentVolumeClaim", "mysql-pvc").is_none());
        assert_eq!(at(raw(&emptydir, "Deployment", "wordpress-mysql"), "/spec/template/spec/volumes/0"), &json!({"name": "mysql-data", "emptyDir": {}}));

        let wrong = negative(&stack, "service-discovery");
        let env = wrong.container_env("wordpress", "php-fpm").unwrap();
        let host = env.iter().find(|(k, _)| k == "WORDPRESS_DB_HOST").unwrap();
        assert_ne!(host.1, "wordpress-mysql:3306");
        assert!(wrong.service(host.1.split(':').next().unwrap()).is_none(), "{host:?} must name no Service");
    }
}

mod local {
    use super::*;
    use crate::support::http::{self, Client, Response};
    use crate::support::{php, pod};
    use anyhow::{Context, Result, ensure};
    use nix::sys::signal::Signal;
    use seaworthy::local::{self, MariaDb, Nginx, Proc};
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Duration;

    /// What the downward API would put into POD_NAME.
    const POD_NAME: &str = "wordpress-5f8d9c7b6-x7k2p";
    /// The MySQL Service as WordPress's env names it.
    const DB_SERVICE: &str = "wordpress-mysql:3306";

    /// As through the Ingress: its host, which WordPress then uses in its links.
    const HTTP: Client = http::client("wordpress.local.com", 60);

    fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<Response> {
        HTTP.request(port, method, path, headers, body)
    }

    fn urlencode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }

    /// A form from stack.toml (`form = { field = "value", ... }`), urlencoded.
    fn form_body(form: &toml::Value) -> String {
        form.as_table()
            .expect("a form is a table")
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v.as_str().expect("form values are strings"))))
            .collect::<Vec<_>>()
            .join("&")
    }

    // ---- the image, as its Dockerfile builds it ----

    /// The wordpress image's files at `version`: Debian's /usr/share/wordpress with the fixture's
    /// wp-config.php over Debian's, and the seaworthy hooks. Returns the image root and its env.
    fn build_image(stack: &Stack, version: &str, root: &Path) -> Result<Vec<(String, String)>> {
        let context = stack.dir.join("app/wordpress");
        let dockerfile = std::fs::read_to_string(context.join("Dockerfile"))?;
        for line in [
            "COPY wp-config.php /usr/share/wordpress/wp-config.php",
            "COPY seaworthy/ /var/www/seaworthy/",
            "ENV SEAWORTHY_VERSION=${VERSION}",
        ] {
            ensure!(dockerfile.contains(line), "app/wordpress/Dockerfile no longer has `{line}`: update the local build");
        }
        let share = root.join("usr/share");
        std::fs::create_dir_all(&share)?;
        // A copy, not links: PHP resolves __DIR__ through symlinks, and wp-load.php must find
        // this wp-config.php, not Debian's.
        let out = Command::new("cp").arg("-a").arg("/usr/share/wordpress").arg(&share).output()?;
        ensure!(out.status.success(), "copying Debian's WordPress (is the wordpress package installed?): {}", String::from_utf8_lossy(&out.stderr));
        let config = share.join("wordpress/wp-config.php");
        std::fs::remove_file(&config)?;
        std::fs::copy(context.join("wp-config.php"), &config)?;
        let hooks = root.join("var/www/seaworthy");
        std::fs::create_dir_all(&hooks)?;
        for entry in std::fs::read_dir(context.join("seaworthy"))? {
            let entry = entry?;
            std::fs::copy(entry.path(), hooks.join(entry.file_name()))?;
        }
        Ok(vec![
            ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
            ("SEAWORTHY_VERSION".into(), version.into()),
        ])
    }

    /// The part of a container's command before `program`, after checking that what follows is
    /// what the local run starts.
    fn wrapper(stack: &Stack, container: &str, program: &str, rest: &[&str]) -> Result<Vec<String>> {
        pod::wrapper(&pod::argv_of(stack, "wordpress", container)?, program, rest)
    }

    // ---- MySQL ----

    /// MariaDB with what the wordpress-mysql image's entrypoint creates on an empty data
    /// directory, from that container's env (the user's password from the Secret).
    fn start_database(stack: &Stack, dir: &Path) -> Result<MariaDb> {
        let entrypoint = std::fs::read_to_string(stack.dir.join("app/mysql/entrypoint.sh"))?;
        ensure!(
            entrypoint.contains("CREATE USER IF NOT EXISTS") && entrypoint.contains("GRANT ALL PRIVILEGES ON"),
            "app/mysql/entrypoint.sh no longer creates the user and grants it the database: update the local setup"
        );
        let env = stack.container_env("wordpress-mysql", "mysql")?;
        let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).with_context(|| format!("mysql has no env {k}"));
        let (db, user, password) = (var("MYSQL_DATABASE")?, var("MYSQL_USER")?, var("MYSQL_PASSWORD")?);
        let mariadb = MariaDb::start(dir)?;
        mariadb.sql(&format!(
            "CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; \
             CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; \
             GRANT ALL PRIVILEGES ON `{db}`.* TO '{user}'@'%';"
        ))?;
        Ok(mariadb)
    }

    // ---- the WordPress Pod ----

    struct Pod {
        tmp: tempfile::TempDir,
        stack: Stack,
        fpm_env: Vec<(String, String)>,
        fpm_port: u16,
        fpm: Proc,
        nginx: Nginx,
        port: u16,
    }

    impl Pod {
        /// The Pod of `stack` with image `version`. `services` maps in-Pod addresses in the env to
        /// loopback ones; an empty map leaves the names as they are (unresolvable here, as a
        /// wrong name is in the cluster).
        fn start(stack: &Stack, version: &str, services: &[(&str, &str)]) -> Result<Pod> {
            let tmp = tempfile::tempdir()?;
            // php-fpm's workers run as the pool's www-data when the test is root: let them in.
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
            let image = tmp.path().join("image");
            let mut fpm_env = build_image(stack, version, &image)?;

            // php-fpm's env: what the manifest gives (the Secret's password decoded), the
            // downward API's POD_NAME, and the image's ENV.
            pod::ensure_field_ref(stack, "wordpress", "php-fpm", "POD_NAME", "metadata.name")?;
            let mut env = stack.container_env("wordpress", "php-fpm")?;
            if !services.is_empty() {
                env = pod::rewrite_env(&env, services)?;
            }
            fpm_env.extend(env);
            fpm_env.push(("POD_NAME".into(), POD_NAME.into()));

            let fpm_port = local::free_port();
            let fpm = start_php_fpm(stack, tmp.path(), &fpm_env, fpm_port)?;

            // nginx: the ConfigMap's server block, as Debian's nginx.conf includes conf.d/*.conf.
            let conf = php::nginx_conf_d(stack, "wordpress")?;
            let port = local::free_port();
            let conf = local::rewrite(
                &conf,
                &[
                    ("listen 80;", &format!("listen 127.0.0.1:{port};")),
                    ("fastcgi_pass 127.0.0.1:9000;", &format!("fastcgi_pass 127.0.0.1:{fpm_port};")),
                    ("root /usr/share/wordpress;", &format!("root {}/usr/share/wordpress;", image.display())),
                    ("/var/www/seaworthy/", &format!("{}/var/www/seaworthy/", image.display())),
                    // The Pod's /tmp is an emptyDir; parallel tests share this machine's /tmp.
                    ("/tmp/seaworthy-unready", &tmp.path().join("seaworthy-unready").display().to_string()),
                ],
            )?;
            let nginx_wrapper = wrapper(stack, "nginx", "nginx", &["-g", "daemon off;"])?;
            let nginx = Nginx::start_under(&tmp.path().join("nginx"), &conf, &nginx_wrapper)?;
            Ok(Pod { tmp, stack: stack.clone(), fpm_env, fpm_port, fpm, nginx, port })
        }

        fn get(&self, path: &str) -> Result<Response> {
            request(self.port, "GET", path, &[], None)
        }

        fn unready_file(&self) -> PathBuf {
            self.tmp.path().join("seaworthy-unready")
        }

        fn wait_stopped(&mut self, timeout: Duration) -> Result<()> {
            php::wait_stopped(&mut self.fpm, &mut self.nginx, timeout)
        }

        /// The php-fpm container replaced: the old one stopped as the kubelet stops it, a new one
        /// started from the same image and env.
        fn restart_php_fpm(&mut self) -> Result<()> {
            self.fpm.signal(Signal::SIGTERM)?;
            ensure!(self.fpm.wait_timeout(Duration::from_secs(30)).is_some(), "php-fpm did not stop:\n{}", self.fpm.log());
            self.fpm = start_php_fpm(&self.stack, self.tmp.path(), &self.fpm_env, self.fpm_port)?;
            Ok(())
        }

        fn logs(&self) -> String {
            php::logs(&self.fpm, &self.nginx)
        }
    }

    /// php-fpm as the container runs it: Debian's php-fpm.conf and pool.d/www.conf (the image's,
    /// from the same package), the ConfigMap's files mounted into pool.d, under the container's
    /// dumb-init, with only the container's env. Only the include path, the pid file and the
    /// listen address change.
    fn start_php_fpm(stack: &Stack, dir: &Path, env: &[(String, String)], port: u16) -> Result<Proc> {
        let etc = dir.join("php-fpm");
        let pool_d = etc.join("pool.d");
        std::fs::create_dir_all(&pool_d)?;
        let global = local::rewrite(
            &std::fs::read_to_string("/etc/php/8.2/fpm/php-fpm.conf").context("Debian's php-fpm8.2 config")?,
            &[
                ("include=/etc/php/8.2/fpm/pool.d/*.conf", &format!("include={}/*.conf", pool_d.display())),
                ("pid = /run/php/php8.2-fpm.pid", &format!("pid = {}/php-fpm.pid", etc.display())),
            ],
        )?;
        std::fs::write(etc.join("php-fpm.conf"), global)?;
        std::fs::copy("/etc/php/8.2/fpm/pool.d/www.conf", pool_d.join("www.conf"))?;
        let mounted = stack.mounted_files("wordpress", "php-fpm")?;
        ensure!(!mounted.is_empty(), "php-fpm mounts no config from the manifests");
        for file in mounted {
            let name = file
                .path
                .strip_prefix("/etc/php/8.2/fpm/pool.d")
                .with_context(|| format!("php-fpm mounts {} outside pool.d: the local run does not know it", file.path.display()))?;
            let text = local::rewrite(&file.text(), &[("listen = 127.0.0.1:9000", &format!("listen = 127.0.0.1:{port}"))])?;
            std::fs::write(pool_d.join(name), text)?;
        }

        let mut cmd = php::command(&wrapper(stack, "php-fpm", "php-fpm8.2", &["-F"])?, &etc.join("php-fpm.conf"))?;
        cmd.env_clear().envs(env.iter().cloned());
        php::start("php-fpm", cmd, dir, port)
    }

    // ---- WordPress, driven as a person (or a check) does it ----

    fn install(pod: &Pod) -> Result<Response> {
        let setup = params(&pod.stack, "persistence");
        let setup = param(&setup, "setup");
        let path = setup["path"].as_str().context("setup.path")?;
        let body = form_body(&setup["form"]);
        request(pod.port, "POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], Some(body.as_bytes()))
    }

    /// Log in as the admin, get a REST nonce, create a published post. Returns its id.
    fn create_post(pod: &Pod, title: &str, content: &str) -> Result<u64> {
        let p = params(&pod.stack, "persistence");
        let login = param(&p, "login");
        let form = form_body(&login["form"]);
        let r = request(pod.port, "POST", login["path"].as_str().unwrap(), &[("Content-Type", "application/x-www-form-urlencoded")], Some(form.as_bytes()))?;
        ensure!(r.status == 302, "login did not redirect into wp-admin: {r:?}");
        let cookies = r.cookies().join("; ");
        ensure!(cookies.contains("wordpress_logged_in_"), "login set no session cookie: {r:?}");

        let r = request(pod.port, "GET", param(&p, "nonce_path").as_str().unwrap(), &[("Cookie", &cookies)], None)?;
        ensure!(r.status == 200 && !r.body.trim().is_empty() && r.body.trim().chars().all(|c| c.is_ascii_alphanumeric()), "no REST nonce: {r:?}");
        let nonce = r.body.trim().to_string();

        let post = serde_json::json!({"title": title, "content": content, "status": "publish"}).to_string();
        let r = request(
            pod.port,
            "POST",
            param(&p, "write_path").as_str().unwrap(),
            &[("Cookie", &cookies), ("X-WP-Nonce", &nonce), ("Content-Type", "application/json")],
            Some(post.as_bytes()),
        )?;
        ensure!(r.status == 201, "the post was not created: {r:?}");
        r.json()?["id"].as_u64().with_context(|| format!("no id in {r:?}"))
    }

    /// The post, read logged out through the REST API.
    fn read_post(pod: &Pod, id: u64) -> Result<Response> {
        let p = params(&pod.stack, "persistence");
        pod.get(&param(&p, "read_path").as_str().unwrap().replace("{id}", &id.to_string()))
    }

    // ---- the proofs ----

    #[test]
    fn wordpress_installs_against_mariadb_and_a_post_survives_restarts() {
        let stack = stack();
        let db_dir = tempfile::tempdir().unwrap();
        let mut db = start_database(&stack, db_dir.path()).unwrap();
        let db_addr = format!("127.0.0.1:{}", db.port);
        let mut pod = Pod::start(&stack, "v1", &[(DB_SERVICE, &db_addr)]).unwrap();

        // Not installed yet: every page sends to the installer, as in the seed's browser.
        let r = pod.get("/").unwrap();
        assert_eq!(r.status, 302, "{r:?}\n{}", pod.logs());
        assert!(r.header("Location").is_some_and(|l| l.ends_with("/wp-admin/install.php")), "{r:?}");

        let r = install(&pod).unwrap();
        assert_eq!(r.status, 200, "{r:?}\n{}", pod.logs());
        assert!(r.body.contains("<h1>Success!</h1>"), "{r:?}");
        assert_eq!(db.sql("SELECT option_value FROM wordpress.wp_options WHERE option_name = 'blogname'").unwrap().trim(), "seaworthy");

        let r = pod.get("/").unwrap();
        assert_eq!(r.status, 200, "the installed site's front page: {r:?}\n{}", pod.logs());
        assert_eq!(r.header("X-Seaworthy-Backend"), Some(POD_NAME), "{r:?}");
        assert_eq!(r.header("X-Seaworthy-Version"), Some("v1"), "{r:?}");
        // Links follow the Host the client used (WP_HOME from the request), not a stored address.
        assert!(r.header("Link").is_some_and(|l| l.contains("http://wordpress.local.com/")), "{r:?}");

        let marker = format!("seaworthy-{}", std::process::id());
        let id = create_post(&pod, "Persistence", &marker).unwrap();
        let title = db.sql(&format!("SELECT post_title FROM wordpress.wp_posts WHERE ID = {id}")).unwrap();
        assert_eq!(title.trim(), "Persistence", "the post is a row in MariaDB");

        // A new php-fpm (a replaced Pod) and the database restarted on the same data (the PVC).
        pod.restart_php_fpm().unwrap();
        db.restart().unwrap();
        let r = read_post(&pod, id).unwrap();
        assert_eq!(r.status, 200, "{r:?}\n{}", pod.logs());
        let post = r.json().unwrap();
        assert_eq!(post["title"]["rendered"], "Persistence", "{post:#}");
        assert!(post["content"]["rendered"].as_str().unwrap().contains(&marker), "{post:#}");
        assert_eq!(r.header("X-Seaworthy-Backend"), Some(POD_NAME));

        // Installed stays installed: the checks may run setup again on a kept database.
        let r = install(&pod).unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.contains("Already Installed"), "{r:?}");
    }

    #[test]
    fn v2_names_its_version_even_on_error_pages() {
        let stack = stack();
        assert!(stack.spec.images.iter().any(|i| i.name == "wordpress" && i.versions == ["v1", "v2"]));
        let pod = Pod::start(&stack, "v2", &[]).unwrap();
        let probe = pod.get("/seaworthy/ready").unwrap();
        // No database here: WordPress's own error page, still saying who answered.
        let page = pod.get("/").unwrap();
        for r in [&probe, &page] {
            assert_eq!(r.header("X-Seaworthy-Version"), Some("v2"), "{r:?}\n{}", pod.logs());
            assert_eq!(r.header("X-Seaworthy-Backend"), Some(POD_NAME), "{r:?}");
        }
        assert_eq!(probe.status, 200);
        assert_eq!(page.status, 500, "{page:?}");
    }

    #[test]
    fn a_wrong_database_host_fails_with_wordpress_database_error() {
        let stack = stack();
        let p = params(&stack, "service-discovery");
        let path = param(&p, "path").as_str().unwrap();
        let expect_error = param(&p, "expect_error").as_str().unwrap();
        let db_dir = tempfile::tempdir().unwrap();
        let db = start_database(&stack, db_dir.path()).unwrap();
        let db_addr = format!("127.0.0.1:{}", db.port);

        // The same database, reached by the Service name: the page works.
        let good = Pod::start(&stack, "v1", &[(DB_SERVICE, &db_addr)]).unwrap();
        let r = good.get(path).unwrap();
        assert_eq!(i64::from(r.status), param(&p, "expect_status").as_integer().unwrap(), "{r:?}\n{}", good.logs());
        assert!(!r.body.contains(expect_error), "{r:?}");

        // The variant's host name resolves nowhere, here as in the cluster.
        let bad = Pod::start(&negative(&stack, "service-discovery"), "v1", &[]).unwrap();
        let r = bad.get(path).unwrap();
        assert_eq!(r.status, 500, "{r:?}\n{}", bad.logs());
        assert!(r.body.contains(expect_error), "{r:?}");
        assert_eq!(r.header("X-Seaworthy-Backend"), Some(POD_NAME), "the failure names its Pod");
    }

    #[test]
    fn the_readiness_probe_follows_the_unready_file_and_php_fpm() {
        let stack = stack();
        let probe = stack.container("wordpress", "nginx").unwrap().readiness_probe.clone().expect("nginx has a readiness probe");
        let path = probe.http_get.expect("an httpGet probe").path.unwrap();

        let mut pod = Pod::start(&stack, "v1", &[]).unwrap();
        let r = pod.get(&path).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "ready\n"), "{r:?}\n{}", pod.logs());
        std::fs::write(pod.unready_file(), "").unwrap();
        assert_eq!(pod.get(&path).unwrap().status, 503);
        std::fs::remove_file(pod.unready_file()).unwrap();
        assert_eq!(pod.get(&path).unwrap().status, 200);

        // Without php-fpm the Pod is not ready either.
        pod.fpm.signal(Signal::SIGTERM).unwrap();
        assert!(pod.fpm.wait_timeout(Duration::from_secs(10)).is_some(), "{}", pod.fpm.log());
        let r = pod.get(&path).unwrap();
        assert_eq!(r.status, 502, "{r:?}");
    }

    /// A request that php-fpm holds for `ms`, across the SIGTERM of both containers.
    fn in_flight_across_sigterm(pod: &Pod, ms: u64) -> (Result<Response>, Duration) {
        php::in_flight_across_sigterm(&HTTP, pod.port, &format!("/seaworthy/slow?ms={ms}"), &pod.fpm, &pod.nginx)
    }

    #[test]
    fn graceful_sigterm_lets_the_request_in_flight_finish() {
        let stack = stack();
        let mut pod = Pod::start(&stack, "v1", &[]).unwrap();
        let (outcome, took) = in_flight_across_sigterm(&pod, 4000);
        let r = outcome.unwrap_or_else(|e| panic!("the in-flight request failed: {e:#}\n{}", pod.logs()));
        assert_eq!(r.status, 200, "{r:?}\n{}", pod.logs());
        assert!(r.body.starts_with("slept 4"), "{r:?}");
        assert_eq!(r.header("X-Seaworthy-Backend"), Some(POD_NAME));
        assert!(took >= Duration::from_millis(4000), "answered after {took:?}: not held across the stop");
        pod.wait_stopped(Duration::from_secs(15)).unwrap();
        assert!(pod.get("/seaworthy/ready").is_err(), "nginx still answers after its graceful stop");
    }

    #[test]
    fn the_abrupt_variant_cuts_the_request_in_flight() {
        let stack = stack();
        let mut pod = Pod::start(&negative(&stack, "rollout-zero-5xx"), "v1", &[]).unwrap();
        let (outcome, took) = in_flight_across_sigterm(&pod, 4000);
        php::assert_cut_at_sigterm(outcome, took, Duration::from_millis(4000), &pod.logs());
        pod.wait_stopped(Duration::from_secs(5)).unwrap();
    }
}

// ---- against a cluster: one case per check (the good stack) and per negative control ----

support::cluster::on_cluster! {
    stack: "wordpress",
    checks: [rollout_zero_fivexx: "rollout-zero-5xx", hpa_scale: "hpa-scale", pdb_drain: "pdb-drain", persistence: "persistence", service_discovery: "service-discovery"],
    negatives: [rollout_zero_fivexx: "rollout-zero-5xx", hpa_scale: "hpa-scale", pdb_drain: "pdb-drain", persistence: "persistence", service_discovery: "service-discovery"],
}
