//! The duration syntax shared by the macros and YAML policies, humantime's: `"250ms"`, `"1.5s"`,
//! `"1m30s"`, `"5min"`, `"1h"`, `"2d"`.
//!
//! The macro crate reads `#[retry(base = "250ms")]` with [`parse_duration`] at compile time and
//! the YAML loader reads `base: 250ms` with it at load time, so a duration one accepts is
//! exactly one the other accepts, refused with the same words. It needs nothing beyond `std`,
//! so the proc-macro crate uses it without the `yaml` feature (and without tokio).

use std::fmt;
use std::time::Duration;

/// Why a duration string was refused by [`parse_duration`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    /// The string is empty (or only whitespace).
    Empty,
    /// The number part is missing or malformed (`"ms"`, `"1.2.3s"`, `"-5s"`).
    BadNumber,
    /// There is a number but no unit (`"10"`): a bare number is ambiguous.
    MissingUnit,
    /// The unit is not one of `ns`, `us`, `ms`, `s`, `m`, `h`, `d`, `w` (or their longer
    /// spellings: `sec`, `min`, `hours`, ...).
    UnknownUnit(String),
    /// The value does not fit in a [`Duration`]: more than [`MAX_DURATION_TEXT`].
    Overflow,
}

/// The longest duration there is ([`Duration::MAX`], whole seconds), as the messages write it.
pub const MAX_DURATION_TEXT: &str = "18446744073709551615s";

/// Significant digits read before the number is known to be too large: `Duration::MAX` is
/// under 2e28 ns, so 30 digits of any unit overflow. Bounding them keeps every step of the
/// arithmetic in `u128` and the time spent on a hostile string in nanoseconds.
const MAX_WHOLE_DIGITS: usize = 30;

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => f.write_str("the duration is empty"),
            DurationError::BadNumber => f.write_str("the number is malformed"),
            DurationError::MissingUnit => f.write_str("a unit is missing (`ms`, `s`, `m` or `h`)"),
            DurationError::UnknownUnit(unit) => write!(
                f,
                "unknown unit `{unit}` (expected `ns`, `us`, `ms`, `s`, `m`, `h` or `d`)"
            ),
            DurationError::Overflow => {
                write!(
                    f,
                    "the duration is too large: at most `{MAX_DURATION_TEXT}`"
                )
            }
        }
    }
}

impl std::error::Error for DurationError {}

/// A hint listing accepted examples, used in every duration error message.
pub const DURATION_EXAMPLES: &str = "expected e.g. `\"250ms\"`, `\"30s\"`, `\"1h\"`";

/// Parses a duration in humantime's syntax: one or more decimal numbers, each followed by a
/// unit, added up (`"1m30s"`, `"1h 30m"`).
///
/// Units, each with the spellings humantime accepts: `ns` (`nsec`, `nanos`), `us` (`µs`,
/// `usec`, `micros`), `ms` (`msec`, `millis`), `s` (`sec`, `secs`, `second`, `seconds`), `m`
/// (`min`, `mins`, `minute`, `minutes`), `h` (`hr`, `hrs`, `hour`, `hours`), `d` (`day`,
/// `days`), `w` (`week`, `weeks`). Months and years are refused: their length is not fixed.
/// A number may have a fraction (`"1.5s"`, which humantime itself refuses), computed exactly
/// in nanoseconds (digits past nanosecond precision are truncated). Zero is allowed.
/// Whitespace around the value, between parts and between number and unit is ignored.
/// Never panics: huge values are [`DurationError::Overflow`], and the time spent is linear in
/// the text.
///
/// ```
/// # mod resilience { pub use resilience_config::duration::parse_duration; }
/// use std::time::Duration;
/// use resilience::parse_duration;
///
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
/// assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
/// assert!(parse_duration("10x").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(split);
        let after = after.trim_start();
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        if number.is_empty() {
            return Err(DurationError::BadNumber);
        }
        total = total
            .checked_add(part_nanos(number, nanos_per(unit)?)?)
            .ok_or(DurationError::Overflow)?;
        rest = after.trim_start();
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    // The remainder is below 1e9 by construction, so it fits in a u32.
    let sub = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

/// The nanoseconds in one `unit`, in any spelling [`parse_duration`] accepts.
fn nanos_per(unit: &str) -> Result<u128, DurationError> {
    const SECOND: u128 = 1_000_000_000;
    Ok(match unit {
        "" => return Err(DurationError::MissingUnit),
        "ns" | "nsec" | "nanos" | "nanosecond" | "nanoseconds" => 1,
        "us" | "µs" | "usec" | "micros" | "microsecond" | "microseconds" => 1_000,
        "ms" | "msec" | "millis" | "millisecond" | "milliseconds" => 1_000_000,
        "s" | "sec" | "secs" | "second" | "seconds" => SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * SECOND,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600 * SECOND,
        "d" | "day" | "days" => 86_400 * SECOND,
        "w" | "week" | "weeks" => 604_800 * SECOND,
        other => return Err(DurationError::UnknownUnit(other.to_string())),
    })
}

