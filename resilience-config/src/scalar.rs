//! A YAML scalar and the checks that turn it into a field's value, with the words a user
//! reads when it is refused.
//!
//! Each value rule itself is in [`rules`](crate::rules) and [`duration`](crate::duration),
//! shared with the macros; these checks add what only YAML needs (the type YAML gave a value,
//! a duration written without a unit). The key tables ([`keys`](crate::keys)) name one check
//! per YAML key.

// Without `yaml` the key tables still name these checks (a table is one list, whatever reads
// it), but nothing runs them.
#![cfg_attr(not(feature = "yaml"), allow(dead_code))]

use std::fmt;
use std::time::Duration;

use crate::backend::{BackendName, OnBackendError};
use crate::breaker::WindowType;
use crate::duration::{DurationError, MAX_DURATION_TEXT, parse_duration};
use crate::hedge::HedgeAfter;
use crate::rate_limit::{Lease, LimitMode};
use crate::retry::{Backoff, Jitter, RetryOn};
use crate::rules;
use crate::schema::ON_BACKEND_ERROR_NAMES;

/// A check's verdict on a bad value: the message and an optional hint.
pub(crate) struct Problem(pub(crate) String, pub(crate) Option<String>);

impl Problem {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Problem(message.into(), None)
    }

    pub(crate) fn hint(mut self, hint: Option<String>) -> Self {
        self.1 = hint;
        self
    }
}

/// Text a user wrote, shortened for a message: a key or value of a megabyte would otherwise
/// be copied into every message and path that names it.
pub(crate) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    const MAX_SHOWN: usize = 64;
    match text.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()).into(),
        None => text.into(),
    }
}

pub(crate) fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A scalar as YAML typed it.
#[derive(Clone, Copy)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Null => f.write_str("nothing"),
            Scalar::Bool(b) => write!(f, "`{b}`"),
            Scalar::Int(n) => write!(f, "`{n}`"),
            Scalar::Float(x) => write!(f, "`{x}`"),
            Scalar::Str(s) => write!(f, "`{}`", shown(s)),
        }
    }
}

/// A whole number, in u64; a negative one is refused as below `minimum`.
fn whole(key: &str, scalar: Scalar<'_>, minimum: u64) -> Result<u64, Problem> {
    match scalar {
        Scalar::Int(n) if n < 0 => Err(Problem::new(format!(
            "`{key}` must be at least {minimum}, found {n}"
        ))),
        Scalar::Int(n) => {
            u64::try_from(n).map_err(|_| Problem::new(format!("`{key}` is too large, found {n}")))
        }
        Scalar::Float(x) => Err(Problem::new(format!(
            "`{key}` must be a whole number, found `{x}`"
        ))),
        other => Err(Problem::new(format!(
            "`{key}` must be a number, found {other}"
        ))),
    }
}

/// A whole number checked by `rule`, which refuses 0: a negative one is refused in the rule's
/// own words, with the value as written.
fn at_least_one<T>(
    key: &str,
    scalar: Scalar<'_>,
    rule: fn(u64) -> Result<T, String>,
) -> Result<T, Problem> {
    if let Scalar::Int(n) = scalar {
        if n < 0 {
            let message = rule(0).err().unwrap_or_default();
            return Err(Problem::new(
                message.replace("found 0", &format!("found {n}")),
            ));
        }
    }
    rule(whole(key, scalar, 1)?).map_err(Problem::new)
}

/// `attempts`: at least 1, the first try counted.
pub(crate) fn attempts(key: &str, scalar: Scalar<'_>) -> Result<u32, Problem> {
    at_least_one(key, scalar, rules::check_attempts)
}

/// At least 1 (`calls`, `max_concurrent`, `min_calls`, ...).
pub(crate) fn count(key: &str, scalar: Scalar<'_>) -> Result<u32, Problem> {
    rules::check_count(key, whole(key, scalar, 1)?).map_err(Problem::new)
}

/// A constant cost: at least 1 permit, at most what a limit can admit per period.
pub(crate) fn cost(key: &str, scalar: Scalar<'_>) -> Result<u64, Problem> {
    at_least_one(key, scalar, rules::check_cost)
}

/// At least 0 (`burst`).
pub(crate) fn any_count(key: &str, scalar: Scalar<'_>) -> Result<u32, Problem> {
    rules::check_u32(key, whole(key, scalar, 0)?).map_err(Problem::new)
}

fn number(key: &str, scalar: Scalar<'_>) -> Result<f64, Problem> {
    match scalar {
        Scalar::Int(n) => Ok(n as f64),
        Scalar::Float(x) => Ok(x),
        other => Err(Problem::new(format!(
            "`{key}` must be a number, found {other}"
        ))),
    }
}

