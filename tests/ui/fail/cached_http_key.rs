use resilience::cached;

// `http` is a YAML `cache` key for the HTTP middleware's responses: no meaning on a function.
#[cached(ttl = "60s", http = true)]
async fn city_list(country: String) -> Vec<String> {
    vec![country]
}

fn main() {
    let _ = city_list("FR".to_string());
}
