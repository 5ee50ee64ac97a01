use resilience::retry;

#[retry(attempts = 3)]
fn ping(host: &str) {
    let _ = host;
}

fn main() {
    ping("localhost");
}
