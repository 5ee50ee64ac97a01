use resilience::{HttpError, retry};
use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
enum ApiError {
    Http(HttpError),
    Parse(String),
}
impl From<HttpError> for ApiError {
    fn from(e: HttpError) -> Self {
        ApiError::Http(e)
    }
}
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "api")
    }
}
impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApiError::Http(e) => Some(e),
            _ => None,
        }
    }
}

/// doc kept
#[retry(attempts = 3, base = "10ms", on = [503, Timeout])]
pub async fn fetch(id: u64, name: String, tag: &str) -> Result<String, ApiError> {
    let n = CALLS.fetch_add(1, Ordering::SeqCst);
    if n < 2 {
        Err(HttpError::new(503))?;
    }
    if id == 99 {
        return Err(ApiError::Parse(name));
    }
    Ok(format!("{id}{name}{tag}"))
}

struct Client {
    base: String,
}
impl Client {
    #[retry(attempts = 2)]
    async fn get(&self, path: &str) -> Result<&str, HttpError> {
        let _ = path;
        Ok(&self.base)
    }
    #[retry]
    fn bump(&mut self, out: &mut Vec<u8>) -> Result<usize, HttpError> {
        out.push(1);
        self.base.push('x');
        Ok(out.len())
    }
}

#[retry(retry_if = is_odd)]
async fn generic<T: Clone + Send>(t: T) -> Result<T, std::io::Error>
where
    T: Sync,
{
    Ok(t)
}
fn is_odd(_e: &std::io::Error) -> bool {
    true
}

#[retry(attempts = 2, base = "0ms")]
fn sync_fn((a, b): (u32, u32)) -> std::io::Result<u32> {
    Ok(a + b)
}

#[tokio::test(start_paused = true)]
async fn smoke() {
    let r = tokio::spawn(async { fetch(1, "n".into(), "t").await })
        .await
        .unwrap();
    assert_eq!(r.unwrap(), "1nt");
    assert_eq!(CALLS.load(Ordering::SeqCst), 3);
    let c = Client { base: "b".into() };
    assert_eq!(c.get("/").await.unwrap(), "b");
    let mut c2 = Client { base: "b".into() };
    let mut v = vec![];
    assert_eq!(c2.bump(&mut v).unwrap(), 1);
    assert_eq!(generic(5u8).await.unwrap(), 5);
    assert_eq!(sync_fn((1, 2)).unwrap(), 3);
}
