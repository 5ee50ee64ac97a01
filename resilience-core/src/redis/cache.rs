//! A cache kept in Redis: values serialized with serde, so every instance of a service shares
//! one copy of each entry, and one load per key across instances.
//!
//! Entry format (the value of key `<key_prefix>cache:{<policy>}:<function>:<key as JSON>`, see
//! [`super::keys`]): one version byte, one freshness byte (0: a value, 1: a cached failure,
//! under `negative_ttl`), then the value as JSON, in version 2 after the life left below which
//! it is stale (see `cache::frame`). An entry with another version byte is a miss, never
//! misread. Redis expires entries (`PX`, with the site's `ttl_jitter` applied).
//!
//! Cross-instance single-flight: on a miss, one script ([`get_or_lock`]) returns the entry or
//! takes the lock `{entry key}:lock` (`SET NX PX`) with a token of this load. The holder
//! renews the lock every third of its [`lease`] while its load runs, and stores the value and
//! releases the lock in one round trip ([`store_and_unlock`]); a load that ends any other
//! way (an error that is not stored, a cancelled or panicking caller) releases it through
//! [`LockGuard`]. A release deletes the lock only while it still holds the holder's token.
//! The others repeat the script every [`POLL`]: they get the value once stored, or the lock
//! once released, so a wait lasts as long as the load itself. Only a holder that stopped
//! renewing (a crashed or frozen instance) makes them wait longer: until its lease runs out.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use super::connection::{Backend, BackendError};

/// How often a waiting instance asks again for the value or the lock.
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// How long a waiter waits for a holder that keeps renewing its lock before it loads itself:
/// a load running this long is presumed stuck.
pub(crate) const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// The floor of a lease, so that a short `backend_timeout` does not renew many times a second.
const MIN_LEASE: Duration = Duration::from_millis(300);

/// How long the load lock lives unless renewed: three `backend_timeout`s (at least
/// [`MIN_LEASE`]). The holder renews it every third of that, and a renewal takes at most one
/// `backend_timeout`, so a live holder's lock never lapses; a dead holder's lock holds the
/// others back for one lease at most.
pub(crate) fn lease(timeout: Duration) -> Duration {
    timeout.saturating_mul(3).max(MIN_LEASE)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

pub(crate) async fn get(
    backend: &Backend,
    timeout: Duration,
    key: &str,
) -> Result<Option<Vec<u8>>, BackendError> {
    backend
        .run(timeout, |mut connection| async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<Option<Vec<u8>>>(&mut connection)
                .await
        })
        .await
}

/// The entry and how long it still lives (`None`: no expiry), in one round trip (`GET` and
/// `PTTL` pipelined): a local copy lives no longer than the entry it copies.
pub(crate) async fn get_with_ttl(
    backend: &Backend,
    timeout: Duration,
    key: &str,
) -> Result<Option<(Vec<u8>, Option<Duration>)>, BackendError> {
    let (bytes, ttl): (Option<Vec<u8>>, i64) = backend
        .run(timeout, |mut connection| async move {
            redis::pipe()
                .cmd("GET")
                .arg(key)
                .cmd("PTTL")
                .arg(key)
                .query_async(&mut connection)
                .await
        })
        .await?;
    // -1: no expiry; -2: gone between the two commands (it cannot be, they run together).
    let ttl = u64::try_from(ttl).ok().map(Duration::from_millis);
    Ok(bytes.map(|bytes| (bytes, ttl)))
}

/// KEYS: the entry, its lock. ARGV: the token, the lease in milliseconds. Returns {1, entry}
/// when the entry exists, {2, ''} when the lock was taken for the token, {0, ''} when another
/// load holds it.
static GET_OR_LOCK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local entry = redis.call('GET', KEYS[1])
if entry then return {1, entry} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2, ''} end
return {0, ''}
",
    )
});

/// KEYS: the entry, its lock. ARGV: the token, then (when there is a value to store) the
/// frame and its ttl in milliseconds, then (when local tiers are to hear of it) the channel
/// and the message's head, to which the entry's key is appended. Stores the frame and
/// publishes the message, and deletes the lock if the token still holds it.
static STORE_AND_UNLOCK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if ARGV[2] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
if ARGV[4] then redis.call('PUBLISH', ARGV[4], ARGV[5] .. KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
",
    )
});

