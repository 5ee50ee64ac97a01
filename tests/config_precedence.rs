//! Which values a retry site uses once a YAML policy is loaded: the policy's `retry` section
//! overrides the site's inline values field by field (absent fields keep the inline value,
//! `~` removes an inline limit), and a site naming a policy the file lacks, or a policy without
//! a `retry` section, keeps its inline values. Read through [`RetrySite::spec`], through
//! `retry_blocking`, and through `#[retry]` on a blocking function.
//!
//! Installing replaces every named policy at once and the registry is global to this binary,
//! so each test takes [`serial`] first and names its own policies.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use resilience::__private::{RetrySite, retry_blocking};
use resilience::config::{self, NamedPolicy, PolicyFile};
use resilience::retry::{Backoff, ErrorHooks, Jitter, RetryOn, RetryPatch, RetrySpec};
use resilience::{HttpError, registry, retry};

/// Held by every test that installs policies.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs `yaml` as the whole set of named policies.
fn install(yaml: &str) {
    if let Err(errors) = config::load_str(yaml) {
        panic!("the test's YAML is refused:\n{errors}\n---\n{yaml}");
    }
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Inline values that differ from the defaults in every field.
const INLINE: RetrySpec = RetrySpec::DEFAULT
    .attempts(3)
    .backoff(Backoff::Linear)
    .base(ms(50))
    .factor(3.0)
    .max_delay(secs(1))
    .max_elapsed(Some(secs(30)))
    .jitter(Jitter::Full)
    .on(RetryOn::NONE.timeout())
    .retry_after(false);

static FIELD_BY_FIELD: RetrySite = RetrySite::new(
    "config_precedence::field_by_field",
    Some("precedence.field-by-field"),
    INLINE,
);

#[test]
fn yaml_overrides_inline_values_field_by_field() {
    let _serial = serial();
    assert_eq!(*FIELD_BY_FIELD.spec(), INLINE, "no policy loaded yet");

    install("policies:\n  precedence.field-by-field:\n    retry: { attempts: 6, max_delay: 4s }\n");
    assert_eq!(
        *FIELD_BY_FIELD.spec(),
        INLINE.attempts(6).max_delay(secs(4)),
        "the two fields the YAML sets, and the inline value of every other"
    );
    assert_eq!(
        *FIELD_BY_FIELD.inline_spec(),
        INLINE,
        "the inline values stay as written"
    );

    // A reload that stops setting a field gives the inline value back.
    install("policies:\n  precedence.field-by-field:\n    retry: { base: 75ms }\n");
    assert_eq!(*FIELD_BY_FIELD.spec(), INLINE.base(ms(75)));
}

static EVERY_FIELD: RetrySite = RetrySite::new(
    "config_precedence::every_field",
    Some("precedence.every-field"),
    INLINE,
);

#[test]
fn yaml_setting_every_field_leaves_nothing_inline() {
    let _serial = serial();
    install(
        "\
policies:
  precedence.every-field:
    retry:
      attempts: 5
      backoff: exp
      base: 200ms
      factor: 1.5
      max_delay: 10s
      max_elapsed: 2m
      jitter: 0.2
      on: [Connect, 429, 5xx]
      retry_after: true
",
    );
    assert_eq!(
        *EVERY_FIELD.spec(),
        RetrySpec::DEFAULT
            .attempts(5)
            .backoff(Backoff::Exponential)
            .base(ms(200))
            .factor(1.5)
            .max_delay(secs(10))
            .max_elapsed(Some(secs(120)))
            .jitter(Jitter::Fraction(0.2))
            .on(RetryOn::NONE.connect().status(429).class(5))
            .retry_after(true)
    );
}

static REMOVED_LIMIT: RetrySite = RetrySite::new(
    "config_precedence::removed_limit",
    Some("precedence.removed-limit"),
    INLINE,
);

#[test]
fn a_tilde_removes_an_inline_limit_and_an_empty_on_retries_nothing() {
    let _serial = serial();
    install("policies:\n  precedence.removed-limit:\n    retry: { max_elapsed: ~, on: [] }\n");
    assert_eq!(
        *REMOVED_LIMIT.spec(),
        INLINE.max_elapsed(None).on(RetryOn::NONE)
    );
}

static MISSING: RetrySite = RetrySite::new(
    "config_precedence::missing",
    Some("precedence.missing"),
    INLINE,
);

#[test]
fn a_site_naming_a_policy_the_file_lacks_keeps_its_inline_values() {
    let _serial = serial();
    install("policies:\n  precedence.other:\n    retry: { attempts: 9, base: 1s }\n");
    assert!(registry::current().get("precedence.missing").is_none());
    let spec = MISSING.spec();
    assert_eq!(*spec, INLINE);
    assert!(
        matches!(spec, Cow::Borrowed(_)),
        "the inline values themselves"
    );
    // Asked again (the missing policy is reported once, and nothing else changes).
    assert_eq!(*MISSING.spec(), INLINE);
}

static NO_RETRY_SECTION: RetrySite = RetrySite::new(
    "config_precedence::no_retry_section",
    Some("precedence.no-retry-section"),
    INLINE,
);

#[test]
fn a_policy_without_a_retry_section_keeps_the_inline_retry_values() {
    let _serial = serial();
    install(
        "policies:\n  precedence.no-retry-section:\n    rate_limit: { calls: 5, period: 1s }\n    timeout: 2s\n",
    );
    assert!(
        registry::current()
            .get("precedence.no-retry-section")
            .is_some()
    );
    assert_eq!(*NO_RETRY_SECTION.spec(), INLINE);
}

static NO_POLICY: RetrySite = RetrySite::new("config_precedence::no_policy", None, INLINE);

#[test]
fn a_site_naming_no_policy_ignores_every_loaded_policy() {
    let _serial = serial();
    install("policies:\n  config_precedence::no_policy:\n    retry: { attempts: 9 }\n");
    assert_eq!(*NO_POLICY.spec(), INLINE);
}

// ---------------------------------------------------------------------------------------------
// The values a call uses
// ---------------------------------------------------------------------------------------------

static COUNTED: RetrySite = RetrySite::new(
    "config_precedence::counted",
    Some("precedence.counted"),
    RetrySpec::DEFAULT.attempts(3).base(Duration::ZERO),
);

/// How many tries `retry_blocking` makes of an operation that always fails with 503.
fn tries_of_counted() -> u32 {
    let tries = AtomicU32::new(0);
    let result: Result<(), HttpError> = retry_blocking(&COUNTED, ErrorHooks::classified(), || {
        tries.fetch_add(1, Ordering::Relaxed);
        Err(HttpError::new(503))
    });
    assert_eq!(result, Err(HttpError::new(503)));
    tries.load(Ordering::Relaxed)
}

#[test]
fn a_call_uses_the_policy_loaded_when_it_starts() {
    let _serial = serial();
    install("policies:\n  precedence.other:\n    retry: { attempts: 9 }\n");
    assert_eq!(tries_of_counted(), 3, "inline, the policy is not loaded");

    install("policies:\n  precedence.counted:\n    retry: { attempts: 5 }\n");
    assert_eq!(tries_of_counted(), 5);

    // `on` from the policy: 503 is no longer retried.
    install("policies:\n  precedence.counted:\n    retry: { attempts: 5, on: [Timeout] }\n");
    assert_eq!(tries_of_counted(), 1);

    install("policies: {}\n");
    assert_eq!(
        tries_of_counted(),
        3,
        "inline again once the policy is gone"
    );
}

static MACRO_TRIES: AtomicU32 = AtomicU32::new(0);

#[retry(
    attempts = 2,
    base = "1ms",
    max_delay = "1ms",
    policy = "precedence.macro"
)]
fn always_503() -> Result<(), HttpError> {
    MACRO_TRIES.fetch_add(1, Ordering::Relaxed);
    Err(HttpError::new(503))
}

