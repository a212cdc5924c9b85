//! `hpa-scale` (shared/STACKS.md).

use super::{CheckContext, Verdict};

pub async fn run(_ctx: &CheckContext) -> anyhow::Result<Verdict> {
    Ok(Verdict::skipped("check hpa-scale is not built yet"))
}
