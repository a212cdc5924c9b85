//! Whether a stack answers through its entry point from the outside, before a check sends its
//! traffic. Ready in the API is not reachable through a Service: kube-proxy (or an ingress
//! controller) programs a Service's endpoints asynchronously, and until it has, a NodePort
//! whose Service has no endpoints in its rules is rejected ("connection refused"), and a
//! Service whose rules hold only some of its Pods sends every connection to those. Measured on
//! a v1.24 node: a new NodePort Service refused connections for 1.2 s after its EndpointSlice
//! said ready (shared/lab-runs/2026-12-06-v1.24-single-node).

use super::http_probe::{Answer, EntryPoint};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a stack that the API calls ready may take to answer through its entry point.
pub const ENTRY_WITHIN: Duration = Duration::from_secs(60);
/// Between two attempts: each opens a new connection, so kube-proxy's per-connection choice
/// gets a new draw every time.
const PAUSE: Duration = Duration::from_millis(100);

/// Everything the wait saw, for the verdict or the harness error.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seen {
    pub attempts: u64,
    /// Outcome -> count: `refused`, `timeout`, `503`, `200`, ...
    pub outcomes: BTreeMap<String, u64>,
    /// Backends (X-Seaworthy-Backend) that answered, with how often.
    pub answered_by: BTreeMap<String, u64>,
}

impl Seen {
    fn record(&mut self, a: &Answer) {
        self.attempts += 1;
        let outcome = match (a.status, &a.error) {
            (Some(s), _) => s.to_string(),
            (None, Some(e)) if e.contains("refused") => "refused".into(),
            (None, Some(e)) if e.contains("timed out") || e.contains("timeout") => "timeout".into(),
            (None, _) => "no answer".into(),
        };
        *self.outcomes.entry(outcome).or_default() += 1;
        if answers(a) {
            if let Some(b) = &a.backend {
                *self.answered_by.entry(b.clone()).or_default() += 1;
            }
        }
    }

    /// `refused x12, 503 x3, 200 x4 (from a x2, b x2)`
    pub fn describe(&self) -> String {
        let outcomes: Vec<String> = self.outcomes.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        let from: Vec<String> = self.answered_by.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        let from = if from.is_empty() { String::new() } else { format!(" (answered by {})", from.join(", ")) };
        format!("{} in {} requests{from}", outcomes.join(", "), self.attempts)
    }
}

/// The app itself answered: any status below 500. A 5xx is what a proxy or a balancer says when
/// it has no backend yet (ingress-nginx's 503), and a refused or cut connection is no answer.
fn answers(a: &Answer) -> bool {
    a.status.is_some_and(|s| s < 500)
}

/// Done when the last attempt was answered and every Pod in `expected` (the ready Pods behind
/// the entry Service) has answered, so that kube-proxy's rules hold all of them. When answers
/// name backends that are not among `expected` (a proxy in front: the header names the app Pod
/// behind it), only the answering is judged.
pub fn done(seen: &Seen, last: &Answer, expected: &[String]) -> bool {
    if !answers(last) {
        return false;
    }
    let behind_a_proxy = seen.answered_by.keys().any(|b| !expected.contains(b));
    behind_a_proxy || seen.answered_by.is_empty() || expected.iter().all(|p| seen.answered_by.contains_key(p))
}

/// The ready Pods in `expected` that have not answered yet.
pub fn not_heard<'a>(seen: &Seen, expected: &'a [String]) -> Vec<&'a str> {
    expected.iter().filter(|p| !seen.answered_by.contains_key(*p)).map(String::as_str).collect()
}

