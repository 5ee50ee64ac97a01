//! [`ResilienceLayer`]: a named policy as a `tower::Layer`, for HTTP clients (hyper, tonic)
//! and, with [`shed_load`](ResilienceLayer::shed_load), for servers (axum), through the same
//! [`Pipeline`] as closures and the reqwest middleware.
//!
//! | | client: `ResilienceLayer::policy("x")` | server: `ResilienceLayer::policy("x").shed_load()` |
//! |---|---|---|
//! | sections | bulkhead, rate limit, retry, circuit breaker, timeout | bulkhead, rate limit, circuit breaker, timeout (a server does not replay requests) |
//! | request | `http::Request<B>` with `B: Clone` (each try sends a copy) | `http::Request<B>`, any `B` |
//! | a refusal (bulkhead full, rate limited, breaker open, timeout) | `Err(Error::Refused(..))` | a response: 429 with `Retry-After` when rate limited, 503 otherwise (with `Retry-After` when known) |
//! | the last answer (a 503 after the last try included) | `Ok(response)` | `Ok(response)` |
//!
//! The client layer retries as the reqwest middleware does: an idempotent method or a request
//! with an `Idempotency-Key` header is retried on the policy's `on` classes; any other request
//! only when it was never sent (`Connect`). Errors of the inner service are classified through
//! their `source()` chain (an io error, a timeout, a [`Rejected`]).
//!
//! The server layer's answers to a refusal come at once: a full bulkhead waits at most its
//! `max_wait`, a rate limit in `wait` mode at most its `max_wait`, so no request queues without
//! bound, and each gets a status.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{HeaderValue, Request, Response, StatusCode, header};

use crate::classify::classify_error;
use crate::error_class::{Classification, Classify, ErrorClass};
use crate::hooks::ErrorHooks;
use crate::http::{is_retry_safe, parse_retry_after};
use crate::pipeline::Pipeline;
use crate::rejected::Rejected;

/// A named policy as a `tower::Layer` (see the [module docs](self) for what it does for a
/// client and for a server).
///
/// ```
/// # use resilience_core as resilience;
/// use resilience::tower::ResilienceLayer;
///
/// // In front of an axum router: `Router::new().route(..).layer(layer)`.
/// let layer = ResilienceLayer::policy("checkout").shed_load();
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ResilienceLayer {
    pipeline: Pipeline,
}

impl ResilienceLayer {
    /// The client layer of the policy called `name` (its site in logs and metrics is
    /// `resilience::tower`).
    pub fn policy(name: &str) -> Self {
        ResilienceLayer {
            pipeline: Pipeline::site("resilience::tower", name),
        }
    }

    /// The server layer of the same policy: refusals become 429 / 503 responses and the
    /// inner service's error type is kept (`Infallible` for axum), so it fits `Router::layer`.
    pub fn shed_load(self) -> ShedLoadLayer {
        ShedLoadLayer {
            pipeline: self.pipeline,
        }
    }
}

/// The server form of [`ResilienceLayer`]: see [`ResilienceLayer::shed_load`].
#[derive(Debug, Clone, Copy)]
pub struct ShedLoadLayer {
    pipeline: Pipeline,
}

impl<S> tower_layer::Layer<S> for ResilienceLayer {
    type Service = Resilience<S>;
    fn layer(&self, inner: S) -> Resilience<S> {
        Resilience {
            inner,
            pipeline: self.pipeline,
        }
    }
}

impl<S> tower_layer::Layer<S> for ShedLoadLayer {
    type Service = ShedLoad<S>;
    fn layer(&self, inner: S) -> ShedLoad<S> {
        ShedLoad {
            inner,
            pipeline: self.pipeline,
        }
    }
}

/// The service of a [`ResilienceLayer`].
#[derive(Debug, Clone)]
pub struct Resilience<S> {
    inner: S,
    pipeline: Pipeline,
}

/// The service of a [`ShedLoadLayer`].
#[derive(Debug, Clone)]
pub struct ShedLoad<S> {
    inner: S,
    pipeline: Pipeline,
}

/// The error of a [`Resilience`] service: the policy refused the call, or the inner service
/// failed (its last error).
#[derive(Debug)]
pub enum Error<E> {
    /// A refusal of the policy (bulkhead full, rate limited, breaker open, timeout).
    // Not named `Rejected`: a second public item of that name would make rustc spell the
    // crate's `Rejected` in full in every diagnostic (the ui snapshots show it short).
    Refused(Rejected),
    /// The inner service's error.
    Inner(E),
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Refused(rejected) => write!(f, "{rejected}"),
            Error::Inner(error) => write!(f, "{error}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Refused(rejected) => Some(rejected),
            Error::Inner(error) => Some(error),
        }
    }
}

impl<E: std::error::Error + 'static> Classify for Error<E> {
    fn class(&self) -> ErrorClass {
        self.classification().class
    }
    fn classification(&self) -> Classification {
        match self {
            Error::Refused(rejected) => rejected.classification(),
            Error::Inner(error) => classify_error(error),
        }
    }
}

/// Why one try did not give the answer to return.
enum Failure<E, R> {
    /// An answer whose status the policy may retry; returned as it is after the last try.
    /// Boxed: only a failed try pays for moving it.
    Answer(Box<Response<R>>, Classification),
    Inner(E),
    Rejected(Rejected),
}

