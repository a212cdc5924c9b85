//! What is wrong with a stack, said so that the user can find the line to change.

use std::fmt;
use std::path::PathBuf;

/// One problem, located by file, document (1-based, as editors count), object and field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub doc: Option<usize>,
    /// `Kind name` of the object, when the document got that far.
    pub object: Option<String>,
    /// JSON path inside the object or stack.toml, e.g. `spec.template.spec.containers[0].image`.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", shown(&self.file))?;
        if let Some(doc) = self.doc {
            write!(f, ": document {doc}")?;
        }
        if let Some(object) = &self.object {
            write!(f, " ({object})")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Paths relative to the working directory read better and still open in an editor.
fn shown(path: &std::path::Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(|p| p.display().to_string()))
        .unwrap_or_else(|| path.display().to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("{}: {source}", shown(path))]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} problem(s) in stack {stack}:\n{}", problems.len(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid { stack: String, problems: Vec<Problem> },
}

impl StackError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            StackError::Invalid { problems, .. } => problems,
            StackError::Io { .. } => &[],
        }
    }
}
