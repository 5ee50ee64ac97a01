use resilience::cached;

#[derive(Debug)]
struct ApiError {
    status: u16,
}

#[cached(ttl = "60s", negative_ttl = "5s")]
async fn city_list(country: String) -> Result<Vec<String>, ApiError> {
    if country.is_empty() {
        return Err(ApiError { status: 404 });
    }
    Ok(vec![country])
}

fn main() {
    let _ = city_list("FR".to_string());
}
