//! Generic parameters, a where clause and a lifetime survive the rewrite.

use std::fmt::Display;

use resilience::{HttpError, retry};

/// Formats any displayable value.
#[retry(attempts = 2, base = "1ms")]
async fn show<T: Display + Clone>(value: T) -> Result<String, HttpError> {
    Ok(value.to_string())
}

#[retry(attempts = 2, base = "1ms")]
async fn longest<'a, T>(items: &'a [T], fallback: T) -> Result<T, HttpError>
where
    T: Clone + PartialOrd + Send + Sync,
{
    let mut best = fallback;
    for item in items {
        if *item > best {
            best = item.clone();
        }
    }
    Ok(best)
}

#[retry(attempts = 2, base = "1ms")]
fn parse_all<T, const N: usize>(texts: [&str; N]) -> Result<Vec<T>, T::Err>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Debug,
{
    texts.iter().map(|text| text.parse()).collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(show(42).await.unwrap(), "42");
    assert_eq!(longest(&[3, 9, 4], 5).await.unwrap(), 9);
    assert_eq!(parse_all::<u8, 2>(["1", "2"]).unwrap(), vec![1, 2]);
}
