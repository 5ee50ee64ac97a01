use std::rc::Rc;

use resilience::cached;

async fn elsewhere() {}

// The refresh runs in a spawned task, so the body must be `Send`.
#[cached(ttl = "10s", stale_while_revalidate = "30s")]
async fn counter(id: u32) -> u32 {
    let shared = Rc::new(id);
    elsewhere().await;
    *shared
}

fn main() {}
