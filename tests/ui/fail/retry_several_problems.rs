use resilience::retry;

#[retry(attemps = 3, jitter = 2.0, base = "soon")]
async fn fetch(id: u64) -> Option<u64> {
    Some(id)
}

fn main() {
    let _ = fetch(1);
}
