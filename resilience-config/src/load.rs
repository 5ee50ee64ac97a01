//! Reading a policy file once.

use std::path::Path;

use crate::error::{ConfigError, ConfigErrors};
use crate::schema::PolicyFile;

/// Reads and checks the policy file at `path`. Every problem is reported, each with the file,
/// line, column and dotted path of the key.
pub fn load(path: impl AsRef<Path>) -> Result<PolicyFile, ConfigErrors> {
    let path = path.as_ref();
    let text = read(path)?;
    crate::validate::parse(&text, Some(path))
}

/// Reads and checks policies written as YAML text.
pub fn load_str(yaml: &str) -> Result<PolicyFile, ConfigErrors> {
    crate::validate::parse(yaml, None)
}

/// The file's text, or why it cannot be read, as a located error (with no line).
pub(crate) fn read(path: &Path) -> Result<String, ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|error| {
        ConfigErrors::new(vec![ConfigError {
            file: Some(path.to_path_buf()),
            line: 0,
            column: 0,
            path: String::new(),
            message: format!("cannot read the file: {error}"),
            hint: None,
        }])
    })?;
    String::from_utf8(bytes).map_err(|error| {
        ConfigErrors::new(vec![ConfigError {
            file: Some(path.to_path_buf()),
            line: 0,
            column: 0,
            path: String::new(),
            message: format!(
                "the file is not UTF-8 text (byte {})",
                error.utf8_error().valid_up_to()
            ),
            hint: None,
        }])
    })
}
