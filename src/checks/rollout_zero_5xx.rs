//! `rollout-zero-5xx` (shared/STACKS.md).

use super::{CheckContext, Verdict};

pub async fn run(_ctx: &CheckContext) -> anyhow::Result<Verdict> {
    Ok(Verdict::skipped("check rollout-zero-5xx is not built yet"))
}
