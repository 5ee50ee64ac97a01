use resilience::cached;

#[cached(ttl = "60s", ttl_jitter = 1.5)]
async fn city_list(country: String) -> Vec<String> {
    vec![country]
}

fn main() {
    let _ = city_list("FR".to_string());
}
