//! What the section tests share.

use resilience_config::load_str;

/// The one error of the file `yaml`, on its line 3 (the section's): (column, message, hint).
pub(crate) fn one_error(yaml: &str) -> (usize, String, Option<String>) {
    let errors = load_str(yaml).expect_err("refused");
    assert_eq!(errors.len(), 1, "{errors}");
    let error = errors.into_iter().next().expect("one");
    assert_eq!(error.line, 3, "{error}");
    (error.column, error.message, error.hint)
}
