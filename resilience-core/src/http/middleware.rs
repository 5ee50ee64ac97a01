//! [`ResilienceMiddleware`]: a named policy for every request of a `reqwest_middleware` client.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::future::Either;
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::classify::classify_error;
use crate::error_class::{Classification, Classify, ErrorClass};
use crate::hooks::ErrorHooks;
use crate::pipeline::{Pipeline, Plan};
use crate::rejected::Rejected;

/// Applies a named policy to each request of a [`reqwest_middleware`] client: its bulkhead,
/// rate limit, retry, circuit breaker and timeout sections, in `#[resilient]`'s order
/// (through the same [`Pipeline`] as closures use). No `error_for_status` is needed: every
/// response's status and quota headers are read here, a 429's Retry-After delays the next try,
/// and the quota headers pace the policy's rate limiter.
///
/// ```no_run
/// # use resilience_core as resilience;
/// use resilience::http::ResilienceMiddleware;
///
/// # async fn demo() -> Result<(), reqwest_middleware::Error> {
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(ResilienceMiddleware::policy("user-api"))
///     .build();
/// let user = client.get("http://127.0.0.1:8080/users/1").send().await?;
/// # let _ = user;
/// # Ok(())
/// # }
/// ```
///
/// # What is retried
///
/// The policy's `retry` section says which failures are retried (`on`), but never more than
/// is safe for the request:
///
/// | failure | idempotent method (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) or an `Idempotency-Key` header | any other request (POST, PATCH) |
/// |---|---|---|
/// | `Connect`: never sent (refused, DNS, TLS handshake, connect timeout) | retried | retried |
/// | `Timeout`: sent, no answer in time (including the policy's `read` timeout) | retried | sent once |
/// | a status in `on` (429, 502, 503, 504 by default) | retried | sent once |
/// | `Body`: the answer began and its body failed | retried only with `on: [Body]` | sent once |
///
/// A request whose body cannot be cloned (a stream: `Request::try_clone` is `None`) is sent
/// once, whatever failed. With `on: [Body]`, the body of a 2xx answer is read into memory
/// within the try, so a cut stream is retried; without it the body is left to the caller and
/// a body failure surfaces when it is read.
///
/// # What is returned
///
/// The last answer, whatever its status: a 503 still there after the last try is returned as
/// the `Response` (as `reqwest-retry` does), so the caller reads its status and body as
/// without the middleware. A failure to get an answer is the last `reqwest_middleware::Error`;
/// a refusal of the policy (bulkhead full, rate limited, breaker open, a timeout) is a
/// `reqwest_middleware::Error::Middleware` holding a [`Rejected`], which the crate's
/// [`Classify`] impl for `reqwest_middleware::Error` reports as such.
///
/// # Caching
///
/// With `cache: { http: true }` in the policy, GET and HEAD answers are cached by HTTP's rules
/// (RFC 9111, through the `http-cache-semantics` crate): `max-age` / `s-maxage` / `Expires`
/// freshness, `no-store` and `private` (the cache is a shared one), `Vary`, revalidation with
/// `ETag` / `Last-Modified` (a 304 refreshes the entry, and the stored body is served), and
/// RFC 5861's `stale-while-revalidate` and `stale-if-error`. The cache comes before every other
/// section: a fresh hit sends nothing and takes no permit. Entries are keyed by the normalised
/// request (scheme and host lower-cased, default port dropped, query parameters sorted, the
/// `Vary` headers' values) and bounded by the section's `max_entries` and `max_bytes`. The
/// README's "HTTP response caching" section has the details.
///
/// # Timeouts
///
/// A plain `timeout: 3s` bounds each try. With `timeout: { connect: 3s, read: 10s, total: 30s }`,
/// `read` bounds each try's wait for the answer's head, `total` the whole call (every try and
/// wait included), and `connect` is the client's: build it with
/// [`client_builder`](crate::http::client_builder).
#[derive(Debug, Clone, Copy)]
pub struct ResilienceMiddleware {
    pipeline: Pipeline,
    cache: &'static super::cache::Slot,
}

