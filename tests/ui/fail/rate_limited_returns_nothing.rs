use resilience::rate_limited;

#[rate_limited(calls = 20, period = "1s")]
fn ping() {}

fn main() {
    ping();
}
