//! [`Quota`]: what a server advertised about its rate limit on one response, read from every
//! common header dialect without allocating, and the `Retry-After` value itself. Plain data
//! that a rate limiter learns from and [`crate::http`] reads off a response.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a `Retry-After` header value: delay-seconds (`"120"`) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`), relative to `now`. A date in the past is zero.
/// `None` for anything else.
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use resilience::http::parse_retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470);
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(
///     parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
///     Some(Duration::from_secs(10))
/// );
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What a server advertised about its quota on one response (a success or a 429).
///
/// Headers read (names are case-insensitive; `parse`'s lookup gets them in lower case):
///
/// | dialect | headers | fields |
/// |---|---|---|
/// | AI APIs (OpenAI and alike) | `x-ratelimit-{limit,remaining,reset}-requests`, `x-ratelimit-{limit,remaining,reset}-tokens` | request counts; [`tokens`](Quota::tokens) |
/// | Anthropic | `anthropic-ratelimit-requests-{limit,remaining,reset}`, `anthropic-ratelimit-tokens-{limit,remaining,reset}` (else the most restrictive of `anthropic-ratelimit-{input,output}-tokens-*`) | request counts; [`tokens`](Quota::tokens) |
/// | IETF drafts | `RateLimit` (draft-07 `limit=100, remaining=50, reset=5`; draft-08+ `"default";r=50;t=30`), `RateLimit-Policy` (`100;w=60`; `"default";q=100;w=60`), `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` | request counts, [`window`](Quota::window) |
/// | de facto | `X-RateLimit-Limit` (may carry a policy: `100, 100;w=60`), `X-RateLimit-Remaining`, `X-RateLimit-Reset`; the same with `X-Rate-Limit-*` | request counts, [`window`](Quota::window) |
/// | HTTP | `Retry-After` (seconds or an HTTP date, see [`parse_retry_after`]) | [`retry_after`](Quota::retry_after) |
///
/// Value forms:
/// - a reset in seconds (`X-RateLimit-Reset`, `RateLimit-Reset`, draft-07 `reset=`, draft-08
///   `t=`) is a delay, fractions allowed (`0.5`, `1.25`), or a Unix time when larger than
///   10^9 (GitHub's form); a time in the past is zero;
/// - `x-ratelimit-reset-{requests,tokens}` are Go-style durations (`6m0s`, `1s`, `120ms`,
///   `1m30.5s`; units `h`, `m`, `s`, `ms`, `us`, `ns`) or plain seconds;
/// - `anthropic-ratelimit-*-reset` are RFC 3339 times (`2024-05-01T12:00:30Z`), relative to
///   `now`; a time in the past is zero;
/// - where a field lists several policies, the most restrictive one is used: the `RateLimit`
///   entry with the least remaining, with the `RateLimit-Policy` entry of the same name (or,
///   without names, the one whose quota is the limit, else the one with the lowest rate).
///   Entries whose policy counts other units than requests (`qu` other than `"requests"`)
///   are left out.
///
/// Precedence: [`limit`](Quota::limit), [`remaining`](Quota::remaining),
/// [`reset`](Quota::reset) and [`window`](Quota::window) all come from one dialect, the first
/// present of:
/// 1. `x-ratelimit-*-requests`,
/// 2. `anthropic-ratelimit-requests-*`,
/// 3. IETF: the `RateLimit` field, else `RateLimit-Limit/-Remaining/-Reset`,
/// 4. `X-RateLimit-*`, then `X-Rate-Limit-*`,
/// 5. `RateLimit-Policy` alone (a limit and a window, no state).
///
/// Fields are never mixed across dialects: a lower one does not fill a gap in a higher one,
/// except that a missing `window` is taken from the `RateLimit-Policy` entry whose quota
/// equals the chosen limit. Likewise [`tokens`](Quota::tokens) comes from
/// `x-ratelimit-*-tokens`, else `anthropic-ratelimit-tokens-*`, else the most restrictive of
/// `anthropic-ratelimit-{input,output}-tokens-*`.
///
/// Robustness: a value that is not a well-formed non-negative number (`-1`, `1e9`, `ten`,
/// `6m0sx`), a number too large for `u64`, a duration longer than 10^9 seconds, or a value
/// longer than 256 bytes counts as absent; a request count above `u32::MAX` is `u32::MAX`.
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::{Duration, UNIX_EPOCH};
/// use resilience::http::Quota;
///
/// let headers = [("x-ratelimit-limit", "50"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "2")];
/// let quota = Quota::parse(|name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v), UNIX_EPOCH);
/// assert_eq!(quota.limit, Some(50));
/// assert_eq!(quota.remaining, Some(0));
/// assert_eq!(quota.reset, Some(Duration::from_secs(2)));
///
/// let headers = [
///     ("x-ratelimit-limit-requests", "60"),
///     ("x-ratelimit-remaining-requests", "59"),
///     ("x-ratelimit-reset-requests", "1s"),
///     ("x-ratelimit-limit-tokens", "150000"),
///     ("x-ratelimit-remaining-tokens", "149984"),
///     ("x-ratelimit-reset-tokens", "6m0s"),
/// ];
/// let quota = Quota::parse(|name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| *v), UNIX_EPOCH);
/// assert_eq!((quota.limit, quota.remaining), (Some(60), Some(59)));
/// assert_eq!(quota.tokens.remaining, Some(149_984));
/// assert_eq!(quota.tokens.reset, Some(Duration::from_secs(360)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quota {
    /// Request quota: limit per window.
    pub limit: Option<u32>,
    /// Requests left in the current window.
    pub remaining: Option<u32>,
    /// Time from now until the request quota resets (or refills).
    pub reset: Option<Duration>,
    /// The quota's window when the server states it (IETF `RateLimit-Policy` `w=`, or a `;w=`
    /// parameter on a limit value).
    pub window: Option<Duration>,
    /// `Retry-After`, as a time from now.
    pub retry_after: Option<Duration>,
    /// Token (or cost) quota, from `x-ratelimit-*-tokens` / `anthropic-ratelimit-tokens-*`;
    /// feeds limiters whose sites set `cost`.
    pub tokens: Allowance,
}

