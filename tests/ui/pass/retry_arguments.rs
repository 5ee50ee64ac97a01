//! `&str` and `String` arguments, a tuple pattern, and a blocking fn with a `&mut` argument.

use resilience::{HttpError, retry};

#[retry(attempts = 3, base = "1ms")]
async fn greet(greeting: &str, mut name: String) -> Result<String, HttpError> {
    name.push('!');
    Ok(format!("{greeting}, {name}"))
}

#[retry(attempts = 3, base = "1ms")]
async fn add((a, b): (u32, String)) -> Result<String, HttpError> {
    Ok(format!("{}{b}", a + 1))
}

/// Pushes until the buffer holds two items, failing the first try.
#[retry(attempts = 3, base = "1ms", on = [503])]
fn fill(buffer: &mut Vec<u8>, byte: u8) -> Result<usize, HttpError> {
    buffer.push(byte);
    if buffer.len() < 2 {
        return Err(HttpError::new(503));
    }
    Ok(buffer.len())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(
        greet("hello", "ada".to_string()).await.unwrap(),
        "hello, ada!"
    );
    assert_eq!(add((1, "x".to_string())).await.unwrap(), "2x");
    let mut buffer = Vec::new();
    assert_eq!(fill(&mut buffer, 7).unwrap(), 2);
    assert_eq!(buffer, vec![7, 7]);
}
