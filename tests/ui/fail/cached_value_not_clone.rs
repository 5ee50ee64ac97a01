use resilience::cached;

struct Cities(Vec<String>);

#[cached(ttl = "60s")]
async fn city_list(country: String) -> Option<Cities> {
    Some(Cities(vec![country]))
}

fn main() {
    let _ = city_list("FR".to_string());
}
