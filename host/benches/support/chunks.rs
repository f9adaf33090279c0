//! Timings taken in chunks spread over a few seconds, with each chunk's median kept.
//!
//! On this VM a plugin call's median is 20 µs in some periods and 27-35 µs in others, the
//! period lasting from a tenth of a second to several seconds, within one process. 5 000
//! back-to-back calls last 0.15 s and fell into one period, which looked like a result that
//! changed per process. Spread over chunks, one run meets both, and the chunks' medians show
//! how far apart they are. Nothing here picks chunks: every timing counts in the median. A
//! control with no plugin (`machine_alone`), timed in the same chunks, shows whether the slow
//! chunks were the machine's.

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

    /// Each chunk's median of `series`, in ns, in the order of the chunks (0 for a chunk that
    /// has none).
    pub fn medians(&self, series: usize) -> Vec<u64> {
        self.chunks.iter().map(|c| median(&c[series])).collect()
    }

    /// The fastest, middle and slowest of the chunks' medians of `series`, in ns.
    pub fn chunk_medians(&self, series: usize) -> (u64, u64, u64) {
        let mut medians: Vec<u64> = self
            .chunks
            .iter()
            .filter(|c| !c[series].is_empty())
            .map(|c| median(&c[series]))
            .collect();
        medians.sort_unstable();
        match (medians.first(), medians.last()) {
            (Some(&fastest), Some(&slowest)) => (fastest, medians[medians.len() / 2], slowest),
            _ => (0, 0, 0),
        }
    }
}

fn median(timings: &[u64]) -> u64 {
    let mut t = timings.to_vec();
    t.sort_unstable();
    t.get(t.len() / 2).copied().unwrap_or(0)
}

/// The machine alone, with no plugin: copying 64 KiB and 32 small allocations, as a call's
/// teardown and lowering do. Timed in the same chunks as the calls, it shows whether a slow
/// chunk was the machine's.
pub fn machine_alone() -> Duration {
    let from = vec![1u8; 64 << 10];
    let mut to = vec![0u8; 64 << 10];
    let t = std::time::Instant::now();
    to.copy_from_slice(std::hint::black_box(&from));
    let blocks: Vec<Box<[u8]>> = (0..32)
        .map(|i| vec![0u8; 64 + 16 * i].into_boxed_slice())
        .collect();
    std::hint::black_box((&to, blocks));
    t.elapsed()
}

/// The median of `control` over the chunks where `series` was fastest (its third of the
/// chunks with the lowest medians) and where it was slowest, in ns.
pub fn control_by_thirds(timings: &Chunked, series: usize, control: usize) -> (u64, u64) {
    let (by, of) = (timings.medians(series), timings.medians(control));
    let mut order: Vec<usize> = (0..by.len()).collect();
    order.sort_unstable_by_key(|&c| by[c]);
    let third = (order.len() / 3).max(1);
    let of_chunks = |chunks: &[usize]| median(&chunks.iter().map(|&c| of[c]).collect::<Vec<_>>());
    (
        of_chunks(&order[..third]),
        of_chunks(&order[order.len() - third..]),
    )
}
