//! [`InvalidValue`]: a policy value outside its rule, as a spec's `validate` reports it.

use std::fmt;

/// A policy value outside its rule (`attempts >= 1`, `jitter` in 0.0..=1.0, ...), in the words
/// the attribute and YAML use for it.
///
/// ```
/// # use resilience_config as resilience;
/// use resilience::retry::{Jitter, RetrySpec};
///
/// let error = RetrySpec::DEFAULT.jitter(Jitter::Fraction(1.5)).validate().unwrap_err();
/// assert_eq!(error.to_string(), "`jitter` must be between 0.0 and 1.0, found 1.5");
/// assert_eq!(error, "`jitter` must be between 0.0 and 1.0, found 1.5");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    message: String,
}

impl InvalidValue {
    /// The value's problem, as the rule words it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

// The value rules (`rules.rs`) word their problems as strings, which the macro crate turns
// into spanned errors; a spec's `validate` wraps the same words.
impl From<String> for InvalidValue {
    fn from(message: String) -> Self {
        InvalidValue { message }
    }
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InvalidValue {}

impl PartialEq<str> for InvalidValue {
    fn eq(&self, other: &str) -> bool {
        self.message == other
    }
}

impl PartialEq<&str> for InvalidValue {
    fn eq(&self, other: &&str) -> bool {
        self.message == *other
    }
}
