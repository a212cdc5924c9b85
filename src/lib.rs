//! seaworthy: applies Kubernetes example stacks and proves with real traffic that they behave.

pub mod cli;
pub mod local;
pub mod stack;
pub mod wait;
