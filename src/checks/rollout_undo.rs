//! `rollout-undo` (shared/STACKS.md).

use super::{CheckContext, Verdict};

pub async fn run(_ctx: &CheckContext) -> anyhow::Result<Verdict> {
    Ok(Verdict::skipped("check rollout-undo is not built yet"))
}
