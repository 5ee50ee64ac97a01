//! A structure-aware YAML mutation fuzzer with a budget per document: a fixed-seed run of
//! mutated policy files (lines deleted, duplicated and swapped, scalars changed to extreme
//! values, anchors and aliases inserted) and of the hostile shapes found by the adversarial run
//! (overflowing numbers and durations, deep nesting, alias fan-out, long keys). Each document
//! loads, or is refused with errors that all have a place; none panics; each takes less than
//! the time budget and allocates less than the byte budget.
//!
//! Bytes are counted by a counting allocator (every byte allocated during the load, an upper
//! bound of its peak), so the documents run one after the other in a single test.

use std::alloc::System;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use resilience_config::{MAX_DOCUMENT_BYTES, load_str};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Documents per run, one in 25 of the hostile shapes: about ten seconds in a debug build.
const DOCUMENTS: usize = 10_000;

/// One load, in a debug build on a busy two-core machine (milliseconds in a release build).
const TIME_BUDGET: Duration = Duration::from_secs(1);

/// One load's allocations, in all: the largest file allowed takes about 7 MB.
const BYTES_BUDGET: usize = 16 << 20;

/// Every section and most keys, block style and flow style.
const VALID: &str = "\
policies:
  user-api:
    retry:
      attempts: 5
      backoff: exp
      base: 200ms
      factor: 2.5
      max_delay: 10s
      max_elapsed: ~
      jitter: 0.2
      on:
        - Timeout
        - 503
        - 5xx
      retry_after: true
    rate_limit: { calls: 50, period: 1s, burst: 3, mode: wait, max_wait: 5s, cost: 2 }
    cache:
      enabled: true
      ttl: 60s
      ttl_jitter: 0.1
      max_entries: 10000
      negative_ttl: 5s
      stale_while_revalidate: 30s
    circuit_breaker: { failure_rate: 0.5, min_calls: 10, window: 20, open_for: 30s, half_open_calls: 2 }
    timeout: 3s
    bulkhead: { max_concurrent: 20, max_wait: 1s }
    alert: { retry_rate: 0.2, window: 5m }
    backend: memory
    backend_timeout: 50ms
    on_backend_error: allow
    key_prefix: 'svc:'
  search:
    retry: { attempts: 2, jitter: full, on: [Timeout, 429] }
";

/// Scalars at and past the edges of every rule.
const EXTREMES: &[&str] = &[
    "340282366920938463463374607431.9s",
    "340282366920938463463374607431768.9us",
    "340282366920938463463374.9ms",
    "5670477755589421057722.9m",
    "94507962593157017628.9h",
    "18446744073709551616s",
    "18446744073709551615.999999999s",
    "99999999999999999999999999999999999999999999999999",
    "-99999999999999999999999",
    "4294967296",
    "4294967295",
    "18446744073709551616",
    "-1",
    "0",
    "0s",
    "1e400",
    "-1e400",
    ".nan",
    ".inf",
    "-.inf",
    "1.7976931348623157e308",
    "5e-324",
    "0x7FFFFFFFFFFFFFFF",
    "0o777",
    "~",
    "''",
    "\"\\u0000\"",
    "!tag 5",
    "!!str 5s",
    "[]",
    "{}",
    "[[[[1]]]]",
    "redis://[::1",
    "redis://h:99999",
    "/abc",
    "rediss://h",
];

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// The byte ranges of every value written after `key: ` (to the line's end, `,` or `}`).
fn value_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    for (at, _) in text.match_indices(": ") {
        let start = at + 2;
        let end = bytes[start..]
            .iter()
            .position(|b| matches!(b, b',' | b'}' | b'\n'))
            .map_or(text.len(), |n| start + n);
        if end > start && !matches!(bytes[start], b'{' | b'[') {
            spans.push((start, end));
        }
    }
    spans
}

/// One mutation of `text`, chosen by `rng`.
fn mutate(rng: &mut StdRng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return text.to_string();
    }
    let line = rng.random_range(0..lines.len());
    match rng.random_range(0..9) {
        0 => {
            lines.remove(line);
        }
        1 => {
            let copy = lines[line].clone();
            let to = rng.random_range(0..=lines.len());
            lines.insert(to, copy);
        }
        2 => {
            let other = rng.random_range(0..lines.len());
            lines.swap(line, other);
        }
        3 | 4 => {
            // A scalar becomes an extreme value.
            let joined = lines.join("\n");
            let spans = value_spans(&joined);
            if spans.is_empty() {
                return joined;
            }
            let (start, end) = spans[rng.random_range(0..spans.len())];
            return format!(
                "{}{}{}",
                &joined[..start],
                pick(rng, EXTREMES),
                &joined[end..]
            );
        }
        5 => {
            // An anchor on one value, an alias in place of another.
            let joined = lines.join("\n");
            let spans = value_spans(&joined);
            if spans.len() < 2 {
                return joined;
            }
            let a = spans[rng.random_range(0..spans.len())];
            let b = spans[rng.random_range(0..spans.len())];
            let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
            if first == second {
                return joined;
            }
            return format!(
                "{}&x {}*x{}",
                &joined[..first.0],
                &joined[first.0..second.0],
                &joined[second.1..]
            );
        }
        6 => {
            // Indentation changed.
            let trimmed = lines[line].trim_start().to_string();
            lines[line] = format!("{}{trimmed}", " ".repeat(rng.random_range(0..10)));
        }
        7 => {
            // A character dropped in.
            let chars = [
                ":", "-", "[", "{", "]", "}", ",", "#", "'", "\"", "|", ">", "&a", "*a", "\t", "? ",
            ];
            let at = rng.random_range(0..=lines[line].len());
            if lines[line].is_char_boundary(at) {
                lines[line].insert_str(at, pick(rng, &chars));
            }
        }
        _ => {
            // A key renamed to a near miss or a long name.
            let joined = lines.join("\n");
            let keys: Vec<usize> = joined.match_indices(": ").map(|(at, _)| at).collect();
            if keys.is_empty() {
                return joined;
            }
            let end = keys[rng.random_range(0..keys.len())];
            let start = joined[..end].rfind([' ', '{', ',']).map_or(0, |at| at + 1);
            let name = match rng.random_range(0..3) {
                0 => "attemps".to_string(),
                1 => "k".repeat(rng.random_range(60..1_100)),
                _ => "retry_if".to_string(),
            };
            return format!("{}{name}{}", &joined[..start], &joined[end..]);
        }
    }
    let mut joined = lines.join("\n");
    joined.push('\n');
    joined
}

