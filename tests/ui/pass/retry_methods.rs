//! `&self` methods, a trait impl method, `&mut self` on a blocking method, and a method
//! returning a borrow of `self`.

use std::sync::atomic::{AtomicU32, Ordering};

use resilience::{HttpError, retry};

struct Client {
    name: String,
    calls: AtomicU32,
    log: Vec<u32>,
}

impl Client {
    /// Fails once, then answers.
    #[retry(attempts = 3, base = "1ms", on = [503])]
    async fn get(&self, id: u64) -> Result<String, HttpError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(HttpError::new(503));
        }
        Ok(format!("{}:{id}", self.name))
    }

    /// A borrow of `self` comes back out of the retried body.
    #[retry(attempts = 2, base = "1ms")]
    fn name(&self) -> Result<&str, HttpError> {
        Ok(&self.name)
    }

    /// A blocking method may take `&mut self`: each try reborrows it.
    #[retry(attempts = 3, base = "1ms", on = [502])]
    fn record(&mut self, value: u32) -> Result<usize, HttpError> {
        self.log.push(value);
        if self.log.len() < 2 {
            return Err(HttpError::new(502));
        }
        Ok(self.log.len())
    }
}

trait Fetch {
    async fn fetch(&self, path: &str) -> Result<String, HttpError>;
}

impl Fetch for Client {
    #[retry(attempts = 2, base = "1ms")]
    async fn fetch(&self, path: &str) -> Result<String, HttpError> {
        Ok(format!("{}{path}", self.name))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tokio::time::pause();
    let mut client = Client {
        name: "api".to_string(),
        calls: AtomicU32::new(0),
        log: Vec::new(),
    };
    assert_eq!(client.get(7).await.unwrap(), "api:7");
    assert_eq!(client.calls.load(Ordering::SeqCst), 2);
    assert_eq!(client.name().unwrap(), "api");
    assert_eq!(client.fetch("/users").await.unwrap(), "api/users");
    assert_eq!(client.record(1).unwrap(), 2);
    assert_eq!(client.log, vec![1, 1]);
}
