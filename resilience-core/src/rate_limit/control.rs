//! The control loop that turns a server's 429s into a pace: multiplicative decrease, cubic
//! recovery towards the pace that was refused (less a little headroom), then a slow probe back
//! up to the configured `calls`.
//!
//! A server's refusal is feedback, not an order to stop the world: a 429 on a sliding window
//! or a leaky bucket usually means one request arrived a few milliseconds early, and pausing
//! every caller for the whole `Retry-After` (the old behaviour) cost a batch a second or two
//! per 429 (`benches/quota_lab.rs`). So, as TCP CUBIC and the AWS SDK's adaptive retry mode
//! do, the limiter slows down at once and recovers gradually:
//!
//! 1. **Cut.** A third 429 within a period of a lone one (`LONE_BEFORE_CUT`, 5 below), from a
//!    server that does not state its limit, sets `w_max` to the pace in force and the pace to
//!    `BETA * w_max` (0.7, CUBIC's and the AWS SDK's factor): deep enough that a sliding or
//!    fixed window drains the overshoot while the queue re-forms. The callers already
//!    waiting are spread out along the recovery's curve ([`Curve`]), not at the cut pace,
//!    which would hold the cut for as long as their slots span.
//! 2. **Same event.** 429s on requests sent before the cut, or answered within one `period`
//!    after it, belong to the event the cut answered and are ignored: a window remembers the
//!    overshoot for up to a window, whatever the pace since (TCP cuts once per window, for a
//!    like reason).
//! 3. **Recovery.** The pace climbs back along a cubic, steep first and flat at the end, to
//!    `target = w_max * (1 - HEADROOM)` in one `period` (the server's window is the natural
//!    time constant). `HEADROOM` is 1%: on a sliding window of 50/s, 49.5/s leaves half a
//!    request of slack in every window, and the quota lab measured 2% as 0.4 s lost over a
//!    21 s batch with no fewer 429s.
//! 4. **Plateau, then probe.** The pace stays at `target` for `PLATEAU_PERIODS` (10) periods,
//!    then creeps back up to the ceiling along a convex cubic over `PROBE_PERIODS` (20)
//!    periods (the quota may have been shared with a client that went away; slow at first,
//!    so a quota that really is lower is met close to the plateau). It never goes above
//!    `calls`, nor above a limit the server advertised.
//! 5. **Lone 429s and strikes.** A first 429 (at the ceiling, or after the cut's window, on
//!    the plateau or the probe) is most often a request a few milliseconds early (nginx
//!    stamps requests with a clock cached per event-loop turn; a timer wakes a caller a
//!    little late), not debt to drain: a lone one changes nothing. At the ceiling, from a
//!    server that states no limit, a third within one period of it is the cut (1); after a
//!    cut, a second within `STRIKE_PERIODS` (2) periods of the last is a *strike*: a nudge of `NUDGE` (1%) with no dip, doubled for each strike in a row (2%, 4%,
//!    ... up to a cut's 30%), so a quota that really is lower is found geometrically. Cutting
//!    30% on every 429 cost the quota lab's strict-nginx row about 70 ms per 429 and
//!    ratcheted its pace down to 46/s; nudging on every lone one still ratcheted it to 47/s,
//!    for no fewer 429s; cutting on the first 429 at the ceiling (a jitter 429 from a leaky
//!    bucket as often as not) cost that row 1.082 against 1.071 of N/qps (means of six
//!    runs each); cutting on the second within two periods still cut in most runs (the
//!    row's jitter refuses a request every 3 to 5 s, some of them in pairs) and left it at
//!    1.059 to 1.112 of N/qps with 4 to 8 429s over four runs, where a third within one
//!    period gave 1.057 to 1.061 with 3 to 5. The price, on a server whose true limit is
//!    lower, is two 429s more before the cut: at 45/s against 50, a tenth of a second.
//! 6. **A stated limit.** When the server states its limit (`X-RateLimit-Limit` or any twin
//!    [`Quota`](crate::http::Quota) reads) and the pace is within it, no 429 is a cut: the
//!    overshoot a cut drains cannot be there, and what is left is a request on the edge (a
//!    sliding window of exactly `calls` sees every request on its edge, and a timer tick of
//!    jitter puts one over it now and then). A second within
//!    `STRIKE_PERIODS` is a strike, as above, but its nudge is two timer ticks per period
//!    (0.2% of a 1 s window, at least 0.1%) rather than `NUDGE`, doubled per strike: 1% cost
//!    the sliding row 0.06 s more, for 3 fewer 429s. Cutting for it cost the quota lab's sliding
//!    row 0.15 s, and its `learned` row (whose first window overshoots by one while the
//!    limit is learned) as much again.
//!
//! The fourth strike in a row also turns a short `Retry-After` into a hold of every caller
//! (see [`RateLimiter::throttled`](super::RateLimiter::throttled)). An earlier version
//! estimated the quota from what a young limiter had sent in its first window; on a leaky
//! bucket (nginx) that read a 429 at 700 ms as "the quota is 35/s" and held the pace there for
//! eleven seconds, so it is gone.
//!
//! Rates are in admissions per second (`f64`); time in nanoseconds on the limiter's clock.

