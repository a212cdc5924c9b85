//! flask-sts (shared/seeds/000, second half): Flask under gunicorn as a StatefulSet behind an
//! nginx Deployment that follows Pod IP changes through DNS (`resolver` + a variable upstream).
//!
//! `manifests` proves, without a cluster, what the cluster checks of stack.toml rely on: the
//! timings that make a drain clean, where the app's data lands, and that each negative variant
//! breaks exactly the thing its check must catch.
//! `local` runs the fixture's own code for real on loopback: the StatefulSet container's command
//! (dumb-init + Debian's gunicorn) with the ConfigMap's gunicorn.py, and Debian's nginx with the
//! ConfigMap's server block as the image's entrypoint renders it. Only in-Pod addresses are
//! rewritten.

mod support;

use support::pod;

use anyhow::{Context, Result, bail};
use seaworthy::stack::Stack;

fn stack() -> Stack {
    Stack::find("flask-sts").expect("fixtures/flask-sts loads and validates")
}

/// The integer value of `name = N` in gunicorn.py (a Python file of plain assignments).
fn gunicorn_setting(conf: &str, name: &str) -> Result<u64> {
    conf.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == name)
        .with_context(|| format!("gunicorn.py sets no {name}"))?
        .1
        .trim()
        .parse()
        .with_context(|| format!("gunicorn.py {name} is not a number"))
}

fn gunicorn_conf(stack: &Stack) -> Result<String> {
    Ok(stack.mounted_file("flask-sts", "flask", "/data/www/gunicorn.py")?.text())
}

fn nginx_template(stack: &Stack) -> Result<seaworthy::stack::MountedFile> {
    let mut files = stack.mounted_files("flask-nginx", "nginx")?;
    if files.len() != 1 {
        bail!("nginx mounts {} files from ConfigMaps, expected the one server block", files.len());
    }
    Ok(files.remove(0))
}

fn pre_stop_sleep(stack: &Stack) -> Result<Option<u64>> {
    let c = stack.container("flask-sts", "flask")?;
    let Some(exec) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).and_then(|h| h.exec.as_ref()) else {
        return Ok(None);
    };
    match exec.command.as_deref() {
        Some([sleep, n]) if sleep == "sleep" => Ok(Some(n.parse()?)),
        other => bail!("preStop is not `sleep N`: {other:?}"),
    }
}

