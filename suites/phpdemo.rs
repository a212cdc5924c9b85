//! phpdemo (shared/seeds/000): php-fpm + nginx in one Pod, the code copied into an emptyDir by an
//! initContainer from a code-only image, config.php overridden by the ConfigMap phpdemo-config.
//!
//! `local` runs that Pod on loopback with Debian's php-fpm and nginx: the initContainer's own
//! command fills a temp "emptyDir", the ConfigMap's files land where the php-fpm container mounts
//! them, php-fpm runs with the image's own config and nginx with the ConfigMap's server block,
//! both under the manifest's dumb-init command. Only in-Pod addresses and paths are rewritten.
//! `manifests` covers what no local run can show (preStop) for the cluster checks.

mod support;

mod manifests {
    use seaworthy::stack::Stack;

    fn stack() -> Stack {
        Stack::find("phpdemo").expect("fixtures/phpdemo loads and validates")
    }

    #[test]
    fn the_abrupt_variant_drops_prestop_and_kills_on_sigterm() {
        let good = stack();
        let bad = good.variant("abrupt-stop").unwrap();
        for container in ["php-fpm", "nginx"] {
            let g = good.container("phpdemo", container).unwrap();
            let pre = g.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).and_then(|h| h.exec.as_ref());
            let command = pre.and_then(|e| e.command.clone()).unwrap_or_default();
            // nginx's hook is a plain `sleep 5`; php-fpm's sleeps as long, then waits for nginx
            // to let go of port 80 (`sh -c "sleep 5; …"`).
            let starts_with_sleep = match command.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["sleep", _] => true,
                ["sh", "-c", script] => script.starts_with("sleep 5;"),
                _ => false,
            };
            assert!(starts_with_sleep, "{container}: preStop begins with an exec sleep: {command:?}");
            assert_eq!(g.command.as_ref().unwrap()[..3], ["dumb-init", "--rewrite", "15:3"], "{container}");

            let b = bad.container("phpdemo", container).unwrap();
            assert!(b.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).is_none(), "{container}: preStop removed");
            assert_eq!(b.command.as_ref().unwrap()[..3], ["dumb-init", "--rewrite", "15:9"], "{container}");
        }
        // The drain has to fit the grace period: preStop, then php-fpm's process_control_timeout.
        let grace = good.pod_spec("phpdemo").unwrap().termination_grace_period_seconds.unwrap();
        let conf = std::fs::read_to_string(good.dir.join("app/php-fpm/php-fpm.conf")).unwrap();
        let timeout: i64 = conf
            .lines()
            .find_map(|l| l.trim().strip_prefix("process_control_timeout = "))
            .and_then(|v| v.trim_end_matches('s').parse().ok())
            .expect("php-fpm.conf sets process_control_timeout in seconds");
        assert!(5 + timeout < grace, "preStop 5 s + process_control_timeout {timeout} s must fit {grace} s");
    }

    #[test]
    fn v1_to_v2_changes_only_the_code_image() {
        let s = stack();
        let init = s.container("phpdemo", "init-phpdemo-src").unwrap();
        assert_eq!(init.image.as_deref(), Some("phpdemo-code:v1"));
        let code = s.spec.images.iter().find(|i| i.name == "phpdemo-code").unwrap();
        assert_eq!(code.versions, ["v1", "v2"]);
    }
}

mod local {
    use crate::support::http::{self, Client, Response};
    use crate::support::{fs, php, pod};
    use anyhow::{Context, Result, ensure};
    use seaworthy::local::{self, Nginx, Proc};
    use seaworthy::stack::Stack;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Duration;

    /// The local stand-in of the downward API's `metadata.name`.
    const POD_NAME: &str = "phpdemo-5d7f9c8b6-local";

    const HTTP: Client = http::client("phpdemo.local.com", 30);

    fn get(port: u16, path: &str) -> Result<Response> {
        HTTP.get(port, path)
    }

    // ---- the Pod, on loopback ----

    /// The part of a container's command before `program`, and a check that what follows is what
    /// the local run starts.
    fn wrapper(stack: &Stack, container: &str, program: &str, rest: &[&str]) -> Result<Vec<String>> {
        pod::wrapper(&pod::argv_of(stack, "phpdemo", container)?, program, rest)
    }

