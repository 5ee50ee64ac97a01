//! The pattern the README recommends for a trait method: the trait impl delegates to an
//! inherent `#[cached]` method, whose handle (`Http::city_list_cached_cache()`) invalidates.
#![deny(warnings)]

use std::sync::atomic::{AtomicUsize, Ordering};

use resilience::cached;

static LOADS: AtomicUsize = AtomicUsize::new(0);

trait Directory {
    async fn city_list(&self, country: String) -> Option<Vec<String>>;
}

struct Http;

impl Directory for Http {
    async fn city_list(&self, country: String) -> Option<Vec<String>> {
        self.city_list_cached(country).await
    }
}

impl Http {
    #[cached(ttl = "60s")]
    async fn city_list_cached(&self, country: String) -> Option<Vec<String>> {
        LOADS.fetch_add(1, Ordering::SeqCst);
        Some(vec![format!("capital of {country}")])
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let http = Http;
    for _ in 0..3 {
        assert_eq!(
            http.city_list("FR".to_string()).await,
            Some(vec!["capital of FR".to_string()])
        );
    }
    assert_eq!(LOADS.load(Ordering::SeqCst), 1);
    assert!(Http::city_list_cached_cache().invalidate(&("FR".to_string(),)));
    let _ = http.city_list("FR".to_string()).await;
    assert_eq!(LOADS.load(Ordering::SeqCst), 2);
}
