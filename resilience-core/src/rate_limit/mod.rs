//! Rate limiting: a GCRA limiter ([`RateLimiter`]), its values as data ([`RateLimitSpec`]),
//! named limiters shared by every site naming a policy ([`named`]), and server feedback
//! ([`learn_from_server`]).
//!
//! # Server feedback: a control loop
//!
//! A server's refusal is feedback, not an order to stop the world: a 429 from a sliding window
//! or a leaky bucket usually means one request arrived a few milliseconds early. So, as TCP
//! CUBIC and the AWS SDK's adaptive retry mode do, a limiter slows down at once and recovers
//! gradually ([`RateLimiter::throttled`]):
//!
//! | step | what happens | constant, and why |
//! |---|---|---|
//! | cut | at the ceiling, from a server that states no limit, a third 429 within one `period` of the first sets the pace to 70% of the pace in force; callers already waiting are spread out along the recovery below | 0.7: CUBIC's and the AWS SDK's factor; deep enough that a window drains the overshoot while the queue re-forms |
//! | same event | 429s on requests sent before the cut or answered within one `period` after it are ignored | a sliding or fixed window remembers an overshoot for a window, whatever the pace since |
//! | recovery | a cubic back to 1% under the refused pace, within one `period` | 1%: half a request of slack per window at 50/s; 2% measured 0.4 s slower over a 21 s batch with no fewer 429s. One period: a window forgets an overshoot after one window |
//! | plateau | the pace stays there for 10 periods | a batch finishes without probing again soon |
//! | probe | a convex cubic back to `calls` over 20 periods (never above `calls`, nor above a limit the server advertises) | the quota may have been shared with a client that went away |
//! | lone 429 | at the ceiling, a 429 with fewer than two in the period before it; after a cut, one after the cut's window with none in the two periods before it: changes nothing | near its limit a strict leaky bucket (nginx) refuses a request every few seconds from clock jitter alone, at 50/s as at 46/s: slowing down for each ratcheted the quota lab's nginx pace to 46/s for no fewer 429s |
//! | stated limit | when the server states its limit and the pace is within it, even the first 429 is lone (counted, no cut), and a strike's first nudge is two timer ticks per period (0.2% of 1 s, at least 0.1%) | no overshoot can be there to drain; a sliding window of exactly `calls` puts every request on its edge, and cutting for it cost the quota lab's sliding row 0.15 s |
//! | strike | a 429 within two periods of the last: a nudge of 1% with no dip, doubled for each strike in a row (2%, 4%, ... up to 30%) | 429s that keep coming are a quota that really is lower, found geometrically |
//! | hold | every caller waits (the ones already waiting too) for a `Retry-After` longer than [`RateLimiter::hold_threshold`] (a second, and four slots), for `Remaining: 0` with a `Reset` longer than the window, or on the fourth strike in a row; then they are released at the pace, one slot at a time | servers round `Retry-After` up to whole seconds, so `1` is the shortest wait they can say: a short wait belongs to the request that got it |
//!
//! A limit the server advertises ([`RateLimiter::learn`], every dialect [`Quota`] reads) below
//! `calls` is the ceiling the loop works under. A 503 is not a rate-limit signal. The loop runs
//! for the unkeyed cell; a keyed limiter's keys are separate quotas, so a 429 for one key never
//! slows the others and holds only that key, for a long `Retry-After`. Slots reserved before a
//! cut are spread along the recovery's curve, 70% of the old pace at first and climbing, so the
//! queue of waiting callers (at most the callers in flight) does not hold the cut pace for as
//! long as its slots span (a sleeper is never woken earlier, so this is decided at the cut).
//!
//! [`Quota`]: crate::http::Quota

mod control;
mod gcra;
mod key;
mod keyed;
mod limiter;
mod named;
mod reschedule;
// What `#[rate_limited]` expands to: `__private` re-exports it from here.
pub(crate) mod site;
mod wake;

// The limiter's cell and the key generated code hashes: hidden where they are defined (a
// hidden `pub use` is not hidden in the facade, which re-exports this module).
pub use gcra::{Admission, Gcra};
pub use key::RateKey;
pub use key::stable_hash;
pub use limiter::{Learned, RateLimiter, Verdict, key_hash};
pub use named::named;
pub use site::learn_from_server;
// Plain data, shared with the macros and YAML.
pub use resilience_config::rate_limit::{Lease, LimitMode, RateLimitPatch, RateLimitSpec};
