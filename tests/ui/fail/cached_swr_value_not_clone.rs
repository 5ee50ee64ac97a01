use resilience::cached;

struct Cities(Vec<String>);

// With a background refresh the value must be `Clone` too. The refresh is a call of its own
// (spanned at the key, where a body that is not `Send` is reported), so this error shows at
// the attribute as well as at the return type.
#[cached(ttl = "60s", stale_while_revalidate = "30s")]
async fn city_list(country: String) -> Option<Cities> {
    Some(Cities(vec![country]))
}

fn main() {
    let _ = city_list("FR".to_string());
}
