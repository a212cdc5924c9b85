//! `insufficient-resources` (shared/STACKS.md).

use super::{CheckContext, Verdict};

pub async fn run(_ctx: &CheckContext) -> anyhow::Result<Verdict> {
    Ok(Verdict::skipped("check insufficient-resources is not built yet"))
}
