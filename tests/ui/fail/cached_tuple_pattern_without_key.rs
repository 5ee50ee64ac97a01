use resilience::cached;

#[cached(ttl = "60s")]
async fn distance((x, y): (i64, i64)) -> i64 {
    x.abs() + y.abs()
}

fn main() {
    let _ = distance((3, 4));
}
