//! A policy's `circuit_breaker` section with the breaker's extras (issue 20, point 4):
//! `window_type`, `backoff`, `max_open_for`, `slow_call`, `slow_call_rate`, read into their
//! fields, and each bad value refused at its place in the file with the macro's words.

mod support;

use std::time::Duration;

use resilience_config::breaker::{BreakerPatch, BreakerSpec, WindowType};
use resilience_config::load_str;

fn section(body: &str) -> String {
    format!("policies:\n  api:\n    circuit_breaker: {{ {body} }}\n")
}

/// The one error of `body`: (column, message, hint). The section's values start at column 24.
fn error(body: &str) -> (usize, String, Option<String>) {
    support::one_error(&section(body))
}

#[test]
fn the_extras_are_read_into_the_section() {
    let file = load_str(&section(
        "window: 60, window_type: time, open_for: 10s, backoff: 2.0, max_open_for: 5m, slow_call: 2s, slow_call_rate: 0.5",
    ))
    .expect("valid");
    let patch = file.policies["api"].circuit_breaker.expect("a section");
    let expected = BreakerPatch {
        window: Some(60),
        window_type: Some(WindowType::Time),
        open_for: Some(Duration::from_secs(10)),
        backoff: Some(2.0),
        max_open_for: Some(Some(Duration::from_secs(300))),
        slow_call: Some(Some(Duration::from_secs(2))),
        slow_call_rate: Some(0.5),
        ..BreakerPatch::default()
    };
    assert_eq!(patch, expected);
    let spec = patch.apply(BreakerSpec::OFF);
    assert_eq!(spec.window_type, WindowType::Time);
    assert!(spec.validate().is_ok());

    // `~` removes what the attribute set.
    let file = load_str(&section("slow_call: ~, max_open_for: ~")).expect("valid");
    let patch = file.policies["api"].circuit_breaker.expect("a section");
    assert_eq!(
        (patch.slow_call, patch.max_open_for),
        (Some(None), Some(None))
    );
}

#[test]
fn bad_values_are_refused_where_they_are() {
    assert_eq!(
        error("window_type: tim"),
        (
            37,
            "unknown window type `tim`".to_string(),
            Some("did you mean `time`?".to_string())
        )
    );
    assert_eq!(
        error("slow_call_rate: 1.5"),
        (
            40,
            "`slow_call_rate` must be between 0.0 and 1.0, found 1.5".to_string(),
            None
        )
    );
    assert_eq!(
        error("backoff: 0.5"),
        (
            33,
            "`backoff` must be between 1.0 and 1000000.0, found 0.5".to_string(),
            None
        )
    );
    assert_eq!(
        error("slow_call: 0s"),
        (35, "`slow_call` must be longer than zero".to_string(), None)
    );
    assert_eq!(
        error("max_open_for: 0s").1,
        "`max_open_for` must be longer than zero"
    );
}

#[test]
fn the_spec_rules_cover_what_no_single_key_can() {
    let spec = BreakerSpec::DEFAULT.max_open_for(Some(Duration::from_secs(10)));
    assert_eq!(
        spec.validate().map_err(|error| error.to_string()),
        Err("`max_open_for` (10s) cannot be less than `open_for` (30s)".to_string())
    );
    let spec = BreakerSpec::DEFAULT.slow_call(Some(Duration::ZERO));
    assert!(spec.validate().is_err());
    assert!(BreakerSpec::DEFAULT.backoff(f64::NAN).validate().is_err());
}
