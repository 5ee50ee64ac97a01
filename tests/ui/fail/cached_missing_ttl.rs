use resilience::cached;

#[cached(max_entries = 100)]
async fn city_list(country: String) -> Vec<String> {
    vec![country]
}

fn main() {
    let _ = city_list("FR".to_string());
}
