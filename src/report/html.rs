//! One self-contained HTML page: the results table and, per traffic phase, an inline SVG timeline
//! of requests/s, failures/s and p50/p99 latency with the cluster's events on the same time axis.
//! No scripts, fonts or fetches (a Content-Security-Policy forbids them), so it opens from a CI
//! artifact store or a mail attachment as it is. The markup is well-formed XML, which lets a test
//! hold it to a strict parser.

use super::schema::RunReport;
use super::text;
use crate::checks::timeline::{next_to, offset};
use crate::checks::{CheckResult, FailureCluster, Outcome, Phase, Verdict};
use crate::observe::{Entry, Source};
use std::fmt::Write as _;

pub fn html(report: &RunReport) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let totals = report.totals();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <title>seaworthy report: {} passed, {} failed, {} skipped</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        totals.pass, totals.fail, totals.skipped
    );
    header(&mut o, report);
    results_table(&mut o, report);
    o.push_str("<section id=\"timelines\">\n<h2>Timelines</h2>\n");
    let mut any = false;
    for (i, r) in report.results.iter().enumerate() {
        for (variant, v) in variants(r) {
            for (j, p) in v.phases.iter().enumerate() {
                any = true;
                phase_article(&mut o, r, variant, p, &anchor(i, variant.is_some(), j));
            }
        }
    }
    if !any {
        o.push_str("<p class=\"none\">No check recorded a traffic phase.</p>\n");
    }
    let _ = write!(
        o,
        "</section>\n<footer>seaworthy {} · report schema version {} · times are seconds after each phase started (its traffic, where it has any)</footer>\n</body>\n</html>\n",
        esc(&report.seaworthy_version),
        report.schema_version
    );
    o
}