impl ResilienceMiddleware {
    /// The middleware of the policy called `name` (its site in logs and metrics is
    /// `resilience::http`).
    pub fn policy(name: &str) -> Self {
        let pipeline = Pipeline::site("resilience::http", name);
        ResilienceMiddleware {
            pipeline,
            cache: super::cache::Slot::of(pipeline.policy_name()),
        }
    }
}

/// Why one try did not give the answer to return.
enum Failure {
    /// An answer whose status the policy may retry; returned as it is after the last try.
    Answer(Response, Classification),
    /// No answer: the client's error.
    Sent(reqwest_middleware::Error),
    /// No answer head within the policy's `read` timeout.
    Read(Duration),
    /// A refusal of the policy.
    Rejected(Rejected),
}

impl From<Rejected> for Failure {
    fn from(rejected: Rejected) -> Self {
        Failure::Rejected(rejected)
    }
}

fn classify(failure: &Failure) -> Classification {
    match failure {
        Failure::Answer(_, classification) => *classification,
        Failure::Sent(error) => error.classification(),
        Failure::Read(_) => Classification::new(ErrorClass::Timeout),
        Failure::Rejected(rejected) => rejected.classification(),
    }
}

fn describe(failure: &Failure, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match failure {
        Failure::Answer(response, _) => {
            write!(f, "HTTP {} from {}", response.status(), response.url())
        }
        Failure::Sent(error) => write!(f, "{error}"),
        Failure::Read(after) => write!(f, "no answer within the read timeout of {after:?}"),
        Failure::Rejected(rejected) => write!(f, "{rejected}"),
    }
}

/// The hooks of a request: every failure for a request safe to repeat, `Connect` only for one
/// that is not, nothing for one that cannot be sent again.
fn hooks(request: &Request, cloneable: bool) -> ErrorHooks<Failure> {
    let hooks = ErrorHooks::new(classify, describe);
    match (
        cloneable,
        super::is_retry_safe(request.method(), request.headers()),
    ) {
        (false, _) => hooks.retry_if(|_| false),
        (true, true) => hooks,
        (true, false) => hooks.unsent_only(),
    }
}

/// Written out rather than through `#[async_trait]`: its `async fn` would hold the request and
/// the inner future side by side in a 4.4 kB box that every request fills and copies; this
/// boxes the inner future alone (3.8 kB), about 600 instructions a request less under
/// callgrind (`benches/http_middleware.rs`, `--count`).
impl Middleware for ResilienceMiddleware {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        request: Request,
        extensions: &'life1 mut http::Extensions,
        next: Next<'life2>,
    ) -> Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        let pipeline = self.pipeline;
        // One read of the policy for the whole call: its sections, timeouts and retry values.
        let plan = pipeline.plan();
        if plan.http_cache && super::cache::is_cacheable(request.method()) {
            return Box::pin(super::cache::serve(
                self.cache, pipeline, plan, request, extensions, next,
            ));
        }
        Box::pin(through(pipeline, plan, request, extensions, next))
    }
}

