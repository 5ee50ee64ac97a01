//! `io::Result<T>`, and a user error type built with `?` and `From`.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use resilience::{HttpError, retry};

static TRIES: AtomicU32 = AtomicU32::new(0);

#[retry(attempts = 3, base = "1ms", on = [Timeout])]
fn read_config() -> io::Result<String> {
    if TRIES.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "slow disk"));
    }
    Ok("config".to_string())
}

#[derive(Debug)]
enum AppError {
    Http(HttpError),
    Parse(std::num::ParseIntError),
}

impl From<HttpError> for AppError {
    fn from(error: HttpError) -> Self {
        AppError::Http(error)
    }
}

impl From<std::num::ParseIntError> for AppError {
    fn from(error: std::num::ParseIntError) -> Self {
        AppError::Parse(error)
    }
}

fn status(code: u16) -> Result<u16, HttpError> {
    if code >= 400 {
        Err(HttpError::new(code))
    } else {
        Ok(code)
    }
}

#[retry(attempts = 2, base = "1ms")]
async fn parse_reply(body: &str) -> Result<u32, AppError> {
    status(200)?;
    let value: u32 = body.trim().parse()?;
    Ok(value)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(read_config().unwrap(), "config");
    assert_eq!(TRIES.load(Ordering::SeqCst), 2);
    assert_eq!(parse_reply(" 42 ").await.unwrap(), 42);
    assert!(matches!(parse_reply("x").await, Err(AppError::Parse(_))));
    let _ = AppError::Http(HttpError::new(500));
}
