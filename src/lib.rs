//! seaworthy: applies Kubernetes example stacks and proves with real traffic that they behave.

pub mod apply;
pub mod checks;
pub mod cleanup;
pub mod cli;
pub mod cluster;
pub mod evidence;
pub mod images;
pub mod local;
#[cfg(test)]
mod mockapi;
pub mod observe;
pub mod report;
pub mod run;
#[cfg(test)]
pub(crate) mod samples;
pub mod stack;
pub mod traffic;
pub mod wait;