/// An invalidation message to publish: its channel, and its head (the entry key follows).
pub(crate) type Announce<'a> = Option<(&'a str, &'a str)>;

/// KEYS: the lock. ARGV: the token, the lease in milliseconds. Extends the lock if the token
/// still holds it; 1 if it did.
static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
",
    )
});

/// What [`get_or_lock`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fetched {
    /// The entry (of any format version).
    Entry(Vec<u8>),
    /// No entry, and the lock is now this load's.
    Locked,
    /// No entry, and another load holds the lock.
    Held,
}

/// A load's claim on the lock of `entry`: its key and a token no other load has.
#[derive(Debug, Clone)]
pub(crate) struct Lock {
    pub(crate) key: String,
    pub(crate) token: String,
}

impl Lock {
    /// A new claim on the lock of `entry`.
    pub(crate) fn new(entry: &str) -> Self {
        Lock {
            key: super::keys::lock(entry),
            token: format!("{:032x}", rand::random::<u128>()),
        }
    }
}

/// Takes the lock for `lock`'s token if no load holds it (the refresh of a stale entry);
/// whether it did.
pub(crate) async fn try_lock(
    backend: &Backend,
    timeout: Duration,
    lock: &Lock,
    lease: Duration,
) -> Result<bool, BackendError> {
    backend
        .run(timeout, |mut connection| async move {
            redis::cmd("SET")
                .arg(&lock.key)
                .arg(&lock.token)
                .arg("NX")
                .arg("PX")
                .arg(millis(lease))
                .query_async::<Option<String>>(&mut connection)
                .await
        })
        .await
        .map(|set| set.is_some())
}

/// In one round trip: the entry if there is one, else the lock for `lock`'s token.
pub(crate) async fn get_or_lock(
    backend: &Backend,
    timeout: Duration,
    entry: &str,
    lock: &Lock,
    lease: Duration,
) -> Result<Fetched, BackendError> {
    let (found, bytes): (i64, Vec<u8>) = backend
        .run(timeout, |mut connection| async move {
            GET_OR_LOCK
                .key(entry)
                .key(&lock.key)
                .arg(&lock.token)
                .arg(millis(lease))
                .invoke_async(&mut connection)
                .await
        })
        .await?;
    Ok(match found {
        1 => Fetched::Entry(bytes),
        2 => Fetched::Locked,
        _ => Fetched::Held,
    })
}

/// Stores `value` (a frame and its ttl) if any, announcing it with `announce` if given, and
/// releases `lock` if its token still holds it: one round trip.
pub(crate) async fn store_and_unlock(
    backend: &Backend,
    timeout: Duration,
    entry: &str,
    lock: &Lock,
    value: Option<(&[u8], Duration)>,
    announce: Announce<'_>,
) -> Result<(), BackendError> {
    backend
        .run(timeout, |mut connection| async move {
            let mut invocation = STORE_AND_UNLOCK.key(entry);
            invocation.key(&lock.key).arg(&lock.token);
            if let Some((frame, ttl)) = value {
                invocation.arg(frame).arg(millis(ttl));
                if let Some((channel, head)) = announce {
                    invocation.arg(channel).arg(head);
                }
            }
            invocation.invoke_async::<i64>(&mut connection).await
        })
        .await
        .map(drop)
}

/// Extends `lock` to `lease` if its token still holds it; `Ok(false)` when it does not (it
/// expired, or was invalidated).
pub(crate) async fn renew(
    backend: &Backend,
    timeout: Duration,
    lock: &Lock,
    lease: Duration,
) -> Result<bool, BackendError> {
    backend
        .run(timeout, |mut connection| async move {
            RENEW
                .key(&lock.key)
                .arg(&lock.token)
                .arg(millis(lease))
                .invoke_async::<i64>(&mut connection)
                .await
        })
        .await
        .map(|renewed| renewed == 1)
}