/// One metered quota (tokens, bytes, cost units) as a server advertised it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Allowance {
    /// Units allowed per window.
    pub limit: Option<u64>,
    /// Units left in the current window.
    pub remaining: Option<u64>,
    /// Time from now until the quota resets (or refills).
    pub reset: Option<Duration>,
}

impl Allowance {
    /// Whether the server advertised none of the three.
    pub fn is_empty(&self) -> bool {
        *self == Allowance::default()
    }
}

/// A longer header value is ignored (as absent).
const MAX_VALUE_LEN: usize = 256;

/// 10^9 seconds (about 31 years): a larger reset in seconds is a Unix time, and a longer
/// duration (whatever its form) is refused as absurd.
const MAX_SECONDS: u64 = 1_000_000_000;

impl Quota {
    /// Reads the headers through `header` (a lookup by lower-case name), relative to `now`
    /// (for resets given as times). See [`Quota`] for the headers, forms and precedence.
    pub fn parse<'a>(header: impl Fn(&str) -> Option<&'a str>, now: SystemTime) -> Quota {
        let get = |name: &str| header(name).filter(|value| value.len() <= MAX_VALUE_LEN);
        let policy = get("ratelimit-policy");
        let requests = ai_api(&get, "requests")
            .or_else(|| anthropic(&get, "requests", now))
            .or_else(|| ietf(&get, policy, now))
            .or_else(|| x_ratelimit(&get, X_RATELIMIT, now))
            .or_else(|| x_ratelimit(&get, X_RATE_LIMIT, now))
            .or_else(|| policy_alone(policy?))
            .unwrap_or_default();
        let window = requests.window.or_else(|| {
            let limit = requests.limit?;
            Members::new(policy?)
                .filter(|p| p.counts_requests() && p.quota() == Some(limit))
                .find_map(|p| p.window())
        });
        let tokens = ai_api(&get, "tokens")
            .or_else(|| anthropic(&get, "tokens", now))
            .or_else(|| most_restrictive(&get, now))
            .unwrap_or_default();
        Quota {
            limit: requests.limit.map(saturate),
            remaining: requests.remaining.map(saturate),
            reset: requests.reset,
            window,
            retry_after: get("retry-after").and_then(|value| parse_retry_after(value, now)),
            tokens: Allowance {
                limit: tokens.limit,
                remaining: tokens.remaining,
                reset: tokens.reset,
            },
        }
    }

    /// Reads a `reqwest` response's headers.
    #[cfg(feature = "reqwest")]
    pub fn from_headers(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Quota {
        // Most responses carry none of the headers: one pass over the names, no lookups.
        if !headers.keys().any(|name| might_be_quota(name.as_str())) {
            return Quota::default();
        }
        Quota::parse(
            |name| headers.get(name).and_then(|value| value.to_str().ok()),
            now,
        )
    }

    /// Whether the response carried none of the headers.
    pub fn is_empty(&self) -> bool {
        *self == Quota::default()
    }
}

/// Whether a (lower-case) header name may be one `Quota::parse` reads.
#[cfg(feature = "reqwest")]
fn might_be_quota(name: &str) -> bool {
    name.starts_with("x-ratelimit")
        || name.starts_with("x-rate-limit")
        || name.starts_with("ratelimit")
        || name.starts_with("anthropic-ratelimit")
        || name == "retry-after"
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One dialect's reading of one quota, before it is narrowed to `Quota`'s field types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Reading {
    limit: Option<u64>,
    remaining: Option<u64>,
    reset: Option<Duration>,
    window: Option<Duration>,
}

impl Reading {
    /// `Some` when the dialect gave any field.
    fn present(self) -> Option<Reading> {
        (self != Reading::default()).then_some(self)
    }
}

/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
fn ai_api<'a>(get: &impl Fn(&str) -> Option<&'a str>, unit: &str) -> Option<Reading> {
    let [limit, remaining, reset] = match unit {
        "requests" => [
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        ],
        _ => [
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        ],
    };
    Reading {
        limit: get(limit).and_then(number),
        remaining: get(remaining).and_then(number),
        reset: get(reset).and_then(|value| go_duration(value).or_else(|| seconds(value))),
        window: None,
    }
    .present()
}

/// `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`.
fn anthropic<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    unit: &str,
    now: SystemTime,
) -> Option<Reading> {
    let [limit, remaining, reset] = match unit {
        "requests" => [
            "anthropic-ratelimit-requests-limit",
            "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-reset",
        ],
        "tokens" => [
            "anthropic-ratelimit-tokens-limit",
            "anthropic-ratelimit-tokens-remaining",
            "anthropic-ratelimit-tokens-reset",
        ],
        "input-tokens" => [
            "anthropic-ratelimit-input-tokens-limit",
            "anthropic-ratelimit-input-tokens-remaining",
            "anthropic-ratelimit-input-tokens-reset",
        ],
        _ => [
            "anthropic-ratelimit-output-tokens-limit",
            "anthropic-ratelimit-output-tokens-remaining",
            "anthropic-ratelimit-output-tokens-reset",
        ],
    };
    Reading {
        limit: get(limit).and_then(number),
        remaining: get(remaining).and_then(number),
        reset: get(reset).and_then(|value| rfc3339_until(value, now)),
        window: None,
    }
    .present()
}