/// The first strike's nudge: `NUDGE`, or, when the server states its limit and the pace is
/// within it, two timer ticks (of 1 ms) per period, at least 0.1%: there the 429s come from
/// requests on the edge of a window of exactly the pace, which the timer's jitter (about a
/// tick) puts over it, and 1% cost the quota lab's sliding row 0.2 s for nothing.
fn first_nudge(advertised: bool, period: u64) -> f64 {
    if advertised {
        (2.0 * 1e6 / period.max(1) as f64).clamp(0.001, NUDGE)
    } else {
        NUDGE
    }
}

/// The 429s in a row, each within `STRIKE_PERIODS` of the one before, that cut the pace at
/// the ceiling when the server states no limit.
pub(crate) const LONE_BEFORE_CUT: u32 = 3;
/// The multiplicative decrease on a 429.
pub(crate) const BETA: f64 = 0.7;
/// How far below the refused pace the recovery stops.
pub(crate) const HEADROOM: f64 = 0.01;
/// How much the first strike slows the pace, with no dip (doubled for each strike after it).
pub(crate) const NUDGE: f64 = 0.01;
/// Periods spent on the plateau before probing upwards.
pub(crate) const PLATEAU_PERIODS: u64 = 10;
/// Periods the probe takes to get from the plateau back to `calls`.
pub(crate) const PROBE_PERIODS: u64 = 20;
/// A 429 more than one period and at most this many periods after the last change is a
/// strike.
pub(crate) const STRIKE_PERIODS: u64 = 2;
/// The strikes in a row after which a `Retry-After`, however short, holds every caller (the
/// nudges of 1%, 2% and 4% did not stop the 429s).
pub(crate) const HOLD_STRIKES: u32 = 4;
/// The pace never drops below this fraction of the ceiling (after about 18 strikes in a row):
/// a limiter must keep sending to learn that the server recovered.
pub(crate) const MIN_FRACTION: f64 = 0.01;

/// The controller's state: at the ceiling, or recovering from the last decrease.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Control {
    recovery: Option<Recovery>,
    /// When the last lone 429 at the ceiling came (see `advertised` in
    /// [`throttled`](Self::throttled)), and how many came in a row, each within
    /// `STRIKE_PERIODS` of the one before.
    lone: Option<(u64, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Recovery {
    /// When the pace was last cut or nudged (the curve starts there).
    at: u64,
    /// When the last 429 that was not the same event came (strikes count from it).
    last: u64,
    /// The pace right after the cut.
    from: f64,
    /// The pace the cut was made from (refused).
    w_max: f64,
    /// The 429s in a row (not the same event), each within `STRIKE_PERIODS` of the one before.
    strikes: u32,
}

/// What a 429 did to the controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Reaction {
    /// The same event as the last one counted.
    Ignored,
    /// Counted (for strikes), but the pace stays.
    Counted,
    /// The pace changed.
    Paced(Cut),
}

/// A change of pace a 429 made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cut {
    /// The pace from now on.
    pub(crate) rate: f64,
    /// 1 for a first 429, 2 and up when 429s keep coming at a reduced pace.
    pub(crate) strikes: u32,
}

/// The pace right after a cut, as a function of the time since it: the recovery's cubic for
/// one period, then its plateau. The callers already waiting when the pace is cut are spread
/// out along it ([`Move::Recover`](super::reschedule::Move::Recover)) rather than at the cut
/// pace: at the cut pace, the 30 callers a batch keeps queued at 50/s held 35/s for the 0.86 s
/// their slots spanned, whatever the recovery said meanwhile (0.3 s lost per cut in the quota
/// lab's sliding row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Curve {
    /// Admissions per second right after the cut.
    start: f64,
    /// Admissions per second from one period after it.
    target: f64,
    /// The period, in nanoseconds.
    period: u64,
}

