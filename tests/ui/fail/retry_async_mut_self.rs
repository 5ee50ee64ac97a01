use resilience::{HttpError, retry};

struct Client {
    calls: u32,
}

impl Client {
    #[retry(attempts = 3)]
    async fn get(&mut self) -> Result<u32, HttpError> {
        self.calls += 1;
        Ok(self.calls)
    }
}

fn main() {
    let mut client = Client { calls: 0 };
    let _ = client.get();
}
