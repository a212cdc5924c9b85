//! The built-in load generator and its recording.
//!
//! Open model ([`LoadConfig::constant`], [`LoadConfig::open`] with a ramp): requests leave at
//! planned instants whatever the server does, over a pool of keep-alive connections that grows
//! (up to `max_in_flight`) while responses are slow, so a stalled backend does not slow the
//! schedule. Latency counts from the planned time (coordinated omission corrected); the service
//! time from the actual send is kept too. Closed model ([`LoadConfig::closed`], `--rate max`):
//! N connections, each sending as soon as its previous response ended.
//!
//! Every request leaves one 24-byte [`Record`]: planned offset, latency, service time, outcome
//! (status or failure kind), and which backend and version answered (indices into interned
//! tables of the response headers' values). [`Summary`] derives counts, rates, percentiles, a
//! timeline and per-backend first/last seen from the records.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use seaworthy::traffic::{Load, LoadConfig};
//! use std::time::Duration;
//! let load = Load::start(LoadConfig::constant("http://127.0.0.1:8080/", 200.0, Duration::from_secs(30))?).await?;
//! // ... roll out a new version meanwhile ...
//! let report = load.finish().await;
//! let summary = report.summary(Duration::from_secs(1));
//! assert_eq!(summary.failed, 0);
//! # Ok(()) }
//! ```

pub mod cli;
mod engine;
mod record;
mod schedule;
mod summary;

pub use engine::{ConnectionPolicy, Load, LoadConfig, LoadHandle, Mode, Progress, Report, Target};
pub use record::{flags, FailureKind, Interner, Outcome, Record, RecordLog};
pub use schedule::{parse_duration, parse_ramp, parse_rate, Offsets, Rate, Schedule};
pub use summary::{Bucket, Percentiles, Seen, Summary, SCHEMA_VERSION};