impl Curve {
    /// The pace `elapsed` nanoseconds after the cut: concave, most of the way back in the
    /// first half of the period, then `target`.
    fn rate(&self, elapsed: f64) -> f64 {
        let period = self.period as f64;
        if elapsed >= period {
            return self.target;
        }
        let left = 1.0 - elapsed / period;
        self.target - (self.target - self.start) * left * left * left
    }

    /// How many admissions the curve makes in the first `elapsed` nanoseconds: the integral
    /// of [`rate`](Self::rate).
    fn admitted(&self, elapsed: f64) -> f64 {
        let period = self.period as f64;
        let climb = self.target - self.start;
        if elapsed >= period {
            let in_period = (self.target * period - climb * period / 4.0) / 1e9;
            return in_period + self.target * (elapsed - period) / 1e9;
        }
        // the integral of `target - climb * (1 - t / period)^3`
        let left = 1.0 - elapsed / period;
        (self.target * elapsed - climb * period / 4.0 * (1.0 - left.powi(4))) / 1e9
    }

    /// Nanoseconds after the cut by which the curve has made `admissions` admissions.
    pub(crate) fn time_for(&self, admissions: f64) -> f64 {
        // NaN and non-positive counts or paces: no time (a NaN compares false both ways).
        let positive = |value: f64| value.partial_cmp(&0.0) == Some(std::cmp::Ordering::Greater);
        if !positive(admissions) || !positive(self.start) || !positive(self.target) {
            return 0.0;
        }
        let period = self.period as f64;
        let in_period = self.admitted(period);
        if admissions >= in_period {
            return period + (admissions - in_period) * 1e9 / self.target;
        }
        // The count is increasing in time: bisection to well under a nanosecond.
        let (mut low, mut high) = (0.0, period);
        for _ in 0..64 {
            let middle = (low + high) / 2.0;
            if self.admitted(middle) < admissions {
                low = middle;
            } else {
                high = middle;
            }
        }
        high
    }
}

impl Control {
    /// Whether the pace is below the ceiling (so the limiter must keep [`rate`](Self::rate)
    /// up to date).
    pub(crate) fn recovering(&self) -> bool {
        self.recovery.is_some()
    }

    /// The pace at `now`: `ceiling` when no 429 was seen (or the probe got back to it).
    /// `period` is the limiter's window in nanoseconds.
    pub(crate) fn rate(&self, now: u64, period: u64, ceiling: f64) -> f64 {
        let Some(recovery) = self.recovery else {
            return ceiling;
        };
        recovery.rate(now, period.max(1), ceiling).min(ceiling)
    }

    /// The strikes in a row as of `now`: the last change's, or 1 for a lone 429 at the ceiling,
    /// if the last 429 counted was within `STRIKE_PERIODS`; else 0.
    pub(crate) fn strikes(&self, now: u64, period: u64) -> u32 {
        let window = STRIKE_PERIODS.saturating_mul(period.max(1));
        let recent = |at: u64| now.saturating_sub(at) <= window;
        match (self.recovery, self.lone) {
            (Some(recovery), _) if recent(recovery.last) => recovery.strikes,
            (None, Some((lone, _))) if recent(lone) => 1,
            _ => 0,
        }
    }

    /// The curve the pace follows from the last change on, capped at `ceiling`.
    pub(crate) fn curve(&self, period: u64, ceiling: f64) -> Option<Curve> {
        let curve = self.recovery?.curve(period.max(1));
        Some(Curve {
            start: curve.start.min(ceiling),
            target: curve.target.min(ceiling),
            ..curve
        })
    }

    /// Drops the recovery once the probe is back at `ceiling`.
    pub(crate) fn settle(&mut self, now: u64, period: u64, ceiling: f64) {
        if let Some(recovery) = self.recovery {
            if recovery.rate(now, period.max(1), ceiling) >= ceiling {
                self.recovery = None;
            }
        }
    }

