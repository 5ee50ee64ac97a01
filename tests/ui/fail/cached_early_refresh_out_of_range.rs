use resilience::cached;

#[cached(ttl = "60s", early_refresh = 500.0)]
async fn city_list(country: String) -> Vec<String> {
    vec![country]
}

fn main() {
    let _ = city_list("FR".to_string());
}