/// Anthropic's input and output token quotas, when the plain token one is absent: the one
/// with the least remaining (then the later reset).
fn most_restrictive<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    now: SystemTime,
) -> Option<Reading> {
    let input = anthropic(get, "input-tokens", now);
    let output = anthropic(get, "output-tokens", now);
    match (input, output) {
        (Some(a), Some(b)) => Some(if tighter(&b, &a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// Whether `a` leaves less room than `b`: less remaining (absent counts as unbounded), then
/// a later reset.
fn tighter(a: &Reading, b: &Reading) -> bool {
    let remaining = |r: &Reading| r.remaining.unwrap_or(u64::MAX);
    let reset = |r: &Reading| r.reset.unwrap_or(Duration::ZERO);
    (remaining(a), std::cmp::Reverse(reset(a))) < (remaining(b), std::cmp::Reverse(reset(b)))
}

const X_RATELIMIT: [&str; 3] = [
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];
const X_RATE_LIMIT: [&str; 3] = [
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
];

/// `X-RateLimit-*` (or `X-Rate-Limit-*`): the limit may carry policies (`100, 100;w=60`).
fn x_ratelimit<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    [limit, remaining, reset]: [&str; 3],
    now: SystemTime,
) -> Option<Reading> {
    let limit = get(limit);
    Reading {
        limit: limit.and_then(first_number),
        remaining: get(remaining).and_then(first_number),
        reset: get(reset).and_then(|value| reset_seconds(value, now)),
        window: limit.and_then(limit_window),
    }
    .present()
}

/// The IETF drafts: the single `RateLimit` field (draft-07 dictionary or draft-08+ list), else
/// `RateLimit-Limit/-Remaining/-Reset` (older drafts).
fn ietf<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    policy: Option<&'a str>,
    now: SystemTime,
) -> Option<Reading> {
    if let Some(reading) = get("ratelimit").and_then(|value| ratelimit_field(value, policy, now)) {
        return Some(reading);
    }
    let limit = get("ratelimit-limit");
    let reading = Reading {
        limit: limit.and_then(first_number),
        remaining: get("ratelimit-remaining").and_then(first_number),
        reset: get("ratelimit-reset").and_then(|value| reset_seconds(value, now)),
        window: limit.and_then(limit_window),
    };
    let mut reading = reading.present()?;
    if reading.limit.is_none() {
        // `RateLimit-Remaining`/`-Reset` without a limit: the policy's.
        if let Some(chosen) = policy.and_then(|policy| choose_policy(policy, "", None)) {
            reading.limit = chosen.quota();
            reading.window = chosen.window();
        }
    }
    Some(reading)
}

/// `RateLimit-Policy` when no dialect gave a request count: its limit and window.
fn policy_alone(policy: &str) -> Option<Reading> {
    let chosen = choose_policy(policy, "", None)?;
    Reading {
        limit: chosen.quota(),
        window: chosen.window(),
        ..Reading::default()
    }
    .present()
}

/// The single `RateLimit` field: draft-07 `limit=100, remaining=50, reset=5`, or draft-08+
/// `"default";r=50;t=30` (one entry per policy; the one with the least remaining is used).
fn ratelimit_field(value: &str, policy: Option<&str>, now: SystemTime) -> Option<Reading> {
    let mut dictionary = Reading::default();
    let mut best: Option<(Member<'_>, Reading)> = None;
    for member in Members::new(value) {
        let dictionary_member = (!member.item.starts_with('"'))
            .then(|| member.item.split_once('='))
            .flatten();
        if let Some((key, value)) = dictionary_member {
            let value = value.trim_ascii();
            match key.trim_ascii() {
                "limit" => dictionary.limit = number(value),
                "remaining" => dictionary.remaining = number(value),
                "reset" => dictionary.reset = reset_seconds(value, now),
                _ => {}
            }
            continue;
        }
        let entry = Reading {
            remaining: member.param("r").and_then(number),
            reset: member.param("t").and_then(|t| reset_seconds(t, now)),
            ..Reading::default()
        };
        if entry.remaining.is_none() && entry.reset.is_none() {
            continue;
        }
        // An entry for a quota of bytes (or anything but requests) is not a request count.
        let name = member.name();
        let counts_requests = name.is_empty()
            || policy
                .and_then(|policy| Members::new(policy).find(|p| p.name() == name))
                .is_none_or(|p| p.counts_requests());
        if counts_requests && best.is_none_or(|(_, best)| tighter(&entry, &best)) {
            best = Some((member, entry));
        }
    }
    if let Some(found) = dictionary.present() {
        return Some(found);
    }
    let (member, mut reading) = best?;
    if let Some(chosen) = policy.and_then(|policy| choose_policy(policy, member.name(), None)) {
        reading.limit = chosen.quota();
        reading.window = chosen.window();
    }
    Some(reading)
}

/// The `RateLimit-Policy` entry that goes with a `RateLimit` entry: the one of that name; else
/// the one whose quota is `limit`; else the one with the lowest rate (quota per window).
fn choose_policy<'a>(policy: &'a str, name: &str, limit: Option<u64>) -> Option<Member<'a>> {
    let mut policies = Members::new(policy).filter(Member::counts_requests);
    if !name.is_empty() {
        return policies.find(|p| p.name() == name);
    }
    if let Some(limit) = limit {
        return policies.find(|p| p.quota() == Some(limit));
    }
    let rate = |p: &Member<'_>| Some((u128::from(p.quota()?), p.window()?.as_nanos()));
    let mut chosen: Option<Member<'a>> = None;
    for p in policies {
        let better = match (chosen.as_ref().and_then(rate), rate(&p)) {
            // q1 / w1 < q2 / w2, without division
            (Some((q1, w1)), Some((q2, w2))) => q2.saturating_mul(w1) < q1.saturating_mul(w2),
            (None, Some(_)) => true,
            (None, None) => chosen.is_none() && p.quota().is_some(),
            (Some(_), None) => false,
        };
        if better {
            chosen = Some(p);
        }
    }
    chosen
}

/// The first number of a limit value (`100`, or `100, 100;w=60` with its policies).
fn first_number(value: &str) -> Option<u64> {
    number(Members::new(value).next()?.item)
}

/// The window a limit value states (`100;w=60`, `100, 100;w=60`): the one of the policy whose
/// quota is the limit, else the first one given.
fn limit_window(value: &str) -> Option<Duration> {
    let limit = first_number(value);
    Members::new(value)
        .filter(|m| m.quota() == limit)
        .chain(Members::new(value))
        .find_map(|m| m.window())
}

/// One member of a comma-separated field: an item and its `;key=value` parameters.
#[derive(Debug, Clone, Copy)]
struct Member<'a> {
    /// The item: a number (`100`), a name (`"default"`, `default`) or, in the draft-07
    /// dictionary, `key=value`.
    item: &'a str,
    /// Everything after the item's first `;`.
    params: &'a str,
}

