//! `seaworthy report render|compare`.

use crate::report::{self, RunReport, Thresholds};
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Re-make the HTML page and/or the JUnit XML from a saved run report (JSON).
    Render(RenderArgs),
    /// Compare a run with a baseline per stack, check and phase; exit 1 on any regression.
    #[command(after_help = "Exit status: 0 no regression; 1 at least one regression; 2 the reports cannot be \
compared (unreadable, different schema versions, different checks).\n\
A latency or duration change counts only when it exceeds both its relative and its absolute threshold. \
An open-model phase's rate is judged by whether it held its planned rate; a closed-model phase's throughput \
is compared only with --closed-rate-pct.")]
    Compare(CompareArgs),
    /// Make one run report of the results the suites' cluster cases saved (`SEAWORTHY_RESULTS=DIR
    /// cargo test`): every shipped stack's checks, a case that did not run reported skipped.
    #[command(after_help = "Exit status: 0 every check passed; 1 a check failed or did not run; 2 the results cannot be read.")]
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The folder the suites wrote (their SEAWORTHY_RESULTS).
    pub results: PathBuf,
    /// Write the run report (JSON) here.
    #[arg(long, value_name = "OUT")]
    pub json: PathBuf,
    /// Also write the self-contained HTML page here.
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
    /// Also write JUnit XML here.
    #[arg(long, value_name = "OUT")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A run report written by `seaworthy run` (JSON), or a `seaworthy load --json` summary.
    pub result: PathBuf,
    /// Write the self-contained HTML page here.
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
    /// Write JUnit XML here.
    #[arg(long, value_name = "OUT")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    pub baseline: PathBuf,
    pub current: PathBuf,
    /// Print the comparison as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Compare the checks both reports ran and list the others, instead of refusing.
    #[arg(long)]
    pub only_common: bool,
    /// Failed requests a phase may gain over the baseline.
    #[arg(long, default_value_t = Thresholds::default().failed_requests)]
    pub failed_requests: u64,
    /// p99 / p99.9 latency (corrected): relative increase (percent) that counts ...
    #[arg(long, default_value_t = Thresholds::default().latency_pct)]
    pub latency_pct: f64,
    /// ... when p99 also grew by more than this many milliseconds ...
    #[arg(long, default_value_t = Thresholds::default().latency_p99_ms)]
    pub latency_p99_ms: f64,
    /// ... and p99.9 by more than this many.
    #[arg(long, default_value_t = Thresholds::default().latency_p999_ms)]
    pub latency_p999_ms: f64,
    /// Open model: relative drop (percent) of the achieved rate that counts when neither run held
    /// its planned rate (otherwise holding it or not decides).
    #[arg(long, default_value_t = Thresholds::default().rate_pct)]
    pub rate_pct: f64,
    /// Closed model (`--rate max`): compare the achieved throughput, counting a relative drop of
    /// more than this (percent). Not compared without it: it varies with the machine's load.
    #[arg(long, value_name = "PCT")]
    pub closed_rate_pct: Option<f64>,
    /// Rollout and undo duration, HPA time-to-scale: relative increase (percent) that counts ...
    #[arg(long, default_value_t = Thresholds::default().duration_pct)]
    pub duration_pct: f64,
    /// ... when it is also more than this many seconds.
    #[arg(long, default_value_t = Thresholds::default().duration_s)]
    pub duration_s: f64,
}

pub fn run(cmd: ReportCommand) -> anyhow::Result<i32> {
    match cmd {
        ReportCommand::Render(a) => render(a),
        ReportCommand::Compare(a) => compare(a),
        ReportCommand::Merge(a) => merge(a),
    }
}

fn merge(a: MergeArgs) -> anyhow::Result<i32> {
    let r = match report::cases::merge(&a.results, &crate::stack::Stack::shipped()?) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot merge: {e:#}");
            return Ok(2);
        }
    };
    r.save(&a.json)?;
    eprintln!("wrote {}", a.json.display());
    write_views(&r, a.html.as_deref(), a.junit.as_deref())?;
    print!("{}", crate::run::table(&r));
    Ok(crate::run::exit_code(&r))
}

/// The HTML page and the JUnit XML of a report, where asked for.
pub(super) fn write_views(r: &RunReport, html: Option<&Path>, junit: Option<&Path>) -> anyhow::Result<()> {
    if let Some(out) = html {
        std::fs::write(out, report::html(r)).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    if let Some(out) = junit {
        std::fs::write(out, report::junit_xml(r)?).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

fn render(a: RenderArgs) -> anyhow::Result<i32> {
    if a.html.is_none() && a.junit.is_none() {
        eprintln!("nothing to render: give --html OUT and/or --junit OUT");
        return Ok(2);
    }
    let r = match RunReport::load_any(&a.result) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot render: {e:#}");
            return Ok(2);
        }
    };
    write_views(&r, a.html.as_deref(), a.junit.as_deref())?;
    Ok(0)
}

/// The run report schema version of a run report (a load summary has its own, compared by phase).
fn schema_version_of(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let v = serde_json::from_str::<serde_json::Value>(&text).ok()?;
    if report::Kind::of(&v) != report::Kind::Run {
        return None;
    }
    v.get("schema_version")?.as_u64()
}

fn compare(a: CompareArgs) -> anyhow::Result<i32> {
    // Say "different versions" before either file is refused for not being this seaworthy's.
    if let (Some(b), Some(c)) = (schema_version_of(&a.baseline), schema_version_of(&a.current))
        && b != c
    {
        eprintln!(
            "cannot compare: the baseline {} has report schema version {b}, the current {} has {c}; re-run the baseline with this seaworthy, or compare with the seaworthy that wrote both",
            a.baseline.display(),
            a.current.display()
        );
        return Ok(2);
    }
    let load = |p: &Path| RunReport::load_any(p).map_err(|e| format!("cannot compare: {e:#}"));
    let (base, cur) = match (load(&a.baseline), load(&a.current)) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return Ok(2);
        }
    };
    let t = Thresholds {
        failed_requests: a.failed_requests,
        latency_pct: a.latency_pct,
        latency_p99_ms: a.latency_p99_ms,
        latency_p999_ms: a.latency_p999_ms,
        rate_pct: a.rate_pct,
        closed_rate_pct: a.closed_rate_pct,
        duration_pct: a.duration_pct,
        duration_s: a.duration_s,
    };
    let given = [
        ("--latency-pct", t.latency_pct),
        ("--latency-p99-ms", t.latency_p99_ms),
        ("--latency-p999-ms", t.latency_p999_ms),
        ("--rate-pct", t.rate_pct),
        ("--closed-rate-pct", t.closed_rate_pct.unwrap_or(0.0)),
        ("--duration-pct", t.duration_pct),
        ("--duration-s", t.duration_s),
    ];
    // A negative threshold would call identical runs regressed and improved at once.
    if let Some((flag, v)) = given.iter().find(|(_, v)| !(v.is_finite() && *v >= 0.0)) {
        eprintln!("{flag} {v}: a threshold is a number of 0 or more");
        return Ok(2);
    }
    let names = (a.baseline.display().to_string(), a.current.display().to_string());
    let cmp = match report::compare(&base, &cur, (&names.0, &names.1), &t, a.only_common) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(2);
        }
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&cmp)?);
    } else {
        print!("{}", cmp.table());
    }
    Ok(if cmp.regressed > 0 { 1 } else { 0 })
}
