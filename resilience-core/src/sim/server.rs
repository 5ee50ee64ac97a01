//! The modelled server: how long it takes to answer, how often it fails and with what, its
//! quota, and its outages. Pure logic over the virtual time of the try's arrival and a seeded
//! generator: the same arrivals get the same answers.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;

/// How long the server takes to answer a try (each try draws its own).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Latency {
    /// Always this long.
    Fixed(Duration),
    /// Uniform between the two, bounds included.
    Uniform(Duration, Duration),
    /// Log-normal with this median and 99th percentile: a long tail, as real services have.
    LogNormal {
        /// Half the answers are faster.
        median: Duration,
        /// 99% of the answers are faster.
        p99: Duration,
    },
}

impl Latency {
    /// Always `latency`.
    pub fn fixed(latency: Duration) -> Self {
        Latency::Fixed(latency)
    }

    /// Uniform in `min..=max`.
    pub fn uniform(min: Duration, max: Duration) -> Self {
        Latency::Uniform(min, max)
    }

    /// Log-normal with this `median` and `p99`.
    pub fn log_normal(median: Duration, p99: Duration) -> Self {
        Latency::LogNormal { median, p99 }
    }

    fn check(&self) -> Result<(), String> {
        match *self {
            Latency::Fixed(_) => Ok(()),
            Latency::Uniform(min, max) if min > max => Err(format!(
                "latency: uniform minimum {min:?} is above its maximum {max:?}"
            )),
            Latency::LogNormal { median, p99 } if median.is_zero() || p99 < median => Err(format!(
                "latency: log-normal needs 0 < median <= p99, found median {median:?} and p99 {p99:?}"
            )),
            _ => Ok(()),
        }
    }

    fn draw(&self, rng: &mut StdRng) -> Duration {
        match *self {
            Latency::Fixed(latency) => latency,
            Latency::Uniform(min, max) => rng.random_range(min..=max),
            Latency::LogNormal { median, p99 } => {
                // z of the 99th percentile of the standard normal.
                const Z99: f64 = 2.326_347_874;
                let sigma = (p99.as_secs_f64() / median.as_secs_f64()).ln() / Z99;
                // Box-Muller: one standard normal from two uniforms in (0, 1].
                let u1 = 1.0 - rng.random::<f64>();
                let u2 = rng.random::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let seconds = median.as_secs_f64() * (sigma * z).exp();
                Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
            }
        }
    }
}

/// The server's quota: beyond it, a try is answered 429.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    shape: Shape,
    retry_after: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// At most `limit` tries in each window `[k * window, (k + 1) * window)` of the run.
    FixedWindow { limit: u32, window: Duration },
    /// A bucket of `capacity` tokens, full at the start, refilled by `rate` every `per`.
    TokenBucket {
        capacity: u32,
        rate: u32,
        per: Duration,
    },
}

impl Quota {
    /// At most `limit` tries in each `window`, the windows counted from the start of the run;
    /// a refused try is told to retry after the end of its window.
    pub fn fixed_window(limit: u32, window: Duration) -> Self {
        Quota {
            shape: Shape::FixedWindow { limit, window },
            retry_after: true,
        }
    }

    /// A token bucket of `capacity`, full at the start and refilled with `rate` tokens every
    /// `per` (continuously); each try takes a token, and a refused one is told to retry after
    /// the next token.
    pub fn token_bucket(capacity: u32, rate: u32, per: Duration) -> Self {
        Quota {
            shape: Shape::TokenBucket {
                capacity,
                rate,
                per,
            },
            retry_after: true,
        }
    }

    /// 429s without a Retry-After (as nginx's `limit_req` answers): the client's backoff
    /// decides alone.
    pub fn without_retry_after(mut self) -> Self {
        self.retry_after = false;
        self
    }

    fn check(&self) -> Result<(), String> {
        match self.shape {
            Shape::FixedWindow { window, .. } if window.is_zero() => {
                Err("quota: a fixed window must be longer than zero".to_string())
            }
            Shape::TokenBucket { rate, per, .. } if rate == 0 || per.is_zero() => Err(
                "quota: a token bucket needs a rate above zero per a period above zero".to_string(),
            ),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shape {
            Shape::FixedWindow { limit, window } => {
                write!(f, "a fixed window of {limit} per {window:?}")?
            }
            Shape::TokenBucket {
                capacity,
                rate,
                per,
            } => write!(f, "a token bucket of {capacity}, {rate} per {per:?}")?,
        }
        if !self.retry_after {
            f.write_str(" (429s without Retry-After)")?;
        }
        Ok(())
    }
}

/// A modelled server: each try that reaches it is, in this order, answered 503 during an
/// outage, 429 beyond the quota, failed with a status at its rate, or answered; every answer
/// takes a latency drawn from [`Latency`].
///
/// ```
/// # use resilience_core as resilience;
/// use std::time::Duration;
/// use resilience::sim::{Latency, Quota, Server};
///
/// let server = Server::new(Latency::uniform(Duration::from_millis(20), Duration::from_millis(80)))
///     .fail(503, 0.05)
///     .fail(500, 0.01)
///     .quota(Quota::fixed_window(50, Duration::from_secs(1)))
///     .outage(Duration::from_secs(60), Duration::from_secs(10));
/// # let _ = server;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    latency: Latency,
    failures: Vec<(u16, f64)>,
    quota: Option<Quota>,
    outages: Vec<(Duration, Duration)>,
}

