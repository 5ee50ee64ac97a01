//! The middleware's response cache: a policy's `cache: { http: true }` keeps the answers to GET
//! and HEAD requests by HTTP's rules (RFC 9111), read by `http-cache-semantics`, not by hand:
//! what may be stored (`no-store`, `private`, `Authorization`), for how long (`s-maxage`,
//! `max-age`, `Expires`), which request a stored answer fits (`Vary`), and how a stale one is
//! revalidated (`If-None-Match` from its `ETag`, `If-Modified-Since` from its `Last-Modified`;
//! a 304 refreshes the entry without a body). On top of it, the two extensions of RFC 5861,
//! which that crate leaves to its user: `stale-while-revalidate` and `stale-if-error`.
//!
//! The cache is shared: an answer marked `private` is not stored, nor one to a request with
//! `Authorization` unless the answer allows it (`public`, `s-maxage`, `must-revalidate`), and
//! `s-maxage` wins over `max-age`. A middleware serves a process, often many users of it, so the
//! rules of a shared cache are the safe ones.
//!
//! Entries live in the crate's bounded store ([`Cache`]), so the section's `max_entries` and
//! `max_bytes` hold (an entry weighs its body, its headers and its URL). Its `ttl`, if set,
//! bounds how long an answer is kept at all (for revalidation, past its freshness); by default
//! an answer stays until the bounds evict it. The section's other keys (`ttl_jitter`,
//! `negative_ttl`, `stale_while_revalidate`, `early_refresh`) are `#[cached]`'s: the answers'
//! own headers say all that here.
//!
//! Time is tokio's clock, seen as a `SystemTime` anchored at the first use (see [`now`]), so a
//! test that pauses tokio's clock moves the cache's clock with it.

use std::any::Any;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use http_cache_semantics::{AfterResponse, BeforeRequest, CacheOptions, CachePolicy};
use reqwest::{Request, Response, Url};
use reqwest_middleware::Next;

use super::middleware::{rebuilt, through};
use crate::cache::{Cache, CacheSpec, Freshness, Lookup};
use crate::pipeline::{Pipeline, Plan};
use crate::registry::SharedByName;

/// How long an answer is kept when the section sets no `ttl`: until the bounds evict it.
const KEEP: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// One policy's response cache.
pub(crate) struct HttpCache {
    store: Cache<String, Arc<Entry>>,
}

/// What the store keeps under a key.
enum Entry {
    /// An answer (boxed: a `Vary` entry need not take its room).
    Answer(Box<Stored>),
    /// The URL's answers vary on these request headers: each is under the key that adds the
    /// request's values of them (see [`variant_key`]).
    Vary(Vec<HeaderName>),
}

/// A stored answer.
struct Stored {
    policy: CachePolicy,
    status: StatusCode,
    version: Version,
    url: Url,
    headers: HeaderMap,
    body: Bytes,
    /// When it stops being fresh.
    stale_at: SystemTime,
    /// Its `stale-while-revalidate` and `stale-if-error` (zero: none, or a `must-revalidate`,
    /// `proxy-revalidate` or `no-cache` that forbids serving it stale).
    while_revalidating: Duration,
    if_error: Duration,
    /// A caller is revalidating it: within `stale-while-revalidate`, the others are served it
    /// stale meanwhile.
    refreshing: AtomicBool,
}

/// A request as the cache's rules see it: its normalised URL, method and headers.
struct View {
    uri: Uri,
    method: Method,
    headers: HeaderMap,
}

impl http_cache_semantics::RequestLike for View {
    fn uri(&self) -> Uri {
        self.uri.clone()
    }
    fn is_same_uri(&self, other: &Uri) -> bool {
        self.uri == *other
    }
    fn method(&self) -> &Method {
        &self.method
    }
    fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

/// A response's head, as the cache's rules see it.
struct Head<'a>(&'a Response);

impl http_cache_semantics::ResponseLike for Head<'_> {
    fn status(&self) -> StatusCode {
        self.0.status()
    }
    fn headers(&self) -> &HeaderMap {
        self.0.headers()
    }
}