/// Runs `load` while renewing `lock` every third of `lease`, so that the others wait for as
/// long as the load runs and no longer. A failed renewal is tried again at the next turn; a
/// lock that is no longer ours is left alone.
pub(crate) async fn renewing<T>(
    backend: &Backend,
    timeout: Duration,
    lock: &Lock,
    lease: Duration,
    load: impl std::future::Future<Output = T>,
) -> T {
    let renewals = async {
        let every = lease / 3;
        // Ends with the load (the select below); while it runs, one round trip per turn.
        loop {
            tokio::time::sleep(every).await;
            if let Ok(false) = renew(backend, timeout, lock, lease).await {
                return std::future::pending::<()>().await;
            }
        }
    };
    let load = std::pin::pin!(load);
    let renewals = std::pin::pin!(renewals);
    match futures_util::future::select(load, renewals).await {
        futures_util::future::Either::Left((value, _)) => value,
        futures_util::future::Either::Right(((), load)) => load.await,
    }
}

/// The holder's lock, released when dropped before [`disarm`](Self::disarm): a load whose
/// caller is cancelled or panics spawns the release on the current runtime (a drop cannot
/// wait for it). Without a runtime the lease expires by itself.
pub(crate) struct LockGuard {
    backend: Arc<Backend>,
    timeout: Duration,
    entry: String,
    lock: Option<Lock>,
}

impl LockGuard {
    /// Guards `lock`, the lock of `entry`.
    pub(crate) fn new(backend: Arc<Backend>, timeout: Duration, entry: &str, lock: Lock) -> Self {
        LockGuard {
            backend,
            timeout,
            entry: entry.to_string(),
            lock: Some(lock),
        }
    }

    /// The lock (until disarmed).
    pub(crate) fn lock(&self) -> Option<&Lock> {
        self.lock.as_ref()
    }

    /// The load ended and released the lock itself (or tried to: a lease ends anyway).
    pub(crate) fn disarm(&mut self) {
        self.lock = None;
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (backend, timeout, entry) = (
            Arc::clone(&self.backend),
            self.timeout,
            std::mem::take(&mut self.entry),
        );
        runtime.spawn(async move {
            let _ = store_and_unlock(&backend, timeout, &entry, &lock, None, None).await;
        });
    }
}

/// Deletes keys (an entry and its lock, or the results of [`keys`]), then publishes
/// `message` on its channel if given (the local tiers' invalidation): one round trip.
pub(crate) async fn delete(
    backend: &Backend,
    timeout: Duration,
    keys: Vec<String>,
    message: Option<(String, String)>,
) -> Result<(), BackendError> {
    if keys.is_empty() && message.is_none() {
        return Ok(());
    }
    backend
        .run(timeout, |mut connection| async move {
            let mut delete = redis::cmd("DEL");
            delete.arg(&keys);
            let mut publish = redis::cmd("PUBLISH");
            if let Some((channel, message)) = &message {
                publish.arg(channel).arg(message);
            }
            match (keys.is_empty(), message.is_some()) {
                // A cluster refuses a pipeline over two slots (the channel is hashed as a
                // key): the two commands one after the other there.
                (false, true)
                    if matches!(connection, super::connection::Connection::Cluster(_)) =>
                {
                    delete.query_async::<()>(&mut connection).await?;
                    publish.query_async::<()>(&mut connection).await
                }
                (false, true) => {
                    redis::pipe()
                        .add_command(delete)
                        .ignore()
                        .add_command(publish)
                        .ignore()
                        .query_async::<()>(&mut connection)
                        .await
                }
                (false, false) => delete.query_async::<()>(&mut connection).await,
                (true, _) => publish.query_async::<()>(&mut connection).await,
            }
        })
        .await
}

/// Every key starting with `prefix` (SCAN, so a large database is not blocked).
pub(crate) async fn keys(
    backend: &Backend,
    timeout: Duration,
    prefix: &str,
) -> Result<Vec<String>, BackendError> {
    let pattern = format!("{}*", prefix.replace('*', "\\*").replace('?', "\\?"));
    // On a cluster, every key of the function is in the slot of its policy's tag.
    let slot = super::keys::slot(prefix);
    backend
        .run(timeout, |mut connection| async move {
            use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
            let mut found = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500);
                let (next, batch): (u64, Vec<String>) = match &mut connection {
                    super::connection::Connection::Cluster(cluster) => {
                        let node = Route::new(slot, SlotAddr::Master);
                        let route =
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(node));
                        redis::from_redis_value(cluster.route_command(scan, route).await?)?
                    }
                    super::connection::Connection::Single(_) => {
                        scan.query_async(&mut connection).await?
                    }
                };
                found.extend(batch);
                if next == 0 {
                    return Ok(found);
                }
                cursor = next;
            }
        })
        .await
}