fn macro_tries() -> u32 {
    MACRO_TRIES.store(0, Ordering::Relaxed);
    assert_eq!(always_503(), Err(HttpError::new(503)));
    MACRO_TRIES.load(Ordering::Relaxed)
}

#[test]
fn retry_attribute_on_a_blocking_fn_reads_the_loaded_policy() {
    let _serial = serial();
    install("policies:\n  precedence.other:\n    retry: { attempts: 9 }\n");
    assert_eq!(macro_tries(), 2, "inline");
    install("policies:\n  precedence.macro:\n    retry: { attempts: 4 }\n");
    assert_eq!(macro_tries(), 4, "from the policy");
    install("policies:\n  precedence.macro:\n    cache: { ttl: 1s }\n");
    assert_eq!(macro_tries(), 2, "inline: the policy has no retry section");
}

// ---------------------------------------------------------------------------------------------
// `config::policies`
// ---------------------------------------------------------------------------------------------

#[test]
fn load_str_installs_what_config_policies_makes_of_the_file() {
    let _serial = serial();
    let retry = RetryPatch {
        attempts: Some(4),
        base: Some(ms(250)),
        ..RetryPatch::default()
    };
    let mut doc = NamedPolicy::default();
    doc.retry = Some(retry);
    doc.timeout = Some(secs(2));
    let mut file = PolicyFile::default();
    file.policies.insert("precedence.doc".to_string(), doc);

    let expected = config::policies(&file);
    let loaded = config::load_str(
        "policies:\n  precedence.doc:\n    retry: { attempts: 4, base: 250ms }\n    timeout: 2s\n",
    )
    .unwrap();
    assert_eq!(loaded, expected);
    assert_eq!(*registry::current(), expected);
    let patch = expected.get("precedence.doc").unwrap().retry.unwrap();
    assert_eq!(
        (patch.attempts, patch.base, patch.factor),
        (Some(4), Some(ms(250)), None)
    );
}
