//! `seaworthy fixtures list|lint`.

use crate::stack::{Stack, StackError};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum FixturesCommand {
    /// Show the shipped stacks, their seeds, checks and negative-control variants.
    List,
    /// Validate stacks (names of shipped stacks, or paths of stack folders; default: all shipped).
    Lint {
        /// A shipped stack's name or the path of any folder with a stack.toml.
        stacks: Vec<String>,
    },
}

pub fn run(cmd: FixturesCommand) -> anyhow::Result<i32> {
    match cmd {
        FixturesCommand::List => list(),
        FixturesCommand::Lint { stacks } => lint(&stacks),
    }
}

fn list() -> anyhow::Result<i32> {
    let mut bad = 0;
    for dir in Stack::list()? {
        match Stack::load(&dir) {
            Ok(stack) => {
                let checks: Vec<String> = stack
                    .spec
                    .checks
                    .iter()
                    .map(|c| match &c.negative {
                        Some(n) => format!("{} (negative: {n})", c.name),
                        None => c.name.clone(),
                    })
                    .collect();
                println!("{:<10} seed {}  {}", stack.name(), stack.spec.seed, stack.spec.summary);
                println!("{:<10} checks: {}", "", checks.join(", "));
            }
            Err(e) => {
                bad += 1;
                println!("{:<10} INVALID: run `seaworthy fixtures lint {}`: {}", name_of(&dir), name_of(&dir), first_line(&e));
            }
        }
    }
    Ok(if bad > 0 { 1 } else { 0 })
}

fn lint(args: &[String]) -> anyhow::Result<i32> {
    let dirs: Vec<PathBuf> = if args.is_empty() {
        Stack::list()?
    } else {
        args.iter().map(|a| resolve(a)).collect::<anyhow::Result<_>>()?
    };
    let mut failed = 0;
    for dir in &dirs {
        match lint_one(dir) {
            Ok(summary) => println!("ok      {}: {summary}", name_of(dir)),
            Err(errors) => {
                failed += 1;
                println!("FAILED  {}", name_of(dir));
                for e in errors {
                    println!("{e}");
                }
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} stack(s) failed lint; nothing was applied anywhere.", dirs.len());
        return Ok(1);
    }
    Ok(0)
}

/// Load the stack and render every variant; all problems of all of them are reported.
fn lint_one(dir: &Path) -> Result<String, Vec<StackError>> {
    let stack = Stack::load(dir).map_err(|e| vec![e])?;
    let errors: Vec<StackError> = stack.spec.variants.keys().filter_map(|v| stack.variant(v).err()).collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(format!("{} objects, {} images, {} checks, {} variants", stack.objects.len(), stack.spec.images.len(), stack.spec.checks.len(), stack.spec.variants.len()))
}

/// A path to a folder with stack.toml, else the name of a shipped stack.
fn resolve(arg: &str) -> anyhow::Result<PathBuf> {
    let path = Path::new(arg);
    if path.join("stack.toml").is_file() {
        return Ok(path.to_path_buf());
    }
    if path.is_dir() {
        anyhow::bail!("{arg} has no stack.toml: a stack folder holds stack.toml and manifests/ (see fixtures/README.md)");
    }
    let shipped = Stack::fixtures_dir().join(arg);
    if shipped.join("stack.toml").is_file() {
        return Ok(shipped);
    }
    let names: Vec<String> = Stack::list()?.iter().map(|p| name_of(p)).collect();
    anyhow::bail!("{arg:?} is neither a stack folder nor a shipped stack ({})", names.join(", "))
}

fn name_of(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string())
}

fn first_line(e: &StackError) -> String {
    e.to_string().lines().nth(1).unwrap_or_default().trim().to_string()
}
