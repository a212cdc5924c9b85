//! Run fixture apps on loopback with Debian's own servers (the same packages the images install),
//! so the app code and the configs from the manifests are proven without a cluster.
//!
//! Everything here binds 127.0.0.1 on a free port and dies with its guard: a test that panics
//! still leaves no server behind.

mod mariadb;
mod nginx;
mod php_fpm;
mod process;
mod redis;

pub use mariadb::MariaDb;
pub use nginx::Nginx;
pub use php_fpm::{PHP_FPM, PhpFpm};
pub use process::Proc;
pub use redis::Redis;

use anyhow::{Context, Result, bail};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port nothing listens on right now, never handed out twice in this process. The kernel
/// picks it; but it may pick a port it just gave another test (released before that test's
/// server bound it), and then two servers race for one port and a test talks to another
/// test's server. Remembering every port handed out closes that window between the tests of
/// one binary, which are the ones running at the same time.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("binding 127.0.0.1:0 must work on any machine with loopback");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Wait until `proc` accepts TCP connections on 127.0.0.1:`port`; give up early, with the
/// server's log, when the process died.
pub fn wait_for_server(proc: &mut Proc, port: u16, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if !proc.is_running() {
            bail!("{} exited before listening on 127.0.0.1:{port}; its log:\n{}", proc.name(), proc.log());
        }
        if Instant::now() >= deadline {
            bail!("{} did not listen on 127.0.0.1:{port} within {timeout:?}; its log:\n{}", proc.name(), proc.log());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replace in-Pod addresses and paths in a config taken from a manifest with the test's own.
/// A `from` that does not occur is an error: if the manifest changes, the rewrite must not
/// silently leave the Pod's address in place.
pub fn rewrite(text: &str, pairs: &[(&str, &str)]) -> Result<String> {
    let mut out = text.to_string();
    for (from, to) in pairs {
        if !out.contains(from) {
            bail!("rewrite: {from:?} does not occur in the config:\n{out}");
        }
        out = out.replace(from, to);
    }
    Ok(out)
}

/// Write `content` to `dir/name`, creating parent folders.
pub(crate) fn write_file(path: &std::path::Path, content: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_are_never_handed_out_twice() {
        let mut ports: Vec<u16> = (0..300).map(|_| super::free_port()).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 300);
    }
}
