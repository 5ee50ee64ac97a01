//! Rate limiting: a GCRA limiter ([`RateLimiter`]), its values as data ([`RateLimitSpec`]),
//! named limiters shared by every site naming a policy, and the executors `#[rate_limited]`
//! calls.
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
//! | cut | a 429 sets the pace to 70% of the pace in force (of what was sent in the first window, for a busy limiter younger than one); callers already waiting are spread out to it | 0.7: CUBIC's and the AWS SDK's factor; deep enough that the server's window drains while the queue re-forms |
//! | same event | 429s on requests sent before the cut or answered within one `period` after it are ignored | a sliding or fixed window remembers an overshoot for a window, whatever the pace since |
//! | recovery | a cubic back to 2% under the refused pace, within one `period` | 2%: on a sliding window of 50/s, 49/s leaves one request of slack per window, which absorbs the scheduling jitter that made the 429; one period: a window forgets an overshoot after one window |
//! | plateau | the pace stays there for 10 periods | a batch finishes without probing again soon |
//! | probe | a convex cubic back to `calls` over 20 periods (never above `calls`, nor above a limit the server advertises) | the quota may have been shared with a client that went away |
//! | strike | a 429 one to three periods after the last cut cuts again, from the pace in force: the limiter converges geometrically on the server's real limit | |
//! | hold | every caller waits (the ones already waiting too) for a `Retry-After` longer than [`RateLimiter::hold_threshold`] (a second, and four slots), for `Remaining: 0` with a `Reset` longer than the window, or on the third strike in a row; then they are released at the pace, one slot at a time | servers round `Retry-After` up to whole seconds, so `1` is the shortest wait they can say: a short wait belongs to the request that got it |
//!
//! A limit the server advertises ([`RateLimiter::learn`], every dialect [`Quota`] reads) below
//! `calls` is the ceiling the loop works under. A 503 is not a rate-limit signal.
//!
//! [`Quota`]: crate::http::Quota

pub(crate) mod clock;
mod control;
mod gcra;
mod limiter;
mod named;
mod reschedule;
mod site;
mod spec;

pub use gcra::{Admission, Gcra};
pub use limiter::{Learned, RateLimiter, Verdict, key_hash};
pub use named::named;
pub(crate) use named::reconfigure_all;
pub use site::learn_from_server;
pub use site::{RateLimitSite, rate_limited_async, rate_limited_blocking};
pub use spec::{LimitMode, RateLimitPatch, RateLimitSpec};
