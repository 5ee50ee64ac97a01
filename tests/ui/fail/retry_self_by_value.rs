use resilience::{HttpError, retry};

struct Client {
    calls: u32,
}

impl Client {
    #[retry(attempts = 3)]
    fn into_calls(self) -> Result<u32, HttpError> {
        Ok(self.calls)
    }
}

fn main() {
    let _ = Client { calls: 0 }.into_calls();
}
