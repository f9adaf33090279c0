//! Timings taken in chunks spread over a few seconds, with each chunk's median kept.
//!
//! On this VM a plugin call's median is 20 µs in some periods and 27-35 µs in others, the
//! period lasting from a tenth of a second to several seconds, within one process. 5 000
//! back-to-back calls last 0.15 s and fell into one period, which looked like a result that
//! changed per process. Spread over chunks, one run meets both, and the chunks' medians show
//! how far apart they are. Nothing here picks chunks: every timing counts in the median.

#![allow(dead_code)] // not every benchmark times calls

use std::time::Duration;

use hdrhistogram::Histogram;

/// The pause before each chunk, so that a run spans several periods.
const GAP: Duration = Duration::from_millis(40);

/// Timed calls per chunk.
pub const CHUNK: usize = 100;

pub struct Chunked {
    series: usize,
    chunks: Vec<Vec<Vec<u64>>>,
}

impl Chunked {
    /// Timings of `series` measures, taken side by side.
    pub fn new(series: usize) -> Chunked {
        Chunked {
            series,
            chunks: Vec::new(),
        }
    }

    /// Pauses for `GAP`, then starts a chunk: the timings recorded next belong to it.
    pub async fn chunk(&mut self) {
        tokio::time::sleep(GAP).await;
        self.chunks.push(vec![Vec::new(); self.series]);
    }

    pub fn record(&mut self, series: usize, elapsed: Duration) {
        let chunk = self.chunks.last_mut().expect("`chunk` first");
        chunk[series].push(elapsed.as_nanos() as u64);
    }

    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// Every timing of `series`.
    pub fn all(&self, series: usize) -> Histogram<u64> {
        let mut h = Histogram::new(3).expect("3 significant digits");
        for chunk in &self.chunks {
            for &ns in &chunk[series] {
                h.record(ns).expect("in range");
            }
        }
        h
    }

    /// The fastest, middle and slowest of the chunks' medians of `series`, in ns.
    pub fn chunk_medians(&self, series: usize) -> (u64, u64, u64) {
        let mut medians: Vec<u64> = self
            .chunks
            .iter()
            .filter(|c| !c[series].is_empty())
            .map(|c| {
                let mut t = c[series].clone();
                t.sort_unstable();
                t[t.len() / 2]
            })
            .collect();
        medians.sort_unstable();
        match (medians.first(), medians.last()) {
            (Some(&fastest), Some(&slowest)) => (fastest, medians[medians.len() / 2], slowest),
            _ => (0, 0, 0),
        }
    }
}
