//! One connection per Redis URL, every round trip bounded, and a failing Redis skipped for a
//! while so that an outage does not add the timeout to every call.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

/// Failures in a row after which Redis is skipped.
const FAILURES_BEFORE_SKIP: u32 = 3;
/// How long Redis is skipped after that; the next call after it tries again.
const SKIP_FOR: Duration = Duration::from_secs(1);

/// Why a round trip gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BackendError {
    /// It took longer than `backend_timeout`.
    Timeout,
    /// Redis answered with an error, or the connection failed.
    Failed(String),
    /// Redis is being skipped after repeated failures.
    Skipped,
}

impl BackendError {
    /// Logs and counts this failure of `policy`'s backend at `site`; `on_error` is what the
    /// call does instead.
    pub(crate) fn report(
        &self,
        site: &str,
        policy: &str,
        on_error: crate::backend::OnBackendError,
    ) {
        let skipped = matches!(self, BackendError::Skipped);
        crate::observe::backend_failed(site, policy, self, skipped, on_error);
    }
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Timeout => f.write_str("timed out"),
            BackendError::Failed(error) => f.write_str(error),
            BackendError::Skipped => f.write_str("skipped after repeated failures"),
        }
    }
}

/// A connection to one server (reconnecting by itself), or to a Redis Cluster (following
/// `MOVED`, `ASK` and failovers by itself).
#[derive(Clone)]
pub(crate) enum Connection {
    /// `redis://` or `redis+unix://`.
    Single(ConnectionManager),
    /// `redis+cluster://`.
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Connection::Single(connection) => connection.req_packed_commands(cmd, offset, count),
            Connection::Cluster(connection) => connection.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

/// Opens the connection `url` names, each attempt bounded by `timeout`, without retries of
/// its own: a refused connection fails at once, and the skip below decides when to try again.
async fn connect(url: &str, timeout: Duration) -> redis::RedisResult<Connection> {
    if let Some(nodes) = resilience_config::backend::cluster_nodes(url) {
        let client = redis::cluster::ClusterClientBuilder::new(nodes)
            .retries(0)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .build()?;
        return Ok(Connection::Cluster(client.get_async_connection().await?));
    }
    let client = redis::Client::open(url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(timeout));
    Ok(Connection::Single(
        ConnectionManager::new_with_config(client, config).await?,
    ))
}

/// The URL of one server of `url`, for a pub/sub connection: the first node of a cluster
/// (a cluster delivers every `PUBLISH` to every node), or `url` itself.
pub(crate) fn one_node(url: &str) -> String {
    resilience_config::backend::cluster_nodes(url)
        .and_then(|nodes| nodes.into_iter().next())
        .unwrap_or_else(|| url.to_string())
}

/// One Redis server.
pub(crate) struct Backend {
    url: String,
    /// The connection; dropped after a failed round trip, so the next one reconnects (a
    /// connection's driver task lives on the runtime that made it, which may be gone).
    connection: arc_swap::ArcSwapOption<Connection>,
    failures: AtomicU32,
    /// Until when (nanoseconds since [`EPOCH`]) Redis is skipped.
    skip_until: AtomicU64,
    /// A number naming this connection in invalidation messages, so that it skips its own.
    origin: u64,
    /// The invalidation messages' subscriber, started at the first use of a two-tier cache.
    pub(crate) subscriber: std::sync::OnceLock<Arc<super::invalidation::Subscriber>>,
    /// This instance's leases, by the key of the schedule they were taken from (a backend is
    /// one per runtime: an instance).
    leases: Mutex<HashMap<String, Arc<super::lease::Lease>>>,
}

static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn now() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Backends by URL and by the tokio runtime using them: a connection's driver task runs on
/// the runtime that made it, so a second runtime (a test's, or a blocking pool's own) gets
/// its own connection rather than waiting on a runtime that may be parked or gone.
type Backends = HashMap<(String, Option<tokio::runtime::Id>), Arc<Backend>>;

static BACKENDS: LazyLock<Mutex<Backends>> = LazyLock::new(Default::default);

/// The backend for `url` on the current runtime, shared by every policy naming it.
pub(crate) fn backend(url: &str) -> Arc<Backend> {
    let runtime = tokio::runtime::Handle::try_current()
        .ok()
        .map(|handle| handle.id());
    let mut backends = BACKENDS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // The common case, without allocating the key.
    if let Some(backend) = backends
        .iter()
        .find(|((known, id), _)| known == url && *id == runtime)
        .map(|(_, backend)| backend)
    {
        return Arc::clone(backend);
    }
    Arc::clone(
        backends
            .entry((url.to_string(), runtime))
            .or_insert_with(|| {
                Arc::new(Backend {
                    url: url.to_string(),
                    connection: arc_swap::ArcSwapOption::empty(),
                    failures: AtomicU32::new(0),
                    skip_until: AtomicU64::new(0),
                    origin: rand::random(),
                    subscriber: std::sync::OnceLock::new(),
                    leases: Mutex::default(),
                })
            }),
    )
}

impl Backend {
    /// The URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The number naming this connection in invalidation messages.
    pub(crate) fn origin(&self) -> u64 {
        self.origin
    }

    /// This instance's lease on the schedule `key`.
    pub(crate) fn lease(&self, key: &str) -> Arc<super::lease::Lease> {
        let mut leases = self
            .leases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(lease) = leases.get(key) {
            return Arc::clone(lease);
        }
        Arc::clone(leases.entry(key.to_string()).or_default())
    }

    /// Drops this instance's lease on the schedule `key`, if it holds one.
    pub(crate) fn drop_lease(&self, key: &str) {
        let leases = self
            .leases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(lease) = leases.get(key) {
            lease.drop_all();
        }
    }

    /// Runs one round trip on the connection, within `timeout`.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        timeout: Duration,
        round_trip: F,
    ) -> Result<T, BackendError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if now() < self.skip_until.load(Ordering::Relaxed) {
            return Err(BackendError::Skipped);
        }
        let attempt = async {
            let connection = match self.connection.load_full() {
                Some(connection) => (*connection).clone(),
                None => {
                    let connection = connect(&self.url, timeout).await?;
                    self.connection.store(Some(Arc::new(connection.clone())));
                    connection
                }
            };
            round_trip(connection).await
        };
        let result = match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(BackendError::Failed(error.to_string())),
            Err(_) => Err(BackendError::Timeout),
        };
        match &result {
            Ok(_) => self.failures.store(0, Ordering::Relaxed),
            Err(error) => {
                if matches!(error, BackendError::Failed(_) | BackendError::Timeout) {
                    self.connection.store(None);
                }
                if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= FAILURES_BEFORE_SKIP {
                    self.failures.store(0, Ordering::Relaxed);
                    let until = now()
                        .saturating_add(u64::try_from(SKIP_FOR.as_nanos()).unwrap_or(u64::MAX));
                    self.skip_until.store(until, Ordering::Relaxed);
                }
            }
        }
        result
    }
}
