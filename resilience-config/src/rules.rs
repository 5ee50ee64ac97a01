//! The value rules of every policy key, written once: the keys each attribute accepts, the
//! names accepted for a value, the range of each number, and the "did you mean" hint.
//!
//! The macro crate checks `#[retry(jitter = 1.5)]` with these functions at compile time, the
//! YAML loader checks `jitter: 1.5` with them at load time, and the runtime checks a spec built
//! in code with them, so a value is refused with the same words wherever it is written. Each
//! check returns the value as its field stores it, or the message a user reads (lower-case,
//! code in backticks, the value found). Like [`duration`](crate::duration), this module needs
//! nothing beyond `std` and is there without the `yaml` feature.
//!
//! ```
//! use resilience_config::rules;
//!
//! assert_eq!(rules::check_jitter(0.2), Ok(0.2));
//! assert_eq!(
//!     rules::check_jitter(1.5),
//!     Err("`jitter` must be between 0.0 and 1.0, found 1.5".to_string())
//! );
//! assert_eq!(rules::did_you_mean("attemps", rules::RETRY_KEYS), Some("attempts"));
//! ```

use crate::keys::{self, Place, names};

/// Keys of `#[retry(...)]` and of a YAML policy's `retry` section.
pub const RETRY_KEYS: &[&str] = names!(keys::RETRY, Place::Attribute);

/// Keys of `#[rate_limited(...)]` and of a YAML policy's `rate_limit` section (`key` is
/// macro-only: an expression over the arguments; `cost` is an expression over the arguments
/// in the macro and a constant in YAML).
pub const RATE_LIMIT_KEYS: &[&str] = names!(keys::RATE_LIMIT, Place::Attribute);

/// Keys of `#[bulkhead(...)]` and of a YAML policy's `bulkhead` section.
pub const BULKHEAD_KEYS: &[&str] = names!(keys::BULKHEAD, Place::Attribute);

/// Names accepted for a rate limit's `mode`.
pub const LIMIT_MODE_NAMES: &[&str] = &["wait", "reject"];

/// The names of every attribute of the crate, which stack on one function.
pub const ATTRIBUTE_NAMES: &[&str] = &[
    "cached",
    "retry",
    "rate_limited",
    "bulkhead",
    "circuit_breaker",
    "timeout",
    "hedge",
    "resilient",
];

/// Keys of `#[resilient(...)]`: the policy and the sections, in the pipeline's order.
pub const RESILIENT_KEYS: &[&str] = names!(keys::POLICY, Place::Attribute);

/// Keys of `#[circuit_breaker(...)]` and of a YAML policy's `circuit_breaker` section
/// (`failure_if` is macro-only: a function path).
pub const CIRCUIT_BREAKER_KEYS: &[&str] = names!(keys::CIRCUIT_BREAKER, Place::Attribute);

/// Keys of `#[hedge(...)]` and of a YAML policy's `hedge` section (`idempotent` and `budget`
/// are the attribute's own).
pub const HEDGE_KEYS: &[&str] = names!(keys::HEDGE, Place::Attribute);

/// Keys of `#[timeout(...)]` (also written `#[timeout("3s")]`).
pub const TIMEOUT_KEYS: &[&str] = names!(keys::TIMEOUT, Place::Attribute);

/// Keys of `#[cached(...)]` and of a YAML policy's `cache` section (`key` is macro-only, an
/// expression over the arguments; `enabled` is YAML-only, a run-time switch).
pub const CACHE_KEYS: &[&str] = names!(keys::CACHE, Place::Attribute);

/// Names accepted for a circuit breaker's `window_type`.
pub const WINDOW_TYPE_NAMES: &[&str] = &["count", "time"];

/// Keys of a YAML policy's `cache` section that `#[cached(...)]` refuses: `enabled` (a run-time
/// switch) and `http` (the HTTP middleware's response cache, meaningless on a function).
pub const CACHE_YAML_ONLY: &[&str] = names!(keys::CACHE, Place::YamlOnly);

/// Names accepted for `backoff`.
pub const BACKOFF_NAMES: &[&str] = &["exp", "linear", "constant"];

/// Names accepted for `jitter` besides a fraction.
pub const JITTER_NAMES: &[&str] = &["full", "equal", "decorrelated"];

/// Error kinds accepted in `on` besides status codes and classes.
pub const ERROR_KIND_NAMES: &[&str] = &["Timeout", "Connect", "Body", "Transient"];