/// `request` through the policy's sections along `plan`: each try sends a copy to `next`, as
/// the retry rules allow, and the last answer or failure is returned.
///
/// Not an `async fn`: the request is moved into the future once, as the first try's, where an
/// `async fn` would keep the argument and that move side by side (264 bytes each, in a future
/// every request copies).
pub(super) fn through<'a>(
    pipeline: Pipeline,
    plan: Plan,
    request: Request,
    extensions: &'a mut http::Extensions,
    next: Next<'a>,
) -> impl Future<Output = reqwest_middleware::Result<Response>> + Send + 'a {
    // A policy that retries nothing needs no copy of the request.
    let template = match plan.attempts > 1 {
        true => request.try_clone(),
        false => None,
    };
    let hooks = hooks(&request, template.is_some());
    let mut first = Some(request);
    // A block, not an `async fn`: its captures are its only copy of each.
    async move {
        let timeouts = plan.http_timeouts.unwrap_or_default();
        let buffer = plan.retries_body;
        // Each try takes the extensions and puts them back (tries never overlap), so the next
        // try and the caller see what the middlewares below left there. A try cut short by
        // `total` drops what it held.
        let shared = std::sync::Mutex::new(std::mem::take(extensions));
        let (first, template, next, state) = (&mut first, &template, &next, &shared);
        // Made where it is awaited: a future kept in a local, then awaited in one of two
        // branches, takes its room twice in this one's state.
        let run = move || {
            pipeline.run_planned(plan, hooks, move || {
                match first
                    .take()
                    .or_else(|| template.as_ref().and_then(Request::try_clone))
                {
                    Some(request) => {
                        Either::Left(send(next.clone(), request, state, timeouts.read, buffer))
                    }
                    // Unreachable: a request without a clone is never retried (see `hooks`).
                    None => Either::Right(std::future::ready(Err(Failure::Sent(
                        reqwest_middleware::Error::middleware(std::io::Error::other(
                            "the request's body cannot be cloned for another try",
                        )),
                    )))),
                }
            })
        };
        let outcome = match timeouts.total {
            Some(total) => tokio::time::timeout(total, run())
                .await
                .unwrap_or(Err(Failure::Rejected(Rejected::Timeout { after: total }))),
            None => run().await,
        };
        *extensions = std::mem::take(&mut *lock(&shared));
        match outcome {
            Ok(response) | Err(Failure::Answer(response, _)) => Ok(response),
            Err(Failure::Sent(error)) => Err(error),
            Err(Failure::Read(after)) => {
                Err(reqwest_middleware::Error::middleware(Rejected::Timeout {
                    after,
                }))
            }
            Err(Failure::Rejected(rejected)) => {
                Err(reqwest_middleware::Error::middleware(rejected))
            }
        }
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One try: the request sent (with the call's extensions, taken from `extensions` and put
/// back), its answer's head awaited (for at most `read`), its quota headers learned from, and
/// a 2xx body read into memory when `buffer` asks for it.
async fn send(
    next: Next<'_>,
    request: Request,
    extensions: &std::sync::Mutex<http::Extensions>,
    read: Option<Duration>,
    buffer: bool,
) -> Result<Response, Failure> {
    let mut own = std::mem::take(&mut *lock(extensions));
    // `run` boxes the request into its future at once: this one keeps no copy of it.
    let sent = next.run(request, &mut own);
    let response = match read {
        Some(read) => tokio::time::timeout(read, sent).await.ok(),
        None => Some(sent.await),
    };
    *lock(extensions) = own;
    let response = response.ok_or(Failure::Read(read.unwrap_or_default()))?;
    let response = response.map_err(Failure::Sent)?;
    if let Some(error) = super::read_answer(&response) {
        return Err(Failure::Answer(response, error.classification()));
    }
    match buffer {
        // Boxed: only `on: [Body]` reads the body here, and its future is large.
        true => Box::pin(buffered(response)).await,
        false => Ok(response),
    }
}

/// The same response with its body read: a body that fails midway is a `Body` failure of this
/// try rather than of the caller's read.
async fn buffered(response: Response) -> Result<Response, Failure> {
    let (status, version) = (response.status(), response.version());
    let (url, headers) = (response.url().clone(), response.headers().clone());
    let body = response
        .bytes()
        .await
        .map_err(|error| Failure::Sent(error.into()))?;
    rebuilt((status, version, url), headers, body)
        .map_err(|error| Failure::Sent(reqwest_middleware::Error::middleware(error)))
}

/// A response made of its parts and a body held in memory.
pub(super) fn rebuilt(
    (status, version, url): (http::StatusCode, http::Version, reqwest::Url),
    headers: http::HeaderMap,
    body: bytes::Bytes,
) -> Result<Response, http::Error> {
    use reqwest::ResponseBuilderExt;
    let mut builder = http::Response::builder()
        .status(status)
        .version(version)
        .url(url);
    if let Some(slot) = builder.headers_mut() {
        *slot = headers;
    }
    builder.body(body).map(Response::from)
}

/// `reqwest_middleware::Error` as the runtime sees it: the client's error by its phase, a
/// refusal of the policy as that refusal, anything else by its `source()` chain.
impl Classify for reqwest_middleware::Error {
    fn class(&self) -> ErrorClass {
        self.classification().class
    }
    fn classification(&self) -> Classification {
        match self {
            reqwest_middleware::Error::Reqwest(error) => error.classification(),
            reqwest_middleware::Error::Middleware(error) => classify_error(error.as_ref()),
        }
    }
}