impl Server {
    /// A server that answers every try after `latency`.
    pub fn new(latency: Latency) -> Self {
        Server {
            latency,
            failures: Vec::new(),
            quota: None,
            outages: Vec::new(),
        }
    }

    /// Fails this share of the tries (0.0 to 1.0) with `status`; the shares of several
    /// statuses add up (to at most 1.0).
    pub fn fail(mut self, status: u16, rate: f64) -> Self {
        self.failures.push((status, rate));
        self
    }

    /// Answers 429 beyond this quota.
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// Answers every try 503 from `at` (since the start of the run) for `lasting`.
    pub fn outage(mut self, at: Duration, lasting: Duration) -> Self {
        self.outages.push((at, lasting));
        self
    }

    /// The first problem with the model's values.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.latency.check()?;
        if let Some(quota) = &self.quota {
            quota.check()?;
        }
        let mut total = 0.0;
        for &(status, rate) in &self.failures {
            if !(400..=599).contains(&status) {
                return Err(format!(
                    "fail: a failure status is 400 to 599, found {status}"
                ));
            }
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!(
                    "fail: the rate of {status} must be between 0.0 and 1.0, found {rate}"
                ));
            }
            total += rate;
        }
        if total > 1.0 {
            return Err(format!(
                "fail: the failure rates add up to {total}, above 1.0"
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.latency {
            Latency::Fixed(latency) => write!(f, "latency {latency:?}")?,
            Latency::Uniform(min, max) => write!(f, "latency {min:?} to {max:?}")?,
            Latency::LogNormal { median, p99 } => {
                write!(f, "latency median {median:?}, p99 {p99:?}")?
            }
        }
        for (status, rate) in &self.failures {
            write!(f, ", {}% {status}", rate * 100.0)?;
        }
        if let Some(quota) = &self.quota {
            write!(f, ", {quota}")?;
        }
        for (at, lasting) in &self.outages {
            write!(f, ", an outage of {lasting:?} at {at:?}")?;
        }
        Ok(())
    }
}

/// What the server answers one try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// A success.
    Ok,
    /// A failure with this status, and the Retry-After of a 429.
    Status(u16, Option<Duration>),
}

/// The server while it runs: its quota's count and its generator.
pub(crate) struct Running {
    model: Server,
    rng: StdRng,
    /// Fixed window: the window's index and the tries in it. Token bucket: tokens, and when
    /// they were counted.
    window: (u64, u32),
    bucket: (f64, Duration),
}

impl Running {
    pub(crate) fn new(model: Server, rng: StdRng) -> Self {
        let capacity = match model.quota.map(|quota| quota.shape) {
            Some(Shape::TokenBucket { capacity, .. }) => f64::from(capacity),
            _ => 0.0,
        };
        Running {
            model,
            rng,
            window: (0, 0),
            bucket: (capacity, Duration::ZERO),
        }
    }

    /// The answer to a try arriving at `now` (since the start of the run), and how long it
    /// takes.
    pub(crate) fn arrive(&mut self, now: Duration) -> (Answer, Duration) {
        let latency = self.model.latency.draw(&mut self.rng);
        let down = self
            .model
            .outages
            .iter()
            .any(|&(at, lasting)| now >= at && now - at < lasting);
        if down {
            return (Answer::Status(503, None), latency);
        }
        if let Some(quota) = self.model.quota {
            if let Some(wait) = self.over_quota(quota.shape, now) {
                let retry_after = quota.retry_after.then_some(wait);
                return (Answer::Status(429, retry_after), latency);
            }
        }
        let mut draw = self.rng.random::<f64>();
        for &(status, rate) in &self.model.failures {
            if draw < rate {
                return (Answer::Status(status, None), latency);
            }
            draw -= rate;
        }
        (Answer::Ok, latency)
    }