/// Status classes accepted in `on`.
pub const STATUS_CLASS_NAMES: &[&str] = &["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The status codes in the default retryable set besides Timeout and Connect.
pub const TRANSIENT_STATUSES: &[u16] = &[429, 502, 503, 504];

/// `attempts` counts the first try, so it must be at least 1.
pub fn check_attempts(value: u64) -> Result<u32, String> {
    if value == 0 {
        return Err("`attempts` must be at least 1 (it counts the first try), found 0".to_string());
    }
    u32::try_from(value)
        .map_err(|_| format!("`attempts` must be at most {}, found {value}", u32::MAX))
}

/// A count that must be at least 1 (`calls`, `max_concurrent`).
pub fn check_count(key: &str, value: u64) -> Result<u32, String> {
    if value == 0 {
        return Err(format!("`{key}` must be at least 1, found 0"));
    }
    u32::try_from(value).map_err(|_| format!("`{key}` must be at most {}, found {value}", u32::MAX))
}

/// A count that may be zero (`burst`).
pub fn check_u32(key: &str, value: u64) -> Result<u32, String> {
    u32::try_from(value).map_err(|_| format!("`{key}` must be at most {}, found {value}", u32::MAX))
}

/// The most permits a rate limit can admit per period: `calls + burst`, both `u32`.
pub const MAX_CAPACITY: u64 = 2 * u32::MAX as u64;

/// A constant `cost` (a macro literal, a YAML value) takes at least one permit, and no more
/// than any limit can admit per period.
pub fn check_cost(value: u64) -> Result<u64, String> {
    if value == 0 {
        return Err(
            "`cost` must be at least 1, found 0 (a call that takes no permit needs no rate limit)"
                .to_string(),
        );
    }
    if value > MAX_CAPACITY {
        return Err(format!(
            "`cost` must be at most {MAX_CAPACITY} (the most `calls + burst` can be), found {value}"
        ));
    }
    Ok(value)
}

/// A constant `cost` fits what `calls` and `burst` admit per period.
pub fn check_cost_fits(cost: u64, calls: u32, burst: u32) -> Result<u64, String> {
    let capacity = u64::from(calls) + u64::from(burst);
    if cost > capacity {
        return Err(format!(
            "a call costing {cost} permits can never be admitted: `calls + burst` is {capacity}, the most one `period` admits; lower `cost`, or raise `calls` or `burst`"
        ));
    }
    Ok(cost)
}

/// A window length is longer than zero (`period`).
pub fn check_period(value: std::time::Duration) -> Result<std::time::Duration, String> {
    if value.is_zero() {
        Err("`period` must be longer than zero".to_string())
    } else {
        Ok(value)
    }
}

/// A jitter fraction is between 0.0 and 1.0.
pub fn check_jitter(value: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "`jitter` must be between 0.0 and 1.0, found {value:?}"
        ))
    }
}

/// A fraction key other than `jitter` (`ttl_jitter`, `failure_rate`) is between 0.0 and 1.0.
pub fn check_fraction(key: &str, value: f64) -> Result<f64, String> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "`{key}` must be between 0.0 and 1.0, found {value:?}"
        ))
    }
}

/// `max` of a hedge: 1 to [`HedgeSpec::MAX_ATTEMPTS`](crate::hedge::HedgeSpec::MAX_ATTEMPTS)
/// attempts at once.
pub fn check_hedge_max(value: u64) -> Result<u32, String> {
    match u32::try_from(value) {
        Ok(max) if (1..=crate::hedge::HedgeSpec::MAX_ATTEMPTS).contains(&max) => Ok(max),
        _ => Err(format!(
            "`max` must be between 1 and {}, found {value}",
            crate::hedge::HedgeSpec::MAX_ATTEMPTS
        )),
    }
}

/// The exponential growth factor is finite and at least 1.0 (a shrinking backoff is a bug).
pub fn check_factor(value: f64) -> Result<f64, String> {
    check_growth("factor", value)
}

/// A growth factor (`factor`, a breaker's `backoff`) is finite and at least 1.0.
pub fn check_growth(key: &str, value: f64) -> Result<f64, String> {
    if (1.0..=1e6).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "`{key}` must be between 1.0 and 1000000.0, found {value:?}"
        ))
    }
}