    /// The code image of `version`, as its Dockerfile builds it: the sources plus VERSION.
    fn build_code_image(stack: &Stack, version: &str, root: &Path) -> Result<PathBuf> {
        let context = stack.dir.join("app/code");
        let dockerfile = std::fs::read_to_string(context.join("Dockerfile"))?;
        ensure!(
            dockerfile.contains("COPY src/ /src/") && dockerfile.contains("> /src/VERSION"),
            "app/code/Dockerfile no longer copies src/ to /src and writes /src/VERSION; update the local build"
        );
        let src = root.join("src");
        fs::copy_dir(&context.join("src"), &src)?;
        std::fs::write(src.join("VERSION"), format!("{version}\n"))?;
        Ok(src)
    }

    struct Pod {
        tmp: tempfile::TempDir,
        www: PathBuf,
        fpm: Proc,
        nginx: Nginx,
        port: u16,
    }

    impl Pod {
        /// The Pod of `stack` with its initContainer's image at `version`.
        fn start(stack: &Stack, version: &str) -> Result<Pod> {
            let tmp = tempfile::tempdir()?;
            // php-fpm's workers run as the pool's www-data when the test is root: let them in.
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755))?;
            let image = build_code_image(stack, version, &tmp.path().join("code-image"))?;
            let www = tmp.path().join("wwwroot");
            std::fs::create_dir_all(&www)?;

            // The initContainer, with its command from the manifest: /src is the code image's
            // folder, /src-www the emptyDir.
            let init = stack.container("phpdemo", "init-phpdemo-src")?;
            let mount = init.volume_mounts.iter().flatten().find(|m| m.name == "wwwroot").context("init mounts no wwwroot")?;
            ensure!(mount.mount_path == "/src-www", "the initContainer mounts the emptyDir at {}", mount.mount_path);
            let argv = init.command.clone().context("the initContainer has no command")?;
            let argv: Vec<String> = argv
                .iter()
                .map(|a| {
                    if a.contains("/src") {
                        local::rewrite(a, &[("/src-www/", &format!("{}/", www.display())), (" /src/", &format!(" {}/", image.display()))])
                    } else {
                        Ok(a.clone())
                    }
                })
                .collect::<Result<_>>()?;
            let out = Command::new(&argv[0]).args(&argv[1..]).output().context("running the initContainer's command")?;
            ensure!(out.status.success(), "the initContainer's command {argv:?} failed: {}", String::from_utf8_lossy(&out.stderr));

            // What the php-fpm container sees: the emptyDir at its mountPath, ConfigMap files over
            // it. (In the Pod the subPath mount hides the baked file from php-fpm only; nginx never
            // reads .php files, so one shared folder is the same to both.)
            let fpm_c = stack.container("phpdemo", "php-fpm")?;
            let docroot = fpm_c.volume_mounts.iter().flatten().find(|m| m.name == "wwwroot").context("php-fpm mounts no wwwroot")?;
            let docroot = PathBuf::from(&docroot.mount_path);
            for file in stack.mounted_files("phpdemo", "php-fpm")? {
                let rel = file.path.strip_prefix(&docroot).with_context(|| format!("php-fpm mounts {} outside the code", file.path.display()))?;
                std::fs::write(www.join(rel), &file.content)?;
            }

            let fpm_port = local::free_port();
            let fpm = start_php_fpm(stack, tmp.path(), fpm_port)?;