/// The cache's clock: tokio's clock, as a `SystemTime` (which `http-cache-semantics` counts in)
/// anchored at the first read. A paused tokio clock pauses it; an advanced one advances it.
pub(crate) fn now() -> SystemTime {
    static ANCHOR: OnceLock<(SystemTime, std::time::Instant)> = OnceLock::new();
    let (system, instant) =
        *ANCHOR.get_or_init(|| (SystemTime::now(), tokio::time::Instant::now().into_std()));
    let current = tokio::time::Instant::now().into_std();
    // A runtime paused before the anchor was taken reads an earlier instant.
    match current.checked_duration_since(instant) {
        Some(ahead) => system.checked_add(ahead),
        None => system.checked_sub(instant.saturating_duration_since(current)),
    }
    .unwrap_or(system)
}

/// The key part of a URL: scheme and host lower-cased, the scheme's default port dropped (as
/// `Url` does), the query's parameters sorted by name (a stable sort: repeated names keep
/// their order), no fragment. `None` for a URL with credentials in it: such a request is
/// not cached.
pub(crate) fn normalised(url: &Url) -> Option<String> {
    if !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let mut key = String::with_capacity(url.as_str().len());
    key.push_str(&url.scheme().to_ascii_lowercase());
    key.push_str("://");
    key.push_str(&url.host_str()?.to_ascii_lowercase());
    if let Some(port) = url.port() {
        let _ = write!(key, ":{port}");
    }
    key.push_str(url.path());
    if let Some(query) = url.query() {
        let mut pairs: Vec<&str> = query.split('&').filter(|pair| !pair.is_empty()).collect();
        pairs.sort_by_key(|pair| pair.split('=').next().unwrap_or(pair));
        for (index, pair) in pairs.iter().enumerate() {
            key.push(if index == 0 { '?' } else { '&' });
            key.push_str(pair);
        }
    }
    Some(key)
}

/// The key of the variant of `primary` that a request with `headers` selects, for an answer
/// that varies on `names`.
fn variant_key(primary: &str, names: &[HeaderName], headers: &HeaderMap) -> String {
    let mut key = primary.to_owned();
    for name in names {
        key.push('\n');
        key.push_str(name.as_str());
        key.push(':');
        for (index, value) in headers.get_all(name).iter().enumerate() {
            if index > 0 {
                key.push(',');
            }
            key.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
    }
    key
}

/// The `Vary` names of an answer; `None` for `Vary: *` (it matches no later request).
fn vary_names(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for value in headers.get_all(http::header::VARY) {
        for name in value.to_str().unwrap_or("*").split(',') {
            let name = name.trim();
            if name == "*" {
                return None;
            }
            if let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) {
                names.push(name);
            }
        }
    }
    Some(names)
}

/// The seconds of a `Cache-Control` directive of `headers` (`stale-if-error=60`), if present.
fn directive(headers: &HeaderMap, wanted: &str) -> Option<Duration> {
    directives(headers)
        .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
        .and_then(|(_, value)| value?.trim_matches('"').parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// The directives of `headers`' `Cache-Control` fields: name, and value if any.
fn directives(headers: &HeaderMap) -> impl Iterator<Item = (&str, Option<&str>)> {
    headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|directive| match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (directive.trim(), None),
        })
}

/// Whether the answer must not be served stale (RFC 9111, 5.2.2.2 and 5.2.2.8).
fn forbids_stale(headers: &HeaderMap) -> bool {
    directives(headers).any(|(name, _)| {
        ["must-revalidate", "proxy-revalidate", "no-cache"]
            .iter()
            .any(|forbidding| name.eq_ignore_ascii_case(forbidding))
    })
}

impl Stored {
    /// An answer stored at `now` under `policy`.
    fn new(
        policy: CachePolicy,
        (status, version, url): (StatusCode, Version, Url),
        headers: HeaderMap,
        body: Bytes,
        now: SystemTime,
    ) -> Self {
        let stale_at = now.checked_add(policy.time_to_live(now)).unwrap_or(now);
        let (while_revalidating, if_error) = match forbids_stale(&headers) {
            true => (Duration::ZERO, Duration::ZERO),
            false => (
                directive(&headers, "stale-while-revalidate").unwrap_or_default(),
                directive(&headers, "stale-if-error").unwrap_or_default(),
            ),
        };
        Stored {
            policy,
            status,
            version,
            url,
            headers,
            body,
            stale_at,
            while_revalidating,
            if_error,
            refreshing: AtomicBool::new(false),
        }
    }

