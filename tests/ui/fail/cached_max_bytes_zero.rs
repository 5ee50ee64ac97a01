use resilience::cached;

#[cached(ttl = "60s", max_bytes = "0 KiB")]
async fn city_list(country: String) -> Vec<String> {
    vec![country]
}

fn main() {
    let _ = city_list("FR".to_string());
}
