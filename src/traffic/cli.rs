//! `seaworthy load URL`: the generator from the command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::engine::{ConnectionPolicy, Load, LoadConfig, Mode};
use super::schedule::{parse_duration, parse_ramp, parse_rate, Rate, Schedule};
use super::summary::Summary;

/// Exit codes: 0 all requests succeeded; 1 some failed (or the URL could not be reached);
/// 2 bad flags; 3 no failures, but the planned rate was not held.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Exit status: 0 all requests succeeded; 1 some failed or the URL is unreachable; \
2 bad flags; 3 the planned rate was not held.\n\
Latency is measured from each request's planned send time (coordinated omission corrected); the \
service time from the actual send is shown too.")]
pub struct LoadArgs {
    /// Target, http://host:port/path (resolved once).
    pub url: String,
    /// Requests per second (open model, constant), or `max` for the closed model: --connections
    /// loops each sending as soon as the last response ended.
    #[arg(long, value_parser = parse_rate_arg, conflicts_with = "ramp")]
    pub rate: Option<Rate>,
    /// How long to send (10s, 500ms, 2m, 1m30s).
    #[arg(long, value_parser = parse_duration_arg, default_value = "10s", conflicts_with = "ramp")]
    pub duration: Duration,
    /// A changing rate: TIME:RATE breakpoints joined linearly, from 0s; the last time ends the
    /// run. E.g. 0s:50,30s:500,60s:500.
    #[arg(long, value_parser = parse_ramp_arg)]
    pub ramp: Option<Schedule>,
    /// Open model: connections opened before the first request (the pool grows beyond them when
    /// responses are slow, up to --max-in-flight). Closed model: concurrent connections.
    #[arg(long, short = 'c', default_value_t = 8)]
    pub connections: usize,
    /// Open model: most requests outstanding at once. A request planned while all are taken waits
    /// (that wait counts in its latency) and times out after --timeout.
    #[arg(long, default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Per-request timeout, connect included.
    #[arg(long, value_parser = parse_duration_arg, default_value = "5s")]
    pub timeout: Duration,
    /// Extra request header, "Name: value" (repeatable).
    #[arg(long = "header", short = 'H', value_parser = parse_header_arg)]
    pub headers: Vec<(String, String)>,
    /// Stop after this many requests.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Response header naming the backend that answered.
    #[arg(long, default_value = "X-Seaworthy-Backend")]
    pub backend_header: String,
    /// Response header naming the app version.
    #[arg(long, default_value = "X-Seaworthy-Version")]
    pub version_header: String,
    /// Timeline bucket width.
    #[arg(long, value_parser = parse_duration_arg, default_value = "1s")]
    pub bucket: Duration,
    /// Write the full summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Exit 0 even if requests failed.
    #[arg(long)]
    pub allow_failures: bool,
    /// Close a connection after this many requests (its last one carries `Connection: close`) and
    /// go on with another. Default: unlimited, as wrk, vegeta, Fortio and oha do. Behind a
    /// per-connection balancer (kube-proxy, IPVS, an L4 load balancer) a small number spreads the
    /// load over the backends.
    #[arg(long, value_name = "N", conflicts_with = "no_keepalive")]
    pub max_requests_per_connection: Option<u32>,
    /// A connection at least this old (1s, 500ms) serves its next request as its last, with
    /// `Connection: close`. Default: no limit.
    #[arg(long, value_name = "DUR", value_parser = parse_duration_arg, conflicts_with = "no_keepalive")]
    pub connection_max_age: Option<Duration>,
    /// Close a connection idle this long (1s, 500ms) instead of reusing it. Keep it below the
    /// server's keep-alive timeout: a request sent just as the server closes an idle connection is
    /// cut like one whose server died, and counts as failed. Default: no limit.
    #[arg(long, value_name = "DUR", value_parser = parse_duration_arg, conflicts_with = "no_keepalive")]
    pub connection_max_idle: Option<Duration>,
    /// A new connection for every request (`Connection: close` on each).
    #[arg(long)]
    pub no_keepalive: bool,
    /// Count a request whose reused connection was found closed before the request was written
    /// as a failure, instead of sending it once more on a new connection. (A request that was
    /// written and then cut is always a failure, never sent again.)
    #[arg(long)]
    pub no_retry: bool,
    /// No progress line and no human summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn parse_rate_arg(s: &str) -> Result<Rate, String> {
    parse_rate(s).map_err(|e| format!("{e:#}"))
}

fn parse_duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| format!("{e:#}"))
}

fn parse_ramp_arg(s: &str) -> Result<Schedule, String> {
    parse_ramp(s).map_err(|e| format!("{e:#}"))
}

