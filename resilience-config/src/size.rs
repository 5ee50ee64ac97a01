//! The byte-size syntax of `max_bytes`, shared by `#[cached]` and YAML policies: a number of
//! bytes (`65536`), or a number and a unit, with or without a space between: `"64MiB"`,
//! `"1.5 GB"`, `"512KiB"`, `"100B"`.
//!
//! Units: `B`; decimal `KB`, `MB`, `GB`, `TB` (powers of 1000); binary `KiB`, `MiB`, `GiB`,
//! `TiB` (powers of 1024), in any letter case. One decimal fraction is allowed and applied
//! with integer arithmetic (`1.5KiB` is exactly 1536 bytes; a fraction of a byte rounds
//! down); a size past `u64::MAX` bytes is an error, never a wrapped number. Written by hand
//! rather than taken from a crate so that the macro crate's use of this crate stays free of
//! dependencies, as for durations.

/// The units, each with its multiplier.
const UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

/// The longest text read: a size is a few characters; a megabyte of digits is an attack.
const MAX_LEN: usize = 64;

/// Parses a byte size (see the module's syntax).
///
/// ```
/// use resilience_config::size::parse_bytes;
///
/// assert_eq!(parse_bytes("64MiB"), Ok(64 * 1024 * 1024));
/// assert_eq!(parse_bytes("1.5 kb"), Ok(1_500));
/// assert!(parse_bytes("12 parsecs").is_err());
/// ```
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let hint = "a size such as \"64MiB\", \"10 MB\" or \"4096\" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)";
    if text.len() > MAX_LEN {
        return Err(format!("a size of {} characters is not {hint}", text.len()));
    }
    let text = text.trim();
    let digits = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let unit = unit.trim_start().to_ascii_lowercase();
    let multiplier = if unit.is_empty() {
        1
    } else {
        UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, multiplier)| *multiplier)
            .ok_or_else(|| format!("unknown unit in {text:?}: expected {hint}"))?
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty()) {
        return Err(format!("{text:?} is not {hint}"));
    }
    let too_big = || format!("{text:?} is more bytes than fit in 64 bits");
    let whole: u64 = whole.parse().map_err(|_| too_big())?;
    let mut bytes = whole.checked_mul(multiplier).ok_or_else(too_big)?;
    if !fraction.is_empty() {
        // 18 digits keep the product below 2^128 for any unit; later digits are far below a
        // byte.
        let kept = &fraction[..fraction.len().min(18)];
        let scale = 10u128.pow(u32::try_from(kept.len()).unwrap_or(18));
        let numerator: u128 = kept.parse().map_err(|_| too_big())?;
        let part = numerator * u128::from(multiplier) / scale;
        bytes = bytes
            .checked_add(u64::try_from(part).map_err(|_| too_big())?)
            .ok_or_else(too_big)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("100B"), Ok(100));
        assert_eq!(parse_bytes("64MiB"), Ok(67_108_864));
        assert_eq!(parse_bytes("64 mib"), Ok(67_108_864));
        assert_eq!(parse_bytes("10 MB"), Ok(10_000_000));
        assert_eq!(parse_bytes("1.5KiB"), Ok(1536));
        assert_eq!(parse_bytes("0.5 b"), Ok(0));
        assert_eq!(parse_bytes("2TiB"), Ok(2 << 40));
        assert_eq!(parse_bytes("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "",
            "MiB",
            "1..5MiB",
            "1.MiB",
            ".5MiB",
            "1.2.3B",
            "-1",
            "12 parsecs",
            "1e3",
            "5 MiBs",
            "18446744073709551616",
            "17000000TiB",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_bytes(&"9".repeat(1000)).is_err());
        assert_eq!(
            parse_bytes("12 parsecs"),
            Err("unknown unit in \"12 parsecs\": expected a size such as \"64MiB\", \"10 MB\" or \"4096\" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)".to_string())
        );
    }
}
