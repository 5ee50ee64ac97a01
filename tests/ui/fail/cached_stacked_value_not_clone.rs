use resilience::{cached, retry, HttpError};

struct Cities(Vec<String>);

// `#[cached]` inside another attribute's stack: still reported at the return type.
#[retry(attempts = 3)]
#[cached(ttl = "60s")]
async fn city_list(country: String) -> Result<Cities, HttpError> {
    Ok(Cities(vec![country]))
}

fn main() {
    let _ = city_list("FR".to_string());
}
