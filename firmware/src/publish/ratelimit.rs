//! Rates the device holds itself to when someone else sets the pace: answers to refused
//! requests, and log lines about them (a flood must not fill the journal or the disk).

use std::time::{Duration, Instant};

/// A token bucket: `rate` per second on average, bursts of up to `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate: rate.max(0.0),
            burst: burst.max(1.0),
            tokens: burst.max(1.0),
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Log lines about a repeated occurrence: the first at once, then at most one summary per
/// `every` with the count since the last line.
#[derive(Debug, Clone)]
pub struct LogThrottle {
    every: Duration,
    last: Option<Instant>,
    pending: u64,
}

impl LogThrottle {
    /// At most one line per `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            pending: 0,
        }
    }

    /// Counts one occurrence; returns how many to report now (this one and those held back),
    /// or `None` when the line is held back.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        self.pending += 1;
        match self.last {
            Some(at) if now.saturating_duration_since(at) < self.every => None,
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.pending))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(5.0, 10.0, t0);
        let burst = (0..100).filter(|_| b.take(t0)).count();
        assert_eq!(burst, 10);
        // One second later: five more, not ten.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..100).filter(|_| b.take(t1)).count(), 5);
        // A long pause refills only up to the burst.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!((0..100).filter(|_| b.take(t2)).count(), 10);
    }

    #[test]
    fn a_throttle_reports_the_first_then_one_summary_per_period() {
        let t0 = Instant::now();
        let mut log = LogThrottle::new(Duration::from_secs(10));
        assert_eq!(log.hit(t0), Some(1));
        let held: Vec<_> = (0..999)
            .map(|_| log.hit(t0 + Duration::from_secs(1)))
            .collect();
        assert!(held.iter().all(Option::is_none));
        assert_eq!(log.hit(t0 + Duration::from_secs(11)), Some(1000));
    }
}
