//! `persistence` (shared/STACKS.md): data written through the stack's entry point survives
//! deleting every Pod of the listed workloads, the database's included, and reads back unchanged.
//!
//! How data is written and read depends on the app; `store` in `[checks.params]` says which
//! (`seaworthy checks persistence` lists each one's params):
//! - `http`: any app: an HTTP write (method, path, form or JSON body, expected status) of a value
//!   unique to the run (`{value}`), then a GET whose body must show it;
//! - `form-row`: POST a form field to `write_path`, the value then appears in `read_path` (myblog);
//! - `counter`: each GET of `path` counts one visit, the page says how many (`count_pattern`, with
//!   one `(\d+)`); the count must carry on (counter);
//! - `pod-files`: `write = "PUT /data/{name}"` lands on one Pod's own volume, `read` must get the
//!   same bytes back from that same Pod, named in X-Seaworthy-Backend (flask-sts);
//! - `wordpress-post`: install (`setup`), log in (`login`), take a REST nonce (`nonce_path`), create
//!   a post (`write_path`), read it logged out (`read_path` with `{id}`) (wordpress).
//!
//! `delete` lists the workloads whose Pods are deleted, in that order; each one's replacements
//! must be ready before the next is deleted.

use super::actions::{serving_pods, workload_selector};
use super::http_probe::{Answer, Body, EntryPoint, probe_phase};
use super::params::{FormPost, HttpRead, HttpWrite, Persistence};
use super::{CheckContext, Phase, Verdict};
use crate::observe::now_ms;
use crate::wait::watch as waits;
use anyhow::{Context, Result, bail};
use reqwest::Method;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long the app may take to answer again after its Pods were replaced.
const READ_WITHIN: Duration = Duration::from_secs(90);

/// What must be read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// A 2xx whose body contains this text.
    Contains(String),
    /// This backend answers 2xx with exactly these bytes.
    FileOn { backend: String, content: String },
    /// The count in the body (`pattern` with one `(\d+)`): equal to `written` when read before
    /// the Pods go, above it after (reading counts a visit too).
    Count { pattern: String, written: u64 },
}

/// One piece of data: what was written, the answer that showed it in place before the Pods
/// were deleted, and the answers after (the last one of the right backend decides).
#[derive(Debug, Clone)]
pub struct Datum {
    pub what: String,
    pub read: String,
    pub expect: Expect,
    pub before: Answer,
    pub after: Vec<Answer>,
}

/// The count in `body` by `pattern` (literal text around one `(\d+)`).
pub fn parse_count(pattern: &str, body: &str) -> Option<u64> {
    let (prefix, suffix) = pattern.split_once(r"(\d+)")?;
    let mut from = 0;
    while let Some(i) = body[from..].find(prefix) {
        let start = from + i + prefix.len();
        let digits: String = body[start..].chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && body[start + digits.len()..].starts_with(suffix) {
            return digits.parse().ok();
        }
        from = start.max(from + 1);
        if from > body.len() {
            break;
        }
    }
    None
}

/// Whether `a` shows the data; `Err` says what it shows instead.
fn holds(expect: &Expect, a: &Answer, after: bool) -> Result<(), String> {
    if let Expect::FileOn { backend, .. } = expect
        && a.backend.as_deref() != Some(backend.as_str())
    {
        return Err(match &a.backend {
            Some(_) => format!("{backend} never answered (last answer: {})", a.describe()),
            None => a.describe(),
        });
    }
    if !a.is_2xx() {
        return Err(a.describe());
    }
    match expect {
        Expect::Contains(text) if a.body.contains(text.as_str()) => Ok(()),
        Expect::Contains(_) => Err(format!("{} without it", a.describe())),
        Expect::FileOn { content, .. } if a.body == *content => Ok(()),
        Expect::FileOn { content, .. } => Err(format!("{} ({} bytes instead of {})", a.describe(), a.body.len(), content.len())),
        Expect::Count { pattern, written } => match parse_count(pattern, &a.body) {
            None => Err(format!("{} with no count in it", a.describe())),
            Some(n) if (after && n > *written) || (!after && n == *written) => Ok(()),
            Some(n) => Err(format!("{} (count {n})", a.describe())),
        },
    }
}

/// The answer that decides: the last one (for a file, the last one from its Pod).
fn deciding<'a>(expect: &Expect, answers: &'a [Answer]) -> Option<&'a Answer> {
    match expect {
        Expect::FileOn { backend, .. } => answers.iter().rev().find(|a| a.backend.as_deref() == Some(backend.as_str())).or(answers.last()),
        _ => answers.last(),
    }
}

