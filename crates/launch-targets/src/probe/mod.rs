//! The probe engine: measures a target at a constant request rate (an open model: a slow answer
//! does not delay the next request, and latency is measured from the moment a request was
//! *due*, so there is no coordinated omission). Results are folded into windows per endpoint
//! and per serving version, with latency histograms, error and 409-conflict counts.

mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use tokio::sync::mpsc;

pub use stats::{EndpointStats, Window};

/// One endpoint to probe.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub method: Method,
    pub url: String,
}

/// The StatusBoardV2 API endpoints the probe measures and a canary compares: the board, the
/// drawer and the stats.
pub fn statusboard_endpoints(api_url: &str) -> Vec<Endpoint> {
    [
        ("board", "/api/admin/appointments/board"),
        ("drawer", "/api/appointments/1"),
        ("stats", "/api/admin/dashboard/stats"),
    ]
    .into_iter()
    .map(|(name, path)| Endpoint {
        name: name.into(),
        method: Method::GET,
        url: format!("{api_url}{path}"),
    })
    .collect()
}

/// The version that served a response, from the target's `X-Served-By` header.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Served {
    Baseline,
    Canary,
}

/// Most requests in flight at once; beyond it a due request is counted as an error rather
/// than queued without bound.
const MAX_IN_FLIGHT: usize = 4_096;

/// The highest request rate a probe will run at.
pub const MAX_RATE: u32 = 100_000;

/// Raw latencies kept per endpoint and version per window (for statistical tests).
pub const RAW_SAMPLES: usize = 1_000;

struct Outcome {
    endpoint: usize,
    served: Served,
    latency: Duration,
    status: Option<u16>,
}

/// A running probe; windows arrive on `windows` as they close. Stops when dropped.
pub struct Probe {
    pub windows: mpsc::Receiver<Window>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Probe {
    /// Starts probing `endpoints` round-robin at `rate` requests per second, closing a window
    /// every `window`. Each request times out after `timeout`.
    pub fn start(
        client: reqwest::Client,
        endpoints: Vec<Endpoint>,
        rate: u32,
        window: Duration,
        timeout: Duration,
    ) -> Probe {
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(run(client, Arc::new(endpoints), rate, window, timeout, tx));
        Probe { windows: rx, task }
    }

    /// Waits for the next closed window.
    pub async fn next_window(&mut self) -> Option<Window> {
        self.windows.recv().await
    }
}

async fn run(
    client: reqwest::Client,
    endpoints: Arc<Vec<Endpoint>>,
    rate: u32,
    window: Duration,
    timeout: Duration,
    tx: mpsc::Sender<Window>,
) {
    if endpoints.is_empty() {
        return;
    }
    // Callers check their ranges; these bounds keep the arithmetic below total whatever they
    // pass (a zero period or a window past the clock's end would panic).
    let rate = rate.clamp(1, MAX_RATE);
    let window = window.clamp(Duration::from_millis(1), Duration::from_secs(24 * 3600));
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Outcome>();
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut schedule = tokio::time::interval(period);
    // Burst: if the scheduler falls behind, catch up to keep the configured rate.
    schedule.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut current = Window::new(
        SystemTime::now(),
        endpoints.iter().map(|e| e.name.clone()).collect(),
    );
    let mut window_end = Instant::now() + window;
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut n: usize = 0;
    loop {
        tokio::select! {
            biased;
            Some(o) = done_rx.recv() => current.record(o.endpoint, o.served, o.latency, o.status),
            _ = tokio::time::sleep_until(window_end.into()) => {
                let closed = std::mem::replace(&mut current, Window::new(SystemTime::now(), endpoints.iter().map(|e| e.name.clone()).collect()));
                window_end += window;
                if tx.send(closed.finish(window)).await.is_err() {
                    return;
                }
            }
            due = schedule.tick() => {
                let idx = n % endpoints.len();
                n = n.wrapping_add(1);
                if in_flight.load(std::sync::atomic::Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    current.record(idx, Served::Baseline, Duration::ZERO, None);
                    continue;
                }
                in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (client, endpoints, done, in_flight) = (client.clone(), endpoints.clone(), done_tx.clone(), in_flight.clone());
                tokio::spawn(async move {
                    let ep = &endpoints[idx];
                    let sent = client.request(ep.method.clone(), &ep.url).timeout(timeout).send().await;
                    let (status, served) = match sent {
                        Ok(resp) => {
                            let served = match resp.headers().get("x-served-by").map(|v| v.as_bytes()) {
                                Some(b"v2") => Served::Canary,
                                _ => Served::Baseline,
                            };
                            let status = resp.status().as_u16();
                            // Read the body: the answer is complete only when it has arrived.
                            let ok = resp.bytes().await.is_ok();
                            (ok.then_some(status), served)
                        }
                        Err(_) => (None, Served::Baseline),
                    };
                    // Latency from when the request was due, not when it was sent.
                    let latency = due.elapsed();
                    in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                    let _ = done.send(Outcome { endpoint: idx, served, latency, status });
                });
            }
        }
    }
}

/// Closed-loop load, as `wrk` makes it: `connections` workers each send the next request as
/// soon as the previous answer is read, for `duration`. Used to compare the probe's client
/// path with wrk's on the same target; monitoring itself uses the open model above.
pub async fn saturate(
    client: reqwest::Client,
    url: String,
    connections: usize,
    duration: Duration,
) -> EndpointStats {
    let deadline = Instant::now() + duration;
    let workers: Vec<_> = (0..connections.max(1))
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut w = Window::new(SystemTime::now(), vec![String::new()]);
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let status = match client.get(&url).send().await {
                        Ok(r) => {
                            let s = r.status().as_u16();
                            r.bytes().await.ok().map(|_| s)
                        }
                        Err(_) => None,
                    };
                    w.record(0, Served::Baseline, sent.elapsed(), status);
                }
                w
            })
        })
        .collect();
    let mut total: Option<EndpointStats> = None;
    for worker in workers {
        if let Ok(w) = worker.await {
            for (_, s) in w.endpoints(None) {
                match &mut total {
                    Some(t) => t.merge(&s),
                    None => total = Some(s),
                }
            }
        }
    }
    total.unwrap_or_else(EndpointStats::empty)
}
