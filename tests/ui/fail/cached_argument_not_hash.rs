use resilience::cached;

#[derive(Clone, PartialEq, Eq)]
struct Filter {
    country: String,
}

#[cached(ttl = "60s")]
async fn city_list(page: u32, filter: Filter) -> Vec<String> {
    vec![format!("{} {page}", filter.country)]
}

fn main() {
    let _ = city_list(
        1,
        Filter {
            country: "FR".to_string(),
        },
    );
}