impl<'a> Member<'a> {
    fn parse(member: &'a str) -> Member<'a> {
        let (item, params) = split_unquoted(member, b';').unwrap_or((member, ""));
        Member {
            item: item.trim_ascii(),
            params,
        }
    }

    /// The policy name: a string's content or a token; empty for a number.
    fn name(&self) -> &'a str {
        match self.item.as_bytes().first() {
            Some(b'"') => unquote(self.item),
            Some(first) if first.is_ascii_alphabetic() || *first == b'*' => self.item,
            _ => "",
        }
    }

    /// A parameter's value (unquoted), by key.
    fn param(&self, key: &str) -> Option<&'a str> {
        let mut rest = self.params;
        loop {
            let (param, tail) = split_unquoted(rest, b';').unwrap_or((rest, ""));
            if let Some((k, value)) = param.split_once('=') {
                if k.trim_ascii() == key {
                    return Some(unquote(value.trim_ascii()));
                }
            }
            if tail.is_empty() {
                return None;
            }
            rest = tail;
        }
    }

    /// The quota: `q=` (draft-08+) or the item itself (`100;w=60`, older drafts).
    fn quota(&self) -> Option<u64> {
        match self.param("q") {
            Some(q) => number(q),
            None => number(self.item),
        }
    }

    fn window(&self) -> Option<Duration> {
        self.param("w").and_then(seconds)
    }

    /// Whether the policy counts requests (`qu` absent or `"requests"`).
    fn counts_requests(&self) -> bool {
        self.param("qu").is_none_or(|unit| unit == "requests")
    }
}

/// The members of a comma-separated field, commas inside quoted strings kept.
struct Members<'a> {
    rest: Option<&'a str>,
}

impl<'a> Members<'a> {
    fn new(value: &'a str) -> Members<'a> {
        Members { rest: Some(value) }
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        loop {
            let rest = self.rest?;
            let (member, tail) = match split_unquoted(rest, b',') {
                Some((member, tail)) => (member, Some(tail)),
                None => (rest, None),
            };
            self.rest = tail;
            if !member.trim_ascii().is_empty() {
                return Some(Member::parse(member));
            }
        }
    }
}

/// Splits at the first `separator` outside a quoted string (`"a,b"`, with `\"` escapes).
fn split_unquoted(value: &str, separator: u8) -> Option<(&str, &str)> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, byte) in value.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if byte == separator && !quoted => {
                // `separator` is ASCII: `i` and `i + 1` are char boundaries.
                return Some((value.get(..i)?, value.get(i + 1..)?));
            }
            _ => {}
        }
    }
    None
}

/// A quoted string's content (`"default"` -> `default`); anything else as it is.
fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value)
}

/// A non-negative integer in decimal digits only (no sign, no exponent), `None` beyond `u64`.
fn number(value: &str) -> Option<u64> {
    let digits = value.trim_ascii().as_bytes();
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &digit| {
        if !digit.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

/// Seconds, fractions allowed (`5`, `0.5`, `1.25`), at most 10^9.
fn seconds(value: &str) -> Option<Duration> {
    let seconds = decimal_seconds(value)?;
    (seconds.as_secs() < MAX_SECONDS || seconds == Duration::from_secs(MAX_SECONDS))
        .then_some(seconds)
}

/// Seconds, fractions allowed, up to `u64` seconds (nanosecond precision; more digits ignored).
fn decimal_seconds(value: &str) -> Option<Duration> {
    let value = value.trim_ascii();
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let whole = number(whole)?;
    if fraction.is_empty() {
        return (!value.ends_with('.')).then_some(Duration::from_secs(whole));
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, digit| n * 10 + u32::from(digit - b'0'));
    Some(Duration::new(whole, nanos))
}

/// A reset in seconds: a delay (`5`, `0.5`), or a Unix time when larger than 10^9 (a past one
/// is zero). The delay until it is at most 10^9 seconds.
fn reset_seconds(value: &str, now: SystemTime) -> Option<Duration> {
    let seconds = decimal_seconds(value)?;
    if seconds <= Duration::from_secs(MAX_SECONDS) {
        return Some(seconds);
    }
    until(UNIX_EPOCH.checked_add(seconds)?, now)
}

/// The time from `now` until `at` (zero if past), at most 10^9 seconds.
fn until(at: SystemTime, now: SystemTime) -> Option<Duration> {
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    (wait <= Duration::from_secs(MAX_SECONDS)).then_some(wait)
}

/// A Go duration as OpenAI sends it: `6m0s`, `1s`, `120ms`, `2.5s`, `1m30.5s`, `1h2m3s`, `0s`
/// (units `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`; `0` alone too). At most 10^9 seconds; no
/// sign.
fn go_duration(value: &str) -> Option<Duration> {
    const LIMIT: u128 = MAX_SECONDS as u128 * 1_000_000_000;
    let s = value.trim_ascii().as_bytes();
    if s == b"0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut i = 0;
    let mut total: u128 = 0;
    while i < s.len() {
        // integer part, then an optional fraction: at least one digit in all
        let start = i;
        let mut whole: u128 = 0;
        while let Some(digit) = s.get(i).filter(|b| b.is_ascii_digit()) {
            whole = whole
                .checked_mul(10)?
                .checked_add(u128::from(digit - b'0'))?;
            i += 1;
        }
        let (mut fraction, mut scale) = (0u128, 1u128);
        if s.get(i) == Some(&b'.') {
            i += 1;
            while let Some(digit) = s.get(i).filter(|b| b.is_ascii_digit()) {
                // digits past the 18th are below a nanosecond of an hour: dropped
                if scale < 1_000_000_000_000_000_000 {
                    fraction = fraction * 10 + u128::from(digit - b'0');
                    scale *= 10;
                }
                i += 1;
            }
        }
        if i == start || s.get(start..i) == Some(&b"."[..]) {
            return None;
        }
        let unit_start = i;
        while s.get(i).is_some_and(|b| !b.is_ascii_digit() && *b != b'.') {
            i += 1;
        }
        let nanos: u128 = match s.get(unit_start..i)? {
            b"ns" => 1,
            // `us`, `µs` (micro sign) and `μs` (Greek mu), as Go accepts
            b"us" | [0xC2, 0xB5, b's'] | [0xCE, 0xBC, b's'] => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => return None,
        };
        total = total
            .checked_add(whole.checked_mul(nanos)?)?
            .checked_add(fraction * nanos / scale)?;
        if total > LIMIT {
            return None;
        }
    }
    Some(Duration::from_nanos(u64::try_from(total).ok()?))
}

/// The time from `now` until an RFC 3339 time (`2024-05-01T12:00:30Z`,
/// `2024-05-01T14:00:30.5+02:00`); zero if past.
fn rfc3339_until(value: &str, now: SystemTime) -> Option<Duration> {
    let (seconds, nanos) = rfc3339(value)?;
    let at = if seconds >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(seconds.unsigned_abs(), nanos))?
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(seconds.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))?
    };
    until(at, now)
}