/// The hostile shapes, each generated at a size chosen by `rng`.
fn hostile(rng: &mut StdRng) -> String {
    match rng.random_range(0..6) {
        0 => {
            let depth = rng.random_range(20..60_000);
            let open = pick(rng, &["[", "{a: ", "[{b: "]);
            format!("policies: {}{}\n", open.repeat(depth), "]".repeat(depth))
        }
        1 => {
            let items = rng.random_range(100..12_000);
            let policies = rng.random_range(2..4_000);
            let mut text = format!(
                "policies:\n  0: {{retry: {{on: &a [{}]}}}}\n",
                vec!["503"; items].join(",")
            );
            for n in 1..policies {
                text.push_str(&format!("  {n}: {{retry: {{on: *a}}}}\n"));
            }
            text
        }
        2 => {
            // Nested anchors: each level names the previous one twice.
            let mut text = String::from("x: &l0 [503, 503]\n");
            let levels = rng.random_range(2..40);
            for level in 1..levels {
                text.push_str(&format!(
                    "y{level}: &l{level} [*l{}, *l{}]\n",
                    level - 1,
                    level - 1
                ));
            }
            text.push_str(&format!(
                "policies:\n  a:\n    retry: {{ on: *l{} }}\n",
                levels - 1
            ));
            text
        }
        3 => {
            let key = "k".repeat(rng.random_range(1_000..(MAX_DOCUMENT_BYTES * 3)));
            format!("policies:\n  p:\n    retry: {{ {key}: 5 }}\n")
        }
        4 => {
            // Many problems, one per policy.
            let mut text = String::from("policies:\n");
            for n in 0..rng.random_range(1..2_000) {
                let value = pick(rng, EXTREMES);
                text.push_str(&format!(
                    "  p{n}:\n    retry: {{ base: {value}, attempts: {value} }}\n"
                ));
            }
            text
        }
        _ => {
            let digits = "9".repeat(rng.random_range(1..200_000));
            let unit = pick(rng, &["ns", "us", "ms", "s", "m", "h"]);
            format!(
                "policies:\n  p:\n    timeout: 1.{digits}{unit}\n    cache: {{ ttl: {digits}.9{unit} }}\n"
            )
        }
    }
}

/// Loads `text` within the budgets: `Ok`, or errors that each have a message and a place.
fn check(text: &str) {
    let region = Region::new(GLOBAL);
    let started = Instant::now();
    let loaded = catch_unwind(AssertUnwindSafe(|| load_str(text)));
    let elapsed = started.elapsed();
    let bytes = region.change().bytes_allocated;
    let shown: String = text.chars().take(600).collect();
    let loaded = loaded.unwrap_or_else(|_| panic!("the load panicked on {shown:?}"));
    assert!(elapsed < TIME_BUDGET, "{elapsed:?} for {shown:?}");
    assert!(bytes < BYTES_BUDGET, "{bytes} bytes for {shown:?}");
    if let Err(errors) = loaded {
        assert!(!errors.is_empty() && errors.len() <= 20, "{shown:?}");
        for error in errors.errors() {
            assert!(!error.message.trim().is_empty(), "{shown:?}: {error}");
            assert!(
                error.line > 0 && error.column > 0,
                "no place for {shown:?}: {error}"
            );
        }
    }
}

#[test]
fn mutated_and_hostile_documents_load_or_are_refused_within_budget() {
    let file = load_str(VALID).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(
        file.policies.len(),
        2,
        "the file every document is mutated from is valid"
    );
    let mut rng = StdRng::seed_from_u64(0x5eed_1e55);
    let started = Instant::now();
    let (mut slowest, mut biggest) = (Duration::ZERO, 0);
    for n in 0..DOCUMENTS {
        let text = if n % 25 == 0 {
            hostile(&mut rng)
        } else {
            let mut text = VALID.to_string();
            for _ in 0..rng.random_range(1..=4) {
                text = mutate(&mut rng, &text);
            }
            text
        };
        let region = Region::new(GLOBAL);
        let one = Instant::now();
        check(&text);
        slowest = slowest.max(one.elapsed());
        biggest = biggest.max(region.change().bytes_allocated);
    }
    eprintln!(
        "{DOCUMENTS} documents in {:?}; the slowest took {slowest:?}, the largest allocated {biggest} bytes",
        started.elapsed()
    );
}
