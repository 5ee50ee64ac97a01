//! With a reporter started (`resilience::cache::spawn_reporter`), a cache's counters reach the
//! `metrics` facade (the global recorder) by themselves, within about a second, whether the
//! cache loads or only hits. The one test of this binary, as it installs the process's global
//! recorder.
//!
//! The reporting thread sleeps on the real clock, not tokio's, so this test waits in real
//! time: it polls for at most 10 s and passes as soon as every count has arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use resilience::cached;

/// Counter totals by name and `site` label.
#[derive(Default)]
struct Totals(Mutex<HashMap<(String, String), u64>>);

impl Totals {
    fn get(&self, name: &str, site: &str) -> u64 {
        let totals = self.0.lock().expect("the totals lock");
        totals
            .get(&(name.to_string(), site.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

struct Add(Arc<Totals>, (String, String));

impl metrics::CounterFn for Add {
    fn increment(&self, value: u64) {
        *self
            .0
            .0
            .lock()
            .expect("the totals lock")
            .entry(self.1.clone())
            .or_default() += value;
    }
    fn absolute(&self, _value: u64) {}
}

struct Recorder(Arc<Totals>);

impl metrics::Recorder for Recorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let site = key
            .labels()
            .find(|label| label.key() == "site")
            .map(|label| label.value().to_string())
            .unwrap_or_default();
        metrics::Counter::from_arc(Arc::new(Add(
            Arc::clone(&self.0),
            (key.name().to_string(), site),
        )))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[cached(ttl = "60s")]
async fn city(id: u32) -> Option<String> {
    (id > 0).then(|| format!("city {id}"))
}

const SITE: &str = "cache_metrics::city";

#[tokio::test]
async fn counts_reach_the_global_recorder_without_a_read() {
    let totals = Arc::new(Totals::default());
    metrics::set_global_recorder(Recorder(Arc::clone(&totals)))
        .expect("no other recorder in this test binary");
    let _reporter = resilience::cache::spawn_reporter(Duration::from_secs(1))
        .expect("a thread for the reporter");

    // 2 loads (one `None`, not stored), then 5 hits.
    assert_eq!(city(0).await, None);
    assert_eq!(city(1).await.as_deref(), Some("city 1"));
    for _ in 0..5 {
        assert_eq!(city(1).await.as_deref(), Some("city 1"));
    }
    let expected = [
        ("resilience_cache_hits_total", 5),
        ("resilience_cache_misses_total", 2),
        ("resilience_cache_loads_total", 2),
        ("resilience_cache_load_errors_total", 1),
    ];
    // Nothing has read the counts: only the reporting thread can deliver them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen: Vec<u64> = expected
            .iter()
            .map(|(name, _)| totals.get(name, SITE))
            .collect();
        if seen == expected.map(|(_, value)| value) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 10 s the recorder has {seen:?} of {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // More hits are reported as a difference: the totals never count a hit twice.
    for _ in 0..3 {
        assert_eq!(city(1).await.as_deref(), Some("city 1"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while totals.get("resilience_cache_hits_total", SITE) != 8 {
        assert!(Instant::now() < deadline, "the 3 later hits never arrived");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A report now (the handle's `counts()` reports at once) finds nothing new to add.
    assert_eq!(city_cache().counts().hits, 8);
    assert_eq!(totals.get("resilience_cache_hits_total", SITE), 8);
    assert_eq!(totals.get("resilience_cache_loads_total", SITE), 2);
}
