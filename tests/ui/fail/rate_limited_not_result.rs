use resilience::rate_limited;

#[rate_limited(calls = 20, period = "1s")]
async fn fetch(id: u64) -> Option<u64> {
    Some(id)
}

fn main() {
    let _ = fetch(1);
}