/// The verdict over every datum, given the Pods that were deleted.
pub fn judge(data: &[Datum], deleted: &[String]) -> Verdict {
    if data.is_empty() {
        return Verdict::fail("no data was written, so nothing could be lost");
    }
    for d in data {
        if let Err(seen) = holds(&d.expect, &d.before, false) {
            return Verdict::fail(format!("{} could not be read back even before any Pod was deleted: {} answered {seen}", d.what, d.read));
        }
    }
    for d in data {
        let Some(last) = deciding(&d.expect, &d.after) else {
            return Verdict::fail(format!("{} was not read after the Pods were replaced", d.what));
        };
        if let Err(seen) = holds(&d.expect, last, true) {
            let tries = if d.after.len() > 1 { format!(" (after {} tries)", d.after.len()) } else { String::new() };
            let v = Verdict::fail(format!("data lost: {}; after deleting {} and waiting for their replacements, {} answered {seen}{tries}", d.what, deleted.join(", "), d.read));
            // Lost only if the app itself answered without it; a 5xx or no answer (the app or its
            // database not back) says nothing about the data.
            let from_its_pod = match &d.expect {
                Expect::FileOn { backend, .. } => last.backend.as_deref() == Some(backend.as_str()),
                _ => true,
            };
            let app_answered = from_its_pod && last.status.is_some_and(|s| s < 500);
            return v.with_metric("data_lost", app_answered as u8 as f64);
        }
    }
    let what: Vec<&str> = data.iter().map(|d| d.what.as_str()).collect();
    Verdict::pass(format!("read back unchanged after deleting {} and waiting for their replacements: {}", deleted.join(", "), what.join("; ")))
}

/// Delete every Pod of each workload in turn, waiting for them to be gone and for as many
/// replacements to be ready. Returns the deleted Pods' names.
async fn replace_pods(ctx: &CheckContext, workloads: &[String]) -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for w in workloads {
        let (_, selector) = workload_selector(&ctx.stack, w)?;
        let pods = ctx.actions.pods(&selector).await?;
        if pods.is_empty() {
            bail!("{w} has no Pods to delete ({selector})");
        }
        for p in &pods {
            ctx.actions.delete_pod(p.metadata.name.as_deref().context("a Pod without a name")?).await?;
        }
        for p in &pods {
            let (name, uid) = (p.metadata.name.as_deref().unwrap_or_default(), p.metadata.uid.as_deref().context("a Pod without a uid")?);
            waits::pod_gone(&ctx.client, &ctx.ns, name, uid, ctx.timeouts.rollout).await?;
            deleted.push(name.to_string());
        }
        waits::pods_ready(&ctx.client, &ctx.ns, &selector, pods.len(), ctx.timeouts.ready).await?;
    }
    Ok(deleted)
}

/// `"PUT /data/{name}"` -> (PUT, "/data/{name}").
fn method_and_path(s: &str) -> Result<(Method, String)> {
    let (m, p) = s.split_once(' ').with_context(|| format!("{s:?} is not `METHOD /path`"))?;
    Ok((Method::from_bytes(m.as_bytes()).with_context(|| format!("{m:?} is not an HTTP method"))?, p.trim().to_string()))
}

/// Before the Pods go, the answers until the app is reached, then the deciding one.
async fn read_once(entry: &EntryPoint, path: &str) -> Answer {
    entry.settle(path, Duration::from_secs(30)).await.pop().unwrap_or_default()
}

/// After the Pods were replaced: GET until the app answers for itself (and, for a file, the Pod
/// that holds it answers), or [`READ_WITHIN`] has passed.
async fn read_after(entry: &EntryPoint, path: &str, expect: &Expect) -> Vec<Answer> {
    let deadline = tokio::time::Instant::now() + READ_WITHIN;
    let mut answers = Vec::new();
    loop {
        let a = entry.get(path).await;
        let done = !a.is_transient()
            && match expect {
                Expect::FileOn { backend, .. } => a.backend.as_deref() == Some(backend.as_str()),
                _ => true,
            };
        answers.push(a);
        if done || tokio::time::Instant::now() >= deadline {
            return answers;
        }
        // Another Pod answering is the balancer's choice, not an outage: ask again soon.
        let pause = if answers.last().is_some_and(Answer::is_transient) { 500 } else { 100 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Written data with its read path, or why it could not be written.
type Written = std::result::Result<Vec<(String, String, Expect, Answer)>, String>;

/// `{value}` replaced with this run's value in every string of a JSON body.
fn with_value(v: &serde_json::Value, value: &str) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => Value::String(s.replace("{value}", value)),
        Value::Array(a) => Value::Array(a.iter().map(|x| with_value(x, value)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), with_value(x, value))).collect()),
        other => other.clone(),
    }
}