/// An RFC 3339 date-time as seconds since the Unix epoch and nanoseconds.
fn rfc3339(value: &str) -> Option<(i64, u32)> {
    let s = value.trim_ascii().as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        part.iter().try_fold(0i64, |n, &digit| {
            digit
                .is_ascii_digit()
                .then(|| n * 10 + i64::from(digit - b'0'))
        })
    };
    let at = |i: usize, allowed: &[u8]| s.get(i).is_some_and(|b| allowed.contains(b));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(digit) = s.get(i).filter(|b| b.is_ascii_digit()) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(digit - b'0');
            }
            i += 1;
        }
        match i - start {
            0 => return None,
            n @ 1..9 => nanos *= 10u32.pow(u32::try_from(9 - n).ok()?),
            _ => {}
        }
    }
    let offset = match s.get(i..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let offset_digits = [h1, h2, m1, m2];
            if !offset_digits.iter().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let (h, m) = (
                i64::from((h1 - b'0') * 10 + (h2 - b'0')),
                i64::from((m1 - b'0') * 10 + (m2 - b'0')),
            );
            if h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            if *sign == b'+' { offset } else { -offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some((
        days * 86_400 + hour * 3600 + minute * 60 + second - offset,
        nanos,
    ))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm); the
/// year is 0..=9999 here, so nothing overflows.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn at(unix: u64) -> SystemTime {
        UNIX_EPOCH + secs(unix)
    }

    fn quota(headers: &[(&str, &str)], now: SystemTime) -> Quota {
        Quota::parse(
            |name| {
                headers
                    .iter()
                    .find(|(header, _)| *header == name)
                    .map(|(_, value)| *value)
            },
            now,
        )
    }

    /// `(limit, remaining, reset, window)`: the request fields.
    fn requests(q: &Quota) -> (Option<u32>, Option<u32>, Option<Duration>, Option<Duration>) {
        (q.limit, q.remaining, q.reset, q.window)
    }

    fn allowance(limit: u64, remaining: u64, reset: Duration) -> Allowance {
        Allowance {
            limit: Some(limit),
            remaining: Some(remaining),
            reset: Some(reset),
        }
    }

    #[test]
    fn github() {
        let q = quota(
            &[
                ("x-ratelimit-limit", "5000"),
                ("x-ratelimit-remaining", "4999"),
                ("x-ratelimit-reset", "1372700873"),
                ("x-ratelimit-used", "1"),
                ("x-ratelimit-resource", "core"),
            ],
            at(1_372_700_000),
        );
        assert_eq!(
            requests(&q),
            (Some(5000), Some(4999), Some(secs(873)), None)
        );
        assert_eq!((q.retry_after, q.tokens), (None, Allowance::default()));
    }

    #[test]
    fn x_ratelimit_reset_forms() {
        let now = at(1_700_000_000);
        let reset = |value: &str| quota(&[("x-ratelimit-reset", value)], now).reset;
        assert_eq!(reset("0"), Some(Duration::ZERO));
        assert_eq!(reset("60"), Some(secs(60)));
        assert_eq!(reset("0.5"), Some(ms(500)));
        assert_eq!(reset(" 1.25 "), Some(ms(1250)));
        assert_eq!(reset("0.0000000019"), Some(Duration::from_nanos(1)));
        // up to 10^9 a delay, above a Unix time (a past one is zero)
        assert_eq!(reset("1000000000"), Some(secs(1_000_000_000)));
        assert_eq!(reset("1700000045"), Some(secs(45)));
        assert_eq!(reset("1700000045.5"), Some(ms(45_500)));
        assert_eq!(reset("1600000000"), Some(Duration::ZERO));
        // a Unix time in milliseconds would be ~50 000 years away: refused
        assert_eq!(reset("1700000045000"), None);
        for bad in [
            "1.", ".5", "1.2.3", "1,5", "0x10", "1e3", "-1", "+1", "5s", "",
        ] {
            assert_eq!(reset(bad), None, "{bad:?}");
        }
    }

    /// A limit value may carry its policies, as the older IETF drafts wrote them.
    #[test]
    fn x_ratelimit_limit_with_a_policy() {
        let q = |limit: &str| requests(&quota(&[("x-ratelimit-limit", limit)], UNIX_EPOCH));
        assert_eq!(q("100, 100;w=60"), (Some(100), None, None, Some(secs(60))));
        assert_eq!(q("100;w=60"), (Some(100), None, None, Some(secs(60))));
        assert_eq!(
            q("10, 10;w=1, 50;w=60"),
            (Some(10), None, None, Some(secs(1)))
        );
        assert_eq!(q("10, 50;w=60"), (Some(10), None, None, Some(secs(60))));
        assert_eq!(q("100"), (Some(100), None, None, None));
        assert_eq!(q("100;w=x"), (Some(100), None, None, None));
    }

    /// Twitter's `x-rate-limit-*`: the same, one dash more.
    #[test]
    fn x_rate_limit() {
        let q = quota(
            &[
                ("x-rate-limit-limit", "900"),
                ("x-rate-limit-remaining", "899"),
                ("x-rate-limit-reset", "1700000900"),
            ],
            at(1_700_000_000),
        );
        assert_eq!(requests(&q), (Some(900), Some(899), Some(secs(900)), None));
    }

    #[test]
    fn openai() {
        let q = quota(
            &[
                ("x-ratelimit-limit-requests", "60"),
                ("x-ratelimit-remaining-requests", "59"),
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-limit-tokens", "150000"),
                ("x-ratelimit-remaining-tokens", "149984"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(requests(&q), (Some(60), Some(59), Some(secs(1)), None));
        assert_eq!(q.tokens, allowance(150_000, 149_984, secs(360)));
        assert!(!q.tokens.is_empty());

        // tokens alone: no request count
        let q = quota(
            &[
                ("x-ratelimit-remaining-tokens", "0"),
                ("x-ratelimit-reset-tokens", "120ms"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(requests(&q), (None, None, None, None));
        assert_eq!(
            (q.tokens.remaining, q.tokens.reset),
            (Some(0), Some(ms(120)))
        );
        // plain seconds are accepted too
        let q = quota(&[("x-ratelimit-reset-requests", "2.5")], UNIX_EPOCH);
        assert_eq!(q.reset, Some(ms(2500)));
    }

    #[test]
    fn go_durations() {
        let cases = [
            ("6m0s", secs(360)),
            ("1s", secs(1)),
            ("120ms", ms(120)),
            ("2.5s", ms(2500)),
            ("1m30.5s", ms(90_500)),
            ("1h2m3s", secs(3723)),
            ("0s", Duration::ZERO),
            ("0", Duration::ZERO),
            ("1.5h", secs(5400)),
            ("7.66s", ms(7660)),
            ("59.999999999999999999999s", Duration::new(59, 999_999_999)),
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("250μs", Duration::from_micros(250)),
            ("17ns", Duration::from_nanos(17)),
            ("277777h46m40s", secs(1_000_000_000)),
        ];
        for (value, expected) in cases {
            assert_eq!(go_duration(value), Some(expected), "{value:?}");
        }
        let refused = [
            "",
            "s",
            "6m0sx",
            "1x",
            "1",
            "-1s",
            "+1s",
            "1 s",
            ".s",
            "1..5s",
            "1e3s",
            "9999999999h",
            "277777h46m41s",
            "18446744073709551616ns",
            "99999999999999999999999999999999999999999s",
            "1.5.5s",
            "1ss",
            "h",
            "1h-1m",
        ];
        for value in refused {
            assert_eq!(go_duration(value), None, "{value:?}");
        }
    }

    #[test]
    fn anthropic() {
        let now = at(1_714_564_800); // 2024-05-01T12:00:00Z
        let q = quota(
            &[
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "49"),
                ("anthropic-ratelimit-requests-reset", "2024-05-01T12:00:30Z"),
                ("anthropic-ratelimit-tokens-limit", "40000"),
                ("anthropic-ratelimit-tokens-remaining", "39000"),
                ("anthropic-ratelimit-tokens-reset", "2024-05-01T12:00:01.5Z"),
                ("anthropic-ratelimit-input-tokens-limit", "30000"),
                ("anthropic-ratelimit-input-tokens-remaining", "10"),
                (
                    "anthropic-ratelimit-input-tokens-reset",
                    "2024-05-01T12:00:09Z",
                ),
                ("retry-after", "3"),
            ],
            now,
        );
        assert_eq!(requests(&q), (Some(50), Some(49), Some(secs(30)), None));
        // the plain token quota wins over input/output
        assert_eq!(q.tokens, allowance(40_000, 39_000, ms(1500)));
        assert_eq!(q.retry_after, Some(secs(3)));

        // without it: the most restrictive of input and output (least remaining)
        let q = quota(
            &[
                ("anthropic-ratelimit-input-tokens-limit", "30000"),
                ("anthropic-ratelimit-input-tokens-remaining", "29000"),
                (
                    "anthropic-ratelimit-input-tokens-reset",
                    "2024-05-01T12:00:02Z",
                ),
                ("anthropic-ratelimit-output-tokens-limit", "8000"),
                ("anthropic-ratelimit-output-tokens-remaining", "100"),
                (
                    "anthropic-ratelimit-output-tokens-reset",
                    "2024-05-01T14:00:09+02:00",
                ),
            ],
            now,
        );
        assert_eq!(q.tokens, allowance(8000, 100, secs(9)));
        assert_eq!(requests(&q), (None, None, None, None));

        // a reset in the past is zero
        let q = quota(
            &[("anthropic-ratelimit-requests-reset", "2024-05-01T11:59:00Z")],
            now,
        );
        assert_eq!(q.reset, Some(Duration::ZERO));
    }

    #[test]
    fn rfc3339_forms() {
        let day = 1_714_521_600; // 2024-05-01T00:00:00Z
        assert_eq!(rfc3339("2024-05-01T12:00:30Z"), Some((day + 43_230, 0)));
        assert_eq!(rfc3339("2024-05-01t12:00:30z"), Some((day + 43_230, 0)));
        assert_eq!(rfc3339("2024-05-01 12:00:30Z"), Some((day + 43_230, 0)));
        assert_eq!(
            rfc3339("2024-05-01T12:00:30.25Z"),
            Some((day + 43_230, 250_000_000))
        );
        assert_eq!(
            rfc3339("2024-05-01T12:00:30.123456789123Z"),
            Some((day + 43_230, 123_456_789))
        );
        assert_eq!(
            rfc3339("2024-05-01T14:00:30+02:00"),
            Some((day + 43_230, 0))
        );
        assert_eq!(
            rfc3339("2024-05-01T07:30:30-04:30"),
            Some((day + 43_230, 0))
        );
        assert_eq!(rfc3339("2024-02-29T00:00:00Z"), Some((1_709_164_800, 0)));
        assert_eq!(rfc3339("2000-01-01T00:00:00Z"), Some((946_684_800, 0)));
        assert_eq!(rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(rfc3339("1969-12-31T23:59:59Z"), Some((-1, 0)));
        assert_eq!(rfc3339("9999-12-31T23:59:59Z"), Some((253_402_300_799, 0)));
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:30",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-05-00T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:00:61Z",
            "2024-05-01T12:00:30.Z",
            "2024-05-01T12:00:30+2:00",
            "2024-05-01T12:00:30+24:00",
            "2024-05-01T12:00:30Zjunk",
            "+024-05-01T12:00:30Z",
            "2024-05-01T12:00:30×",
            "Wed, 01 May 2024 12:00:30 GMT",
        ] {
            assert_eq!(rfc3339(bad), None, "{bad:?}");
        }
        // a time 8000 years away is absurd as a reset
        assert_eq!(
            rfc3339_until("9999-12-31T23:59:59Z", at(1_714_564_800)),
            None
        );
        // one before 1970 is in the past
        assert_eq!(
            rfc3339_until("1969-12-31T23:59:59.5Z", at(0)),
            Some(Duration::ZERO)
        );
    }

    /// Older drafts: `RateLimit-Limit/-Remaining/-Reset` and `RateLimit-Policy: 100;w=60`.
    #[test]
    fn ietf_separate_fields() {
        let q = quota(
            &[
                ("ratelimit-limit", "100"),
                ("ratelimit-remaining", "50"),
                ("ratelimit-reset", "5"),
                ("ratelimit-policy", "10;w=1, 100;w=60"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(
            requests(&q),
            (Some(100), Some(50), Some(secs(5)), Some(secs(60)))
        );

        // the limit carrying its policies
        let q = quota(
            &[
                ("ratelimit-limit", "10, 10;w=1, 50;w=60"),
                ("ratelimit-remaining", "9"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(requests(&q), (Some(10), Some(9), None, Some(secs(1))));

        // no limit: the most restrictive policy's (100 per hour binds before 10 per second)
        let q = quota(
            &[
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", "3"),
                ("ratelimit-policy", "100;w=3600, 10;w=1"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(
            requests(&q),
            (Some(100), Some(0), Some(secs(3)), Some(secs(3600)))
        );
    }

    #[test]
    fn ietf_draft_07() {
        let q = quota(
            &[
                ("ratelimit", "limit=100, remaining=50, reset=5"),
                ("ratelimit-policy", "100;w=60"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(
            requests(&q),
            (Some(100), Some(50), Some(secs(5)), Some(secs(60)))
        );
        let q = quota(&[("ratelimit", "remaining=0,reset=2")], UNIX_EPOCH);
        assert_eq!(requests(&q), (None, Some(0), Some(secs(2)), None));
    }

    #[test]
    fn ietf_draft_08() {
        let q = quota(
            &[
                ("ratelimit", "\"default\";r=50;t=30"),
                ("ratelimit-policy", "\"default\";q=100;w=60"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(
            requests(&q),
            (Some(100), Some(50), Some(secs(30)), Some(secs(60)))
        );

        // several policies: the one with the least remaining, with its policy by name
        let q = quota(
            &[
                ("ratelimit", "\"burst\";r=5;t=1, \"daily\";r=2;t=3600"),
                (
                    "ratelimit-policy",
                    "\"burst\";q=100;w=60, \"daily\";q=1000;w=86400",
                ),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(
            requests(&q),
            (Some(1000), Some(2), Some(secs(3600)), Some(secs(86_400)))
        );

        // a tie on remaining: the later reset; token names work as well as strings
        let q = quota(
            &[
                ("ratelimit", "a;r=0;t=1, b;r=0;t=9"),
                ("ratelimit-policy", "a;q=10;w=1, b;q=500;w=3600"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(
            requests(&q),
            (Some(500), Some(0), Some(secs(9)), Some(secs(3600)))
        );

        // a byte quota is not a request count; commas in a quoted name stay in it
        let q = quota(
            &[
                ("ratelimit", "\"up,load\";r=1;t=5, \"requests\";r=10;t=5"),
                (
                    "ratelimit-policy",
                    "\"up,load\";q=1000;qu=\"content-bytes\";w=60, \"requests\";q=100;w=60",
                ),
            ],
            UNIX_EPOCH,
        );
        assert_eq!(
            requests(&q),
            (Some(100), Some(10), Some(secs(5)), Some(secs(60)))
        );

        // without the policy field: no limit, no window
        let q = quota(
            &[("ratelimit", "\"default\";r=0;t=10;pk=:cHJvamVjdDEyMw==:")],
            UNIX_EPOCH,
        );
        assert_eq!(requests(&q), (None, Some(0), Some(secs(10)), None));

        // the policy field alone: a limit and a window
        let q = quota(
            &[("ratelimit-policy", "\"default\";q=100;w=60")],
            UNIX_EPOCH,
        );
        assert_eq!(requests(&q), (Some(100), None, None, Some(secs(60))));
    }

    #[test]
    fn precedence() {
        let ai = [
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "59"),
        ];
        let ietf = [("ratelimit", "limit=100, remaining=50, reset=5")];
        let old = [
            ("x-ratelimit-limit", "1000"),
            ("x-ratelimit-remaining", "999"),
            ("x-ratelimit-reset", "7"),
        ];
        let all: Vec<_> = [&ai[..], &ietf[..], &old[..]].concat();
        // the AI-API form wins, and a field it lacks is not taken from another dialect
        assert_eq!(
            requests(&quota(&all, UNIX_EPOCH)),
            (Some(60), Some(59), None, None)
        );
        let both: Vec<_> = [&ietf[..], &old[..]].concat();
        assert_eq!(
            requests(&quota(&both, UNIX_EPOCH)),
            (Some(100), Some(50), Some(secs(5)), None)
        );
        // Anthropic's request quota beats the IETF fields
        let anthropic = [("anthropic-ratelimit-requests-remaining", "3")];
        let both: Vec<_> = [&anthropic[..], &ietf[..]].concat();
        assert_eq!(
            requests(&quota(&both, UNIX_EPOCH)),
            (None, Some(3), None, None)
        );

        // a policy alone does not hide X-RateLimit's state; it gives the window of its limit
        let with_policy: Vec<_> = [&old[..], &[("ratelimit-policy", "1000;w=3600")][..]].concat();
        assert_eq!(
            requests(&quota(&with_policy, UNIX_EPOCH)),
            (Some(1000), Some(999), Some(secs(7)), Some(secs(3600)))
        );
        // ... but not the window of another quota
        let other: Vec<_> = [&old[..], &[("ratelimit-policy", "10;w=1")][..]].concat();
        assert_eq!(quota(&other, UNIX_EPOCH).window, None);

        // a dialect whose values are all garbage counts as absent
        let garbage: Vec<_> = [&[("x-ratelimit-limit-requests", "lots")][..], &old[..]].concat();
        assert_eq!(quota(&garbage, UNIX_EPOCH).limit, Some(1000));
    }

    /// nginx's `limit_req` sends no quota headers at all (a bare 503 or 429).
    #[test]
    fn no_headers_is_empty() {
        let q = quota(&[("server", "nginx"), ("content-length", "0")], UNIX_EPOCH);
        assert!(q.is_empty());
        assert_eq!(q, Quota::default());
        let q = quota(&[("retry-after", "2")], UNIX_EPOCH);
        assert!(!q.is_empty());
        assert_eq!((q.retry_after, q.limit), (Some(secs(2)), None));
    }

    #[test]
    fn garbage_and_overflow_are_absent() {
        let long = format!("5{}", " ".repeat(299));
        let garbage = [
            "99999999999999999999999",
            "-1",
            "1e9",
            "6m0sx",
            "9999999999h",
            "ten",
            "",
            " ",
            "+5",
            "5 5",
            "0x10",
            "\"5\"",
            long.as_str(),
        ];
        let names = [
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
            "anthropic-ratelimit-requests-limit",
            "anthropic-ratelimit-requests-remaining",
            "anthropic-ratelimit-requests-reset",
            "anthropic-ratelimit-tokens-limit",
            "anthropic-ratelimit-tokens-remaining",
            "anthropic-ratelimit-tokens-reset",
            "anthropic-ratelimit-output-tokens-remaining",
            "ratelimit",
            "ratelimit-policy",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-rate-limit-limit",
            "retry-after",
        ];
        for name in names {
            for value in garbage {
                let q = quota(&[(name, value)], at(1_700_000_000));
                assert!(q.is_empty(), "{name}: {value:?} -> {q:?}");
            }
        }
        // one bad value does not hide the good ones
        let q = quota(
            &[("x-ratelimit-limit", "50"), ("x-ratelimit-remaining", "-1")],
            UNIX_EPOCH,
        );
        assert_eq!((q.limit, q.remaining), (Some(50), None));
    }

    #[test]
    fn large_numbers() {
        // a request count beyond u32 saturates; a token count keeps its value
        let q = quota(
            &[
                ("x-ratelimit-limit-requests", "99999999999"),
                ("x-ratelimit-remaining-requests", "18446744073709551615"),
                ("x-ratelimit-limit-tokens", "99999999999"),
                ("x-ratelimit-remaining-tokens", "18446744073709551615"),
            ],
            UNIX_EPOCH,
        );
        assert_eq!((q.limit, q.remaining), (Some(u32::MAX), Some(u32::MAX)));
        assert_eq!(
            (q.tokens.limit, q.tokens.remaining),
            (Some(99_999_999_999), Some(u64::MAX))
        );
        // the IETF forms saturate too
        let q = quota(
            &[("ratelimit", "limit=4294967296, remaining=4294967295")],
            UNIX_EPOCH,
        );
        assert_eq!((q.limit, q.remaining), (Some(u32::MAX), Some(u32::MAX)));
    }

    #[test]
    fn values_longer_than_256_bytes_are_ignored() {
        let padded = |len: usize| format!("{:>len$}", "7");
        let q = quota(&[("x-ratelimit-limit", &padded(256))], UNIX_EPOCH);
        assert_eq!(q.limit, Some(7));
        let q = quota(&[("x-ratelimit-limit", &padded(257))], UNIX_EPOCH);
        assert_eq!(q.limit, None);
        let many = "\"p\";r=1;t=1, ".repeat(30);
        assert!(quota(&[("ratelimit", &many)], UNIX_EPOCH).is_empty());
    }

    const NAMES: [&str; 34] = [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-limit",
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
        "anthropic-ratelimit-output-tokens-limit",
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
        "ratelimit",
        "ratelimit-policy",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-rate-limit-limit",
        "x-rate-limit-remaining",
        "x-rate-limit-reset",
        "retry-after",
        // not read: must change nothing
        "x-ratelimit-used",
        "content-length",
        "date",
        "server",
    ];

    /// Strings that look like the headers' grammar often enough to reach every branch.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[0-9.;=,\" a-z:+TZµ-]{0,40}",
            "[0-9]{1,30}(\\.[0-9]{0,12})?",
            "([0-9]{0,12}(\\.[0-9]{0,5})?(h|m|s|ms|us|ns|x)?){0,5}",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2})?",
            "((\"[a-z,]{0,3}\"|[a-z]{0,3}|[0-9]{1,22})(;[qrtw]=[0-9.-]{0,22}|;qu=\"[a-z]{0,8}\")*, ?){0,4}",
        ]
    }

    fn now() -> impl Strategy<Value = SystemTime> {
        prop_oneof![
            (0u64..=u64::from(u32::MAX) * 4).prop_map(|s| UNIX_EPOCH + secs(s)),
            (0u64..=u64::from(u32::MAX)).prop_map(|s| UNIX_EPOCH - secs(s)),
        ]
    }

    proptest! {
        /// No input panics, in any header alone or in all at once, and every duration read is
        /// within bounds.
        #[test]
        fn parse_never_panics(
            values in proptest::collection::vec(value(), NAMES.len()),
            one in 0..NAMES.len(),
            now in now(),
        ) {
            let alone = Quota::parse(|name| (name == NAMES[one]).then_some(values[one].as_str()), now);
            let all = Quota::parse(
                |name| NAMES.iter().position(|n| *n == name).map(|i| values[i].as_str()),
                now,
            );
            let bound = Some(secs(MAX_SECONDS));
            for q in [alone, all] {
                prop_assert!(q.reset <= bound && q.window <= bound && q.tokens.reset <= bound);
            }
        }

        #[test]
        fn go_duration_never_panics(value in value()) {
            let _ = go_duration(&value);
        }

        #[test]
        fn rfc3339_never_panics(value in value(), now in now()) {
            let _ = rfc3339_until(&value, now);
        }

        /// Whole seconds read the same in each seconds form.
        #[test]
        fn whole_seconds(n in 0u64..=MAX_SECONDS) {
            let text = n.to_string();
            prop_assert_eq!(seconds(&text), Some(secs(n)));
            prop_assert_eq!(go_duration(&format!("{n}s")), Some(secs(n)));
            prop_assert_eq!(reset_seconds(&text, UNIX_EPOCH), Some(secs(n)));
        }
    }
}
