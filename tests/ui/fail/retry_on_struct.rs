use resilience::retry;

#[retry(attempts = 3)]
struct Client {
    calls: u32,
}

fn main() {
    let client = Client { calls: 0 };
    let _ = client.calls;
}