const CSS: &str = "
body{font-family:'DejaVu Sans',Verdana,sans-serif;font-size:14px;color:#212529;margin:20px 28px;max-width:1240px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dee2e6}
h3{font-size:15px;margin:22px 0 4px}
.meta{color:#495057;margin:2px 0}
table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #dee2e6;padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
table.results{width:100%}table.results tr.why td{border-top:none;padding:0 8px 4px;font-size:13px}
table.results tr.why p{margin:4px 0}code{word-break:break-all}
.none{color:#868e96}
th{background:#f1f3f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;font-weight:bold;font-size:12px}
.pass{background:#d3f9d8;color:#2b8a3e}.fail{background:#ffe3e3;color:#c92a2a}.skipped{background:#fff3bf;color:#8f6f00}
.summary{font-family:'DejaVu Sans Mono',monospace;font-size:13px;margin:2px 0 6px}
svg.timeline{display:block;width:100%;max-width:1000px;height:auto;border:1px solid #dee2e6;background:#fff}
svg text{font-family:'DejaVu Sans',Verdana,sans-serif}
ol.clusters li{color:#c92a2a;margin:2px 0}
table.events td{font-size:12px}table.events tr.near td{background:#fff5f5}
details{margin:6px 0}summary{cursor:pointer;color:#1c7ed6}
footer{margin-top:30px;color:#868e96;font-size:12px}
";

fn variants(r: &CheckResult) -> Vec<(Option<&str>, &Verdict)> {
    let mut v = vec![(None, &r.good)];
    if let Some((name, verdict)) = &r.negative {
        v.push((Some(name.as_str()), verdict));
    }
    v
}

fn anchor(result: usize, negative: bool, phase: usize) -> String {
    format!("r{result}-{}-p{phase}", if negative { "neg" } else { "good" })
}

pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // Control characters are not allowed in XML; a log line may carry them.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

fn outcome_badge(o: Outcome) -> String {
    let (class, word) = match o {
        Outcome::Pass => ("pass", "pass"),
        Outcome::Fail => ("fail", "fail"),
        Outcome::Skipped => ("skipped", "skipped"),
    };
    format!("<span class=\"badge {class}\">{word}</span>")
}

/// Wall-clock ms as UTC `2026-11-22 00:06:07`.
fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date dependency for one line.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn header(o: &mut String, r: &RunReport) {
    let t = r.totals();
    let _ = writeln!(o, "<header>\n<h1>seaworthy run report</h1>");
    let _ = writeln!(
        o,
        "<p class=\"meta\">{} to {} ({:.0} s) · seaworthy {} · stacks: {}</p>",
        utc(r.started_ms),
        utc(r.ended_ms),
        r.ended_ms.saturating_sub(r.started_ms) as f64 / 1000.0,
        esc(&r.seaworthy_version),
        esc(&r.stack_names().join(", "))
    );
    match &r.cluster {
        Some(c) => {
            let _ = writeln!(
                o,
                "<p class=\"meta\">cluster: {} (context {}), Kubernetes {}, {} nodes ({} schedulable), metrics API {}, ingress classes: {}, default StorageClass: {}</p>",
                esc(&c.provider),
                esc(&c.context),
                esc(&c.version),
                c.nodes,
                c.schedulable_nodes,
                if c.metrics_api { "yes" } else { "no" },
                if c.ingress_classes.is_empty() { "none".into() } else { esc(&c.ingress_classes.join(", ")) },
                esc(c.default_storage_class.as_deref().unwrap_or("none"))
            );
        }
        None => o.push_str("<p class=\"meta\">cluster: none (local run)</p>\n"),
    }
    let _ = writeln!(
        o,
        "<p class=\"meta totals\">{} {} · {} {} · {} {}</p>\n</header>",
        outcome_badge(Outcome::Pass),
        t.pass,
        outcome_badge(Outcome::Fail),
        t.fail,
        outcome_badge(Outcome::Skipped),
        t.skipped
    );
}

/// The metric that decided a check, as `name = value` (pdb-drain's against its budget): the one
/// its negative control is judged on, else `failed`, else the first.
pub(crate) fn deciding(check: &str, v: &Verdict) -> String {
    let m = &v.metrics;
    if v.outcome == Outcome::Skipped || m.is_empty() {
        return "—".into();
    }
    if check == "pdb-drain"
        && let (Some(u), Some(a)) = (m.get("unavailable_max"), m.get("allowed_unavailable"))
    {
        return format!("unavailable_max = {} (budget {})", text::num(*u), text::num(*a));
    }
    let preferred = match check {
        "config-override" => "baked_in_served",
        "endpoints-follow-readiness" => "answered_after_unready",
        "hpa-scale" => "max_replicas",
        "persistence" => "data_lost",
        _ => "failed",
    };
    let (k, x) = m.get_key_value(preferred).or_else(|| m.get_key_value("failed")).or_else(|| m.iter().next()).expect("not empty");
    format!("{k} = {}", text::num(*x))
}

fn results_table(o: &mut String, r: &RunReport) {
    o.push_str("<section id=\"results\">\n<h2>Results</h2>\n<table class=\"results\">\n<tr><th>stack</th><th>check</th><th>outcome</th><th>decided by</th><th>negative control</th></tr>\n");
    for (i, c) in r.results.iter().enumerate() {
        let (outcome, reason) = c.outcome();
        let (negative, negative_reason) = match &c.negative {
            None => ("none".to_string(), String::new()),
            Some((name, v)) => {
                let what = match v.outcome {
                    Outcome::Fail if v.caught() => "caught",
                    Outcome::Fail => "NOT caught",
                    Outcome::Pass => "NOT caught",
                    Outcome::Skipped => "skipped",
                };
                (format!("{}: {what}", esc(name)), format!("<p>negative control {}: {}</p>", esc(name), esc(&v.reason)))
            }
        };
        let metrics: Vec<String> = c.good.metrics.iter().map(|(k, v)| format!("{}={}", esc(k), text::num(*v))).collect();
        let evidence = c.good.evidence.iter().chain(c.negative.iter().filter_map(|(_, v)| v.evidence.as_ref()));
        let evidence: Vec<String> = evidence.map(|p| format!("<code>{}</code>", esc(&p.display().to_string()))).collect();
        let mut links = Vec::new();
        for (variant, v) in variants(c) {
            for (j, p) in v.phases.iter().enumerate() {
                let label = match variant {
                    None => p.name.clone(),
                    Some(n) => format!("{n}: {}", p.name),
                };
                links.push(format!("<a href=\"#{}\">{}</a>", anchor(i, variant.is_some(), j), esc(&label)));
            }
        }
        // One line per check; the long reasons, metrics and evidence fold under it.
        let _ = writeln!(
            o,
            "<tr class=\"result {}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{negative}</td></tr>",
            match outcome {
                Outcome::Pass => "pass",
                Outcome::Fail => "fail",
                Outcome::Skipped => "skipped",
            },
            esc(&c.stack),
            esc(&c.check),
            outcome_badge(outcome),
            esc(&deciding(&c.check, &c.good)),
        );
        let mut folded = format!("<p>{}</p>{negative_reason}", esc(&reason));
        if !metrics.is_empty() {
            let _ = write!(folded, "<p>metrics: {}</p>", metrics.join(", "));
        }
        if !evidence.is_empty() {
            let _ = write!(folded, "<p>evidence: {}</p>", evidence.join(", "));
        }
        if !links.is_empty() {
            let _ = write!(folded, "<p>timelines: {}</p>", links.join(" · "));
        }
        let _ = writeln!(o, "<tr class=\"why\"><td colspan=\"5\"><details><summary>{}</summary>{folded}</details></td></tr>", esc(&text::truncate_words(&reason, 110)));
    }
    o.push_str("</table>\n</section>\n");
}

fn phase_article(o: &mut String, r: &CheckResult, variant: Option<&str>, p: &Phase, id: &str) {
    let who = match variant {
        None => "good stack".to_string(),
        Some(v) => format!("negative control {v}"),
    };
    let _ = writeln!(
        o,
        "<article class=\"phase\" id=\"{id}\">\n<h3>{} / {} · {} · phase “{}”</h3>\n<p class=\"summary\">{}</p>",
        esc(&r.stack),
        esc(&r.check),
        esc(&who),
        esc(&p.name),
        esc(&text::phase_line(p))
    );
    // A phase without traffic (a write, a wait) is drawn as its events alone, and one without
    // events either as a sentence: an empty chart says nothing.
    if p.traffic.is_some() || !p.events.is_empty() {
        o.push_str(&timeline_svg(p));
    } else {
        o.push_str("<p class=\"none\">No traffic and no Kubernetes event in this phase.</p>\n");
    }
    if !p.failure_clusters.is_empty() {
        o.push_str("<ol class=\"clusters\">\n");
        for c in &p.failure_clusters {
            let _ = writeln!(o, "<li>{}</li>", esc(&text::cluster_line(c)));
        }
        o.push_str("</ol>\n");
    }
    if let Some(s) = p.traffic.as_ref() {
        let rows = backend_rows(s, &p.failure_clusters);
        if !rows.is_empty() {
            o.push_str("<table class=\"backends\">\n<tr><th>backend</th><th>responses</th><th>ok</th><th>failed</th><th>failed without a backend header</th><th>first seen (s)</th><th>last seen (s)</th></tr>\n");
            for b in rows {
                let seen = |t: Option<f64>| t.map(|t| format!("{t:.2}")).unwrap_or_else(|| "—".into());
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    esc(&b.name),
                    b.count,
                    b.ok,
                    b.failed,
                    b.unnamed_failed,
                    seen(b.first_seen_s),
                    seen(b.last_seen_s)
                );
            }
            o.push_str("</table>\n");
        }
    }
    if !p.events.is_empty() {
        let near: Vec<&Entry> = p.failure_clusters.iter().filter_map(|c| next_to(c)).map(|(e, _)| e).collect();
        let open = if p.traffic.is_none() { " open=\"open\"" } else { "" };
        let _ = writeln!(o, "<details{open}><summary>{} events</summary>\n<table class=\"events\">\n<tr><th>t (s)</th><th>source</th><th>object</th><th>what</th></tr>", p.events.len());
        for e in &p.events {
            let is_near = near.contains(&e);
            let _ = writeln!(
                o,
                "<tr{}><td class=\"num\">{:.2}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if is_near { " class=\"near\"" } else { "" },
                rel_s(e, p),
                source_name(e.source),
                esc(&e.object),
                esc(&e.message)
            );
        }
        o.push_str("</table>\n</details>\n");
    }
    o.push_str("</article>\n");
}

/// One row of a phase's backend table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BackendRow {
    pub name: String,
    pub count: u64,
    pub ok: u64,
    /// Failed answers that named this backend.
    pub failed: u64,
    /// Failures with no backend header (a proxy's 502, a reset), put on the backend their
    /// failure cluster names: the one the connection last reached.
    pub unnamed_failed: u64,
    pub first_seen_s: Option<f64>,
    pub last_seen_s: Option<f64>,
}

/// The load's backends, plus the failures it could not name: the summary counts only what
/// answered with a header, so `failed - Σ backend.failed` requests are spread over the failure
/// clusters' backends in time order, and what no cluster names goes to an "unnamed" row.
pub(crate) fn backend_rows(s: &crate::traffic::Summary, clusters: &[FailureCluster]) -> Vec<BackendRow> {
    let mut rows: Vec<BackendRow> = s
        .backends
        .iter()
        .map(|b| BackendRow { name: b.name.clone(), count: b.count, ok: b.ok, failed: b.failed, unnamed_failed: 0, first_seen_s: Some(b.first_seen_s), last_seen_s: Some(b.last_seen_s) })
        .collect();
    let named: u64 = s.backends.iter().map(|b| b.failed).sum();
    let mut left = s.failed.saturating_sub(named);
    let put = |rows: &mut Vec<BackendRow>, name: &str, n: u64| {
        match rows.iter_mut().find(|r| r.name == name) {
            Some(r) => r.unnamed_failed += n,
            None => rows.push(BackendRow { name: name.into(), count: 0, ok: 0, failed: 0, unnamed_failed: n, first_seen_s: None, last_seen_s: None }),
        }
    };
    for c in clusters {
        let n = left.min(c.count);
        if n == 0 {
            continue;
        }
        left -= n;
        put(&mut rows, c.backend.as_deref().unwrap_or("unnamed"), n);
    }
    if left > 0 {
        put(&mut rows, "unnamed", left);
    }
    rows
}

fn rel_s(e: &Entry, p: &Phase) -> f64 {
    (e.at_ms as f64 - p.started_ms as f64) / 1000.0
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Pod => "pod",
        Source::EndpointSlice => "endpoint_slice",
        Source::Hpa => "hpa",
        Source::Event => "event",
        Source::Action => "action",
    }
}

/// What an event means on the timeline: a CSS-ish class name, a legend label and a colour.
fn category(e: &Entry) -> (&'static str, &'static str, &'static str) {
    let m = e.message.to_ascii_lowercase();
    match e.source {
        Source::Pod if m.starts_with("created") || m.starts_with("scheduled") => ("pod-created", "Pod created", "#2b8a3e"),
        Source::Pod if m.starts_with("ready") => ("pod-ready", "Pod ready", "#40c057"),
        Source::Pod if m.starts_with("not ready") => ("pod-not-ready", "Pod not ready", "#f59f00"),
        Source::Pod if m.starts_with("terminating") => ("pod-terminating", "Pod terminating", "#e8590c"),
        Source::Pod if m.starts_with("deleted") => ("pod-deleted", "Pod deleted", "#495057"),
        Source::Pod => ("pod-other", "Pod (other)", "#c92a2a"),
        Source::EndpointSlice if m.contains("removed") || m.contains("not ready") || m.contains("not serving") => {
            ("slice-out", "EndpointSlice: out", "#1864ab")
        }
        Source::EndpointSlice => ("slice-in", "EndpointSlice: in", "#4dabf7"),
        Source::Hpa => ("hpa", "HPA replicas", "#7048e8"),
        Source::Event if m.starts_with("warning") => ("event-warning", "Event (Warning)", "#e03131"),
        Source::Event => ("event", "Event", "#868e96"),
        Source::Action if m.contains("429") || m.contains("evict") => ("eviction", "eviction / 429", "#d9480f"),
        Source::Action => ("action", "action", "#212529"),
    }
}

fn marker(e: &Entry, x: f64, y: f64, color: &str) -> String {
    match e.source {
        Source::Pod => format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4.5\" fill=\"{color}\"/>"),
        Source::EndpointSlice => format!("<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"{color}\"/>", x - 4.0, y - 4.0),
        Source::Hpa => format!("<path d=\"M{x:.1} {:.1}l5 5l-5 5l-5 -5z\" fill=\"{color}\"/>", y - 5.0),
        Source::Event => format!("<path d=\"M{x:.1} {:.1}l5 8h-10z\" fill=\"{color}\"/>", y - 5.0),
        Source::Action => format!(
            "<path d=\"M{:.1} {:.1}l8 8M{:.1} {:.1}l-8 8\" stroke=\"{color}\" stroke-width=\"2.2\"/>",
            x - 4.0,
            y - 4.0,
            x + 4.0,
            y - 4.0
        ),
    }
}

/// A tick step giving at most ~12 ticks over `span`.
fn tick_step(span: f64) -> f64 {
    for s in [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0] {
        if span / s <= 12.0 {
            return s;
        }
    }
    7200.0
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

const W: f64 = 1000.0;
const L: f64 = 66.0;
const R: f64 = 24.0;
const RATE_H: f64 = 120.0;
const LAT_H: f64 = 110.0;
const ROW_H: f64 = 15.0;
const MAX_ROWS: usize = 14;
/// Average advance of a 10px DejaVu Sans character, to keep labels from overlapping.
const CHAR_W: f64 = 6.1;
/// The same for the 11px bold failure labels.
const BOLD_CHAR_W: f64 = 7.3;

/// Place labels `(x, width)` in the first row where they do not overlap the previous one.
fn rows(items: &[(f64, f64)], max_rows: usize) -> Vec<Option<usize>> {
    let mut ends: Vec<f64> = Vec::new();
    items
        .iter()
        .map(|&(x, w)| {
            if let Some(r) = ends.iter().position(|&end| x > end + 6.0) {
                ends[r] = x + w;
                Some(r)
            } else if ends.len() < max_rows {
                ends.push(x + w);
                Some(ends.len() - 1)
            } else {
                None
            }
        })
        .collect()
}

pub(crate) fn timeline_svg(p: &Phase) -> String {
    let events: Vec<(&Entry, f64)> = p.events.iter().map(|e| (e, rel_s(e, p))).collect();
    let traffic = p.traffic.as_ref();
    let buckets = traffic.map(|s| s.timeline.as_slice()).unwrap_or(&[]);
    let bucket_s = traffic.map(|s| s.bucket_s).unwrap_or(1.0).max(1e-3);

    let mut t0: f64 = 0.0;
    let mut t1: f64 = (p.ended_ms.saturating_sub(p.started_ms) as f64 / 1000.0).max(traffic.map(|s| s.elapsed_s).unwrap_or(0.0));
    if let Some(b) = buckets.last() {
        t1 = t1.max(b.t_s + bucket_s);
    }
    for (_, t) in &events {
        t0 = t0.min(*t);
        t1 = t1.max(*t);
    }
    for c in &p.failure_clusters {
        t1 = t1.max(c.to_s);
    }
    if t1 - t0 < 1.0 {
        t1 = t0 + 1.0;
    }
    let pw = W - L - R;
    let x = |t: f64| L + (t - t0) / (t1 - t0) * pw;

    // Failure labels on top, above the rate panel.
    let cluster_labels: Vec<(String, f64, f64)> = p
        .failure_clusters
        .iter()
        .map(|c| {
            let label = cluster_label(c);
            let w = label.chars().count() as f64 * BOLD_CHAR_W;
            let xs = x(c.from_s);
            // Right-align a label that would run off the chart.
            let left = if xs + w > W - 4.0 { (W - 4.0 - w).max(2.0) } else { xs };
            (label, left, w)
        })
        .collect();
    let label_rows = rows(&cluster_labels.iter().map(|(_, l, w)| (*l, *w)).collect::<Vec<_>>(), 4);
    let n_label_rows = label_rows.iter().flatten().max().map_or(0, |m| m + 1);
    let top = 12.0 + n_label_rows as f64 * 14.0 + 6.0;
    // Without traffic there is nothing to plot but the events.
    let panels = traffic.is_some();
    let rate_y0 = top;
    let lat_y0 = rate_y0 + RATE_H + 24.0;
    let lane_y0 = if panels { lat_y0 + LAT_H + 30.0 } else { top + 10.0 };

    // A label that would run off the right edge goes to the left of its marker.
    let ev_items: Vec<(f64, f64, bool)> = events
        .iter()
        .map(|(e, t)| {
            let w = event_label(e).chars().count() as f64 * CHAR_W * 0.95;
            let xe = x(*t);
            if xe + 8.0 + w > W - 2.0 { (xe - 8.0 - w, w + 12.0, true) } else { (xe - 4.0, w + 12.0, false) }
        })
        .collect();
    let ev_rows = rows(&ev_items.iter().map(|&(l, w, _)| (l, w)).collect::<Vec<_>>(), MAX_ROWS);
    let ev_left: Vec<bool> = ev_items.iter().map(|i| i.2).collect();
    let n_ev_rows = ev_rows.iter().flatten().max().map_or(1, |m| m + 1);
    let lane_h = n_ev_rows as f64 * ROW_H + 8.0;
    let axis_y = lane_y0 + lane_h;
    let legend_y = axis_y + 46.0;
    let legend = legend_layout(&events);
    let h = legend_y + legend.last().map_or(0.0, |l| l.2 as f64 * 16.0) + 10.0;

    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {h:.0}\" width=\"{W}\" height=\"{h:.0}\" role=\"img\" aria-label=\"timeline of phase {}\">",
        esc(&p.name)
    );

    // Grid and time axis.
    let step = tick_step(t1 - t0);
    let mut t = (t0 / step).ceil() * step;
    while t <= t1 + 1e-9 {
        let xt = x(t);
        let _ = writeln!(s, "<line x1=\"{xt:.1}\" y1=\"{rate_y0:.1}\" x2=\"{xt:.1}\" y2=\"{axis_y:.1}\" stroke=\"#f1f3f5\"/>");
        let _ = writeln!(s, "<text x=\"{xt:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#495057\">{}</text>", axis_y + 14.0, text::num((t * 10.0).round() / 10.0));
        t += step;
    }
    let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#495057\">{}</text>", W - R, axis_y + 28.0, if panels { "seconds after traffic started" } else { "seconds after the phase started" });
    let panel_rects: &[(f64, f64)] = if panels { &[(rate_y0, RATE_H), (lat_y0, LAT_H)] } else { &[] };
    for (y0, hgt) in panel_rects {
        let _ = writeln!(s, "<rect x=\"{L}\" y=\"{y0:.1}\" width=\"{pw:.1}\" height=\"{hgt:.1}\" fill=\"none\" stroke=\"#ced4da\"/>");
    }
    let _ = writeln!(s, "<line x1=\"{L}\" y1=\"{axis_y:.1}\" x2=\"{:.1}\" y2=\"{axis_y:.1}\" stroke=\"#adb5bd\"/>", W - R);

    // Failure clusters behind everything else.
    for (i, c) in p.failure_clusters.iter().enumerate() {
        let x0 = x(c.from_s);
        let wd = (x(c.to_s) - x0).max(3.0);
        let _ = writeln!(
            s,
            "<g class=\"failure-cluster\" data-backend=\"{}\"><title>{}</title><rect x=\"{x0:.1}\" y=\"{rate_y0:.1}\" width=\"{wd:.1}\" height=\"{:.1}\" fill=\"#fa5252\" fill-opacity=\"0.13\" stroke=\"#e03131\" stroke-dasharray=\"3 2\"/>",
            esc(c.backend.as_deref().unwrap_or("")),
            esc(&text::cluster_line(c)),
            axis_y - rate_y0
        );
        if let (Some(row), (label, left, _)) = (label_rows[i], &cluster_labels[i]) {
            let ly = 12.0 + row as f64 * 14.0 + 10.0;
            let _ = writeln!(
                s,
                "<line x1=\"{x0:.1}\" y1=\"{:.1}\" x2=\"{x0:.1}\" y2=\"{rate_y0:.1}\" stroke=\"#e03131\"/><text x=\"{left:.1}\" y=\"{ly:.1}\" font-size=\"11\" font-weight=\"bold\" fill=\"#c92a2a\">{}</text>",
                ly + 2.0,
                esc(label)
            );
        }
        s.push_str("</g>\n");
    }

    if panels {
        traffic_panels(&mut s, buckets, bucket_s, rate_y0, lat_y0, &x);
    }
    events_lane(&mut s, p, &events, (&ev_rows, &ev_left, n_ev_rows), rate_y0, lane_y0, &x);
    for (e, lx, line) in legend {
        let (_, label, color) = category(e);
        let ly = legend_y + line as f64 * 16.0;
        let _ = write!(s, "{}<text x=\"{:.1}\" y=\"{ly:.1}\" font-size=\"10\" fill=\"#495057\">{label}</text>", marker(e, lx + 4.0, ly - 3.0, color), lx + 12.0);
    }
    s.push_str("\n</svg>\n");
    s
}

fn traffic_panels(s: &mut String, buckets: &[crate::traffic::Bucket], bucket_s: f64, rate_y0: f64, lat_y0: f64, x: &dyn Fn(f64) -> f64) {
    let pw = W - L - R;
    // Requests/s and failures/s.
    let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#1c7ed6\">requests/s</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#e03131\">failures/s</text>", L + 6.0, rate_y0 + 13.0, L + 76.0, rate_y0 + 13.0);
    if buckets.is_empty() {
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" fill=\"#868e96\">no traffic recorded in this phase</text>", L + pw / 2.0, rate_y0 + RATE_H / 2.0);
    } else {
        let max_rps = buckets.iter().map(|b| b.sent.max(b.planned.unwrap_or(0)) as f64 / bucket_s).fold(1.0, f64::max) * 1.1;
        let y = |v: f64| rate_y0 + RATE_H - v / max_rps * RATE_H;
        for v in [0.0, max_rps / 1.1 / 2.0, max_rps / 1.1] {
            let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#495057\">{}</text>", L - 5.0, y(v) + 3.5, text::num(v.round()));
        }
        let mut sent = String::new();
        for b in buckets {
            let _ = write!(sent, "{:.1},{:.1} {:.1},{:.1} ", x(b.t_s), y(b.sent as f64 / bucket_s), x(b.t_s + bucket_s), y(b.sent as f64 / bucket_s));
            if b.failed > 0 {
                let top = y(b.failed as f64 / bucket_s);
                let _ = writeln!(
                    s,
                    "<rect class=\"failures\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#e03131\"><title>{:.2}-{:.2} s: {} failed of {} sent</title></rect>",
                    x(b.t_s),
                    (x(b.t_s + bucket_s) - x(b.t_s)).max(1.0),
                    rate_y0 + RATE_H - top,
                    b.t_s,
                    b.t_s + bucket_s,
                    b.failed,
                    b.sent
                );
            }
        }
        let _ = writeln!(s, "<polyline class=\"rps\" points=\"{}\" fill=\"none\" stroke=\"#1c7ed6\" stroke-width=\"1.6\"/>", sent.trim_end());
    }

    // Latency, log scale: a stalled request and a 0.3 ms one must both be readable.
    let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#2b8a3e\">p50 latency</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#e8590c\">p99 latency</text>", L + 6.0, lat_y0 + 13.0, L + 86.0, lat_y0 + 13.0);
    let lats: Vec<f64> = buckets.iter().flat_map(|b| [b.p50_ms, b.p99_ms]).flatten().filter(|v| *v > 0.0).collect();
    if !lats.is_empty() {
        let lo = lats.iter().cloned().fold(f64::MAX, f64::min).log10().floor();
        let hi = lats.iter().cloned().fold(0.0, f64::max).log10().ceil().max(lo + 1.0);
        let y = |v: f64| lat_y0 + LAT_H - (v.max(10f64.powf(lo)).log10() - lo) / (hi - lo) * LAT_H;
        let mut d = lo;
        while d <= hi + 1e-9 {
            let v = 10f64.powf(d);
            let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#495057\">{} ms</text><line x1=\"{L}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#f1f3f5\"/>", L - 5.0, y(v) + 3.5, text::num(v), y(v), W - R, y(v));
            d += 1.0;
        }
        for (class, color, pick) in [("p50", "#2b8a3e", 0usize), ("p99", "#e8590c", 1)] {
            let mut pts = String::new();
            for b in buckets {
                let v = if pick == 0 { b.p50_ms } else { b.p99_ms };
                if let Some(v) = v {
                    let _ = write!(pts, "{:.1},{:.1} {:.1},{:.1} ", x(b.t_s), y(v), x(b.t_s + bucket_s), y(v));
                }
            }
            let _ = writeln!(s, "<polyline class=\"{class}\" points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"1.6\"/>", pts.trim_end());
        }
    } else {
        let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" fill=\"#868e96\">no completed requests</text>", L + pw / 2.0, lat_y0 + LAT_H / 2.0);
    }

}

fn events_lane(
    s: &mut String,
    p: &Phase,
    events: &[(&Entry, f64)],
    (ev_rows, ev_left, n_ev_rows): (&[Option<usize>], &[bool], usize),
    rate_y0: f64,
    lane_y0: f64,
    x: &dyn Fn(f64) -> f64,
) {
    // Events: a faint line through the charts, a marker and a label in the lane.
    let _ = writeln!(s, "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#495057\">events</text>", L - 5.0, lane_y0 + 4.0);
    let near: Vec<&Entry> = p.failure_clusters.iter().filter_map(|c| next_to(c)).map(|(e, _)| e).collect();
    for (i, (e, t)) in events.iter().enumerate() {
        let (class, _, color) = category(e);
        let xe = x(*t);
        let row = ev_rows[i].unwrap_or(n_ev_rows - 1);
        let ye = lane_y0 + row as f64 * ROW_H;
        let is_near = near.iter().any(|n| n == e);
        let _ = write!(
            s,
            "<g class=\"event {class}{}\"><title>{:.2} s: {} {}</title><line x1=\"{xe:.1}\" y1=\"{rate_y0:.1}\" x2=\"{xe:.1}\" y2=\"{ye:.1}\" stroke=\"{color}\" stroke-opacity=\"0.35\"/>{}",
            if is_near { " near-failure" } else { "" },
            t,
            esc(&e.object),
            esc(&e.message),
            marker(e, xe, ye, color)
        );
        if is_near {
            let _ = write!(s, "<circle cx=\"{xe:.1}\" cy=\"{ye:.1}\" r=\"8\" fill=\"none\" stroke=\"#e03131\" stroke-width=\"1.5\"/>");
        }
        if ev_rows[i].is_some() {
            let (lx, anchor) = if ev_left[i] { (xe - 8.0, "end") } else { (xe + 8.0, "start") };
            let _ = write!(s, "<text x=\"{lx:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"{anchor}\" fill=\"{}\">{}</text>", ye + 3.5, if is_near { "#c92a2a" } else { "#343a40" }, esc(&event_label(e)));
        }
        s.push_str("</g>\n");
    }

}

/// The event kinds present, each once: (example entry, x, line), wrapping at the right edge.
fn legend_layout<'a>(events: &[(&'a Entry, f64)]) -> Vec<(&'a Entry, f64, usize)> {
    let mut seen: Vec<&Entry> = Vec::new();
    for (e, _) in events {
        if !seen.iter().any(|s| category(s).0 == category(e).0) {
            seen.push(e);
        }
    }
    let (mut lx, mut line) = (L, 0);
    let mut out = Vec::new();
    for e in seen {
        let w = 24.0 + category(e).1.len() as f64 * CHAR_W;
        if lx + w > W - R && lx > L {
            lx = L;
            line += 1;
        }
        out.push((e, lx, line));
        lx += w;
    }
    out
}

