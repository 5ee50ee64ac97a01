use resilience::{rate_limited, retry};

#[rate_limited(calls = 20, period = "1s", mode = "block")]
#[retry(attempts = 3)]
fn fetch(id: u64) -> u64 {
    id
}

fn main() {
    let _ = fetch(1);
}
