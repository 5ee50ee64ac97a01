//! Every policy file has a budget: its size, the nesting of its collections and the values its
//! aliases expand to are bounded, and a file over any of them is refused in milliseconds with
//! an error that names the limit and its place. The four hostile files of the adversarial run
//! are generated here: before the limits they took 121 s, 20 s and 187 MB, 86 s, and 1.4 GB.
//!
//! The time bounds are wide (a debug build on a busy two-core machine); the figures they stand
//! for are in the messages. Bytes are counted by a counting allocator: every byte allocated
//! during the load, an upper bound of its peak. The tests take a lock, so one test's
//! allocations are not counted in another's.

use std::alloc::System;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use resilience_config::{
    ConfigErrors, MAX_DOCUMENT_BYTES, MAX_FLOW_DEPTH, MAX_VALUES, PolicyFile, load_str,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static SERIAL: Mutex<()> = Mutex::new(());

/// A refused load's bound in a debug build on a loaded machine; far below the figures above.
const TIME_BUDGET: Duration = Duration::from_secs(1);

/// "A few megabytes": what one load may allocate in all.
const BYTES_BUDGET: usize = 8 << 20;

/// Loads `yaml`, and how long that took and how many bytes it allocated.
fn measured(yaml: &str) -> (Result<PolicyFile, ConfigErrors>, Duration, usize) {
    let region = Region::new(GLOBAL);
    let started = Instant::now();
    let loaded = load_str(yaml);
    let elapsed = started.elapsed();
    let bytes = region.change().bytes_allocated;
    (loaded, elapsed, bytes)
}

/// The one error `yaml` is refused with, checked against the budget.
#[track_caller]
fn refused_within_budget(yaml: &str) -> resilience_config::ConfigError {
    let (loaded, elapsed, bytes) = measured(yaml);
    let errors = loaded.expect_err("the file should be refused");
    eprintln!(
        "{} bytes refused in {elapsed:?}, {bytes} bytes allocated: {}",
        yaml.len(),
        errors.first().map(ToString::to_string).unwrap_or_default()
    );
    assert!(elapsed < TIME_BUDGET, "{elapsed:?} to refuse:\n{errors}");
    assert!(bytes < BYTES_BUDGET, "{bytes} bytes allocated to refuse");
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.into_iter().next().expect("one error")
}

/// A policy whose value is nested lists: libyaml checks every open flow collection at each
/// token, so 200 KB of them (100,000 deep) took 121 s to parse. That file is over the size
/// limit now; half of it is refused by the nesting limit.
#[test]
fn a_deeply_nested_document_is_refused_before_parsing() {
    let _serial = SERIAL.lock();
    let depth = 50_000;
    let yaml = format!("policies: {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let error = refused_within_budget(&yaml);
    // The first bracket past the limit: `policies: ` is 10 columns.
    assert_eq!((error.line, error.column), (1, 11 + MAX_FLOW_DEPTH));
    assert_eq!(
        error.message,
        "collections nested more than 32 deep (`[ ]`, `{ }`), the limit of a policy file"
    );
    // Mappings count too, in any layout.
    let yaml = format!(
        "policies:\n  a:\n    retry: {}1{}\n",
        "{ on: ".repeat(depth / 10),
        "}".repeat(depth / 10)
    );
    let error = refused_within_budget(&yaml);
    assert_eq!((error.line, error.column), (3, 12 + 6 * MAX_FLOW_DEPTH));
}

/// One 10,000-item `on` list fanned out by aliases into 4,000 policies: 20 s and 187 MB, and
/// accepted. Here 2,500 policies (the file must fit the size limit): refused where the count
/// passes the limit.
#[test]
fn aliases_that_fan_out_are_refused_at_the_limit() {
    let _serial = SERIAL.lock();
    let mut yaml = format!(
        "policies:\n  0: {{retry: {{on: &codes [{}]}}}}\n",
        vec!["5xx"; 10_000].join(",")
    );
    for n in 1..2_500 {
        yaml.push_str(&format!("  {n}: {{retry: {{on: *codes}}}}\n"));
    }
    assert!(yaml.len() < MAX_DOCUMENT_BYTES, "{}", yaml.len());
    let error = refused_within_budget(&yaml);
    assert_eq!(
        error.message,
        format!("the file expands to more than {MAX_VALUES} values, the limit of a policy file")
    );
    // Read through the alias, the place is in the anchored list, where the count passed.
    assert_eq!(error.line, 2, "{error}");
    assert!(error.path.starts_with("policies.9.retry.on["), "{error}");
    assert!(
        error
            .hint
            .as_deref()
            .is_some_and(|hint| hint.contains("alias"))
    );
}

/// 43 KB with a mistake in every policy: each further error used to be found by reading the
/// whole file again (20 readings, 86 s with a costly document). One reading finds all 20.
#[test]
fn several_problems_are_found_in_one_reading() {
    let _serial = SERIAL.lock();
    let mut yaml = String::from("policies:\n");
    let mut n = 0;
    while yaml.len() < 43_000 {
        yaml.push_str(&format!(
            "  p{n}:\n    retry: {{ attempts: 0, attemps: 3, base: 10x, on: [Timeout, 700] }}\n    rate_limit: {{ calls: 5, period: 1s }}\n"
        ));
        n += 1;
    }
    let (loaded, elapsed, bytes) = measured(&yaml);
    let errors = loaded.expect_err("refused");
    eprintln!(
        "{} bytes, {} errors in {elapsed:?}, {bytes} bytes allocated",
        yaml.len(),
        errors.len()
    );
    assert_eq!(errors.len(), 20);
    let first: Vec<_> = errors
        .errors()
        .iter()
        .take(4)
        .map(|e| (e.line, e.column, e.path.as_str()))
        .collect();
    assert_eq!(
        first,
        [
            (3, 24, "policies.p0.retry.attempts"),
            (3, 27, "policies.p0.retry.attemps"),
            (3, 45, "policies.p0.retry.base"),
            (3, 64, "policies.p0.retry.on[1]"),
        ]
    );
    assert!(elapsed < TIME_BUDGET, "{elapsed:?}");
    assert!(bytes < BYTES_BUDGET, "{bytes} bytes");
}

/// An 8 MB unknown key cost 1.4 GB for its "did you mean" table. Past the size limit nothing is
/// parsed; under it, a long key is not compared with the known ones, and its messages show it
/// shortened.
#[test]
fn a_huge_key_is_refused_cheaply() {
    let _serial = SERIAL.lock();
    let key = "k".repeat(8 << 20);
    let yaml = format!("policies:\n  p:\n    retry: {{ {key}: 5 }}\n");
    let error = refused_within_budget(&yaml);
    assert_eq!(
        error.message,
        format!(
            "the file is {} bytes, over the limit of {MAX_DOCUMENT_BYTES} bytes (128 KiB)",
            yaml.len()
        )
    );
    // The place where the file passes the limit.
    assert_eq!(
        (error.line, error.column),
        (3, MAX_DOCUMENT_BYTES - "policies:\n  p:\n".len() + 1)
    );

    // YAML's longest implicit key is 1024 characters.
    let key = "k".repeat(1_000);
    let yaml = format!("policies:\n  p:\n    retry: {{ {key}: 5 }}\n");
    let error = refused_within_budget(&yaml);
    assert_eq!((error.line, error.column), (3, 14));
    assert!(
        error.message.starts_with("unknown `retry` key `kkkk"),
        "{error}"
    );
    assert!(error.to_string().len() < 1_000, "{error}");
    assert_eq!(
        error.hint.as_deref(),
        Some(
            "expected one of `attempts`, `backoff`, `base`, `factor`, `max_delay`, `max_elapsed`, `jitter`, `on`, `retry_after`"
        )
    );
}

/// Files near each limit still load: the limits leave room for any real policy file.
#[test]
fn a_good_file_near_the_limits_loads() {
    let _serial = SERIAL.lock();
    let mut yaml = String::from("policies:\n");
    let mut n = 0;
    let policy = |n: usize| {
        format!(
            "  p{n}:\n    retry: {{ attempts: 5, base: 200ms, on: [Timeout, 503] }}\n    rate_limit: {{ calls: 50, period: 1s }}\n"
        )
    };
    while yaml.len() + policy(n).len() <= MAX_DOCUMENT_BYTES {
        yaml.push_str(&policy(n));
        n += 1;
    }
    let (loaded, elapsed, bytes) = measured(&yaml);
    let file = loaded.unwrap_or_else(|errors| panic!("{errors}"));
    eprintln!(
        "{} bytes, {} policies loaded in {elapsed:?}, {bytes} bytes allocated",
        yaml.len(),
        file.policies.len()
    );
    assert_eq!(file.policies.len(), n);
    assert!(elapsed < TIME_BUDGET, "{elapsed:?}");

    // Aliases that stay under the value limit.
    let items: Vec<String> = (0..1_000).map(|i| (100 + i % 500).to_string()).collect();
    let mut yaml = format!(
        "policies:\n  p0:\n    retry: {{ on: &codes [{}] }}\n",
        items.join(", ")
    );
    for n in 1..90 {
        yaml.push_str(&format!("  p{n}:\n    retry: {{ on: *codes }}\n"));
    }
    let file = load_str(&yaml).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(file.policies.len(), 90);

    // Nesting at the limit: the brackets are in quoted values and comments, or balanced.
    let yaml = format!(
        "policies:\n  a:\n    key_prefix: '{}'  # {}\n    retry: {{ on: [Timeout] }}\n",
        "[".repeat(100),
        "{".repeat(100)
    );
    load_str(&yaml).unwrap_or_else(|errors| panic!("{errors}"));
}
