//! Real backends for the load generator: Debian's Python serving HTTP/1.1 keep-alive and naming
//! itself the way the fixture apps do, and nginx in front of them as a Service VIP would be.

#![allow(dead_code)]

use seaworthy::local::{self, Proc};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const BACKEND_PY: &str = r#"
import sys, http.server
port, name = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, nginx's delayed ACK holds the body
    # back ~40 ms and every latency on the timeline would be that.
    disable_nagle_algorithm = True
    def do_GET(self):
        body = ("hello from %s\n" % name).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Seaworthy-Backend", name)
        self.send_header("X-Seaworthy-Version", "v1")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # The default listen backlog of 5 drops SYNs when nginx opens connections in a burst, and
    # each dropped SYN costs a 1 s retransmit: a p99.9 of 1000 ms that is not the setup's.
    request_queue_size = 128
S(("127.0.0.1", port), H).serve_forever()
"#;

pub struct Backend {
    pub name: String,
    pub port: u16,
    pub proc: Proc,
}

/// Backend `name`, listening once this returns; its script and log live in `dir`.
pub fn backend(dir: &Path, name: &str) -> Backend {
    let script = dir.join("backend.py");
    if !script.exists() {
        std::fs::write(&script, BACKEND_PY).unwrap();
    }
    let port = local::free_port();
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(&script).arg(port.to_string()).arg(name);
    let proc = Proc::serve(name, cmd, dir, port, Duration::from_secs(10)).unwrap();
    Backend { name: name.to_string(), port, proc }
}

/// nginx in front of `upstreams`. No retry on the next upstream and no passive health marking:
/// like a Service VIP, a request that reaches a dead backend fails instead of being hidden.
pub fn proxy_conf(port: u16, upstreams: &[u16]) -> String {
    let servers: String = upstreams.iter().map(|p| format!("  server 127.0.0.1:{p} max_fails=0;\n")).collect();
    format!(
        "upstream app {{\n{servers}  keepalive 16;\n}}\n\
         server {{\n listen 127.0.0.1:{port};\n access_log off;\n keepalive_requests 1000000;\n\
          location / {{\n  proxy_pass http://app;\n  proxy_http_version 1.1;\n  proxy_set_header Connection \"\";\n\
            proxy_next_upstream off;\n  proxy_read_timeout 60s;\n }}\n}}\n"
    )
}