    /// A 429; `stale` when the request was already on its way when the last 429 that counted
    /// was answered; `advertised` when the server states its limit and the pace in force is
    /// within it. Ignored when it is the same event as the last one counted (a stale request,
    /// or one within a period of the last change of pace: a sliding or fixed window remembers
    /// an overshoot for up to a window, whatever the pace since); counted but changing nothing
    /// when it is a lone 429 (on the plateau, or at a pace the server says it allows); else
    /// the new pace.
    pub(crate) fn throttled(
        &mut self,
        now: u64,
        stale: bool,
        advertised: bool,
        period: u64,
        ceiling: f64,
    ) -> Reaction {
        let period = period.max(1);
        self.settle(now, period, ceiling);
        let strike_window = STRIKE_PERIODS.saturating_mul(period);
        let strikes = match self.recovery {
            Some(recovery) if stale || now.saturating_sub(recovery.at) < period => {
                return Reaction::Ignored;
            }
            Some(recovery) if now.saturating_sub(recovery.last) <= strike_window => {
                recovery.strikes.saturating_add(1)
            }
            None => match self.lone {
                Some((first, count)) if !advertised && now.saturating_sub(first) <= period => {
                    let count = count.saturating_add(1);
                    if count < LONE_BEFORE_CUT {
                        self.lone = Some((first, count));
                        return Reaction::Counted;
                    }
                    2
                }
                Some((lone, _)) if advertised && now.saturating_sub(lone) <= strike_window => 2,
                _ => 1,
            },
            _ => 1,
        };
        let pace = self.rate(now, period, ceiling);
        if strikes == 1 {
            // A 429 after the cut's window, on the plateau or the probe, or at a pace within
            // the limit the server states: a request a few milliseconds early (nginx stamps
            // requests with a clock cached per event-loop turn; tokio's timers fire on whole
            // milliseconds; a sliding window of exactly `calls` sees every request on the
            // edge), not debt to drain. A lone one changes nothing: near its limit a strict
            // leaky bucket refuses one request every few seconds from jitter alone, at 50/s
            // as at 46/s, and slowing down for each cost the quota lab's nginx row 1.5 s over
            // 21 s; cutting by 30% for the knife-edge 429 a sliding window of 50 gives a pace
            // of exactly 50/s cost its row 0.15 s.
            match &mut self.recovery {
                Some(recovery) => {
                    recovery.strikes = 1;
                    recovery.last = now;
                }
                None => self.lone = Some((now, 1)),
            }
            return Reaction::Counted;
        }
        if strikes >= 2 && (self.recovery.is_some() || advertised) {
            // One within `STRIKE_PERIODS` of the last is a strike: a nudge of 1% with no dip,
            // doubled for each strike in a row (2%, 4%, ... up to a cut's 30%), so a quota
            // that really is lower is found geometrically.
            let doublings = i32::try_from(strikes.saturating_sub(2).min(16)).unwrap_or(16);
            let nudge = (first_nudge(advertised, period) * 2f64.powi(doublings)).min(1.0 - BETA);
            let rate = (pace * (1.0 - nudge)).max(ceiling * MIN_FRACTION);
            self.lone = None;
            self.recovery = Some(Recovery {
                at: now,
                last: now,
                from: rate,
                w_max: rate / (1.0 - HEADROOM),
                strikes,
            });
            return Reaction::Paced(Cut { rate, strikes });
        }
        // A third 429 within a period of a lone one at the ceiling, from a server that does
        // not state its limit: the pace is more than it allows. The cut, and the
        // strikes count from it.
        let rate = (pace * BETA).max(ceiling * MIN_FRACTION);
        self.lone = None;
        self.recovery = Some(Recovery {
            at: now,
            last: now,
            from: rate,
            w_max: pace.max(rate),
            strikes: 1,
        });
        Reaction::Paced(Cut { rate, strikes: 1 })
    }
}

impl Recovery {
    /// The recovery's first period: from the pace after the change up to `w_max` less the
    /// headroom.
    fn curve(&self, period: u64) -> Curve {
        Curve {
            start: self.from,
            target: (self.w_max * (1.0 - HEADROOM)).max(self.from),
            period,
        }
    }

