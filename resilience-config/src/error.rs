//! Errors a reader can act on: where (file, line, column), which key (the dotted path), what is
//! wrong, and a hint when one helps.

use std::fmt;
use std::path::PathBuf;

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when the YAML came from one.
    pub file: Option<PathBuf>,
    /// The line, from 1 (0 when the problem has no place, like a file that cannot be read).
    pub line: usize,
    /// The column, from 1 (0 when the problem has no place).
    pub column: usize,
    /// The dotted path of the offending key (`policies.user-api.retry.attemps`); empty for the
    /// document itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to write instead, when there is a likely answer (`did you mean `attempts`?`).
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    /// `file:line:column: path: message; hint`, the shape editors and terminals link.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self
            .file
            .as_ref()
            .map_or_else(|| "<yaml>".to_string(), |file| file.display().to_string());
        if self.line > 0 {
            write!(f, "{file}:{}:{}: ", self.line, self.column)?;
        } else {
            write!(f, "{file}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one policy file (at least one), in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn new(mut errors: Vec<ConfigError>) -> Self {
        errors.sort_by_key(|error| (error.line, error.column));
        ConfigErrors { errors }
    }

    /// The problems, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// The first problem.
    pub fn first(&self) -> Option<&ConfigError> {
        self.errors.first()
    }

    /// How many problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always `false`: there is at least one problem.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}
