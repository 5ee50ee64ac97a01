//! Invalidation messages for the local tiers in front of Redis caches (`cache: { local: .. }`).
//!
//! An instance that stores an entry, deletes one, or deletes a function's entries publishes a
//! message on the channel `{key_prefix}cache:invalidate`; every other instance drops its local
//! copy. A message is `{origin}k{entry key}` (one entry) or `{origin}a{function prefix}`
//! (every entry of a function), the origin being 16 hex digits naming the connection that
//! sent it, so that an instance skips its own messages.
//!
//! One [`Subscriber`] per [`Backend`] (a URL on one tokio runtime): a task spawned on that
//! runtime at the first use of a two-tier cache, holding one pub/sub connection for as long
//! as the runtime runs. It is no thread, and it wakes only when a message arrives or the
//! connection breaks. While it is not subscribed, the local tiers take no new copies; when it
//! subscribes again it empties them (it may have missed messages meanwhile). A connection
//! that breaks without the task noticing (a network that drops packets silently) loses
//! messages until it is noticed: then a local copy is served for its `ttl` at most.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::{Either, select};

use super::connection::Backend;

/// The first wait before subscribing again after a broken connection; it doubles up to
/// [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// The longest wait between two attempts to subscribe.
const MAX_RETRY: Duration = Duration::from_secs(1);
/// The bound on connecting and subscribing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The channel of the messages for the caches under `key_prefix`.
pub(crate) fn channel(key_prefix: &str) -> String {
    format!("{key_prefix}cache:invalidate")
}

/// A message dropping the copies of one entry.
pub(crate) fn one(origin: u64, entry: &str) -> String {
    format!("{origin:016x}k{entry}")
}

/// A message dropping the copies of every entry of the function whose keys start with
/// `prefix`.
pub(crate) fn all(origin: u64, prefix: &str) -> String {
    format!("{origin:016x}a{prefix}")
}

/// What a message asks, once its origin is known to be another instance.
#[derive(Debug, PartialEq, Eq)]
enum Message<'a> {
    /// Drop the copy of this entry key.
    One(&'a str),
    /// Drop every copy of the function whose keys start with this.
    All(&'a str),
}

/// Reads a message; `None` for one of `own` origin, or one this version does not know.
fn parse(payload: &str, own: u64) -> Option<Message<'_>> {
    let origin = u64::from_str_radix(payload.get(..16)?, 16).ok()?;
    if origin == own {
        return None;
    }
    let rest = payload.get(17..)?;
    match payload.get(16..17)? {
        "k" => Some(Message::One(rest)),
        "a" => Some(Message::All(rest)),
        _ => None,
    }
}

/// A local tier that listens: the cache of one function under one key prefix.
pub(crate) trait Listener: Send + Sync {
    /// The channel it listens on.
    fn channel(&self) -> &str;
    /// The start of its entries' keys (`{key_prefix}cache:...:{function}:`).
    fn prefix(&self) -> &str;
    /// Drops the copy of the entry whose key is `prefix` + `rest`.
    fn drop_one(&self, rest: &str);
    /// Drops every copy.
    fn drop_all(&self);
    /// What it listens for, to register it once: its cache's address and its prefix.
    fn identity(&self) -> (usize, &str);
}

/// The pub/sub side of one backend: its listeners, and whether it is subscribed now.
pub(crate) struct Subscriber {
    listeners: Mutex<Vec<Arc<dyn Listener>>>,
    /// New channels, for the task to subscribe to.
    channels: tokio::sync::mpsc::UnboundedSender<String>,
    subscribed: AtomicBool,
}

impl Subscriber {
    /// Whether messages reach the listeners now: a local tier keeps no new copy otherwise.
    pub(crate) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    /// Adds `listener`, once per cache and prefix.
    pub(crate) fn listen(&self, listener: Arc<dyn Listener>) {
        let mut listeners = self
            .listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if listeners
            .iter()
            .any(|known| known.identity() == listener.identity())
        {
            return;
        }
        if !listeners
            .iter()
            .any(|known| known.channel() == listener.channel())
        {
            // The task holds the receiver for as long as the runtime runs.
            let _ = self.channels.send(listener.channel().to_string());
        }
        listeners.push(listener);
    }

    /// Whether a listener for this cache and prefix is registered.
    pub(crate) fn listens(&self, identity: (usize, &str)) -> bool {
        self.listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .any(|known| known.identity() == identity)
    }

