//! A policy's `rate_limit: { lease: auto | N | off }` (issue 21): read into its field, and a bad
//! value refused at its place in the file, with the closest name.

mod support;

use resilience_config::load_str;
use resilience_config::rate_limit::{Lease, RateLimitSpec};

fn section(body: &str) -> String {
    format!("policies:\n  api:\n    rate_limit: {{ {body} }}\n")
}

/// The one error of `body`: (column, message, hint). The section's values start at column 19 (a value after `lease: ` at 26).
fn error(body: &str) -> (usize, String, Option<String>) {
    support::one_error(&section(body))
}

fn lease(body: &str) -> Option<Lease> {
    let file = load_str(&section(body)).unwrap_or_else(|errors| panic!("{body}: {errors}"));
    file.policies["api"].rate_limit.expect("a section").lease
}

#[test]
fn each_form_is_read_and_auto_is_the_default() {
    assert_eq!(
        lease("calls: 5000, period: 1h, lease: auto"),
        Some(Lease::Auto)
    );
    assert_eq!(
        lease("calls: 5000, period: 1h, lease: off"),
        Some(Lease::Off)
    );
    assert_eq!(
        lease("calls: 5000, period: 1h, lease: 16"),
        Some(Lease::Max(16))
    );
    assert_eq!(lease("calls: 5000, period: 1h"), None);
    let file = load_str(&section("lease: 8")).expect("valid");
    let spec = file.policies["api"]
        .rate_limit
        .expect("a section")
        .apply(RateLimitSpec::new(10, std::time::Duration::from_secs(1)));
    assert_eq!(spec.lease, Lease::Max(8));
    assert_eq!(
        RateLimitSpec::new(10, std::time::Duration::from_secs(1)).lease,
        Lease::Auto
    );
}

#[test]
fn bad_values_are_refused_where_they_are() {
    assert_eq!(
        error("lease: aut"),
        (
            26,
            "unknown lease `aut`".to_string(),
            Some("did you mean `auto`?".to_string())
        )
    );
    assert_eq!(
        error("lease: 0"),
        (26, "`lease` must be at least 1, found 0".to_string(), None)
    );
    assert_eq!(
        error("lease: -3"),
        (26, "`lease` must be at least 1, found -3".to_string(), None)
    );
    assert_eq!(
        error("lease: 1.5"),
        (
            26,
            "`lease` must be a whole number, found `1.5`".to_string(),
            None
        )
    );
    assert_eq!(
        error("lease: true"),
        (
            26,
            "`lease` must be `auto`, `off` or a number of permits, found `true`".to_string(),
            None
        )
    );
    assert_eq!(
        error("leas: 4"),
        (
            19,
            "unknown `rate_limit` key `leas`".to_string(),
            Some("did you mean `lease`?".to_string())
        )
    );
}
