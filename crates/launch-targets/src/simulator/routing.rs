//! Which version serves a request, and whether an injected fault hits it. Deterministic: request
//! n goes to V2 when a fixed permutation of n mod 100 falls under the rollout percentage, so any
//! 100 consecutive requests split exactly as the flag says.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::flags::LocalFlags;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Legacy,
    V2,
}

impl Variant {
    pub fn header(self) -> &'static str {
        match self {
            Variant::Legacy => "v1",
            Variant::V2 => "v2",
        }
    }
}

/// How long a flag read is reused; well under any canary check interval.
const FLAG_TTL: Duration = Duration::from_millis(20);

pub struct Router {
    counter: AtomicU64,
    /// Counts V2 requests only, so injected faults hit exactly their share of V2 traffic.
    v2_counter: AtomicU64,
    cached: Mutex<(Instant, u8)>,
}

impl Router {
    pub fn new() -> Self {
        Router {
            counter: AtomicU64::new(0),
            v2_counter: AtomicU64::new(0),
            cached: Mutex::new((Instant::now() - FLAG_TTL * 2, 0)),
        }
    }

    /// The rollout percentage, re-read from the flag store at most every `FLAG_TTL`.
    pub fn percent(&self, flags: &LocalFlags, flag: &str) -> u8 {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0.elapsed() >= FLAG_TTL {
            // An unreadable flag file routes everyone to legacy: the safe side.
            *cached = (Instant::now(), flags.read(flag).unwrap_or(0));
        }
        cached.1
    }

    /// Picks the variant for the next request, and for V2 a ticket number for fault injection.
    pub fn pick(&self, percent: u8) -> (Variant, u64) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let slot = (n * 37) % 100; // 37 is coprime with 100: a permutation of 0..100
        if slot < u64::from(percent) {
            (Variant::V2, self.v2_counter.fetch_add(1, Ordering::Relaxed))
        } else {
            (Variant::Legacy, n)
        }
    }
}

/// True for `rate` of tickets, evenly spaced (Bresenham): over any first n tickets, the count
/// is within one of `rate * n`, so even a short canary window sees the injected rate.
pub fn hits(ticket: u64, rate: f64) -> bool {
    let t = ticket as f64;
    ((t + 1.0) * rate).floor() > (t * rate).floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hundred_requests_split_exactly() {
        let r = Router::new();
        for percent in [0u8, 10, 30, 50, 100] {
            let v2 = (0..100)
                .filter(|_| r.pick(percent).0 == Variant::V2)
                .count();
            assert_eq!(v2, percent as usize);
        }
    }

    #[test]
    fn fault_rate_is_exact_over_any_prefix() {
        assert_eq!((0..1000).filter(|&t| hits(t, 0.2)).count(), 200);
        assert_eq!((0..10).filter(|&t| hits(t, 0.2)).count(), 2);
        assert_eq!((0..1000).filter(|&t| hits(t, 0.0)).count(), 0);
        assert_eq!((0..1000).filter(|&t| hits(t, 1.0)).count(), 1000);
    }
}