    fn rate(&self, now: u64, period: u64, ceiling: f64) -> f64 {
        let elapsed = now.saturating_sub(self.at);
        let curve = self.curve(period);
        let target = curve.target;
        if elapsed < period {
            return curve.rate(elapsed as f64);
        }
        let plateau_end = period.saturating_mul(1 + PLATEAU_PERIODS);
        if elapsed < plateau_end {
            return target;
        }
        // convex: slow at first, so a quota that is really lower is found near the plateau
        let probe = period.saturating_mul(PROBE_PERIODS) as f64;
        let x = (elapsed - plateau_end) as f64 / probe;
        if x >= 1.0 {
            return f64::INFINITY;
        }
        target + (ceiling - target).max(0.0) * x * x * x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    fn paced(reaction: Reaction) -> Option<Cut> {
        match reaction {
            Reaction::Paced(cut) => Some(cut),
            _ => None,
        }
    }

    fn round(rate: f64) -> f64 {
        (rate * 100.0).round() / 100.0
    }

    /// Three 429s at `at` from a server that states no limit: two lone ones, then the cut.
    fn cut(control: &mut Control, at: u64) -> Reaction {
        for _ in 1..LONE_BEFORE_CUT {
            assert_eq!(
                control.throttled(at, false, false, S, 50.0),
                Reaction::Counted
            );
        }
        control.throttled(at, false, false, S, 50.0)
    }

    #[test]
    fn a_third_429_within_a_period_cuts_the_pace_to_seventy_percent() {
        let mut control = Control::default();
        assert_eq!(control.rate(0, S, 50.0), 50.0);
        // the first two are lone, even from a server that states no limit: a strict leaky
        // bucket refuses a request a millisecond early now and then at a pace it allows
        for at in [10 * S, 10_400 * MS] {
            assert_eq!(
                control.throttled(at, false, false, S, 50.0),
                Reaction::Counted
            );
        }
        assert_eq!(control.rate(10_400 * MS, S, 50.0), 50.0);
        // a third within a period of the first: the pace is more than the server allows
        let cut = control.throttled(10_900 * MS, false, false, S, 50.0);
        assert_eq!(
            cut,
            Reaction::Paced(Cut {
                rate: 35.0,
                strikes: 1
            })
        );
        assert_eq!(control.rate(10_900 * MS, S, 50.0), 35.0);
        // more than a period after the first, a 429 starts a new count
        let mut control = Control::default();
        control.throttled(S, false, false, S, 50.0);
        control.throttled(1_500 * MS, false, false, S, 50.0);
        for at in [2_100 * MS, 2_500 * MS] {
            assert_eq!(
                control.throttled(at, false, false, S, 50.0),
                Reaction::Counted
            );
        }
        assert_eq!(
            paced(control.throttled(3_000 * MS, false, false, S, 50.0)).map(|cut| cut.rate),
            Some(35.0)
        );
    }

    #[test]
    fn recovery_climbs_to_the_headroom_below_the_refused_pace_in_one_period() {
        let mut control = Control::default();
        cut(&mut control, 0);
        let climb: Vec<f64> = [0, 250, 500, 750, 1000, 5000, 11_000]
            .iter()
            .map(|ms| round(control.rate(ms * MS, S, 50.0)))
            .collect();
        // 35 -> 49.5 (50 less 1%): steep first, flat at the end, then the plateau
        assert_eq!(climb, [35.0, 43.38, 47.69, 49.27, 49.5, 49.5, 49.5]);
    }

    #[test]
    fn the_probe_returns_to_the_ceiling_and_never_above() {
        let mut control = Control::default();
        cut(&mut control, 0);
        let plateau_end = (1 + PLATEAU_PERIODS) * S;
        assert_eq!(control.rate(plateau_end, S, 50.0), 49.5);
        // convex: an eighth of the way up at half the probe
        let half = control.rate(plateau_end + PROBE_PERIODS * S / 2, S, 50.0);
        assert_eq!(round(half), 49.56);
        assert_eq!(control.rate(plateau_end + PROBE_PERIODS * S, S, 50.0), 50.0);
        control.settle(plateau_end + PROBE_PERIODS * S, S, 50.0);
        assert!(!control.recovering());
    }

    #[test]
    fn a_429_within_a_period_of_the_cut_is_the_same_event() {
        let mut control = Control::default();
        cut(&mut control, 1_000 * MS);
        // sent before the cut, answered after it: already answered
        assert_eq!(
            control.throttled(1_010 * MS, true, false, S, 50.0),
            Reaction::Ignored
        );
        // sent after the cut, but the server's window still remembers the overshoot
        assert_eq!(
            control.throttled(1_900 * MS, false, false, S, 50.0),
            Reaction::Ignored
        );
        assert_eq!(round(control.rate(1_010 * MS, S, 50.0)), 35.43);
    }

    #[test]
    fn a_lone_429_long_after_the_last_cut_changes_nothing() {
        let mut control = Control::default();
        cut(&mut control, 0);
        // on the plateau at 49.5/s, 5 periods later: a request a few ms early
        assert_eq!(
            control.throttled(5 * S, false, false, S, 50.0),
            Reaction::Counted
        );
        assert_eq!(control.rate(5 * S + 500 * MS, S, 50.0), 49.5);
        // but it counts: another within two periods is a strike, a nudge of 1%, no dip
        let cut = control.throttled(6_500 * MS, false, false, S, 50.0);
        assert_eq!(
            paced(cut).map(|cut| (round(cut.rate), cut.strikes)),
            Some((49.01, 2))
        );
        assert_eq!(round(control.rate(7 * S, S, 50.0)), 49.01);
        assert_eq!(round(control.rate(15 * S, S, 50.0)), 49.01);
    }

    #[test]
    fn refusals_that_keep_coming_are_strikes_and_double_the_nudge() {
        let mut control = Control::default();
        cut(&mut control, 0);
        // each a little over a period after the one before: 1%, 2%, 4%, 8% ...
        let mut paces = Vec::new();
        let mut strikes = Vec::new();
        for i in 1..=6 {
            let cut = control.throttled(i * 1_100 * MS, false, false, S, 50.0);
            let cut = paced(cut).expect("a strike changes the pace");
            paces.push(round(cut.rate));
            strikes.push(cut.strikes);
        }
        assert_eq!(strikes, [2, 3, 4, 5, 6, 7]);
        assert_eq!(paces, [49.01, 48.02, 46.1, 42.42, 35.63, 24.94]);
        // a 429 after the probe got back to the ceiling is a first one again: lone
        assert_eq!(
            control.throttled(60 * S, false, false, S, 50.0),
            Reaction::Counted
        );
    }

    #[test]
    fn a_429_within_the_advertised_limit_is_counted_and_a_second_is_a_strike() {
        let mut control = Control::default();
        // the server states its limit, and the pace is within it: a request on the edge
        assert_eq!(
            control.throttled(S, false, true, S, 50.0),
            Reaction::Counted
        );
        assert_eq!(control.rate(S, S, 50.0), 50.0);
        assert_eq!(control.strikes(S, S), 1);
        // another within two periods: a strike, a nudge with no dip of two timer ticks per
        // period (0.2% of 1 s), not 1%: the server said the pace was within its limit
        let cut = control.throttled(2_500 * MS, false, true, S, 50.0);
        assert_eq!(
            paced(cut).map(|cut| (round(cut.rate), cut.strikes)),
            Some((49.9, 2))
        );
        // and the next strike doubles it
        let cut = control.throttled(4_000 * MS, false, true, S, 50.0);
        assert_eq!(
            paced(cut).map(|cut| (round(cut.rate), cut.strikes)),
            Some((49.7, 3))
        );
        // more than two periods apart, each is lone again
        let mut control = Control::default();
        control.throttled(S, false, true, S, 50.0);
        assert_eq!(
            control.throttled(3_100 * MS, false, true, S, 50.0),
            Reaction::Counted
        );
        // without a stated limit the first two are lone too, but a third within a period of
        // the first is a cut
        let mut control = Control::default();
        for at in [S, 1_500 * MS] {
            assert_eq!(
                control.throttled(at, false, false, S, 50.0),
                Reaction::Counted
            );
        }
        assert_eq!(
            paced(control.throttled(1_900 * MS, false, false, S, 50.0)).map(|cut| cut.rate),
            Some(35.0)
        );
    }

    #[test]
    fn a_cut_spreads_the_queue_along_the_recovery() {
        let mut control = Control::default();
        cut(&mut control, 0);
        let curve = control.curve(S, 50.0).expect("recovering");
        let at = |admissions: f64| (curve.time_for(admissions) / 1e5).round() / 10.0;
        // 30 callers queued 20 ms apart at 50/s: the first at 35/s, the 30th after 678.5 ms
        // of the climb to 49.5/s (857 ms at the cut pace alone)
        assert_eq!([at(1.0), at(10.0), at(30.0)], [28.1, 252.4, 678.5]);
        // the period makes 45.875, then the plateau's 49.5/s
        assert_eq!(at(45.875 + 49.5), 2_000.0);
        assert_eq!(at(0.0), 0.0);
    }

    #[test]
    fn the_pace_has_a_floor_and_follows_a_lower_ceiling() {
        let mut control = Control::default();
        cut(&mut control, 0);
        let mut now = 0;
        for _ in 0..40 {
            now += S + 100 * MS;
            control.throttled(now, false, false, S, 50.0);
        }
        // never under 1% of the ceiling
        assert_eq!(control.rate(now, S, 50.0), 0.5);
        let mut control = Control::default();
        cut(&mut control, 0);
        // a server advertising 20/s caps the recovery
        assert_eq!(control.rate(10 * S, S, 20.0), 20.0);
    }
}