impl<E, R> From<Rejected> for Failure<E, R> {
    fn from(rejected: Rejected) -> Self {
        Failure::Rejected(rejected)
    }
}

/// Classifies the inner service's error through its `source()` chain.
fn classify<E: std::error::Error + 'static, R>(failure: &Failure<E, R>) -> Classification {
    match failure {
        Failure::Inner(error) => classify_error(error),
        other => classify_other(other),
    }
}

/// The server's inner errors are not looked into (they end the call either way).
fn classify_other<E, R>(failure: &Failure<E, R>) -> Classification {
    match failure {
        Failure::Answer(_, classification) => *classification,
        Failure::Inner(_) => Classification::OTHER,
        Failure::Rejected(rejected) => rejected.classification(),
    }
}

fn describe<E, R>(failure: &Failure<E, R>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match failure {
        Failure::Answer(response, _) => write!(f, "HTTP {}", response.status()),
        Failure::Inner(_) => f.write_str("the inner service failed"),
        Failure::Rejected(rejected) => write!(f, "{rejected}"),
    }
}

/// A non-2xx answer as a failure of its status, with its Retry-After.
fn answered<E, R>(response: Response<R>) -> Result<Response<R>, Failure<E, R>> {
    if response.status().is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    let classification = Classification::new(ErrorClass::Status(response.status().as_u16()))
        .with_retry_after(retry_after);
    Err(Failure::Answer(Box::new(response), classification))
}

/// Runs the policy around the inner service, one request per try from `request`.
async fn run<S, B, R>(
    pipeline: Pipeline,
    hooks: ErrorHooks<Failure<S::Error, R>>,
    inner: S,
    mut request: impl FnMut() -> Option<Request<B>>,
) -> Result<Response<R>, Failure<S::Error, R>>
where
    S: tower_service::Service<Request<B>, Response = Response<R>> + Clone,
{
    pipeline
        .run_with(hooks, move || {
            let (request, mut inner) = (request(), inner.clone());
            async move {
                // Unreachable: a request that cannot be copied is never retried (see the
                // server's hooks); were it, the try would be refused rather than sent.
                let request = request.ok_or(Failure::Rejected(Rejected::BulkheadFull))?;
                std::future::poll_fn(|cx| inner.poll_ready(cx))
                    .await
                    .map_err(Failure::Inner)?;
                answered(inner.call(request).await.map_err(Failure::Inner)?)
            }
        })
        .await
}

/// A copy of a request for another try: its head and a clone of its body.
fn copy<B: Clone>(request: &Request<B>) -> Request<B> {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    copy
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower_service::Service<Request<B>> for Resilience<S>
where
    S: tower_service::Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: std::error::Error + Send + 'static,
    B: Clone + Send + 'static,
    R: Send + 'static,
{
    type Response = Response<R>;
    type Error = Error<S::Error>;
    type Future = BoxFuture<Result<Response<R>, Error<S::Error>>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call drives its own clone of the inner service to readiness, under the policy.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let hooks = ErrorHooks::new(classify::<S::Error, R>, describe);
        let hooks = match is_retry_safe(request.method(), request.headers()) {
            true => hooks,
            false => hooks.unsent_only(),
        };
        let (pipeline, inner) = (self.pipeline, self.inner.clone());
        Box::pin(async move {
            match run(pipeline, hooks, inner, move || Some(copy(&request))).await {
                Ok(response) => Ok(response),
                Err(Failure::Answer(response, _)) => Ok(*response),
                Err(Failure::Inner(error)) => Err(Error::Inner(error)),
                Err(Failure::Rejected(rejected)) => Err(Error::Refused(rejected)),
            }
        })
    }
}

impl<S, B, R> tower_service::Service<Request<B>> for ShedLoad<S>
where
    S: tower_service::Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<R>, S::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // A server does not replay a request: its own handler's answers are never retried.
        let hooks = ErrorHooks::new(classify_other::<S::Error, R>, describe).retry_if(|_| false);
        let (pipeline, inner) = (self.pipeline, self.inner.clone());
        let mut request = Some(request);
        Box::pin(async move {
            match run(pipeline, hooks, inner, move || request.take()).await {
                Ok(response) => Ok(response),
                Err(Failure::Answer(response, _)) => Ok(*response),
                Err(Failure::Inner(error)) => Err(error),
                Err(Failure::Rejected(rejected)) => Ok(refusal(&rejected)),
            }
        })
    }
}

/// The answer to a refused request: 429 when rate limited, 503 otherwise, with Retry-After
/// (whole seconds, rounded up) when the refusal knows when to come back.
fn refusal<R: Default>(rejected: &Rejected) -> Response<R> {
    let (status, retry_after) = match rejected {
        Rejected::RateLimited { retry_after } => {
            (StatusCode::TOO_MANY_REQUESTS, Some(*retry_after))
        }
        Rejected::CircuitOpen { retry_after } => {
            (StatusCode::SERVICE_UNAVAILABLE, Some(*retry_after))
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    let mut response = Response::new(R::default());
    *response.status_mut() = status;
    if let Some(wait) = retry_after {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
