//! `config-override` (shared/STACKS.md).

use super::{CheckContext, Verdict};

pub async fn run(_ctx: &CheckContext) -> anyhow::Result<Verdict> {
    Ok(Verdict::skipped("check config-override is not built yet"))
}