    fn listeners(&self) -> Vec<Arc<dyn Listener>> {
        self.listeners
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Hands a message of `channel` to its listeners.
    fn deliver(&self, channel: &str, payload: &str, own: u64) {
        let Some(message) = parse(payload, own) else {
            return;
        };
        for listener in self.listeners() {
            if listener.channel() != channel {
                continue;
            }
            match message {
                Message::One(entry) => {
                    if let Some(rest) = entry.strip_prefix(listener.prefix()) {
                        listener.drop_one(rest);
                    }
                }
                Message::All(prefix) => {
                    if prefix == listener.prefix() {
                        listener.drop_all();
                    }
                }
            }
        }
    }

    /// Subscribed, or not: either way the copies kept so far may have missed messages.
    fn set_subscribed(&self, subscribed: bool) {
        self.subscribed.store(subscribed, Ordering::Release);
        for listener in self.listeners() {
            listener.drop_all();
        }
    }
}

/// The subscriber of `backend`, started (a task on the current tokio runtime) at its first
/// use; `None` outside a runtime.
pub(crate) fn subscriber(backend: &Backend) -> Option<&Arc<Subscriber>> {
    if let Some(subscriber) = backend.subscriber.get() {
        return Some(subscriber);
    }
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    Some(backend.subscriber.get_or_init(|| {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        let subscriber = Arc::new(Subscriber {
            listeners: Mutex::new(Vec::new()),
            channels: sender,
            subscribed: AtomicBool::new(false),
        });
        runtime.spawn(run(
            Arc::downgrade(&subscriber),
            super::connection::one_node(backend.url()),
            backend.origin(),
            receiver,
        ));
        subscriber
    }))
}

/// The task: subscribes, hands each message on, and subscribes again (after a pause that
/// doubles, up to [`MAX_RETRY`]) when the connection breaks. It ends with its runtime, or
/// when the backend is gone.
async fn run(
    subscriber: std::sync::Weak<Subscriber>,
    url: String,
    own: u64,
    mut new_channels: tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let mut channels: HashSet<String> = HashSet::new();
    let mut retry = FIRST_RETRY;
    loop {
        if subscriber.strong_count() == 0 {
            return;
        }
        match session(&subscriber, &url, own, &mut channels, &mut new_channels).await {
            Ended::Gone => return,
            Ended::AfterMessages => retry = FIRST_RETRY,
            Ended::Failed => {}
        }
        if let Some(subscriber) = subscriber.upgrade() {
            subscriber.set_subscribed(false);
        }
        tracing::debug!(target: "resilience::backend", url = %url, ?retry, "invalidation subscription lost; subscribing again");
        tokio::time::sleep(retry).await;
        retry = retry.saturating_mul(2).min(MAX_RETRY);
    }
}

/// How a session ended.
enum Ended {
    /// The subscriber is gone (or the channel of new channels closed): the task ends.
    Gone,
    /// The connection broke after it had been subscribed.
    AfterMessages,
    /// It could not connect or subscribe.
    Failed,
}

/// One pub/sub connection: subscribes to every channel, then hands messages on until the
/// connection breaks.
async fn session(
    subscriber: &std::sync::Weak<Subscriber>,
    url: &str,
    own: u64,
    channels: &mut HashSet<String>,
    new_channels: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
) -> Ended {
    // Channels registered before this session: subscribed below with the others.
    while let Ok(channel) = new_channels.try_recv() {
        channels.insert(channel);
    }
    let connect = async {
        let client = redis::Client::open(url)?;
        let pubsub = client.get_async_pubsub().await?;
        let (mut sink, stream) = pubsub.split();
        if !channels.is_empty() {
            sink.subscribe(channels.iter().collect::<Vec<_>>()).await?;
        }
        redis::RedisResult::Ok((sink, stream))
    };
    let Ok(Ok((mut sink, mut stream))) = tokio::time::timeout(CONNECT_TIMEOUT, connect).await
    else {
        return Ended::Failed;
    };
    match subscriber.upgrade() {
        Some(subscriber) => subscriber.set_subscribed(true),
        None => return Ended::Gone,
    }
    loop {
        let next = match select(stream.next(), Box::pin(new_channels.recv())).await {
            Either::Left((message, _)) => Either::Left(message),
            Either::Right((channel, _)) => Either::Right(channel),
        };
        match next {
            Either::Left(Some(message)) => {
                let Some(subscriber) = subscriber.upgrade() else {
                    return Ended::Gone;
                };
                let channel = message.get_channel_name();
                if let Ok(payload) = std::str::from_utf8(message.get_payload_bytes()) {
                    subscriber.deliver(channel, payload, own);
                }
            }
            Either::Left(None) => return Ended::AfterMessages,
            Either::Right(Some(channel)) => {
                if channels.insert(channel.clone()) && sink.subscribe(&channel).await.is_err() {
                    return Ended::AfterMessages;
                }
                // Copies taken before the subscription could have missed a message.
                if let Some(subscriber) = subscriber.upgrade() {
                    subscriber.set_subscribed(true);
                }
            }
            Either::Right(None) => return Ended::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_their_origin_and_what_they_drop() {
        let one = one(0xab, "p:cache:{x}:f:[1]");
        assert_eq!(one, "00000000000000abkp:cache:{x}:f:[1]");
        assert_eq!(parse(&one, 7), Some(Message::One("p:cache:{x}:f:[1]")));
        assert_eq!(parse(&one, 0xab), None, "an instance skips its own");
        let all = all(u64::MAX, "p:cache:{x}:f:");
        assert_eq!(parse(&all, 7), Some(Message::All("p:cache:{x}:f:")));
        for unknown in ["", "zz", "00000000000000abx", "0000000000000ab"] {
            assert_eq!(parse(unknown, 7), None, "{unknown:?}");
        }
    }
}
