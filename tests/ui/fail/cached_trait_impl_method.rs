use resilience::cached;

trait Directory {
    async fn city_list(&self, country: String) -> Option<Vec<String>>;
}

struct Http;

// In a trait impl there is no room for the `city_list_cache()` handle beside the method: the
// README shows the way round (`tests/ui/pass/cached_trait_impl_delegates.rs`).
impl Directory for Http {
    #[cached(ttl = "60s")]
    async fn city_list(&self, country: String) -> Option<Vec<String>> {
        Some(vec![country])
    }
}

fn main() {
    let _ = Http.city_list("FR".to_string());
}
