//! seaworthy: applies Kubernetes example stacks and proves with real traffic that they behave.

pub mod apply;
pub mod cli;
pub mod cluster;
pub mod images;
pub mod local;
pub mod observe;
pub mod stack;
pub mod traffic;
pub mod wait;