/// One part's nanoseconds: the decimal `number` (digits and at most one point) times
/// `nanos_per_unit`.
fn part_nanos(number: &str, nanos_per_unit: u128) -> Result<u128, DurationError> {
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(DurationError::BadNumber);
    }
    // Leading zeros change nothing; past them, a long number is too large without reading it.
    let whole = whole.trim_start_matches('0');
    if whole.len() > MAX_WHOLE_DIGITS {
        return Err(DurationError::Overflow);
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| DurationError::Overflow)?
    };
    let mut nanos = whole
        .checked_mul(nanos_per_unit)
        .ok_or(DurationError::Overflow)?;
    // The fraction is scaled digit by digit so "0.1s" is exactly 100ms, not 99.999..ms; past
    // nanosecond precision the digits are dropped, so at most 15 of them are read.
    let mut scale = nanos_per_unit;
    for digit in fraction.bytes() {
        scale /= 10;
        if scale == 0 {
            break;
        }
        nanos = u128::from(digit - b'0')
            .checked_mul(scale)
            .and_then(|part| nanos.checked_add(part))
            .ok_or(DurationError::Overflow)?;
    }
    Ok(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        let cases = [
            ("250ms", Duration::from_millis(250)),
            ("1.5s", Duration::from_millis(1500)),
            ("10s", Duration::from_secs(10)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("0s", Duration::ZERO),
            ("0.1s", Duration::from_millis(100)),
            (".5s", Duration::from_millis(500)),
            ("7ns", Duration::from_nanos(7)),
            ("3us", Duration::from_micros(3)),
            (" 5 ms ", Duration::from_millis(5)),
            ("1.0000000001s", Duration::from_secs(1)),
            // humantime's forms
            ("1m30s", Duration::from_secs(90)),
            ("1h 30m", Duration::from_secs(5_400)),
            ("5min", Duration::from_secs(300)),
            ("1sec", Duration::from_secs(1)),
            ("2 seconds", Duration::from_secs(2)),
            ("2d", Duration::from_secs(172_800)),
            ("1w", Duration::from_secs(604_800)),
            ("3hrs 2mins 1s", Duration::from_secs(10_921)),
            ("1.5h", Duration::from_secs(5_400)),
            ("10µs", Duration::from_micros(10)),
            ("1s500ms", Duration::from_millis(1_500)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_malformed_values() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert_eq!(parse_duration("   "), Err(DurationError::Empty));
        assert_eq!(parse_duration("10"), Err(DurationError::MissingUnit));
        assert_eq!(parse_duration("ms"), Err(DurationError::BadNumber));
        assert_eq!(parse_duration("-5s"), Err(DurationError::BadNumber));
        assert_eq!(parse_duration("1.2.3s"), Err(DurationError::BadNumber));
        assert_eq!(parse_duration(".s"), Err(DurationError::BadNumber));
        assert_eq!(
            parse_duration("10x"),
            Err(DurationError::UnknownUnit("x".into()))
        );
        assert_eq!(
            parse_duration("5secs!"),
            Err(DurationError::UnknownUnit("secs!".into()))
        );
        // months and years have no fixed length
        assert_eq!(
            parse_duration("1M"),
            Err(DurationError::UnknownUnit("M".into()))
        );
        assert_eq!(
            parse_duration("1y"),
            Err(DurationError::UnknownUnit("y".into()))
        );
        // every part needs its unit
        assert_eq!(parse_duration("1m30"), Err(DurationError::MissingUnit));
        assert_eq!(parse_duration("1m s"), Err(DurationError::BadNumber));
        assert_eq!(
            parse_duration("1m-30s"),
            Err(DurationError::UnknownUnit("m-".into()))
        );
    }

    #[test]
    fn parts_that_add_up_past_the_largest_duration_overflow() {
        assert_eq!(
            parse_duration("18446744073709551615s 1s"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("30500568904944w"),
            Err(DurationError::Overflow)
        );
        let many = "1s".repeat(100_000);
        assert_eq!(parse_duration(&many), Ok(Duration::from_secs(100_000)));
    }

    #[test]
    fn huge_values_overflow_instead_of_panicking() {
        assert_eq!(
            parse_duration("99999999999999999999999999999999999999999h"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration("18446744073709551616s"),
            Err(DurationError::Overflow)
        );
        assert!(parse_duration("18446744073709551615s").is_ok());
        assert_eq!(
            parse_duration("18446744073709551615.999999999s"),
            Ok(Duration::MAX)
        );
        assert_eq!(
            parse_duration("18446744073709551616s")
                .unwrap_err()
                .to_string(),
            "the duration is too large: at most `18446744073709551615s`"
        );
    }

    /// The whole part times the unit fits in u128 but adding the fraction does not: this
    /// wrapped to 131.8 ms in release builds and panicked in debug builds.
    #[test]
    fn a_fraction_that_overflows_is_refused_in_every_unit() {
        for unit in ["ns", "us", "µs", "ms", "s", "m", "h", "d", "w"] {
            let per_unit = nanos_per(unit).expect("a unit");
            // The largest whole number whose product with the unit fits, then a fraction.
            let text = format!("{}.9{unit}", u128::MAX / per_unit);
            assert_eq!(
                parse_duration(&text),
                Err(DurationError::Overflow),
                "{text}"
            );
        }
        assert_eq!(
            parse_duration("340282366920938463463374607431.9s"),
            Err(DurationError::Overflow)
        );
        // Just past `Duration::MAX` in each unit.
        for text in [
            "18446744073709551616000000000ns",
            "18446744073709551616000000us",
            "18446744073709551616000ms",
            "307445734561825861m",
            "5124095576030432h",
        ] {
            assert_eq!(parse_duration(text), Err(DurationError::Overflow), "{text}");
        }
        assert!(parse_duration("307445734561825860m").is_ok());
        assert!(parse_duration("5124095576030431h").is_ok());
    }

    #[test]
    fn long_digit_strings_are_read_in_bounded_time() {
        let long = "9".repeat(1_000_000);
        let zeros = "0".repeat(1_000_000);
        let started = std::time::Instant::now();
        assert_eq!(
            parse_duration(&format!("{long}s")),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_duration(&format!("1.{long}s")),
            Ok(Duration::from_nanos(1_999_999_999))
        );
        assert_eq!(
            parse_duration(&format!("{zeros}1.5ms")),
            Ok(Duration::from_micros(1_500))
        );
        // Three scans of a megabyte each: milliseconds even in a debug build.
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
