//! seaworthy: applies Kubernetes example stacks and proves with real traffic that they behave.

pub mod cli;
pub mod cluster;
pub mod local;
pub mod stack;
pub mod traffic;
pub mod wait;