pub(crate) fn fraction(key: &str, scalar: Scalar<'_>) -> Result<f64, Problem> {
    rules::check_fraction(key, number(key, scalar)?).map_err(Problem::new)
}

/// A byte size (`65536`, `"64MiB"`; see [`crate::size`]) of at least one byte, or nothing.
pub(crate) fn optional_bytes(key: &str, scalar: Scalar<'_>) -> Result<Option<u64>, Problem> {
    let bytes = match scalar {
        Scalar::Null => return Ok(None),
        Scalar::Int(n) => u64::try_from(n).map_err(|_| {
            Problem::new(format!(
                "`{key}` must be a size of at least 1 byte, found {n}"
            ))
        })?,
        Scalar::Str(text) => crate::size::parse_bytes(text)
            .map_err(|message| Problem::new(format!("`{key}`: {message}")))?,
        other => {
            return Err(Problem::new(format!(
                "`{key}` must be a size in bytes (a number, or a string such as \"64MiB\"), found {other}"
            )));
        }
    };
    rules::check_max_bytes(bytes)
        .map(Some)
        .map_err(Problem::new)
}

pub(crate) fn early_refresh(key: &str, scalar: Scalar<'_>) -> Result<f64, Problem> {
    rules::check_early_refresh(number(key, scalar)?).map_err(Problem::new)
}

pub(crate) fn factor(key: &str, scalar: Scalar<'_>) -> Result<f64, Problem> {
    rules::check_factor(number(key, scalar)?).map_err(Problem::new)
}

/// A growth factor of at least 1.0 under its own key (a breaker's `backoff`).
pub(crate) fn growth(key: &str, scalar: Scalar<'_>) -> Result<f64, Problem> {
    rules::check_growth(key, number(key, scalar)?).map_err(Problem::new)
}

pub(crate) fn boolean(key: &str, scalar: Scalar<'_>) -> Result<bool, Problem> {
    match scalar {
        Scalar::Bool(b) => Ok(b),
        other => Err(Problem::new(format!(
            "`{key}` must be `true` or `false`, found {other}"
        ))),
    }
}

pub(crate) fn duration(key: &str, scalar: Scalar<'_>) -> Result<Duration, Problem> {
    match scalar {
        Scalar::Str(text) => parse_duration(text).map_err(|error| match error {
            DurationError::Overflow => Problem::new(format!(
                "duration `{}` for `{key}` is too large: at most `{MAX_DURATION_TEXT}`",
                shown(text)
            )),
            error => Problem::new(format!(
                "invalid duration `{}` for `{key}`: {error}",
                shown(text)
            ))
            .hint(Some("expected e.g. `250ms`, `30s`, `2m`, `1h`".to_string())),
        }),
        Scalar::Int(n) => Err(Problem::new(format!(
            "`{key}` needs a unit: `{n}` alone is ambiguous"
        ))
        .hint(Some(format!("write `{n}s` or `{n}ms`")))),
        other => Err(
            Problem::new(format!("`{key}` must be a duration, found {other}"))
                .hint(Some("expected e.g. `250ms`, `30s`, `2m`, `1h`".to_string())),
        ),
    }
}

/// A duration, or nothing (`~`) to remove a limit the attribute sets.
pub(crate) fn optional_duration(
    key: &str,
    scalar: Scalar<'_>,
) -> Result<Option<Duration>, Problem> {
    match scalar {
        Scalar::Null => Ok(None),
        other => duration(key, other).map(Some),
    }
}

/// A duration longer than zero (`period`, `timeout`, `open_for`, `window`).
pub(crate) fn positive(key: &str, scalar: Scalar<'_>) -> Result<Duration, Problem> {
    let value = duration(key, scalar)?;
    if value.is_zero() {
        return Err(Problem::new(format!("`{key}` must be longer than zero")));
    }
    Ok(value)
}

/// A duration longer than zero, or nothing (`~`) to remove one the attribute sets
/// (`slow_call`, `max_open_for`).
pub(crate) fn optional_positive(
    key: &str,
    scalar: Scalar<'_>,
) -> Result<Option<Duration>, Problem> {
    match scalar {
        Scalar::Null => Ok(None),
        other => positive(key, other).map(Some),
    }
}

/// A name from `names`, with a hint for a near miss.
fn name<'n>(
    key: &str,
    what: &str,
    names: &[&'n str],
    scalar: Scalar<'_>,
) -> Result<&'n str, Problem> {
    let text = match scalar {
        Scalar::Str(text) => text,
        other => {
            return Err(Problem::new(format!(
                "`{key}` must be one of {}, found {other}",
                list(names)
            )));
        }
    };
    if let Some(found) = names.iter().find(|known| **known == text) {
        return Ok(found);
    }
    let hint = match rules::did_you_mean(text, names) {
        Some(meant) => format!("did you mean `{meant}`?"),
        None => format!("expected one of {}", list(names)),
    };
    Err(Problem::new(format!("unknown {what} `{text}`")).hint(Some(hint)))
}

