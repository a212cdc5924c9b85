//! Single HTTP requests through a stack's entry point, when a check needs what the load
//! generator does not keep: the body (a config, a row, a counter), cookies, a redirect.
//!
//! Every request opens a new connection (no keep-alive pool): a Service balances connections,
//! not requests, so a pooled connection would ask the same Pod over and over and a check that
//! wants to hear every backend would never hear them.

use anyhow::{Context, Result};
use reqwest::{Method, Url};
use std::collections::BTreeMap;
use std::time::Duration;

/// What one request got: a response (status, the fixture headers, body) or why there was none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub status: Option<u16>,
    /// Why no response came (connection refused, timeout, ...).
    pub error: Option<String>,
    pub backend: Option<String>,
    pub version: Option<String>,
    pub location: Option<String>,
    /// `name=value` of every Set-Cookie.
    pub cookies: Vec<String>,
    pub body: String,
}

impl Answer {
    /// A response with this status and body, as the tests record them.
    pub fn response(status: u16, backend: Option<&str>, body: &str) -> Answer {
        Answer { status: Some(status), backend: backend.map(str::to_string), body: body.into(), ..Default::default() }
    }

    pub fn no_response(error: &str) -> Answer {
        Answer { error: Some(error.into()), ..Default::default() }
    }

    pub fn is_2xx(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// No response or a 5xx: what a Pod that is still starting, or a proxy whose upstream is not
    /// there yet, answers. Anything else is the app's considered answer.
    pub fn is_transient(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }

    /// The body as a person reads it: without markup, whitespace collapsed, at most `max` chars.
    pub fn excerpt(&self, max: usize) -> String {
        excerpt(&self.body, max)
    }

    /// `503 from counter-app-5d9 "counter: cannot reach redis at ..."`, or `no response (timeout)`.
    pub fn describe(&self) -> String {
        match self.status {
            None => format!("no response ({})", self.error.as_deref().unwrap_or("unknown error")),
            Some(s) => {
                let from = self.backend.as_deref().map(|b| format!(" from {b}")).unwrap_or_default();
                let to = self.location.as_deref().map(|l| format!(" to {l}")).unwrap_or_default();
                let text = self.excerpt(240);
                let body = if text.is_empty() { " (empty body)".to_string() } else { format!(" {text:?}") };
                format!("{s}{from}{to}{body}")
            }
        }
    }
}

/// Text of an HTML (or plain) body: the `<body>` if there is one, tags, scripts and styles
/// dropped, whitespace collapsed, cut at `max` characters.
pub fn excerpt(body: &str, max: usize) -> String {
    let lower = body.to_ascii_lowercase();
    let start = lower.find("<body").unwrap_or(0);
    let (text, lower) = (&body[start..], &lower[start..]);
    let mut out = String::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &lower[i..];
        if rest.starts_with("<script") || rest.starts_with("<style") {
            let close = if rest.starts_with("<script") { "</script>" } else { "</style>" };
            i += rest.find(close).map(|j| j + close.len()).unwrap_or(rest.len());
            out.push(' ');
        } else if rest.starts_with('<') {
            i += rest.find('>').map(|j| j + 1).unwrap_or(rest.len());
            out.push(' ');
        } else {
            let ch = text[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &collapsed[..cut]),
        None => collapsed,
    }
}

pub enum Body {
    Empty,
    Form(BTreeMap<String, String>),
    Json(serde_json::Value),
    Bytes(Vec<u8>),
}

/// How long a check asks until every backend it must hear has answered (see
/// [`EntryPoint::sample_backends`]).
pub const SAMPLE_WITHIN: Duration = Duration::from_secs(20);

/// The entry point of a running stack.
#[derive(Clone)]
pub struct EntryPoint {
    client: reqwest::Client,
    base: Url,
    host: Option<String>,
}

impl EntryPoint {
    pub fn new(entry_url: &str, host_header: Option<&str>) -> Result<EntryPoint> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            // A check judges redirects (WordPress's "not installed" answer is one), never follows them.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .context("building the HTTP client")?;
        let base = Url::parse(entry_url).with_context(|| format!("entry URL {entry_url:?}"))?;
        Ok(EntryPoint { client, base, host: host_header.map(str::to_string) })
    }