            // nginx: the ConfigMap's server blocks, as Debian's nginx.conf includes them from conf.d.
            let conf = php::nginx_conf_d(stack, "phpdemo")?;
            let port = local::free_port();
            let conf = local::rewrite(
                &conf,
                &[
                    ("listen       80;", &format!("listen       127.0.0.1:{port};")),
                    ("fastcgi_pass   127.0.0.1:9000;", &format!("fastcgi_pass   127.0.0.1:{fpm_port};")),
                    (&format!("root {};", docroot.display()), &format!("root {};", www.display())),
                ],
            )?;
            let nginx_wrapper = wrapper(stack, "nginx", "nginx", &["-g", "daemon off;"])?;
            let nginx = Nginx::start_under(&tmp.path().join("nginx"), &conf, &nginx_wrapper)?;
            Ok(Pod { tmp, www, fpm, nginx, port })
        }

        fn unready_file(&self) -> PathBuf {
            self.tmp.path().join("seaworthy-unready")
        }

        fn wait_stopped(&mut self, timeout: Duration) -> Result<()> {
            php::wait_stopped(&mut self.fpm, &mut self.nginx, timeout)
        }

        fn logs(&self) -> String {
            php::logs(&self.fpm, &self.nginx)
        }
    }

    /// php-fpm as the image runs it: the Dockerfile's php-fpm.conf and pool, under the container's
    /// command wrapper, with the container's env. Only the listen address and include path change.
    fn start_php_fpm(stack: &Stack, dir: &Path, port: u16) -> Result<Proc> {
        let conf = php::image_config(&stack.dir.join("app/php-fpm"), &dir.join("php-fpm"), "listen = 127.0.0.1:9000", port)?;
        let mut env = stack.container_env("phpdemo", "php-fpm")?;
        pod::ensure_field_ref(stack, "phpdemo", "php-fpm", "POD_NAME", "metadata.name")?;
        env.push(("POD_NAME".into(), POD_NAME.into()));
        // Parallel tests share /tmp: each Pod gets its own readiness file.
        env.push(("SEAWORTHY_UNREADY_FILE".into(), dir.join("seaworthy-unready").display().to_string()));

        let mut cmd = php::command(&wrapper(stack, "php-fpm", "php-fpm8.2", &["-F"])?, &conf)?;
        cmd.envs(env);
        php::start("php-fpm", cmd, dir, port)
    }

    fn params(stack: &Stack, check: &str) -> toml::Table {
        stack.spec.checks.iter().find(|c| c.name == check).map(|c| c.params.clone()).unwrap_or_default()
    }

    fn param(stack: &Stack, check: &str, key: &str) -> String {
        params(stack, check).get(key).and_then(|v| v.as_str()).map(str::to_string).unwrap_or_else(|| panic!("stack.toml: check {check} has no param {key}"))
    }

    fn negative(stack: &Stack, check: &str) -> Stack {
        let name = stack.spec.checks.iter().find(|c| c.name == check).and_then(|c| c.negative.clone()).expect("the check names its negative control");
        stack.variant(&name).unwrap()
    }

    // ---- the proofs ----

    #[test]
    fn api_php_prints_the_configmaps_config_and_names_backend_and_version() {
        let stack = Stack::find("phpdemo").unwrap();
        let pod = Pod::start(&stack, "v1").unwrap();
        let r = get(pod.port, "/api.php").unwrap();
        assert_eq!(r.status, 200, "{r:?}\n{}", pod.logs());
        assert_eq!(r.body, param(&stack, "config-override", "expect"), "{r:?}");
        assert_eq!(r.body, r#"{"host":"0.0.0.0","env":"prod"}"#, "the seed's production config");
        assert_eq!(r.header("X-Seaworthy-Backend"), Some(POD_NAME), "{r:?}");
        assert_eq!(r.header("X-Seaworthy-Version"), Some("v1"), "{r:?}");
        // The baked-in file is still in the emptyDir; only php-fpm's view is overridden.
        let baked = std::fs::read_to_string(stack.dir.join("app/code/src/config.php")).unwrap();
        assert!(baked.contains(r#""env" => "uat""#), "{baked}");
    }

    #[test]
    fn without_the_configmap_mount_the_baked_in_uat_config_is_served() {
        let stack = Stack::find("phpdemo").unwrap();
        let bad = negative(&stack, "config-override");
        let pod = Pod::start(&bad, "v1").unwrap();
        let r = get(pod.port, "/api.php").unwrap();
        assert_eq!(r.status, 200, "{r:?}\n{}", pod.logs());
        assert_eq!(r.body, param(&stack, "config-override", "baked_in"), "{r:?}");
        assert!(r.body.contains(r#""env":"uat""#), "{r:?}");
        assert!(pod.www.join("config.php").is_file());
    }

    #[test]
    fn v2_code_serves_v2_with_the_same_config() {
        let stack = Stack::find("phpdemo").unwrap();
        let pod = Pod::start(&stack, "v2").unwrap();
        for path in ["/api.php", "/index.php", "/"] {
            let r = get(pod.port, path).unwrap();
            assert_eq!(r.status, 200, "{path}: {r:?}\n{}", pod.logs());
            assert_eq!(r.header("X-Seaworthy-Version"), Some("v2"), "{path}: {r:?}");
            assert_eq!(r.header("X-Seaworthy-Backend"), Some(POD_NAME), "{path}: {r:?}");
            if path == "/api.php" {
                assert_eq!(r.body, param(&stack, "config-override", "expect"));
            } else {
                assert!(r.body.contains("phpinfo()"), "{path} is the seed's phpinfo page");
            }
        }
    }

    #[test]
    fn the_readiness_probe_answers_503_while_the_unready_file_exists() {
        let stack = Stack::find("phpdemo").unwrap();
        let probe = stack.container("phpdemo", "nginx").unwrap().readiness_probe.clone().expect("nginx has a readiness probe");
        let http = probe.http_get.expect("an httpGet probe");
        assert_eq!(http.port, k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(80), "the probe asks nginx");
        let path = http.path.unwrap();

        let pod = Pod::start(&stack, "v1").unwrap();
        assert_eq!(get(pod.port, &path).unwrap().status, 200, "{}", pod.logs());
        std::fs::write(pod.unready_file(), "").unwrap();
        let r = get(pod.port, &path).unwrap();
        assert_eq!(r.status, 503, "{r:?}");
        assert_eq!(r.header("X-Seaworthy-Backend"), Some(POD_NAME));
        // The app keeps serving while unready: only the Service stops sending it traffic.
        assert_eq!(get(pod.port, "/api.php").unwrap().status, 200);
        std::fs::remove_file(pod.unready_file()).unwrap();
        assert_eq!(get(pod.port, &path).unwrap().status, 200);
    }

    /// A request that php-fpm holds for `secs`, across the SIGTERM of both containers.
    fn in_flight_across_sigterm(pod: &Pod, secs: u64) -> (Result<Response>, Duration) {
        php::in_flight_across_sigterm(&HTTP, pod.port, &format!("/api.php?sleep={secs}"), &pod.fpm, &pod.nginx)
    }

    #[test]
    fn graceful_sigterm_finishes_the_request_in_flight() {
        let stack = Stack::find("phpdemo").unwrap();
        let mut pod = Pod::start(&stack, "v1").unwrap();
        let (outcome, took) = in_flight_across_sigterm(&pod, 4);
        let r = outcome.unwrap_or_else(|e| panic!("the in-flight request failed: {e:#}\n{}", pod.logs()));
        assert_eq!(r.status, 200, "{r:?}\n{}", pod.logs());
        assert_eq!(r.body, param(&stack, "config-override", "expect"));
        assert!(took >= Duration::from_secs(4), "answered after {took:?}: the request was not held across the stop");
        pod.wait_stopped(Duration::from_secs(10)).unwrap();
        // Stopped means stopped: no new connection is taken.
        assert!(get(pod.port, "/api.php").is_err(), "nginx still answers after its graceful stop");
    }

    #[test]
    fn the_abrupt_variant_kills_the_request_in_flight() {
        let stack = Stack::find("phpdemo").unwrap();
        let bad = negative(&stack, "rollout-zero-5xx");
        let mut pod = Pod::start(&bad, "v1").unwrap();
        let (outcome, took) = in_flight_across_sigterm(&pod, 4);
        php::assert_cut_at_sigterm(outcome, took, Duration::from_secs(4), &pod.logs());
        pod.wait_stopped(Duration::from_secs(5)).unwrap();
    }
}

// ---- against a cluster: one case per check (the good stack) and per negative control ----

support::cluster::on_cluster! {
    stack: "phpdemo",
    checks: [config_override: "config-override", rollout_zero_fivexx: "rollout-zero-5xx", rollout_undo: "rollout-undo"],
    negatives: [config_override: "config-override", rollout_zero_fivexx: "rollout-zero-5xx"],
}