/// An HTTP request as the generic store sends it: method, path, headers, body.
pub(crate) type Request = (Method, String, Vec<(String, String)>, Body);

/// The generic store's write as a request: method, path, headers and body with `{value}` filled.
pub(crate) fn http_request(w: &HttpWrite, value: &str) -> Result<Request> {
    let method = Method::from_bytes(w.method.as_bytes()).with_context(|| format!("write.method {:?} is not an HTTP method", w.method))?;
    let body = match (&w.form, &w.json) {
        (Some(form), _) => Body::Form(form.iter().map(|(k, v)| (k.clone(), v.replace("{value}", value))).collect()),
        (None, Some(json)) => Body::Json(with_value(json, value)),
        (None, None) => Body::Empty,
    };
    let headers = w.headers.iter().map(|(k, v)| (k.clone(), v.replace("{value}", value))).collect();
    Ok((method, w.path.replace("{value}", value), headers, body))
}

/// Whether the write's answer is the one the store expects: its `status`, else any 2xx.
pub(crate) fn write_accepted(w: &HttpWrite, a: &Answer) -> bool {
    match w.status {
        Some(s) => a.status == Some(s),
        None => a.is_2xx(),
    }
}

async fn http_store(entry: &EntryPoint, w: &HttpWrite, r: &HttpRead, value: &str) -> Result<Written> {
    let (method, path, headers, body) = http_request(w, value)?;
    let read_path = r.path.replace("{value}", value);
    entry.settle(&read_path, Duration::from_secs(30)).await;
    let header_refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let a = entry.send(method.clone(), &path, &header_refs, body, Some(Duration::from_secs(30))).await;
    if !write_accepted(w, &a) {
        let want = w.status.map(|s| s.to_string()).unwrap_or_else(|| "a 2xx".into());
        return Ok(Err(format!("{method} {path} answered {}, not {want}", a.describe())));
    }
    let what = format!("the value {value:?} ({method} {path}: {})", a.excerpt(40));
    let before = read_once(entry, &read_path).await;
    Ok(Ok(vec![(what, format!("GET {read_path}"), Expect::Contains(r.pattern.replace("{value}", value)), before)]))
}

async fn write(ctx: &CheckContext, p: &Persistence, entry: &EntryPoint, marker: &str) -> Result<Written> {
    match p {
        Persistence::Http { write, read, .. } => http_store(entry, write, read, marker).await,
        Persistence::FormRow { write_path, write_field, read_path, .. } => {
            let (write_path, field, read_path) = (write_path.as_str(), write_field.as_str(), read_path.as_str());
            entry.settle(read_path, Duration::from_secs(30)).await;
            let form = BTreeMap::from([(field.to_string(), marker.to_string())]);
            let a = entry.send(Method::POST, write_path, &[], Body::Form(form), None).await;
            if !a.is_2xx() {
                return Ok(Err(format!("POST {write_path} ({field}={marker}) answered {}", a.describe())));
            }
            let what = format!("the row {field}={marker:?} (POST {write_path}: {})", a.excerpt(40));
            let before = read_once(entry, read_path).await;
            Ok(Ok(vec![(what, read_path.to_string(), Expect::Contains(marker.to_string()), before)]))
        }
        Persistence::Counter { path, count_pattern, increments, .. } => {
            let (path, pattern) = (path.as_str(), count_pattern.as_str());
            let visits = (*increments).max(1);
            let mut last = read_once(entry, path).await;
            for _ in 1..visits {
                last = entry.get(path).await;
            }
            let Some(n) = parse_count(pattern, &last.body).filter(|_| last.is_2xx()) else {
                return Ok(Err(format!("GET {path} answered {} (no count by {pattern:?})", last.describe())));
            };
            let what = format!("the count {n} after {visits} visits");
            Ok(Ok(vec![(what, format!("GET {path}"), Expect::Count { pattern: pattern.into(), written: n }, last)]))
        }
        Persistence::PodFiles { workload, write, read, .. } => {
            let (put, path) = method_and_path(write)?;
            let (_, read) = method_and_path(read)?;
            let (_, selector) = workload_selector(&ctx.stack, workload)?;
            let pods = serving_pods(&ctx.actions.pods(&selector).await?);
            entry.settle(&ctx.stack.spec.entry.path, Duration::from_secs(30)).await;
            // The entry balances the PUTs; keep one file per Pod, until every Pod has one.
            let mut files: Vec<(String, String, String)> = Vec::new();
            for i in 0..10 * pods.len().max(1) {
                let name = format!("{marker}-{i}");
                let content = format!("{marker} file {i}\n");
                let a = entry.send(put.clone(), &path.replace("{name}", &name), &[], Body::Bytes(content.clone().into_bytes()), None).await;
                let Some(backend) = a.backend.clone().filter(|_| a.is_2xx()) else {
                    return Ok(Err(format!("{put} {} answered {}", path.replace("{name}", &name), a.describe())));
                };
                if !files.iter().any(|(b, _, _)| *b == backend) {
                    files.push((backend, name, content));
                }
                if pods.iter().all(|pod| files.iter().any(|(b, _, _)| b == pod)) {
                    break;
                }
            }
            let mut data = Vec::new();
            for (backend, name, content) in files {
                let read_path = read.replace("{name}", &name);
                let expect = Expect::FileOn { backend: backend.clone(), content: content.clone() };
                let answers = read_after(entry, &read_path, &expect).await;
                let before = deciding(&expect, &answers).cloned().unwrap_or_default();
                data.push((format!("file {name} ({} bytes) on {backend}'s volume", content.len()), format!("GET {read_path}"), expect, before));
            }
            Ok(Ok(data))
        }
        Persistence::WordpressPost { setup, login, nonce_path, write_path, read_path, .. } => {
            wordpress_post(entry, marker, setup, login, (nonce_path, write_path, read_path)).await
        }
    }
}