    /// `Some(time until the quota admits a try)` when it refuses this one.
    fn over_quota(&mut self, shape: Shape, now: Duration) -> Option<Duration> {
        match shape {
            Shape::FixedWindow { limit, window } => {
                let index = u64::try_from(now.as_nanos() / window.as_nanos()).unwrap_or(u64::MAX);
                if self.window.0 != index {
                    self.window = (index, 0);
                }
                if self.window.1 < limit {
                    self.window.1 += 1;
                    return None;
                }
                let end = window.as_nanos().saturating_mul(u128::from(index) + 1);
                let wait = end.saturating_sub(now.as_nanos());
                Some(round_up_to_ms(Duration::from_nanos(
                    u64::try_from(wait).unwrap_or(u64::MAX),
                )))
            }
            Shape::TokenBucket {
                capacity,
                rate,
                per,
            } => {
                let per_token = per.as_secs_f64() / f64::from(rate);
                let (tokens, counted) = self.bucket;
                let refilled = now.saturating_sub(counted).as_secs_f64() / per_token;
                let tokens = (tokens + refilled).min(f64::from(capacity));
                self.bucket = (tokens, now);
                if tokens >= 1.0 {
                    self.bucket.0 = tokens - 1.0;
                    return None;
                }
                let wait = Duration::try_from_secs_f64((1.0 - tokens) * per_token)
                    .unwrap_or(Duration::MAX);
                Some(round_up_to_ms(wait))
            }
        }
    }
}

/// A Retry-After as a server writes one in milliseconds (`retry-after-ms`), never zero.
fn round_up_to_ms(wait: Duration) -> Duration {
    let ms = wait.as_nanos().div_ceil(1_000_000).max(1);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn running(server: Server) -> Running {
        Running::new(server, StdRng::seed_from_u64(1))
    }

    #[test]
    fn a_fixed_window_refuses_until_its_end() {
        let mut server =
            running(Server::new(Latency::fixed(MS(5))).quota(Quota::fixed_window(2, MS(1000))));
        let answers: Vec<Answer> = [0, 10, 20, 990, 1000]
            .map(|at| server.arrive(MS(at)).0)
            .to_vec();
        assert_eq!(
            answers,
            [
                Answer::Ok,
                Answer::Ok,
                Answer::Status(429, Some(MS(980))),
                Answer::Status(429, Some(MS(10))),
                Answer::Ok,
            ]
        );
    }

    #[test]
    fn a_token_bucket_refills_continuously() {
        let quota = Quota::token_bucket(2, 10, MS(1000)).without_retry_after();
        let mut server = running(Server::new(Latency::fixed(MS(5))).quota(quota));
        assert_eq!(server.arrive(MS(0)).0, Answer::Ok);
        assert_eq!(server.arrive(MS(0)).0, Answer::Ok);
        assert_eq!(server.arrive(MS(50)).0, Answer::Status(429, None));
        // One token every 100 ms: half of one at 50 ms, a whole one at 100 ms.
        assert_eq!(server.arrive(MS(100)).0, Answer::Ok);
        let mut told =
            running(Server::new(Latency::fixed(MS(5))).quota(Quota::token_bucket(1, 10, MS(1000))));
        assert_eq!(told.arrive(MS(0)).0, Answer::Ok);
        assert_eq!(told.arrive(MS(30)).0, Answer::Status(429, Some(MS(70))));
    }

    #[test]
    fn an_outage_answers_503_for_its_length() {
        let mut server = running(Server::new(Latency::fixed(MS(5))).outage(MS(100), MS(50)));
        let answers = [99, 100, 149, 150].map(|at| server.arrive(MS(at)).0);
        let down = Answer::Status(503, None);
        assert_eq!(answers, [Answer::Ok, down, down, Answer::Ok]);
    }

    #[test]
    fn failure_rates_and_latencies_follow_their_distributions() {
        let mut server = running(
            Server::new(Latency::log_normal(MS(100), MS(1000)))
                .fail(503, 0.1)
                .fail(500, 0.05),
        );
        let mut latencies = Vec::new();
        let (mut s503, mut s500) = (0, 0);
        for _ in 0..100_000 {
            let (answer, latency) = server.arrive(MS(0));
            latencies.push(latency);
            match answer {
                Answer::Status(503, _) => s503 += 1,
                Answer::Status(500, _) => s500 += 1,
                _ => {}
            }
        }
        assert!((9_500..10_500).contains(&s503), "{s503}");
        assert!((4_600..5_400).contains(&s500), "{s500}");
        latencies.sort();
        let (median, p99) = (latencies[50_000], latencies[99_000]);
        assert!((MS(97)..MS(103)).contains(&median), "{median:?}");
        assert!((MS(940)..MS(1060)).contains(&p99), "{p99:?}");
    }

    #[test]
    fn bad_values_are_refused() {
        let fixed = Latency::fixed(MS(1));
        assert!(
            Server::new(fixed)
                .fail(503, 0.5)
                .fail(500, 0.6)
                .check()
                .is_err()
        );
        assert!(Server::new(fixed).fail(200, 0.1).check().is_err());
        assert!(Server::new(fixed).fail(503, f64::NAN).check().is_err());
        assert!(Server::new(Latency::uniform(MS(2), MS(1))).check().is_err());
        assert!(
            Server::new(Latency::log_normal(MS(2), MS(1)))
                .check()
                .is_err()
        );
        let zero = Quota::fixed_window(1, Duration::ZERO);
        assert!(Server::new(fixed).quota(zero).check().is_err());
        assert!(Server::new(fixed).fail(503, 1.0).check().is_ok());
    }
}
