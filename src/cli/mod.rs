//! The command line: argument types and dispatch. Each command's work lives in the library
//! module that owns its idea; this only connects them.

pub mod cluster;
mod fixtures;
pub mod images;
pub mod report;
pub mod run;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "seaworthy", version, about = "Prove Kubernetes example stacks behave, with real traffic")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or reuse a local test cluster (kind, k3d, or check an existing context).
    Up(cluster::UpArgs),
    /// Delete the cluster seaworthy created, or (--runs) the namespaces of earlier runs.
    Down(cluster::DownArgs),
    /// Apply stacks to the cluster and run their checks.
    Run(run::RunArgs),
    /// Send constant-rate HTTP load to a URL and report honest latency.
    Load(crate::traffic::cli::LoadArgs),
    /// Render, or compare, run reports.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Build and save the fixture images.
    #[command(subcommand)]
    Images(images::ImagesCommand),
    /// List and validate the example stacks.
    #[command(subcommand)]
    Fixtures(fixtures::FixturesCommand),
    /// Every check (or one) with its stack.toml params: type, default, meaning.
    Checks {
        /// A check's name, e.g. pdb-drain.
        name: Option<String>,
    },
    /// Print the JSON Schema of stack.toml (shipped as stack.schema.json; editors use it through
    /// a `#:schema` line).
    Schema,
}

/// Run the parsed command; the result is the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Fixtures(cmd) => fixtures::run(cmd),
        Command::Up(args) => cluster::up(args),
        Command::Down(args) => cluster::down(args),
        Command::Run(args) => run::run(args),
        Command::Load(args) => tokio::runtime::Runtime::new()?.block_on(crate::traffic::cli::run_cli(args)),
        Command::Report(cmd) => report::run(cmd),
        Command::Images(cmd) => images::run(cmd),
        Command::Checks { name } => match crate::checks::params::render_docs(name.as_deref()) {
            Ok(text) => {
                print!("{text}");
                Ok(0)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(2)
            }
        },
        Command::Schema => {
            println!("{}", crate::checks::params::stack_schema_text());
            Ok(0)
        }
    }
}
