use resilience::cached;

#[cached(tll = "60s")]
async fn city_list(country: String) -> Vec<String> {
    vec![country]
}

fn main() {
    let _ = city_list("FR".to_string());
}