async fn wordpress_post(entry: &EntryPoint, marker: &str, setup: &FormPost, login: &FormPost, (nonce_path, write_path, read_path): (&str, &str, &str)) -> Result<Written> {
    let form = |f: &FormPost| -> Result<BTreeMap<String, String>> { Ok(f.form.clone()) };
    let setup_path = setup.path.as_str();
    // The installer's page, not its step 2: a GET must not start an install.
    entry.settle(setup_path.split('?').next().unwrap_or(setup_path), Duration::from_secs(30)).await;
    // The installer creates every table: far slower than a page.
    let a = entry.send(Method::POST, setup_path, &[], Body::Form(form(setup)?), Some(Duration::from_secs(120))).await;
    if a.status != Some(200) {
        return Ok(Err(format!("installing WordPress: POST {setup_path} answered {}", a.describe())));
    }
    let login_path = login.path.as_str();
    let a = entry.send(Method::POST, login_path, &[], Body::Form(form(login)?), None).await;
    let cookies = a.cookies.join("; ");
    if a.status != Some(302) || !cookies.contains("wordpress_logged_in_") {
        return Ok(Err(format!("logging in: POST {login_path} answered {} with cookies [{cookies}]", a.describe())));
    }
    let a = entry.send(Method::GET, nonce_path, &[("Cookie", &cookies)], Body::Empty, None).await;
    let nonce = a.body.trim().to_string();
    if a.status != Some(200) || nonce.is_empty() || !nonce.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(Err(format!("REST nonce: GET {nonce_path} answered {}", a.describe())));
    }
    let post = serde_json::json!({"title": marker, "content": format!("written by seaworthy: {marker}"), "status": "publish"});
    let a = entry.send(Method::POST, write_path, &[("Cookie", &cookies), ("X-WP-Nonce", &nonce)], Body::Json(post), Some(Duration::from_secs(30))).await;
    let id = serde_json::from_str::<serde_json::Value>(&a.body).ok().and_then(|v| v["id"].as_u64());
    let Some(id) = id.filter(|_| a.status == Some(201)) else {
        return Ok(Err(format!("creating a post: POST {write_path} answered {}", a.describe())));
    };
    let read_path = read_path.replace("{id}", &id.to_string());
    let before = read_once(entry, &read_path).await;
    Ok(Ok(vec![(format!("post {id} titled {marker:?}"), format!("GET {read_path}"), Expect::Contains(marker.to_string()), before)]))
}

