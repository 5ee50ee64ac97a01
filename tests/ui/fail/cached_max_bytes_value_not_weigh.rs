use resilience::cached;

#[derive(Clone)]
struct City {
    name: String,
}

#[cached(ttl = "60s", max_bytes = "64MiB")]
async fn capital(country: String) -> City {
    City { name: country }
}

fn main() {
    let _ = capital("FR".to_string());
}
