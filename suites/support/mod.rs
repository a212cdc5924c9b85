//! What the suites share. A suite takes the whole folder (`mod support;`) and uses what it needs;
//! the rest is dead code in that binary, which each file allows.

pub mod backends;
pub mod cluster;
pub mod fs;
pub mod http;
pub mod php;
pub mod pod;