/// A breaker's `max_open_for` caps a growing `open_for`, so it is at least `open_for`.
pub fn check_max_open_for(
    open_for: std::time::Duration,
    max_open_for: std::time::Duration,
) -> Result<std::time::Duration, String> {
    if max_open_for < open_for {
        Err(format!(
            "`max_open_for` ({max_open_for:?}) cannot be less than `open_for` ({open_for:?})"
        ))
    } else {
        Ok(max_open_for)
    }
}

/// `max_bytes` is at least one byte.
pub fn check_max_bytes(value: u64) -> Result<u64, String> {
    if value >= 1 {
        Ok(value)
    } else {
        Err("`max_bytes` must be at least 1 byte, found 0".to_string())
    }
}

/// `early_refresh` (XFetch's `beta`) is between 0.0 (off) and 100.0: past that, a value
/// would be refreshed a hundred load times before it expires, which is a shorter `ttl`.
pub fn check_early_refresh(value: f64) -> Result<f64, String> {
    if (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "`early_refresh` must be between 0.0 (off) and 100.0 (1.0 is the usual choice), found {value:?}"
        ))
    }
}

/// An HTTP status code is in 100..=599.
pub fn check_status(value: u64) -> Result<u16, String> {
    if (100..=599).contains(&value) {
        Ok(value as u16)
    } else {
        Err(format!(
            "HTTP status code must be between 100 and 599, found {value}"
        ))
    }
}

/// A status class name (`"5xx"`) gives its hundreds digit.
pub fn status_class(name: &str) -> Option<u16> {
    STATUS_CLASS_NAMES
        .iter()
        .position(|known| *known == name)
        .map(|index| index as u16 + 1)
}

/// The known name closest to `unknown`, for a "did you mean" hint.
///
/// Uses the optimal string alignment distance; a name counts as close when at most a third of
/// its letters (and at least one) differ, or when one name contains the other, ignoring case.
pub fn did_you_mean<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    // The distance table is the product of the two lengths: no key is this long, and an
    // eight-megabyte one would cost gigabytes to compare.
    const MAX_COMPARED: usize = 64;
    if unknown.len() > MAX_COMPARED {
        return None;
    }
    let unknown_lower = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|candidate| {
            (
                distance(&unknown_lower, &candidate.to_ascii_lowercase()),
                *candidate,
            )
        })
        .filter(|(d, candidate)| {
            *d <= (candidate.len() / 3).max(1)
                || (unknown.len() >= 3 && candidate.to_ascii_lowercase().contains(&unknown_lower))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_value_table() {
        assert_eq!(check_attempts(1), Ok(1));
        assert!(check_attempts(0).is_err());
        assert!(check_attempts(u64::MAX).is_err());
        assert_eq!(check_jitter(0.0), Ok(0.0));
        assert_eq!(check_jitter(1.0), Ok(1.0));
        assert!(check_jitter(1.5).is_err());
        assert!(check_jitter(-0.1).is_err());
        assert!(check_jitter(f64::NAN).is_err());
        assert_eq!(check_factor(2.0), Ok(2.0));
        assert!(check_factor(0.5).is_err());
        assert!(check_factor(f64::INFINITY).is_err());
        assert_eq!(check_status(503), Ok(503));
        assert!(check_status(99).is_err());
        assert!(check_status(600).is_err());
        assert_eq!(status_class("5xx"), Some(5));
        assert_eq!(status_class("6xx"), None);
        assert_eq!(check_count("calls", 20), Ok(20));
        assert!(check_count("calls", 0).is_err());
        assert!(check_count("calls", u64::MAX).is_err());
        assert_eq!(check_u32("burst", 0), Ok(0));
        assert!(check_period(std::time::Duration::ZERO).is_err());
    }

    #[test]
    fn hints_the_closest_name() {
        assert_eq!(did_you_mean("attemps", RETRY_KEYS), Some("attempts"));
        assert_eq!(did_you_mean("max_dealy", RETRY_KEYS), Some("max_delay"));
        assert_eq!(did_you_mean("expo", BACKOFF_NAMES), Some("exp"));
        assert_eq!(did_you_mean("Timeot", ERROR_KIND_NAMES), Some("Timeout"));
        assert_eq!(did_you_mean("timeout", ERROR_KIND_NAMES), Some("Timeout"));
        assert_eq!(did_you_mean("zzzzzz", RETRY_KEYS), None);
        // Long names are not compared: the table would be their length times each name's.
        assert_eq!(did_you_mean(&"attempts".repeat(100), RETRY_KEYS), None);
    }
}