mod manifests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    #[test]
    fn a_drain_fits_the_grace_period_and_outlasts_stale_dns() -> Result<()> {
        let s = stack();
        let spec = s.pod_spec("flask-sts").context("no StatefulSet flask-sts")?;
        let grace = spec.termination_grace_period_seconds.unwrap_or(30) as u64;
        let pre_stop = pre_stop_sleep(&s)?.context("flask has no preStop sleep")?;
        let drain = gunicorn_setting(&gunicorn_conf(&s)?, "graceful_timeout")?;
        // Past the grace period the kubelet SIGKILLs, and the drain is cut short.
        assert!(pre_stop + drain < grace, "preStop {pre_stop}s + graceful_timeout {drain}s >= grace {grace}s");

        // A Pod that is going away must keep answering until no nginx still sends to it: nginx
        // keeps an answer for `valid`, CoreDNS's kubernetes plugin gives records a 5 s TTL.
        let conf = nginx_template(&s)?.text();
        let valid: u64 = conf
            .split("valid=")
            .nth(1)
            .and_then(|r| r.split('s').next())
            .context("the nginx resolver sets no valid=Ns")?
            .parse()?;
        const COREDNS_TTL: u64 = 5;
        assert!(pre_stop > valid + COREDNS_TTL, "preStop {pre_stop}s does not outlast nginx valid={valid}s + DNS TTL {COREDNS_TTL}s");
        Ok(())
    }

    #[test]
    fn probes_ask_the_port_the_configmap_makes_gunicorn_listen_on() -> Result<()> {
        let s = stack();
        let conf = gunicorn_conf(&s)?;
        assert!(conf.contains("bind = '0.0.0.0:80'"), "{conf}");
        // The image's own gunicorn.py listens elsewhere, so the subPath mount is what makes the
        // probes (and the Service) reach gunicorn at all.
        let baked = std::fs::read_to_string(s.dir.join("app/flask/gunicorn.py"))?;
        assert!(!baked.contains("0.0.0.0:80'"), "the image's default already listens on 80: a missing mount would go unnoticed");
        let c = s.container("flask-sts", "flask")?;
        for (name, probe) in [("readiness", &c.readiness_probe), ("liveness", &c.liveness_probe)] {
            let http = probe.as_ref().and_then(|p| p.http_get.as_ref()).with_context(|| format!("no httpGet {name} probe"))?;
            assert_eq!(http.port, IntOrString::Int(80), "{name}");
        }
        let svc = s.service("flask-svc").context("no Service flask-svc")?.spec.clone().unwrap_or_default();
        assert_eq!(svc.cluster_ip.as_deref(), Some("None"), "flask-svc must be headless: nginx resolves it to Pod IPs");
        assert_eq!(svc.ports.unwrap_or_default()[0].target_port, Some(IntOrString::Int(80)));
        Ok(())
    }

    #[test]
    fn the_app_writes_onto_the_claim_template_volume() -> Result<()> {
        let s = stack();
        let env: std::collections::BTreeMap<_, _> = s.container_env("flask-sts", "flask")?.into_iter().collect();
        let c = s.container("flask-sts", "flask")?;
        let mount = c.volume_mounts.iter().flatten().find(|m| m.mount_path == env["DATA_DIR"]).context("DATA_DIR is not a mount")?;
        let sts = s.stateful_set("flask-sts").context("no StatefulSet")?.spec.clone().unwrap_or_default();
        let claims: Vec<_> = sts.volume_claim_templates.iter().flatten().filter_map(|c| c.metadata.name.clone()).collect();
        assert_eq!(claims, vec![mount.name.clone()], "DATA_DIR's volume is not the volumeClaimTemplate");
        Ok(())
    }

    #[test]
    fn each_variant_breaks_what_its_check_needs_and_nothing_else() -> Result<()> {
        let good = stack();

        let v = good.variant("no-readiness")?;
        let c = v.container("flask-sts", "flask")?;
        assert!(c.readiness_probe.is_none() && c.liveness_probe.is_some());

        let v = good.variant("abrupt")?;
        let argv = pod::argv_of(&v, "flask-sts", "flask")?;
        assert_eq!(argv[..3], ["dumb-init", "--rewrite", "15:9"], "{argv:?}");
        assert_eq!(pre_stop_sleep(&v)?, None);
        assert_eq!(argv[3..], pod::argv_of(&good, "flask-sts", "flask")?[1..], "the abrupt variant runs another command");

        let v = good.variant("emptydir")?;
        let sts = v.stateful_set("flask-sts").context("no StatefulSet")?.spec.clone().unwrap_or_default();
        assert!(sts.volume_claim_templates.is_none());
        let vol = v.pod_spec("flask-sts").unwrap().volumes.iter().flatten().find(|v| v.name == "flask-pvc").context("no flask-pvc")?;
        assert!(vol.empty_dir.is_some());

        let v = good.variant("static-proxy")?;
        let conf = nginx_template(&v)?.text();
        assert!(conf.contains("proxy_pass http://flask-svc;") && !conf.contains("resolver"), "{conf}");
        // Everything else of the nginx Deployment is the good one's, but for an init container
        // that waits until the headless Service resolves: the static config fails to start
        // before that, and the control must fail on stale IPs, not on a crash loop at start.
        let mut spec = v.pod_spec("flask-nginx").cloned().context("no flask-nginx")?;
        let init = spec.init_containers.take().unwrap_or_default();
        assert_eq!(init.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["wait-for-flask-svc"]);
        assert_eq!(serde_json::to_value(Some(&spec))?, serde_json::to_value(good.pod_spec("flask-nginx"))?);
        Ok(())
    }
}