pub async fn run(ctx: &CheckContext) -> Result<Verdict> {
    let p: Persistence = ctx.params_as()?;
    let workloads: Vec<String> = p.delete().to_vec();
    let entry = EntryPoint::of(ctx)?;
    let marker = format!("seaworthy-{}", now_ms());
    let mut phases: Vec<Phase> = Vec::new();

    let t = now_ms();
    let written = write(ctx, &p, &entry, &marker).await?;
    phases.push(probe_phase(&ctx.log, "write", t));
    let written = match written {
        Ok(w) => w,
        Err(why) => return Ok(with_phases(Verdict::fail(format!("could not write the data: {why}")), phases)),
    };

    let t = now_ms();
    let started = Instant::now();
    let deleted = replace_pods(ctx, &workloads).await;
    let replace_s = started.elapsed().as_secs_f64();
    phases.push(probe_phase(&ctx.log, "delete the Pods, wait for replacements", t));
    let deleted = match deleted {
        Ok(d) => d,
        Err(e) => return Ok(with_phases(Verdict::fail(format!("the Pods were not replaced: {e:#}")), phases)),
    };

    let t = now_ms();
    let mut data = Vec::new();
    for (what, read, expect, before) in written {
        let path = read.split_once(' ').map(|(_, p)| p).unwrap_or(&read).to_string();
        let after = read_after(&entry, &path, &expect).await;
        data.push(Datum { what, read, expect, before, after });
    }
    phases.push(probe_phase(&ctx.log, "read back", t));
    Ok(with_phases(judge(&data, &deleted), phases).with_metric("replace_s", replace_s))
}