/// A label short enough to sit in the lane; the tooltip and the events table have the full text.
fn event_label(e: &Entry) -> String {
    let object = e.object.rsplit_once('/').map(|(k, n)| if k == "Pod" { n.to_string() } else { e.object.clone() }).unwrap_or_else(|| e.object.clone());
    let what = match e.source {
        // `Normal Killing: Stopping container nginx` -> `Killing`; a Warning keeps its word.
        Source::Event => {
            let head = e.message.split_once(':').map_or(e.message.as_str(), |(h, _)| h);
            head.strip_prefix("Normal ").unwrap_or(head).to_string()
        }
        _ => e.message.clone(),
    };
    truncate(&format!("{object} {what}"), 44)
}

fn cluster_label(c: &FailureCluster) -> String {
    let backend = c.backend.as_deref().unwrap_or("unknown backend");
    let next = match next_to(c) {
        Some((e, d)) => format!(" · next to {} ({})", truncate(&format!("{} {}", e.object, e.message), 48), offset(d)),
        None => String::new(),
    };
    format!("{} failed ({}) · {backend}{next}", c.count, truncate(&text::kinds(c), 28))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_795_305_967_000), "2026-11-22 00:06:07 UTC");
    }

    #[test]
    fn labels_take_the_first_free_row() {
        assert_eq!(rows(&[(0.0, 50.0), (20.0, 50.0), (60.0, 10.0), (30.0, 5.0)], 2), vec![Some(0), Some(1), Some(0), None]);
    }

    #[test]
    fn markup_is_escaped() {
        assert_eq!(esc("<a href=\"x\">&'\u{1}"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\u{fffd}");
    }
}
