//! seaworthy: applies Kubernetes example stacks and proves with real traffic that they behave.

pub mod local;
pub mod stack;
