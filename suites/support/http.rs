//! A minimal HTTP/1.0 client: one connection per request, as a probe or a load test makes, so
//! that what a test sees is what the server did for that request alone and a connection never
//! outlives the process that accepted it.

#![allow(dead_code)]

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Where requests go as a stack's clients send them: the Host of its Ingress or server block
/// (the app may build its links from it), and how long an answer may take.
#[derive(Clone, Copy)]
pub struct Client {
    pub host: &'static str,
    pub timeout: Duration,
}

impl Client {
    /// Send a request and return the open connection; [`receive`] reads the answer. Split so a
    /// test can hold a request in flight while it signals the server.
    pub fn send(&self, port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<TcpStream> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
        s.set_read_timeout(Some(self.timeout))?;
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {}\r\n", self.host);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        let mut bytes = req.into_bytes();
        match body {
            Some(b) => {
                bytes.extend(format!("Content-Length: {}\r\n\r\n", b.len()).bytes());
                bytes.extend_from_slice(b);
            }
            None => bytes.extend(b"\r\n"),
        }
        s.write_all(&bytes)?;
        Ok(s)
    }

    pub fn request(&self, port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Result<Response> {
        receive(self.send(port, method, path, headers, body)?)
    }

    pub fn get(&self, port: u16, path: &str) -> Result<Response> {
        self.request(port, "GET", path, &[], None)
    }
}

/// Headers stay in the order they came, repeats included (a login sets several cookies).
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// `name=value` of every cookie set.
    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split(';').next().map(|c| c.trim().to_string()))
            .collect()
    }

    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {self:?}"))
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // An error page can be a whole HTML document; its start says what went wrong.
        let body: String = self.body.chars().take(2000).collect();
        write!(f, "HTTP {} {:?}\n{body}", self.status, self.headers)
    }
}

pub fn receive(mut s: TcpStream) -> Result<Response> {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).context("reading the response")?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").with_context(|| format!("no complete response: {text:?}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    Ok(Response { status, headers, body: body.to_string() })
}

/// A suite's [`Client`], as a const.
pub const fn client(host: &'static str, timeout_secs: u64) -> Client {
    Client { host, timeout: Duration::from_secs(timeout_secs) }
}