fn with_phases(mut v: Verdict, phases: Vec<Phase>) -> Verdict {
    v.phases.extend(phases);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;
    use crate::stack::Stack;

    fn params(stack: &str) -> toml::Table {
        let stack = Stack::find(stack).unwrap();
        stack.spec.checks.iter().find(|c| c.name == "persistence").unwrap().params.clone()
    }

    fn answer(status: u16, backend: &str, body: &str) -> Answer {
        Answer { version: Some("v1".into()), ..Answer::response(status, Some(backend), body) }
    }

    /// blog/templates/blog/index.html as Django renders it, with these titles.
    fn myblog_index(backend: &str, titles: &[(u64, &str)]) -> Answer {
        let items: String = if titles.is_empty() {
            "  <li class=\"empty\">no articles yet</li>\n".into()
        } else {
            titles.iter().map(|(id, t)| format!("  <li id=\"article-{id}\">{t}</li>\n")).collect()
        };
        let body = format!(
            "<!doctype html>\n<html lang=\"zh\">\n<head><meta charset=\"utf-8\"><title>我的博客列表 - myblog v1</title></head>\n<body>\n<h1>我的博客列表</h1>\n<p class=\"version\">myblog v1</p>\n<ul>\n{items}</ul>\n</body>\n</html>\n"
        );
        answer(200, backend, &body)
    }

    const MARKER: &str = "seaworthy-1700000000000";

    fn myblog(after: Vec<Answer>) -> Vec<Datum> {
        vec![Datum {
            what: format!("the row title={MARKER:?} (POST /blog/add/: added 1)"),
            read: "GET /blog/index/".into(),
            expect: Expect::Contains(MARKER.into()),
            before: myblog_index("myblog-6c8d-a", &[(1, MARKER)]),
            after,
        }]
    }

    const MYBLOG_DELETED: [&str; 3] = ["mysql-5f7b-x", "myblog-6c8d-a", "myblog-6c8d-b"];

    fn deleted(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_row_read_back_after_a_database_outage_passes() {
        // The first read still finds the app waiting for MySQL (the middleware's 503), then the page.
        let waiting = answer(503, "myblog-6c8d-c", "database unavailable: MySQL database 'myblog' at mysql:3306: (2013, 'Lost connection to MySQL server during query')\n");
        let v = judge(&myblog(vec![waiting, myblog_index("myblog-6c8d-d", &[(1, MARKER)])]), &deleted(&MYBLOG_DELETED));
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);
        assert!(v.reason.starts_with("read back unchanged after deleting mysql-5f7b-x, myblog-6c8d-a, myblog-6c8d-b"), "{}", v.reason);
    }

    /// The emptydir-mysql variant: a fresh database, migrated again by the new Pods' initContainer.
    #[test]
    fn a_row_lost_with_the_database_pod_is_reported_with_what_came_back() {
        let v = judge(&myblog(vec![myblog_index("myblog-6c8d-d", &[])]), &deleted(&MYBLOG_DELETED));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.reason,
            format!(
                "data lost: the row title={MARKER:?} (POST /blog/add/: added 1); after deleting mysql-5f7b-x, myblog-6c8d-a, myblog-6c8d-b and waiting for their \
                 replacements, GET /blog/index/ answered 200 from myblog-6c8d-d \"我的博客列表 myblog v1 no articles yet\" without it"
            )
        );
    }

    /// index.php's page.
    fn counter_page(backend: &str, n: u64) -> Answer {
        answer(200, backend, &format!("Hello World by {backend} from 10.244.1.1 ! This page has been visited {n} times.\n"))
    }

    fn counter(after: Vec<Answer>) -> Vec<Datum> {
        let pattern = params("counter")["count_pattern"].as_str().unwrap().to_string();
        vec![Datum { what: "the count 5 after 5 visits".into(), read: "GET /".into(), expect: Expect::Count { pattern, written: 5 }, before: counter_page("counter-app-1", 5), after }]
    }

    #[test]
    fn the_count_carries_on_or_its_reset_is_reported() {
        let gone = deleted(&["counter-redis-9-r", "counter-app-1", "counter-app-2", "counter-app-3"]);
        let loading = answer(503, "counter-app-4", "counter: redis at counter-redis:6379 could not count: LOADING Redis is loading the dataset in memory\n");
        let v = judge(&counter(vec![loading.clone(), counter_page("counter-app-4", 6)]), &gone);
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);

        // emptydir-redis: the count starts over.
        let v = judge(&counter(vec![counter_page("counter-app-5", 1)]), &gone);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.starts_with("data lost: the count 5 after 5 visits; after deleting counter-redis-9-r, "), "{}", v.reason);
        assert!(v.reason.ends_with("GET / answered 200 from counter-app-5 \"Hello World by counter-app-5 from 10.244.1.1 ! This page has been visited 1 times.\" (count 1)"), "{}", v.reason);
        assert_eq!(v.metrics["data_lost"], 1.0);

        // Still failing after the wait, but on the database, not on the data: not a loss.
        let v = judge(&counter(vec![loading.clone()]), &gone);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.metrics["data_lost"], 0.0, "{}", v.reason);
    }

    fn flask(after: Vec<Answer>) -> Vec<Datum> {
        let content = format!("{MARKER} file 0\n");
        vec![Datum {
            what: format!("file {MARKER}-0 ({} bytes) on flask-sts-0's volume", content.len()),
            read: format!("GET /data/{MARKER}-0"),
            expect: Expect::FileOn { backend: "flask-sts-0".into(), content: content.clone() },
            before: answer(200, "flask-sts-0", &content),
            after,
        }]
    }

    #[test]
    fn a_file_is_judged_by_the_pod_that_holds_it() {
        let gone = deleted(&["flask-sts-0", "flask-sts-1"]);
        let other = answer(404, "flask-sts-1", &format!("{MARKER}-0: not on this Pod's volume\n"));
        let back = answer(200, "flask-sts-0", &format!("{MARKER} file 0\n"));
        let v = judge(&flask(vec![other.clone(), back]), &gone);
        assert_eq!(v.outcome, Outcome::Pass, "{}", v.reason);

        // emptydir: the same Pod name, an empty volume.
        let lost = answer(404, "flask-sts-0", &format!("{MARKER}-0: not on this Pod's volume\n"));
        let v = judge(&flask(vec![other.clone(), lost]), &gone);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.ends_with(&format!("GET /data/{MARKER}-0 answered 404 from flask-sts-0 \"{MARKER}-0: not on this Pod's volume\" (after 2 tries)")), "{}", v.reason);

        // Only the other Pod ever answered: that is not a pass either.
        let v = judge(&flask(vec![other.clone(), other]), &gone);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.metrics["data_lost"], 0.0, "the Pod holding the file never answered: {}", v.reason);
        assert!(v.reason.contains("flask-sts-0 never answered (last answer: 404 from flask-sts-1"), "{}", v.reason);
    }

    #[test]
    fn a_wordpress_post_that_redirects_to_the_installer_is_lost() {
        // GET /?rest_route=/wp/v2/posts/5 logged out, as WordPress answers it (fields trimmed).
        let post = format!(r#"{{"id":5,"status":"publish","type":"post","title":{{"rendered":"{MARKER}"}},"content":{{"rendered":"<p>written by seaworthy: {MARKER}<\/p>\n","protected":false}}}}"#);
        let data = |after| {
            vec![Datum { what: format!("post 5 titled {MARKER:?}"), read: "GET /?rest_route=/wp/v2/posts/5".into(), expect: Expect::Contains(MARKER.into()), before: answer(200, "wordpress-1", &post), after }]
        };
        let gone = deleted(&["wordpress-mysql-1", "wordpress-1", "wordpress-2", "wordpress-3"]);
        assert_eq!(judge(&data(vec![answer(200, "wordpress-4", &post)]), &gone).outcome, Outcome::Pass);

        // mysql-emptydir: an empty database, so WordPress is not installed and sends to its installer.
        let to_installer = Answer { location: Some("http://127.0.0.1:30012/wp-admin/install.php".into()), ..answer(302, "wordpress-4", "") };
        let v = judge(&data(vec![to_installer]), &gone);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.ends_with("GET /?rest_route=/wp/v2/posts/5 answered 302 from wordpress-4 to http://127.0.0.1:30012/wp-admin/install.php (empty body)"), "{}", v.reason);
        assert_eq!(v.metrics["data_lost"], 1.0);
    }

    #[test]
    fn data_that_was_never_readable_is_not_called_lost() {
        let mut data = myblog(vec![myblog_index("myblog-6c8d-d", &[(1, MARKER)])]);
        data[0].before = myblog_index("myblog-6c8d-a", &[]);
        let v = judge(&data, &deleted(&MYBLOG_DELETED));
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.reason.contains("could not be read back even before any Pod was deleted"), "{}", v.reason);
        assert_eq!(judge(&[], &[]).outcome, Outcome::Fail);
    }

    #[test]
    fn counts_are_found_by_the_text_around_them() {
        let p = r"visited (\d+) times";
        assert_eq!(parse_count(p, "Hello World by a from b ! This page has been visited 42 times.\n"), Some(42));
        assert_eq!(parse_count(p, "visited x times, visited 7 times"), Some(7));
        assert_eq!(parse_count(p, "counter: cannot reach redis"), None);
        assert_eq!(parse_count("no group", "visited 1 times"), None);
    }

    #[test]
    fn every_stacks_params_name_a_store_and_workloads_it_has() {
        for name in ["myblog", "counter", "flask-sts", "wordpress"] {
            let stack = Stack::find(name).unwrap();
            let p = params(name);
            let store = p["store"].as_str().unwrap();
            assert!(["form-row", "counter", "pod-files", "wordpress-post"].contains(&store), "{name}: {store}");
            for w in p["delete"].as_array().unwrap() {
                workload_selector(&stack, w.as_str().unwrap()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
            }
            // The negative control must put the data of a deleted workload on an emptyDir, where
            // the good stack has none (scratch space such as WordPress's shared /tmp aside).
            let negative = stack.spec.checks.iter().find(|c| c.name == "persistence").unwrap().negative.clone().unwrap();
            let variant = stack.variant(&negative).unwrap();
            let data_on_empty_dir = |s: &Stack| -> usize {
                p["delete"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|w| s.pod_spec(w.as_str().unwrap()))
                    .flat_map(|spec| spec.volumes.iter().flatten())
                    .filter(|v| v.empty_dir.is_some() && v.name != "tmp")
                    .count()
            };
            assert_eq!(data_on_empty_dir(&stack), 0, "{name}");
            assert_eq!(data_on_empty_dir(&variant), 1, "{name}: {negative}");
        }
        assert_eq!(method_and_path("PUT /data/{name}").unwrap(), (Method::PUT, "/data/{name}".to_string()));
    }

    /// A notes app on loopback: POST /notes (form `text` or JSON {"text"}) answers 201 and keeps
    /// the text; GET /notes lists every text kept. Enough HTTP/1.1 for reqwest.
    async fn notes_app() -> (String, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut notes: Vec<String> = Vec::new();
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break (String::new(), String::new());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))).unwrap_or(0);
                        if body.len() >= len {
                            break (head.to_string(), body.to_string());
                        }
                    }
                };
                let (status, reply) = if head.starts_with("POST /notes") {
                    let text = if head.to_ascii_lowercase().contains("application/json") {
                        serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["text"].as_str().map(str::to_string))
                    } else {
                        body.split('&').find_map(|kv| kv.strip_prefix("text=")).map(|v| v.replace('+', " "))
                    };
                    match text {
                        Some(t) => {
                            notes.push(t);
                            ("201 Created", format!("note {}", notes.len()))
                        }
                        None => ("400 Bad Request", "no text".to_string()),
                    }
                } else {
                    ("200 OK", notes.iter().map(|n| format!("<li>{n}</li>")).collect::<String>())
                };
                let _ = conn
                    .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-Seaworthy-Backend: notes-0\r\nConnection: close\r\n\r\n{reply}", reply.len()).as_bytes())
                    .await;
            }
        });
        (url, server)
    }

    fn store(text: &str) -> (HttpWrite, HttpRead) {
        match crate::checks::params::parse::<Persistence>(&text.parse().unwrap()).unwrap() {
            Persistence::Http { write, read, .. } => (write, read),
            other => panic!("{other:?}"),
        }
    }

    /// The generic store against a real server: the value of this run is written as a form and
    /// as JSON, read back through the page, and a write answered otherwise than declared fails.
    #[tokio::test]
    async fn the_generic_http_store_writes_a_unique_value_and_reads_it_back() {
        let (url, server) = notes_app().await;
        let entry = EntryPoint::new(&url, None).unwrap();
        let (w, r) = store("store = \"http\"\ndelete = [\"notes\"]\nwrite = { path = \"/notes\", form = { text = \"{value}\" }, status = 201 }\nread = { path = \"/notes\", pattern = \"<li>{value}</li>\" }");
        let written = http_store(&entry, &w, &r, "seaworthy-1").await.unwrap().unwrap();
        let (what, read, expect, before) = &written[0];
        assert_eq!((read.as_str(), expect), ("GET /notes", &Expect::Contains("<li>seaworthy-1</li>".into())));
        assert!(what.starts_with("the value \"seaworthy-1\" (POST /notes: note 1)"), "{what}");
        assert!(before.is_2xx() && before.body.contains("<li>seaworthy-1</li>"), "{before:?}");

        let (w, r) = store("store = \"http\"\ndelete = [\"notes\"]\nwrite = { method = \"POST\", path = \"/notes\", json = { text = \"{value}\", tags = [\"a\"] } }\nread = { path = \"/notes\" }");
        let written = http_store(&entry, &w, &r, "seaworthy-2").await.unwrap().unwrap();
        assert!(written[0].3.body.contains("<li>seaworthy-2</li>"), "{:?}", written[0].3);

        // The app refuses the write (no `text` field): reported with its answer, not read.
        let (w, r) = store("store = \"http\"\ndelete = [\"notes\"]\nwrite = { path = \"/notes\", form = { note = \"{value}\" } }\nread = { path = \"/notes\" }");
        let why = http_store(&entry, &w, &r, "seaworthy-3").await.unwrap().unwrap_err();
        assert!(why.starts_with("POST /notes answered 400 from notes-0 \"no text\", not a 2xx"), "{why}");
        server.abort();
    }

    /// tests-data/own-stack's guestbook for real on loopback (its server.py under Debian's
    /// python3, redis-server with an append-only file as on its PVC), with the env its manifest
    /// gives the container: the generic store declared in its stack.toml writes this run's value,
    /// reads it back, and reads it again after redis was restarted; SIGTERM stops the server.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_own_stack_guestbook_keeps_an_entry_written_by_the_generic_store() {
        use crate::local::{Proc, Redis, free_port};
        let stack = Stack::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests-data/own-stack")).unwrap();
        let check = stack.spec.checks.iter().find(|c| c.name == "persistence").unwrap();
        let Persistence::Http { write, read, delete } = crate::checks::params::parse::<Persistence>(&check.params).unwrap() else { panic!("not the http store") };
        assert_eq!(delete, ["guestbook-redis", "guestbook"]);

        let tmp = tempfile::tempdir().unwrap();
        let mut redis = Redis::start(&tmp.path().join("redis")).unwrap();
        let port = free_port();
        let mut cmd = std::process::Command::new("/usr/bin/python3");
        cmd.arg(stack.dir.join("app/web/server.py"));
        for (k, v) in stack.container_env("guestbook", "web").unwrap() {
            // The redis Service's name is this machine's loopback here.
            cmd.env(&k, if k == "REDIS_HOST" { "127.0.0.1".to_string() } else { v });
        }
        cmd.env("REDIS_PORT", redis.port.to_string()).env("PORT", port.to_string()).env("POD_NAME", "guestbook-local");
        let mut web = Proc::serve("guestbook", cmd, tmp.path(), port, Duration::from_secs(10)).unwrap();

        let entry = EntryPoint::new(&format!("http://127.0.0.1:{port}{}", stack.spec.entry.path), None).unwrap();
        let value = format!("seaworthy-{}", now_ms());
        let written = http_store(&entry, &write, &read, &value).await.unwrap().unwrap_or_else(|e| panic!("{e}\n{}", web.log()));
        let (_, read_path, expect, before) = &written[0];
        assert_eq!(read_path, "GET /entries");
        let Expect::Contains(pattern) = expect else { panic!("{expect:?}") };
        assert_eq!(pattern, &format!("<li>{value}</li>"));
        assert!(before.is_2xx() && before.body.contains(pattern.as_str()) && before.backend.as_deref() == Some("guestbook-local"), "{before:?}");

        tokio::task::block_in_place(|| redis.restart()).unwrap();
        let after = read_after(&entry, "/entries", expect).await;
        let last = after.last().unwrap();
        assert!(last.is_2xx() && last.body.contains(pattern.as_str()), "{after:?}");

        web.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
        assert!(tokio::task::block_in_place(|| web.wait_timeout(Duration::from_secs(10))).is_some(), "the guestbook did not stop on SIGTERM");
    }
}