mod local {
    use super::pod::{self, Response, get, put, receive, send};
    use super::*;
    use anyhow::ensure;
    use seaworthy::local::{self, Nginx, Proc};
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::{Duration, Instant};

    const RENDER_CONF: &str = "app/nginx/render-conf.sh";

    /// One StatefulSet Pod, run locally: its own port, volume and readiness file.
    struct Backend {
        proc: Proc,
        port: u16,
        pod: String,
        version: String,
        dir: PathBuf,
    }

    impl Backend {
        fn data_dir(&self) -> PathBuf {
            self.dir.join("volume")
        }

        fn unready_file(&self) -> PathBuf {
            self.dir.join("seaworthy-unready")
        }
    }

    /// The container `flask` of `stack` as Pod `pod`, with the image of `version`. `dir` stands
    /// in for the Pod: its volume lives in dir/volume, so a second start on the same dir is the
    /// replacement Pod on the same PersistentVolumeClaim.
    fn start_backend(stack: &Stack, dir: &Path, pod: &str, version: &str) -> Result<Backend> {
        std::fs::create_dir_all(dir.join("volume"))?;
        let port = local::free_port();

        let conf = local::rewrite(&gunicorn_conf(stack)?, &[("bind = '0.0.0.0:80'", &format!("bind = '127.0.0.1:{port}'"))])?;
        let conf_path = dir.join("gunicorn.py");
        std::fs::write(&conf_path, conf)?;
        let argv = pod::rewrite_argv(&pod::argv_of(stack, "flask-sts", "flask")?, &[("/data/www/gunicorn.py", &conf_path.display().to_string())])?;

        // The image copies app/flask to /data/www, the container's workingDir.
        let c = stack.container("flask-sts", "flask")?;
        ensure!(c.working_dir.as_deref() == Some("/data/www"), "workingDir is {:?}, the image's app is in /data/www", c.working_dir);
        let app = stack.dir.join("app/flask");
        ensure!(std::fs::read_to_string(app.join("Dockerfile"))?.contains("WORKDIR /data/www"), "the Dockerfile moved the app");

        let volume = dir.join("volume").display().to_string();
        let mut env = pod::rewrite_env(&stack.container_env("flask-sts", "flask")?, &[("/data/www/logs", &volume)])?;
        env.extend(pod::image_env(&app.join("Dockerfile"), version, dir)?);
        pod::ensure_field_ref(stack, "flask-sts", "flask", "POD_NAME", "metadata.name")?;
        pod::ensure_field_ref(stack, "flask-sts", "flask", "POD_IP", "status.podIP")?;
        env.push(("POD_NAME".into(), pod.into()));
        env.push(("POD_IP".into(), "127.0.0.1".into()));
        // Tests run side by side on one host: each Pod gets its own readiness file.
        env.push(("SEAWORTHY_UNREADY_FILE".into(), dir.join("seaworthy-unready").display().to_string()));

        let mut proc = pod::run_container(&format!("{pod}-{port}"), &argv, &app, &env, dir)?;
        local::wait_for_server(&mut proc, port, Duration::from_secs(30))?;
        // The master listens before its workers have imported the app; a request sent now waits
        // in the backlog. Traffic starts, as in a Pod, once the readiness probe passes.
        let ready = c.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref()).and_then(|h| h.path.clone());
        let ready = ready.unwrap_or_else(|| "/".into());
        pod::eventually(Duration::from_secs(30), "the readiness probe passes", || Ok((get(port, &ready)?.status == 200).then_some(())))
            .with_context(|| proc.log())?;
        Ok(Backend { proc, port, pod: pod.into(), version: version.into(), dir: dir.to_path_buf() })
    }

    /// Run the nginx image's entrypoint (render-conf) on `templates` as it runs in the Pod, with
    /// `resolv_conf` standing in for the Pod's /etc/resolv.conf. Returns the rendered files.
    fn render(stack: &Stack, dir: &Path, templates: &[(&str, &str)], resolv_conf: &str) -> Result<(bool, BTreeMap<String, String>, String)> {
        let (tdir, out) = (dir.join("templates"), dir.join("conf.d"));
        std::fs::create_dir_all(&tdir)?;
        for (name, text) in templates {
            std::fs::write(tdir.join(name), text)?;
        }
        std::fs::write(dir.join("resolv.conf"), resolv_conf)?;
        let result = Command::new("/bin/sh")
            .arg(stack.dir.join(RENDER_CONF))
            .arg("/bin/true")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("RESOLV_CONF", dir.join("resolv.conf"))
            .env("NGINX_TEMPLATES", &tdir)
            .env("NGINX_CONF_D", &out)
            .output()?;
        let mut rendered = BTreeMap::new();
        if out.is_dir() {
            for e in std::fs::read_dir(&out)? {
                let e = e?;
                rendered.insert(e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path())?);
            }
        }
        let log = format!("{}{}", String::from_utf8_lossy(&result.stdout), String::from_utf8_lossy(&result.stderr));
        Ok((result.status.success(), rendered, log))
    }

    /// `nginx -t` on server blocks, as the nginx image loads them (inside `http {}`).
    fn nginx_test(dir: &Path, server_block: &str) -> Result<(bool, String)> {
        std::fs::create_dir_all(dir)?;
        let d = dir.display();
        std::fs::write(
            dir.join("nginx.conf"),
            format!("pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\naccess_log off;\n{server_block}\n}}\n"),
        )?;
        let out = Command::new("/usr/sbin/nginx").arg("-t").arg("-p").arg(dir).arg("-c").arg(dir.join("nginx.conf")).arg("-e").arg(dir.join("error.log")).output()?;
        Ok((out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned()))
    }

    const KIND_RESOLV: &str = "search run-1.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";

    #[test]
    fn the_entrypoint_renders_the_resolver_and_domain_from_resolv_conf() -> Result<()> {
        let s = stack();
        let template = nginx_template(&s)?;
        let name = template.path.file_name().unwrap().to_string_lossy().into_owned();
        let text = template.text();
        let tmp = tempfile::tempdir()?;

        // kind/kubeadm, k3d/k3s and an IPv6 cluster: the Pod's resolv.conf differs, the manifest does not.
        let clusters = [
            ("kind", KIND_RESOLV, "resolver 10.96.0.10 valid=3s;", "flask-svc.run-1.svc.cluster.local;"),
            (
                "k3d",
                "search run-2.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.43.0.10\noptions ndots:5\n",
                "resolver 10.43.0.10 valid=3s;",
                "flask-svc.run-2.svc.cluster.local;",
            ),
            (
                "ipv6",
                "nameserver fd00:10:96::a\nsearch run-3.svc.k8s.example svc.k8s.example k8s.example\n",
                "resolver [fd00:10:96::a] valid=3s;",
                "flask-svc.run-3.svc.k8s.example;",
            ),
        ];
        for (cluster, resolv, resolver, upstream) in clusters {
            let dir = tmp.path().join(cluster);
            let (ok, out, log) = render(&s, &dir, &[(&name, &text)], resolv)?;
            ensure!(ok, "{cluster}: render-conf failed: {log}");
            let conf = &out[&name];
            assert!(conf.contains(resolver), "{cluster}:\n{conf}");
            assert!(conf.contains(&format!("set $upstream {upstream}")), "{cluster}:\n{conf}");
            assert!(!conf.contains("${"), "{cluster}: a placeholder is left:\n{conf}");
            // nginx's own variable is not a placeholder and must survive.
            assert!(conf.contains("proxy_pass http://$upstream;"), "{cluster}:\n{conf}");
            let (ok, log) = nginx_test(&dir.join("nginx"), conf)?;
            assert!(ok, "{cluster}: nginx -t rejects the rendered config: {log}");
        }

        // Without the values it needs, the entrypoint stops instead of starting a broken proxy.
        let (ok, _, log) = render(&s, &tmp.path().join("no-search"), &[(&name, &text)], "nameserver 10.96.0.10\n")?;
        assert!(!ok && log.contains("no search line"), "{log}");
        let (ok, _, log) = render(&s, &tmp.path().join("no-ns"), &[(&name, &text)], "search a.svc.cluster.local\n")?;
        assert!(!ok && log.contains("no nameserver"), "{log}");
        Ok(())
    }

    /// Why the seed's first config goes stale: nginx resolves a static upstream name once, when
    /// it loads the config (here it cannot, and says so), while the fixed config loads without any
    /// DNS and resolves on each request, through the resolver.
    #[test]
    fn the_static_proxy_resolves_at_load_time_and_the_fixed_one_at_request_time() -> Result<()> {
        let good = stack();
        let bad = good.variant("static-proxy")?;
        let tmp = tempfile::tempdir()?;
        for (label, s) in [("fixed", &good), ("static", &bad)] {
            let t = nginx_template(s)?;
            let name = t.path.file_name().unwrap().to_string_lossy().into_owned();
            let dir = tmp.path().join(label);
            let (ok, out, log) = render(s, &dir, &[(&name, &t.text())], KIND_RESOLV)?;
            ensure!(ok, "{label}: {log}");
            if label == "static" {
                assert_eq!(out[&name], t.text(), "render-conf changed a config without placeholders");
            }
            let (ok, log) = nginx_test(&dir.join("nginx"), &out[&name])?;
            match label {
                "fixed" => assert!(ok, "the fixed config needs DNS to load: {log}"),
                _ => assert!(!ok && log.contains("host not found in upstream \"flask-svc\""), "{log}"),
            }
        }
        Ok(())
    }

    /// nginx in front of two StatefulSet Pods, with the server block from the ConfigMap as the
    /// entrypoint renders it; only `listen` and the Service's DNS name (here an upstream block
    /// with the two local Pods, which a variable proxy_pass looks up before asking DNS) change.
    fn start_proxy(stack: &Stack, dir: &Path, backends: &[&Backend]) -> Result<(Nginx, u16)> {
        let t = nginx_template(stack)?;
        let name = t.path.file_name().unwrap().to_string_lossy().into_owned();
        let (ok, out, log) = render(stack, &dir.join("render"), &[(&name, &t.text())], KIND_RESOLV)?;
        ensure!(ok, "render-conf: {log}");
        let port = local::free_port();
        let conf = local::rewrite(
            &out[&name],
            &[("listen       80;", &format!("listen 127.0.0.1:{port};")), ("flask-svc.run-1.svc.cluster.local", "flask_svc_local")],
        )?;
        let servers: String = backends.iter().map(|b| format!("  server 127.0.0.1:{};\n", b.port)).collect();
        let nginx = Nginx::start(&dir.join("nginx"), &format!("upstream flask_svc_local {{\n{servers}}}\n{conf}"))?;
        Ok((nginx, port))
    }

    fn assert_names_itself(r: &Response) -> Result<(String, String)> {
        ensure!(r.status == 200, "{r:?}");
        let backend = r.header("X-Seaworthy-Backend").context("no X-Seaworthy-Backend")?.to_string();
        let version = r.header("X-Seaworthy-Version").context("no X-Seaworthy-Version")?.to_string();
        let body = r.json()?;
        ensure!(body["Host"] == backend.as_str() && body["Version"] == version.as_str(), "body and headers disagree: {r:?}");
        Ok((backend, version))
    }

    #[test]
    fn nginx_from_the_configmap_spreads_requests_over_both_pods_which_name_themselves() -> Result<()> {
        let s = stack();
        let tmp = tempfile::tempdir()?;
        // Mid-rollout: one Pod already on v2.
        let b0 = start_backend(&s, &tmp.path().join("flask-sts-0"), "flask-sts-0", "v1")?;
        let mut b1 = start_backend(&s, &tmp.path().join("flask-sts-1"), "flask-sts-1", "v2")?;
        let (nginx, port) = start_proxy(&s, &tmp.path().join("proxy"), &[&b0, &b1])?;

        let expected: BTreeMap<String, String> = [&b0, &b1].iter().map(|b| (b.pod.clone(), b.version.clone())).collect();
        let mut seen = BTreeSet::new();
        for _ in 0..20 {
            let r = get(port, "/")?;
            let (backend, version) = assert_names_itself(&r)?;
            assert_eq!(expected.get(&backend), Some(&version), "{r:?}");
            assert!(r.header("X-Seaworthy-Proxy").is_some(), "nginx did not add its header: {r:?}");
            // nginx passed the client address on, as the seed's proxy_set_header lines ask.
            assert!(r.json()?["ClientIP"].as_str().unwrap_or_default().contains("127.0.0.1"), "{r:?}");
            seen.insert(backend);
        }
        assert_eq!(seen.len(), 2, "nginx used only {seen:?}");

        // A Pod that dies is not hidden by a retry on the other one (proxy_next_upstream off):
        // the rollout check must see what a dying Pod does to requests.
        pod::sigterm(&b1.proc)?;
        b1.proc.wait_timeout(Duration::from_secs(30)).context("flask-sts-1 did not stop")?;
        let mut failed = 0;
        for _ in 0..10 {
            let r = get(port, "/")?;
            match r.status {
                502 => failed += 1,
                200 => assert_eq!(assert_names_itself(&r)?.0, "flask-sts-0"),
                _ => bail!("unexpected answer: {r:?}"),
            }
        }
        assert!(failed >= 1, "no request failed on the dead Pod: nginx retried it away\n{}", nginx.error_log());
        Ok(())
    }

    #[test]
    fn readiness_follows_the_unready_file_and_liveness_does_not() -> Result<()> {
        let s = stack();
        let tmp = tempfile::tempdir()?;
        let b = start_backend(&s, tmp.path(), "flask-sts-0", "v1")?;
        let c = s.container("flask-sts", "flask")?;
        let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
            p.as_ref().and_then(|p| p.http_get.as_ref()).and_then(|h| h.path.clone()).unwrap_or_else(|| "/".into())
        };
        let (ready, live) = (path(&c.readiness_probe), path(&c.liveness_probe));

        assert_eq!(get(b.port, &ready)?.status, 200);
        std::fs::write(b.unready_file(), "")?;
        let r = get(b.port, &ready)?;
        assert_eq!(r.status, 503, "{r:?}");
        assert_eq!(r.header("X-Seaworthy-Backend"), Some("flask-sts-0"));
        // Liveness stays green: the kubelet takes the Pod out of the Service without restarting it.
        assert_eq!(get(b.port, &live)?.status, 200);
        assert_eq!(get(b.port, "/")?.status, 200);
        std::fs::remove_file(b.unready_file())?;
        assert_eq!(get(b.port, &ready)?.status, 200);
        Ok(())
    }

    #[test]
    fn a_file_on_the_pods_volume_survives_its_replacement_and_stays_on_that_pod() -> Result<()> {
        let s = stack();
        let tmp = tempfile::tempdir()?;
        let note = format!("written at {:?}", std::time::SystemTime::now());
        let b0 = start_backend(&s, &tmp.path().join("flask-sts-0"), "flask-sts-0", "v1")?;
        let b1 = start_backend(&s, &tmp.path().join("flask-sts-1"), "flask-sts-1", "v1")?;

        let r = put(b0.port, "/data/seaworthy-note", note.as_bytes())?;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json()?["Host"], "flask-sts-0");
        assert_eq!(std::fs::read_to_string(b0.data_dir().join("seaworthy-note"))?, note, "not written to the volume");
        // The other Pod has its own claim.
        assert_eq!(get(b1.port, "/data/seaworthy-note")?.status, 404);

        // The kubelet stops the Pod; the StatefulSet brings up flask-sts-0 again on the same
        // claim, as v2.
        let dir = b0.dir.clone();
        pod::sigterm(&b0.proc)?;
        let mut old = b0.proc;
        old.wait_timeout(Duration::from_secs(30)).context("flask-sts-0 did not stop")?;
        let b0 = start_backend(&s, &dir, "flask-sts-0", "v2")?;
        let r = get(b0.port, "/data/seaworthy-note")?;
        assert_eq!((r.status, r.body.as_str()), (200, note.as_str()), "{r:?}");
        assert_eq!(r.header("X-Seaworthy-Version"), Some("v2"));
        Ok(())
    }

    /// Start a slow request and return once gunicorn is working on it.
    fn in_flight(port: u16, seconds: u32) -> Result<std::thread::JoinHandle<Result<Response>>> {
        let s = send(port, "GET", &format!("/slow?seconds={seconds}"), None)?;
        let handle = std::thread::spawn(move || receive(s));
        // An idle gthread worker picks a connection up at once; the abrupt control below proves
        // the request was in flight and not already answered.
        std::thread::sleep(Duration::from_millis(700));
        ensure!(!handle.is_finished(), "the slow request finished early");
        Ok(handle)
    }

    #[test]
    fn sigterm_drains_an_in_flight_request_and_the_abrupt_variant_cuts_it() -> Result<()> {
        let good = stack();
        let drain = gunicorn_setting(&gunicorn_conf(&good)?, "graceful_timeout")?;
        let tmp = tempfile::tempdir()?;

        // Graceful: the manifest's `dumb-init -- gunicorn` passes the kubelet's SIGTERM on.
        let mut b = start_backend(&good, &tmp.path().join("good"), "flask-sts-0", "v1")?;
        let t0 = Instant::now();
        let request = in_flight(b.port, 3)?;
        pod::sigterm(&b.proc)?;
        // The listeners close (each gthread worker notices within its 1 s poll): nothing new
        // reaches a stopping Pod...
        pod::eventually(Duration::from_secs(2), "gunicorn stops accepting after SIGTERM", || {
            Ok(std::net::TcpStream::connect(("127.0.0.1", b.port)).is_err().then_some(()))
        })?;
        assert!(!request.is_finished(), "the slow request ended before its time");
        // ...while the request it already had runs to its end.
        let r = request.join().expect("client thread")?;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.contains("slept 3s on flask-sts-0"), "{r:?}");
        assert!(t0.elapsed() >= Duration::from_secs(3));
        let status = b.proc.wait_timeout(Duration::from_secs(drain + 5)).context("gunicorn did not exit after draining")?;
        assert!(status.success(), "exited {status}:\n{}", b.proc.log());

        // Abrupt: the variant's `dumb-init --rewrite 15:9` turns the same SIGTERM into SIGKILL.
        let abrupt = good.variant("abrupt")?;
        let mut b = start_backend(&abrupt, &tmp.path().join("abrupt"), "flask-sts-0", "v1")?;
        let request = in_flight(b.port, 3)?;
        let t0 = Instant::now();
        pod::sigterm(&b.proc)?;
        match request.join().expect("client thread") {
            Ok(r) => panic!("the abrupt variant answered the in-flight request: {r:?}"),
            Err(e) => assert!(format!("{e:#}").contains("no complete response") || format!("{e:#}").contains("reset"), "{e:#}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(2), "the cut took {:?}", t0.elapsed());
        b.proc.wait_timeout(Duration::from_secs(5)).context("dumb-init did not exit after killing gunicorn")?;
        Ok(())
    }
}

// ---- against a cluster: one case per check (the good stack) and per negative control ----

support::cluster::on_cluster! {
    stack: "flask-sts",
    checks: [endpoints_follow_readiness: "endpoints-follow-readiness", rollout_zero_fivexx: "rollout-zero-5xx", persistence: "persistence", stale_dns_proxy: "stale-dns-proxy"],
    negatives: [endpoints_follow_readiness: "endpoints-follow-readiness", rollout_zero_fivexx: "rollout-zero-5xx", persistence: "persistence", stale_dns_proxy: "stale-dns-proxy"],
}