    /// How long it has been stale at `now` (zero while fresh).
    fn stale_for(&self, now: SystemTime) -> Duration {
        now.duration_since(self.stale_at).unwrap_or_default()
    }

    /// Whether, at `now`, it may stand in for a failed revalidation (`stale-if-error`).
    fn serves_on_error(&self, now: SystemTime) -> bool {
        self.stale_for(now) < self.if_error
    }

    /// The answer with `headers` and the stored body.
    fn answer(
        &self,
        status: StatusCode,
        headers: HeaderMap,
    ) -> reqwest_middleware::Result<Response> {
        rebuilt(
            (status, self.version, self.url.clone()),
            headers,
            self.body.clone(),
        )
        .map_err(reqwest_middleware::Error::middleware)
    }

    /// The answer served stale at `now`: its headers, with its `Age`.
    fn stale_answer(&self, now: SystemTime) -> reqwest_middleware::Result<Response> {
        let mut headers = self.headers.clone();
        if let Ok(age) = HeaderValue::from_str(&self.policy.age(now).as_secs().to_string()) {
            headers.insert(http::header::AGE, age);
        }
        self.answer(self.status, headers)
    }

    /// The bytes it holds, for `max_bytes`: body, headers and URL, plus the fixed part.
    fn weight(&self) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        let bytes = size_of::<Stored>() + self.body.len() + 2 * headers + self.url.as_str().len();
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }
}

/// The store's weigher of an entry (see [`Stored::weight`]).
fn weigh_entry(value: &dyn Any) -> u64 {
    match value.downcast_ref::<Arc<Entry>>().map(Arc::as_ref) {
        Some(Entry::Answer(stored)) => stored.weight(),
        Some(Entry::Vary(names)) => {
            u64::try_from(size_of::<Entry>() + 32 * names.len()).unwrap_or(u64::MAX)
        }
        None => 1,
    }
}

/// The store's values for a `cache` section: its bounds, `ttl` and switch; nothing of
/// `#[cached]`'s own keys.
fn store_spec(spec: CacheSpec) -> CacheSpec {
    let mut store = CacheSpec::new(spec.ttl);
    store.max_entries = spec.max_entries;
    store.max_bytes = spec.max_bytes;
    store.enabled = spec.enabled;
    store
}

/// Resets a stored answer's `refreshing` mark when its revalidation ends, however it ends.
struct Refreshing<'a>(&'a AtomicBool);

impl Drop for Refreshing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl HttpCache {
    fn new(policy: &str, spec: CacheSpec) -> Self {
        // Named in `stats()` and the metrics; one per policy name the program uses.
        let name: &'static str =
            Box::leak(format!("resilience::http::cache/{policy}").into_boxed_str());
        HttpCache {
            store: Cache::weighed(store_spec(spec), name, Some(weigh_entry)),
        }
    }

    fn configure(&self, spec: CacheSpec) {
        self.store.configure(store_spec(spec));
    }

    /// The stored answer a request fits, and its key.
    fn find(&self, primary: &str, headers: &HeaderMap) -> Option<(String, Arc<Entry>)> {
        let primary = primary.to_owned();
        let Lookup::Fresh(entry) = self.store.lookup(&primary) else {
            return None;
        };
        match entry.as_ref() {
            Entry::Answer(_) => Some((primary, entry)),
            Entry::Vary(names) => {
                let key = variant_key(&primary, names, headers);
                match self.store.lookup(&key) {
                    Lookup::Fresh(entry) if matches!(*entry, Entry::Answer(_)) => {
                        Some((key, entry))
                    }
                    _ => None,
                }
            }
        }
    }

    /// Stores `stored`, the answer to `view` under `primary` (under its variant's key when
    /// it varies on `names`).
    fn put(&self, primary: &str, names: &[HeaderName], view: &View, stored: Stored) {
        let entry = Arc::new(Entry::Answer(Box::new(stored)));
        if names.is_empty() {
            self.store
                .insert(primary.to_owned(), entry, Freshness::Positive);
            return;
        }
        let key = variant_key(primary, names, &view.headers);
        self.store.insert(
            primary.to_owned(),
            Arc::new(Entry::Vary(names.to_vec())),
            Freshness::Positive,
        );
        self.store.insert(key, entry, Freshness::Positive);
    }