fn parse_header_arg(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once(':').ok_or_else(|| format!("`{s}` is not a header: write \"Name: value\""))?;
    let k = k.trim();
    hyper::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("`{k}` is not a valid header name"))?;
    hyper::header::HeaderValue::from_str(v.trim()).map_err(|_| format!("the value of header `{k}` is not valid"))?;
    Ok((k.to_string(), v.trim().to_string()))
}

impl LoadArgs {
    /// The library config these flags describe; errors are the user's (bad flags).
    pub fn to_config(&self) -> anyhow::Result<LoadConfig> {
        let mut cfg = match (&self.ramp, self.rate) {
            (Some(ramp), _) => LoadConfig::open(&self.url, ramp.clone()),
            (None, Some(Rate::PerSecond(r))) => LoadConfig::constant(&self.url, r, self.duration)?,
            (None, Some(Rate::Max)) => LoadConfig::closed(&self.url, self.connections, Some(self.duration)),
            (None, None) => anyhow::bail!("give --rate N (requests per second), --rate max, or --ramp"),
        };
        if self.duration.is_zero() && self.ramp.is_none() {
            anyhow::bail!("--duration must be more than 0");
        }
        if self.bucket < Duration::from_millis(1) {
            anyhow::bail!("--bucket must be at least 1ms");
        }
        cfg.connections = self.connections;
        cfg.max_in_flight = self.max_in_flight;
        cfg.timeout = self.timeout;
        cfg.headers = self.headers.clone();
        cfg.backend_header = self.backend_header.clone();
        cfg.version_header = self.version_header.clone();
        cfg.max_requests = self.requests;
        cfg.retry_closed_idle = !self.no_retry;
        cfg.connection = if self.no_keepalive {
            ConnectionPolicy::NO_KEEPALIVE
        } else {
            ConnectionPolicy {
                max_requests: self.max_requests_per_connection,
                max_age: self.connection_max_age,
                max_idle: self.connection_max_idle,
            }
        };
        cfg.validate()?;
        super::engine::Target::check(&self.url)?;
        if let Mode::Open(s) = &cfg.mode
            && s.planned_count() == 0
        {
            anyhow::bail!("this rate and duration plan no request at all");
        }
        Ok(cfg)
    }
}

/// Run `seaworthy load`; returns the exit code (see [`LoadArgs`]).
pub async fn run_cli(args: LoadArgs) -> anyhow::Result<i32> {
    let cfg = match args.to_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(2);
        }
    };
    let load = match Load::start(cfg.clone()).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(1);
        }
    };
    let handle = load.handle();
    let ctrl_c = tokio::spawn({
        let handle = handle.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: no new requests; waiting for those in flight");
                handle.stop();
            }
        }
    });
    let ticker = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
        let handle = handle.clone();
        let b = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let p = handle.progress();
                let secs = handle.elapsed().as_secs_f64().max(1e-3);
                b.set_message(format!(
                    "{secs:.1}s  planned {}  ok {}  failed {}  in flight {}  ~{:.0} req/s",
                    p.planned,
                    p.ok,
                    p.failed,
                    p.in_flight,
                    (p.ok + p.failed) as f64 / secs
                ));
            }
        });
        (bar, task)
    });
    let report = load.finish().await;
    ctrl_c.abort();
    if let Some((bar, task)) = ticker {
        task.abort();
        bar.finish_and_clear();
    }
    let summary = report.summary(args.bucket);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if !args.quiet {
        print!("{}", summary.render());
    }
    Ok(verdict(&summary, &args))
}

fn verdict(s: &Summary, args: &LoadArgs) -> i32 {
    let allow_failures = args.allow_failures;
    if s.failed > 0 {
        if allow_failures {
            eprintln!("{} of {} requests failed (allowed by --allow-failures)", s.failed, s.planned);
        } else {
            eprintln!("error: {} of {} requests failed (use --allow-failures to exit 0 anyway)", s.failed, s.planned);
            return 1;
        }
    }
    if s.rate_held == Some(false) {
        eprintln!(
            "error: the planned rate was not held: achieved {:.1} req/s of {:.1} planned; requests left up to {:.1} ms \
             behind plan (p99 {:.1} ms). The machine or --max-in-flight ({}) could not keep up; \
             lower the rate or raise --max-in-flight.",
            s.achieved_rps, s.planned_rps, s.send_lateness_ms.max, s.send_lateness_ms.p99, args.max_in_flight
        );
        return if s.failed > 0 && !allow_failures { 1 } else { 3 };
    }
    0
}