/// A hedge's `after`: `p50` to `p99`, or a duration longer than zero.
pub(crate) fn hedge_after(key: &str, scalar: Scalar<'_>) -> Result<HedgeAfter, Problem> {
    if let Scalar::Str(text) = scalar {
        if let Some(after) = HedgeAfter::percentile(text) {
            return Ok(after);
        }
        if text.starts_with('p') {
            return Err(Problem::new(format!(
                "`{key}` percentile `{}` is out of range",
                shown(text)
            ))
            .hint(Some(
                "expected `p50` to `p99`, or a duration such as `100ms`".to_string(),
            )));
        }
    }
    positive(key, scalar).map(HedgeAfter::Delay)
}

/// A hedge's `max`: attempts at once, 1 to 10.
pub(crate) fn hedge_max(key: &str, scalar: Scalar<'_>) -> Result<u32, Problem> {
    let value = any_count(key, scalar)?;
    rules::check_hedge_max(u64::from(value)).map_err(Problem::new)
}

pub(crate) fn backoff(key: &str, scalar: Scalar<'_>) -> Result<Backoff, Problem> {
    let name = name(key, "backoff", rules::BACKOFF_NAMES, scalar)?;
    Ok(Backoff::from_name(name).unwrap_or_default())
}

pub(crate) fn mode(key: &str, scalar: Scalar<'_>) -> Result<LimitMode, Problem> {
    let name = name(key, "mode", rules::LIMIT_MODE_NAMES, scalar)?;
    Ok(LimitMode::from_name(name).unwrap_or_default())
}

/// A rate limit's `lease`: `auto`, `off`, or the most permits a lease holds (at least 1).
pub(crate) fn lease(key: &str, scalar: Scalar<'_>) -> Result<Lease, Problem> {
    if let Scalar::Int(_) | Scalar::Float(_) = scalar {
        return count(key, scalar).map(Lease::Max);
    }
    let names = ["auto", "off"];
    match scalar {
        Scalar::Str(_) => Ok(match name(key, "lease", &names, scalar)? {
            "off" => Lease::Off,
            _ => Lease::Auto,
        }),
        other => Err(Problem::new(format!(
            "`{key}` must be `auto`, `off` or a number of permits, found {other}"
        ))),
    }
}

pub(crate) fn window_type(key: &str, scalar: Scalar<'_>) -> Result<WindowType, Problem> {
    let name = name(key, "window type", rules::WINDOW_TYPE_NAMES, scalar)?;
    Ok(WindowType::from_name(name).unwrap_or_default())
}

pub(crate) fn jitter(key: &str, scalar: Scalar<'_>) -> Result<Jitter, Problem> {
    match scalar {
        Scalar::Int(_) | Scalar::Float(_) => rules::check_jitter(number(key, scalar)?)
            .map(Jitter::Fraction)
            .map_err(Problem::new),
        _ => {
            let name = name(key, "jitter", rules::JITTER_NAMES, scalar)?;
            Ok(Jitter::from_name(name).unwrap_or_default())
        }
    }
}

/// The set of one status code.
fn status(code: u16) -> RetryOn {
    RetryOn::NONE.status(code)
}

/// One item of `on`, as the set of the errors it names.
pub(crate) fn on_item(_: &str, scalar: Scalar<'_>) -> Result<RetryOn, Problem> {
    let text = match scalar {
        Scalar::Int(code) => {
            // Out of u64 (negative, huge): the rule's words with the value as written.
            return match u64::try_from(code) {
                Ok(code) => rules::check_status(code).map(status),
                Err(_) => rules::check_status(0)
                    .map(status)
                    .map_err(|message| message.replace("found 0", &format!("found {code}"))),
            }
            .map_err(Problem::new);
        }
        Scalar::Str(text) => text,
        other => {
            return Err(Problem::new(format!(
                "`on` takes error kinds (`Timeout`, `Connect`, `Body`, `Transient`), status codes and classes (`5xx`), found {other}"
            )));
        }
    };
    match text {
        "Timeout" => return Ok(RetryOn::NONE.timeout()),
        "Connect" => return Ok(RetryOn::NONE.connect()),
        "Body" => return Ok(RetryOn::NONE.body()),
        "Transient" => return Ok(RetryOn::NONE.transient()),
        _ => {}
    }
    if let Some(hundreds) = rules::status_class(text) {
        return Ok(RetryOn::NONE.class(hundreds));
    }
    if let Ok(code) = text.parse::<u64>() {
        return rules::check_status(code).map(status).map_err(Problem::new);
    }
    let known: Vec<&str> = rules::ERROR_KIND_NAMES
        .iter()
        .chain(rules::STATUS_CLASS_NAMES)
        .copied()
        .collect();
    let hint = match rules::did_you_mean(text, &known) {
        Some(meant) => format!("did you mean `{meant}`?"),
        None => {
            "expected `Timeout`, `Connect`, `Body`, `Transient`, a status code (`503`) or a class (`5xx`)"
                .to_string()
        }
    };
    Err(Problem::new(format!("unknown error kind `{text}` in `on`")).hint(Some(hint)))
}

