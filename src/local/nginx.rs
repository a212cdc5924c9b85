//! Debian's nginx with a generated top-level config around server blocks taken from a manifest.

use super::{Proc, wait_for_server, write_file};
use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NGINX: &str = "/usr/sbin/nginx";

/// Files a server block may `include` by relative name, as it can inside the nginx image.
const SHARED_CONF: &[&str] = &["mime.types", "fastcgi_params", "fastcgi.conf", "proxy_params", "uwsgi_params", "scgi_params"];

pub struct Nginx {
    pub proc: Proc,
    dir: PathBuf,
}

impl Nginx {
    /// Start nginx in `dir` with `http_conf` (upstream/server blocks whose `listen` lines already
    /// name 127.0.0.1 ports) and wait until every one of those ports accepts connections.
    pub fn start(dir: &Path, http_conf: &str) -> Result<Nginx> {
        Self::start_under(dir, http_conf, &[])
    }

    /// [`Nginx::start`] behind `wrapper`, the part of a manifest's command before `nginx` (e.g.
    /// `dumb-init --rewrite 15:3`), so that signals take the path they take in the Pod.
    pub fn start_under(dir: &Path, http_conf: &str, wrapper: &[String]) -> Result<Nginx> {
        std::fs::create_dir_all(dir.join("tmp")).with_context(|| format!("creating {}", dir.display()))?;
        for name in SHARED_CONF {
            let from = Path::new("/etc/nginx").join(name);
            if from.exists() {
                std::fs::copy(&from, dir.join(name)).with_context(|| format!("copying {}", from.display()))?;
            }
        }
        let snippets = Path::new("/etc/nginx/snippets");
        if snippets.is_dir() {
            std::fs::create_dir_all(dir.join("snippets"))?;
            for entry in std::fs::read_dir(snippets)? {
                let entry = entry?;
                std::fs::copy(entry.path(), dir.join("snippets").join(entry.file_name()))?;
            }
        }
        write_file(&dir.join("nginx.conf"), &main_conf(dir, http_conf))?;
        let ports = listen_ports(http_conf)?;

        let mut cmd = match wrapper.split_first() {
            None => Command::new(NGINX),
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(NGINX);
                cmd
            }
        };
        cmd.arg("-p").arg(dir).arg("-c").arg(dir.join("nginx.conf")).arg("-e").arg(dir.join("error.log"));
        let mut proc = Proc::spawn("nginx", cmd, dir)?;
        for port in ports {
            wait_for_server(&mut proc, port, Duration::from_secs(10))
                .with_context(|| format!("nginx error log:\n{}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()))?;
        }
        Ok(Nginx { proc, dir: dir.to_path_buf() })
    }

    /// Swap in new server blocks and reload gracefully (SIGHUP): old workers finish what they
    /// have in flight, as `nginx -s reload` does.
    pub fn reload(&mut self, http_conf: &str) -> Result<()> {
        write_file(&self.dir.join("nginx.conf"), &main_conf(&self.dir, http_conf))?;
        let test = Command::new(NGINX)
            .arg("-t")
            .arg("-q")
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .arg("-e")
            .arg(self.dir.join("error.log"))
            .output()
            .context("running nginx -t")?;
        if !test.status.success() {
            bail!("nginx rejected the new config: {}", String::from_utf8_lossy(&test.stderr));
        }
        self.proc.signal(Signal::SIGHUP)
    }

    /// Graceful stop (SIGQUIT, what the images' dumb-init turns SIGTERM into).
    pub fn stop_graceful(&mut self, timeout: Duration) -> Result<()> {
        self.proc.signal(Signal::SIGQUIT)?;
        match self.proc.wait_timeout(timeout) {
            Some(_) => Ok(()),
            None => bail!("nginx did not stop within {timeout:?} after SIGQUIT"),
        }
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

fn main_conf(dir: &Path, http_conf: &str) -> String {
    let d = dir.display();
    // Workers run as root when the test does: a temp dir is 0700 and `nobody` could not read it.
    let user = if nix::unistd::geteuid().is_root() { "user root;\n" } else { "" };
    format!(
        "{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  include mime.types;\n  default_type application/octet-stream;\n  access_log {d}/access.log;\n\
         client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n\
         uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n\n{http_conf}\n}}\n"
    )
}

/// The loopback ports the server blocks listen on; a `listen` that is not on 127.0.0.1 means the
/// caller forgot to rewrite the Pod's port, which would bind every interface.
fn listen_ports(http_conf: &str) -> Result<Vec<u16>> {
    let mut ports = Vec::new();
    for line in http_conf.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("listen ") else { continue };
        let addr = rest.trim_end_matches(';').split_whitespace().next().unwrap_or("");
        let Some(port) = addr.strip_prefix("127.0.0.1:") else {
            bail!("nginx config listens on {addr:?}: rewrite it to 127.0.0.1:<free port> for a local run");
        };
        ports.push(port.parse().with_context(|| format!("bad port in `{line}`"))?);
    }
    if ports.is_empty() {
        bail!("nginx config has no `listen 127.0.0.1:<port>` line");
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_lines_must_be_loopback() {
        assert_eq!(listen_ports("server {\n listen 127.0.0.1:8080;\n}").unwrap(), vec![8080]);
        assert!(listen_ports("server {\n listen 80;\n}").is_err());
        assert!(listen_ports("server {}").is_err());
    }
}
