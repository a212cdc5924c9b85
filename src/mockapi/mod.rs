//! The requests seaworthy sends to the API server, checked against a scripted fake server.
//!
//! kube's own technique: `kube::Client::new` over one end of a `tower_test::mock` pair, the
//! test scripting the other end. The code under test runs unchanged; the script sees every
//! request (method, path, query, content type, body) and answers with the JSON a real API
//! server would send, so that the code's handling of the answer is exercised too.
//!
//! A script that ends while requests keep coming fails the test: [`Server::run`] keeps
//! listening after the script and panics on any request it did not expect.

mod actions;
mod apply;
mod cleanup;
mod cordon;
mod eviction;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::Value;
use std::collections::BTreeMap;
use tower_test::mock::{self, SendResponse};

/// One request as the API server receives it.
#[derive(Debug)]
pub(crate) struct Seen {
    pub method: String,
    pub path: String,
    /// Decoded query parameters; kube never repeats one.
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// The JSON body, `Value::Null` for none.
    pub body: Value,
}

impl Seen {
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// Fails unless this is `method path`, naming what it was instead.
    #[track_caller]
    pub fn expect(&self, method: &str, path: &str) {
        assert_eq!((self.method.as_str(), self.path.as_str()), (method, path), "unexpected request: {self:?}");
    }
}

/// The server end of the pair.
pub(crate) struct Server {
    handle: mock::Handle<Request<Body>, Response<Body>>,
}

/// A client talking to a fresh scripted server.
pub(crate) fn pair() -> (kube::Client, Server) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), Server { handle })
}

impl Server {
    /// The next request and the means to answer it; fails if the clients are all gone.
    pub async fn next(&mut self) -> (Seen, SendResponse<Response<Body>>) {
        self.try_next().await.expect("the code under test sent no further request")
    }

    /// The next request, or `None` once every client is dropped (the code under test is done).
    pub async fn try_next(&mut self) -> Option<(Seen, SendResponse<Response<Body>>)> {
        let (req, send) = self.handle.next_request().await?;
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await.expect("request body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            // Server-side apply sends JSON too (YAML's superset), as kubectl does.
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} {}: body is not JSON ({e}): {}", parts.method, parts.uri, String::from_utf8_lossy(&bytes)))
        };
        let query = parts
            .uri
            .query()
            .map(|q| url_pairs(q).collect())
            .unwrap_or_default();
        let seen = Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query,
            content_type: parts.headers.get(http::header::CONTENT_TYPE).map(|v| v.to_str().expect("content type").to_string()),
            body,
        };
        Some((seen, send))
    }

    /// The next request, answered with `status` and `body`.
    pub async fn reply(&mut self, status: u16, body: Value) -> Seen {
        let (seen, send) = self.next().await;
        send.send_response(json(status, &body));
        seen
    }

    /// Runs `script` against the requests, then fails on any further one. Await the handle only
    /// after dropping every client, or it waits for them.
    pub fn run<F, Fut>(self, script: F) -> tokio::task::JoinHandle<()>
    where
        F: FnOnce(Server) -> Fut + Send + 'static,
        Fut: Future<Output = Server> + Send + 'static,
    {
        tokio::spawn(async move {
            let mut server = script(self).await;
            if let Some((req, _)) = server.handle.next_request().await {
                panic!("request after the end of the script: {} {}", req.method(), req.uri());
            }
        })
    }
}

/// `a=b&c=d` percent-decoded; `+` is a space, as form encoding (and kube's url builder) has it.
fn url_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (decode(k), decode(v))
    })
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(n)) => {
                out.push(n);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("query is UTF-8")
}

/// An API server answer: JSON, with the status code the body's `code` would carry.
pub(crate) fn json(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).expect("status code"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(body).expect("JSON")))
        .expect("response")
}

/// The object the server echoes for a patch or create: the body with server-set fields, enough
/// for kube to deserialize it.
pub(crate) fn echo(body: &Value) -> Value {
    let mut out = body.clone();
    out["metadata"]["uid"] = "00000000-0000-0000-0000-000000000001".into();
    out["metadata"]["resourceVersion"] = "1".into();
    out
}

#[tokio::test]
async fn an_unscripted_request_fails_the_test() {
    let (client, server) = pair();
    let script = server.run(|s| async move { s });
    let answer = kube::Api::<k8s_openapi::api::core::v1::Node>::all(client.clone()).get("vm").await;
    assert!(answer.is_err(), "the unscripted request got an answer: {answer:?}");
    drop(client);
    let ended = script.await.unwrap_err();
    assert!(ended.is_panic());
}

#[test]
fn query_decoding() {
    let q: BTreeMap<String, String> = url_pairs("fieldManager=seaworthy&labelSelector=a%3Db%2Cc&x=a+b").collect();
    assert_eq!(q["fieldManager"], "seaworthy");
    assert_eq!(q["labelSelector"], "a=b,c");
    assert_eq!(q["x"], "a b");
}