    /// The largest body stored: a quarter of `max_bytes` (the store keeps no entry heavier
    /// than that), unbounded without it.
    fn largest_body(&self) -> u64 {
        self.store.max_bytes().map_or(u64::MAX, |bytes| bytes / 4)
    }
}

static NAMED: SharedByName<HttpCache, CacheSpec> = SharedByName::new(
    "an HTTP response cache",
    HttpCache::new,
    HttpCache::configure,
    |policy, inline| policy.cache.map(|patch| patch.apply(inline)),
);

/// The response cache of one middleware: its policy's, made on first use.
#[derive(Debug)]
pub(crate) struct Slot {
    policy: &'static str,
    cache: OnceLock<Arc<HttpCache>>,
}

impl Slot {
    /// The slot of the policy called `policy`, one per name.
    pub(crate) fn of(policy: &'static str) -> &'static Slot {
        static SLOTS: Mutex<Option<HashMap<&'static str, &'static Slot>>> = Mutex::new(None);
        let mut slots = SLOTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slots
            .get_or_insert_with(HashMap::new)
            .entry(policy)
            .or_insert_with(|| {
                Box::leak(Box::new(Slot {
                    policy,
                    cache: OnceLock::new(),
                }))
            })
    }

    fn cache(&self) -> &HttpCache {
        self.cache
            .get_or_init(|| NAMED.get_or_create(self.policy, CacheSpec::new(KEEP)))
    }
}

impl std::fmt::Debug for HttpCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCache")
            .field("len", &self.store.len())
            .finish()
    }
}