    pub fn of(ctx: &super::CheckContext) -> Result<EntryPoint> {
        EntryPoint::new(&ctx.entry_url, ctx.host_header.as_deref())
    }

    /// `path` (with its query) on the entry point's scheme, host and port.
    pub fn url(&self, path: &str) -> Result<Url> {
        self.base.join(path).with_context(|| format!("path {path:?} on {}", self.base))
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], Body::Empty, None).await
    }

    /// One request; a failure to build it or to get a response is an [`Answer`] without status.
    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Body, timeout: Option<Duration>) -> Answer {
        let url = match self.url(path) {
            Ok(u) => u,
            Err(e) => return Answer::no_response(&format!("{e:#}")),
        };
        let mut req = self.client.request(method, url);
        if let Some(host) = &self.host {
            req = req.header(reqwest::header::HOST, host);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        req = match body {
            Body::Empty => req,
            Body::Form(form) => req.form(&form),
            Body::Json(v) => req.json(&v),
            Body::Bytes(b) => req.body(b),
        };
        match req.send().await {
            Err(e) => Answer::no_response(&describe_error(&e)),
            Ok(resp) => {
                let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
                let (backend, version, location) = (header("X-Seaworthy-Backend"), header("X-Seaworthy-Version"), header("Location"));
                let cookies = resp
                    .headers()
                    .get_all(reqwest::header::SET_COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .filter_map(|c| c.split(';').next())
                    .map(|c| c.trim().to_string())
                    .collect();
                let status = resp.status().as_u16();
                match resp.bytes().await {
                    Ok(b) => Answer {
                        status: Some(status),
                        error: None,
                        backend,
                        version,
                        location,
                        cookies,
                        body: String::from_utf8_lossy(&b).into_owned(),
                    },
                    Err(e) => Answer { status: Some(status), error: Some(format!("body cut: {}", describe_error(&e))), backend, version, location, cookies, body: String::new() },
                }
            }
        }
    }
}

impl EntryPoint {
    /// GET `path` until the answer is no longer transient (see [`Answer::is_transient`]) or
    /// `within` has passed; every answer, the last one deciding. A stack that has just become
    /// ready may still be missing from a proxy's or kube-proxy's view for a moment; what the app
    /// says once it is reached is the finding.
    pub async fn settle(&self, path: &str, within: Duration) -> Vec<Answer> {
        let deadline = tokio::time::Instant::now() + within;
        let mut answers = Vec::new();
        loop {
            let a = self.get(path).await;
            let transient = a.is_transient();
            answers.push(a);
            if !transient || tokio::time::Instant::now() >= deadline {
                return answers;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// GET `path` until every one of `backends` has answered (and at least `min` requests were
    /// sent) or `within` has passed. A count of requests is no bound here: a Service that has
    /// only just got a Pod may send every new connection elsewhere for a second or two, so a
    /// check that must hear every backend asks for as long as that may take, then says who was
    /// not heard.
    pub async fn sample_backends(&self, path: &str, backends: &[String], min: usize, within: Duration) -> Vec<Answer> {
        let deadline = tokio::time::Instant::now() + within;
        let mut answers: Vec<Answer> = Vec::new();
        loop {
            answers.push(self.get(path).await);
            let all_heard = backends.iter().all(|b| answers.iter().any(|a| a.backend.as_ref() == Some(b)));
            if (all_heard && answers.len() >= min) || tokio::time::Instant::now() >= deadline {
                return answers;
            }
            if answers.len() >= min {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A phase of single requests (no load running): its window and the cluster's events in it.
pub fn probe_phase(log: &crate::observe::EventLog, name: &str, started_ms: u64) -> super::Phase {
    let ended_ms = crate::observe::now_ms();
    super::Phase { name: name.into(), started_ms, ended_ms, traffic: None, events: log.around(started_ms, ended_ms, 0, 0), failure_clusters: vec![] }
}

fn describe_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect error"
    } else {
        "request error"
    };
    let mut chain = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    format!("{kind}: {}", chain.join(": "))
}

/// A `[checks.params]` table of strings (a form) as form fields.
pub fn form_of(value: &toml::Value) -> Result<BTreeMap<String, String>> {
    let table = value.as_table().context("a form must be a table of strings")?;
    table
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.as_str().with_context(|| format!("form field {k:?} is not a string"))?.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WordPress's wp_die() page for an unreachable database (see tests-data/README.md).
    const WP_DB_ERROR: &str = include_str!("../../tests-data/app-wordpress-db-error.html");

    #[test]
    fn an_html_error_page_reads_as_its_message() {
        assert_eq!(excerpt(WP_DB_ERROR, 200), "Error establishing a database connection");
        let a = Answer::response(500, Some("wordpress-7c9-x2"), WP_DB_ERROR);
        assert_eq!(a.describe(), "500 from wordpress-7c9-x2 \"Error establishing a database connection\"");
        assert!(a.is_transient() && !a.is_2xx());
    }

    #[test]
    fn plain_text_is_kept_and_long_bodies_are_cut() {
        assert_eq!(excerpt("counter: cannot reach redis at x:6379: php_network_getaddresses\n", 100), "counter: cannot reach redis at x:6379: php_network_getaddresses");
        assert_eq!(excerpt("ääää", 2), "ää...");
        assert_eq!(excerpt("<p>a</p><script>var x = '<b>';</script><p>b</p>", 10), "a b");
        assert_eq!(Answer::no_response("connect error: refused").describe(), "no response (connect error: refused)");
        let redirect = Answer { location: Some("http://h/wp-admin/install.php".into()), ..Answer::response(302, None, "") };
        assert_eq!(redirect.describe(), "302 to http://h/wp-admin/install.php (empty body)");
        assert!(!redirect.is_transient());
    }

    #[test]
    fn paths_keep_their_query_and_replace_the_entry_path() {
        let e = EntryPoint::new("http://127.0.0.1:30012/", Some("wordpress.local.com")).unwrap();
        assert_eq!(e.url("/?rest_route=/wp/v2/posts/7").unwrap().as_str(), "http://127.0.0.1:30012/?rest_route=/wp/v2/posts/7");
        let e = EntryPoint::new("http://127.0.0.1:30080/api.php", None).unwrap();
        assert_eq!(e.url("/index.php").unwrap().as_str(), "http://127.0.0.1:30080/index.php");
    }

    /// A real server on loopback: the Host header is the one given, each request is a new
    /// connection, cookies and the fixture headers are read.
    #[tokio::test]
    async fn requests_carry_the_host_and_open_a_connection_each() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            // Connections stay open (HTTP/1.1 keep-alive), so a client that pools them would
            // send the second request on the first one instead of connecting again.
            let (mut seen, mut open) = (Vec::new(), Vec::new());
            for i in 0..2 {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap();
                seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
                let body = format!("hello {i}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nX-Seaworthy-Backend: pod-{i}\r\nX-Seaworthy-Version: v1\r\nSet-Cookie: a=b; path=/\r\nSet-Cookie: c=d\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(resp.as_bytes()).await.unwrap();
                open.push(s);
            }
            seen
        });
        let e = EntryPoint::new(&format!("http://127.0.0.1:{port}/x"), Some("phpdemo.local.com")).unwrap();
        let a = e.get("/api.php").await;
        let b = e.get("/api.php").await;
        // A reused connection would leave the server waiting for a second one.
        let seen = tokio::time::timeout(Duration::from_secs(5), server).await.expect("the second request came on a new connection").unwrap();
        assert_eq!((a.status, a.backend.as_deref(), a.body.as_str()), (Some(200), Some("pod-0"), "hello 0"), "{a:?}");
        assert_eq!(b.backend.as_deref(), Some("pod-1"), "the second request was answered on a new connection");
        assert_eq!(a.cookies, vec!["a=b".to_string(), "c=d".to_string()]);
        assert!(seen[0].starts_with("GET /api.php HTTP/1.1\r\n"), "{}", seen[0]);
        assert!(seen[0].to_ascii_lowercase().contains("host: phpdemo.local.com\r\n"), "{}", seen[0]);
        let refused = EntryPoint::new(&format!("http://127.0.0.1:{port}/"), None).unwrap().get("/").await;
        assert!(refused.status.is_none() && refused.error.as_deref().unwrap().starts_with("connect error"), "{refused:?}");
    }
}