pub(crate) fn backend(key: &str, scalar: Scalar<'_>) -> Result<BackendName, Problem> {
    match scalar {
        Scalar::Str("memory") => Ok(BackendName::Memory),
        Scalar::Str(url) if url.starts_with("redis://") || url.starts_with("redis+unix://") => {
            check_redis_url(key, url)?;
            Ok(BackendName::Redis(url.to_string()))
        }
        Scalar::Str(url) if url.starts_with(crate::backend::CLUSTER_SCHEME) => {
            let Some(nodes) = crate::backend::cluster_nodes(url) else {
                return Err(Problem::new(format!(
                    "`{key}` `{}` names no node of the cluster",
                    shown(url)
                ))
                .hint(Some(
                    "expected e.g. `redis+cluster://10.0.0.1:6379,10.0.0.2:6379`".to_string(),
                )));
            };
            for node in &nodes {
                check_redis_url(key, node)?;
            }
            Ok(BackendName::Redis(url.to_string()))
        }
        Scalar::Str(url) if url.starts_with("rediss://") => Err(Problem::new(format!(
            "`{key}` `{url}` asks for TLS, which this build does not support"
        ))
        .hint(Some(
            "use `redis://` (on a trusted network or through a TLS tunnel)".to_string(),
        ))),
        other => Err(Problem::new(format!("unknown `{key}` {other}")).hint(Some(
            "expected `memory` or a Redis URL such as `redis://127.0.0.1:6379/0`".to_string(),
        ))),
    }
}

/// A Redis URL the runtime can connect with: read by the redis crate's own parser, so that a
/// URL it would refuse on every call (each call then falling back) is refused here, in place.
#[cfg(feature = "redis")]
fn check_redis_url(key: &str, text: &str) -> Result<(), Problem> {
    let refused = |reason: &str| {
        Problem::new(format!(
            "`{key}` `{}` is not a valid Redis URL: {reason}",
            shown(text)
        ))
        .hint(Some(
            "expected e.g. `redis://127.0.0.1:6379/0` or `redis+unix:///run/redis.sock`"
                .to_string(),
        ))
    };
    let url = url::Url::parse(text).map_err(|error| refused(&error.to_string()))?;
    redis::IntoConnectionInfo::into_connection_info(url)
        .map(drop)
        .map_err(|error| {
            // "Missing hostname - InvalidClientConfig": the reason without the error's kind.
            let reason = error.to_string();
            let reason = reason.split(" - ").next().unwrap_or_default();
            refused(&reason.to_ascii_lowercase())
        })
}

/// Without the Redis backend compiled in, the URL is not read (the policy runs in memory).
#[cfg(not(feature = "redis"))]
fn check_redis_url(_: &str, _: &str) -> Result<(), Problem> {
    Ok(())
}

pub(crate) fn on_backend_error(key: &str, scalar: Scalar<'_>) -> Result<OnBackendError, Problem> {
    Ok(match name(key, key, ON_BACKEND_ERROR_NAMES, scalar)? {
        "deny" => OnBackendError::Deny,
        "local" => OnBackendError::Local,
        _ => OnBackendError::Allow,
    })
}

/// `key_prefix`: any string but one whose first `{` closes at once (`{}`): Redis Cluster
/// hashes a key by what is between its first `{` and the next `}` unless that is empty, so an
/// empty pair first would hide the policy's own `{policy}` tag and scatter the keys one script
/// uses together over slots.
pub(crate) fn key_prefix(key: &str, scalar: Scalar<'_>) -> Result<String, Problem> {
    let prefix = text(key, scalar)?;
    if prefix
        .find('{')
        .is_some_and(|open| prefix[open + 1..].starts_with('}'))
    {
        return Err(Problem::new(format!(
            "`{key}` must not start a hash tag with an empty `{{}}`, found {prefix:?}"
        ))
        .hint(Some(
            "Redis Cluster would then hash whole keys and split a policy's keys over slots;              drop the `{}` or put something between the braces"
                .to_string(),
        )));
    }
    Ok(prefix)
}

pub(crate) fn text(key: &str, scalar: Scalar<'_>) -> Result<String, Problem> {
    match scalar {
        Scalar::Str(text) => Ok(text.to_string()),
        other => Err(Problem::new(format!(
            "`{key}` must be a string, found {other}"
        ))),
    }
}