/// Whether a request may be answered from the cache: GET and HEAD only.
pub(crate) fn is_cacheable(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// `request` answered from `slot`'s cache when a stored answer is fresh (or may be served
/// stale), else through the policy's other sections (`through`), storing what may be stored.
pub(crate) async fn serve(
    slot: &Slot,
    pipeline: Pipeline,
    plan: Plan,
    request: Request,
    extensions: &mut http::Extensions,
    next: Next<'_>,
) -> reqwest_middleware::Result<Response> {
    let cache = slot.cache();
    let view = normalised(request.url()).and_then(|url| {
        Some(View {
            uri: url.parse().ok()?,
            method: request.method().clone(),
            headers: request.headers().clone(),
        })
    });
    let Some(view) = view.filter(|_| cache.store.is_enabled()) else {
        return through(pipeline, plan, request, extensions, next).await;
    };
    let primary = format!("{} {}", view.method, view.uri);
    let Some((key, entry)) = cache.find(&primary, &view.headers) else {
        let answer = through(pipeline, plan, request, extensions, next).await?;
        return stored(cache, &primary, &view, answer).await;
    };
    let Entry::Answer(old) = entry.as_ref() else {
        return through(pipeline, plan, request, extensions, next).await;
    };
    let now = now();
    let conditional = match old.policy.before_request(&view, now) {
        BeforeRequest::Fresh(parts) => return old.answer(parts.status, parts.headers),
        BeforeRequest::Stale {
            request: parts,
            matches: true,
        } => parts,
        BeforeRequest::Stale { matches: false, .. } => {
            let answer = through(pipeline, plan, request, extensions, next).await?;
            return stored(cache, &primary, &view, answer).await;
        }
    };
    // Within `stale-while-revalidate`, one caller revalidates and the others are served the
    // stale answer meanwhile. (A middleware cannot send a request once its caller has the
    // answer: `Next` lives only for the call. So the one revalidating waits for it.)
    let _refreshing = match old.stale_for(now) < old.while_revalidating {
        false => None,
        true => match old.refreshing.swap(true, Ordering::AcqRel) {
            true => return old.stale_answer(now),
            false => Some(Refreshing(&old.refreshing)),
        },
    };
    let mut request = request;
    *request.headers_mut() = conditional.headers;
    let answer = through(pipeline, plan, request, extensions, next).await;
    let now = self::now();
    let answer = match answer {
        Ok(answer) if answer.status() == StatusCode::NOT_MODIFIED => answer,
        Ok(answer) if is_error(answer.status()) && old.serves_on_error(now) => {
            return old.stale_answer(now);
        }
        Err(_) if old.serves_on_error(now) => return old.stale_answer(now),
        Ok(answer) => return stored(cache, &primary, &view, answer).await,
        Err(error) => return Err(error),
    };
    match old.policy.after_response(&view, &Head(&answer), now) {
        AfterResponse::NotModified(policy, parts) => {
            let refreshed = Stored::new(
                policy,
                (old.status, old.version, old.url.clone()),
                parts.headers.clone(),
                old.body.clone(),
                now,
            );
            let served = refreshed.answer(parts.status, parts.headers);
            cache.store.insert(
                key,
                Arc::new(Entry::Answer(Box::new(refreshed))),
                Freshness::Positive,
            );
            served
        }
        // A 304 that names another version than the stored one: passed on as it is.
        AfterResponse::Modified(..) => Ok(answer),
    }
}

/// A server error or an unreachable server, for `stale-if-error` (RFC 5861, section 4).
fn is_error(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

/// `answer` to `view`, stored when the rules allow it and it can serve a later request
/// (fresh for a while, a validator to revalidate it with, or a stale window), its body read
/// into memory to be kept; else returned as it is.
async fn stored(
    cache: &HttpCache,
    primary: &str,
    view: &View,
    answer: Response,
) -> reqwest_middleware::Result<Response> {
    let now = now();
    let options = CacheOptions {
        shared: true,
        ..CacheOptions::default()
    };
    let policy = CachePolicy::new_options(view, &Head(&answer), now, options);
    let headers = answer.headers();
    let useful = !policy.time_to_live(now).is_zero()
        || headers.contains_key(http::header::ETAG)
        || headers.contains_key(http::header::LAST_MODIFIED);
    let too_large = answer
        .content_length()
        .is_some_and(|length| length > cache.largest_body());
    let names = vary_names(headers);
    let (Some(names), true, false, true) = (names, policy.is_storable(), too_large, useful) else {
        return Ok(answer);
    };
    let (status, version, url) = (answer.status(), answer.version(), answer.url().clone());
    let headers = answer.headers().clone();
    let body = answer
        .bytes()
        .await
        .map_err(reqwest_middleware::Error::Reqwest)?;
    let stored = Stored::new(policy, (status, version, url), headers.clone(), body, now);
    let served = stored.answer(status, headers);
    cache.put(primary, &names, view, stored);
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(url: &str) -> Option<String> {
        normalised(&Url::parse(url).expect("url"))
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            key("HTTP://Example.COM:80/Path?b=2&a=1#top").as_deref(),
            Some("http://example.com/Path?a=1&b=2")
        );
        assert_eq!(
            key("https://example.com:443/p").as_deref(),
            Some("https://example.com/p")
        );
        assert_eq!(
            key("https://example.com:8443/p?x=1").as_deref(),
            Some("https://example.com:8443/p?x=1")
        );
        // repeated names keep their order; empty pairs go
        assert_eq!(
            key("http://h/p?z=1&a=2&&a=1").as_deref(),
            Some("http://h/p?a=2&a=1&z=1")
        );
        assert_eq!(key("http://user:secret@h/p"), None);
    }

    #[test]
    fn cache_control_directives() {
        let mut headers = HeaderMap::new();
        headers.append(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60, Stale-While-Revalidate=30"),
        );
        headers.append(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("stale-if-error=\"600\""),
        );
        assert_eq!(
            directive(&headers, "stale-while-revalidate"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            directive(&headers, "stale-if-error"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(directive(&headers, "s-maxage"), None);
        assert!(!forbids_stale(&headers));
        headers.append(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("must-revalidate"),
        );
        assert!(forbids_stale(&headers));
    }

    #[test]
    fn vary_names_and_variant_keys() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::VARY,
            HeaderValue::from_static("Accept, accept-language"),
        );
        let names = vary_names(&headers).expect("names");
        assert_eq!(names, ["accept", "accept-language"]);
        let mut request = HeaderMap::new();
        request.insert(http::header::ACCEPT, HeaderValue::from_static("text/html"));
        assert_eq!(
            variant_key("GET http://h/", &names, &request),
            "GET http://h/\naccept:text/html\naccept-language:"
        );
        headers.insert(http::header::VARY, HeaderValue::from_static("*"));
        assert_eq!(vary_names(&headers), None);
    }
}