/// GET `path` on new connections until the stack answers (see [`done`]), at most `within`.
/// Ok: what was seen on the way; Err: a harness error that says how long it waited and what it
/// saw. `on_attempt` is told each attempt (a progress line).
pub async fn until_answering(
    entry: &EntryPoint,
    path: &str,
    expected: &[String],
    within: Duration,
    mut on_attempt: impl FnMut(&Seen),
) -> Result<Seen, String> {
    let start = tokio::time::Instant::now();
    let mut seen = Seen::default();
    loop {
        let a = entry.send(reqwest::Method::GET, path, &[], super::http_probe::Body::Empty, Some(Duration::from_secs(5))).await;
        seen.record(&a);
        on_attempt(&seen);
        if done(&seen, &a, expected) {
            return Ok(seen);
        }
        if start.elapsed() >= within {
            let missing = not_heard(&seen, expected);
            let missing = if missing.is_empty() || seen.answered_by.is_empty() {
                String::new()
            } else {
                format!("; ready Pods never heard through it: {}", missing.join(", "))
            };
            return Err(format!(
                "the stack is ready in the API but did not answer through {} within {:.0}s: {}{missing}",
                entry.url(path).map(|u| u.to_string()).unwrap_or_else(|_| path.to_string()),
                start.elapsed().as_secs_f64(),
                seen.describe()
            ));
        }
        tokio::time::sleep(PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_ready_pod_must_answer_unless_a_proxy_answers_for_them() {
        let expected = pods(&["web-a", "web-b"]);
        let mut seen = Seen::default();
        let refused = Answer::no_response("connection refused");
        seen.record(&refused);
        assert!(!done(&seen, &refused, &expected));
        let a = Answer::response(200, Some("web-a"), "");
        seen.record(&a);
        assert!(!done(&seen, &a, &expected), "web-b has not been heard: kube-proxy may not have it yet");
        let unavailable = Answer::response(503, None, "");
        seen.record(&unavailable);
        assert!(!done(&seen, &unavailable, &expected));
        let b = Answer::response(200, Some("web-b"), "");
        seen.record(&b);
        assert!(done(&seen, &b, &expected));
        assert_eq!(seen.describe(), "200 x2, 503 x1, refused x1 in 4 requests (answered by web-a x1, web-b x1)");

        // The entry is a proxy: the header names the app Pod behind it.
        let mut seen = Seen::default();
        let app = Answer::response(200, Some("app-1"), "");
        seen.record(&app);
        assert!(done(&seen, &app, &pods(&["proxy-1"])));
        // A redirect is the app answering (an uninstalled WordPress).
        let mut seen = Seen::default();
        let redirect = Answer::response(302, None, "");
        seen.record(&redirect);
        assert!(done(&seen, &redirect, &pods(&["wp-1"])));
    }

    /// A real server on loopback that refuses at first (nothing listens), then answers 503 (a
    /// proxy without backends), then 200 from two backends: the wait returns only then, having
    /// seen all three; with a deadline too short, it fails saying how long it waited and what it saw.
    #[tokio::test]
    async fn waits_through_refused_and_503_until_every_backend_answers() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let server = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
            let opened = tokio::time::Instant::now();
            let mut n = 0u64;
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 2048];
                let _ = sock.read(&mut buf).await;
                n += 1;
                let resp = if opened.elapsed() < Duration::from_millis(600) {
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string()
                } else {
                    let backend = if n % 2 == 0 { "web-a" } else { "web-b" };
                    format!("HTTP/1.1 200 OK\r\nX-Seaworthy-Backend: {backend}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                };
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        let entry = EntryPoint::new(&format!("http://127.0.0.1:{port}/"), None).unwrap();
        let expected = pods(&["web-a", "web-b"]);

        let short = until_answering(&entry, "/", &expected, Duration::from_millis(300), |_| {}).await.unwrap_err();
        assert!(short.contains("did not answer through") && short.contains("refused x"), "{short}");

        let mut attempts = 0;
        let seen = until_answering(&entry, "/", &expected, Duration::from_secs(20), |_| attempts += 1).await.unwrap();
        server.abort();
        assert!(seen.outcomes.get("503").copied().unwrap_or(0) >= 1, "{seen:?}");
        assert!(seen.outcomes.get("refused").copied().unwrap_or(0) >= 1, "{seen:?}");
        assert!(seen.answered_by.contains_key("web-a") && seen.answered_by.contains_key("web-b"), "{seen:?}");
        assert_eq!(attempts, seen.attempts);
    }
}
