//! Reports of a run: the versioned JSON ([`RunReport`]), JUnit XML for CI viewers, one
//! self-contained HTML page with a timeline per traffic phase, and the comparison of a run with a
//! baseline. The JSON is the source; every other view can be re-made from it
//! (`seaworthy report render`).

pub mod cases;
pub mod compare;
pub mod html;
pub mod junit;
pub mod schema;
mod text;

pub use compare::{compare, Comparison, Incomparable, Row, Status, Thresholds};
pub use html::html;
pub use junit::{junit, junit_xml};
pub use schema::{ClusterSummary, Kind, RunReport, Totals, SCHEMA_VERSION};
