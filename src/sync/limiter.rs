//! The client-side rate limiter. The API's rule (20000730) is a count in a window: more than 20
//! requests in 1 s from one client and the next is refused. This limiter keeps at most `limit`
//! requests in any `window` (1 s + 100 ms for network jitter), so each window's allowance goes
//! out at once and the rate stays just under 20/s. (A GCRA limiter such as `governor` with a
//! burst of 20 would allow up to 39 in some 1-second windows; with no burst it spaces requests
//! evenly and cannot reach the throughput target.)
//!
//! What WeChat Pay counts is when a request *arrives*, and a request can leave late: a new TLS
//! connection, or a busy machine, can hold it for longer than the margin, and the next window's
//! requests, sent at once on warm connections, would then arrive less than a second after it.
//! So a slot is held until the answer comes back ([`Permit`]), and is then dated by when the
//! request most likely left: its answer's time less the quickest round trip seen, if that is
//! later than when it was let through. A request that left on time costs nothing; a late one
//! pushes the next window back by as much as it was late.
//!
//! A `FREQUENCY_LIMITED` answer backs it off: a pause of one window, then half the limit for a
//! minute.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug)]
struct Slot {
    id: u64,
    /// When the request counts from: let through, or (once answered) when it likely left.
    at: Instant,
    /// Still waiting for its answer: never expires.
    in_flight: bool,
}

#[derive(Debug)]
struct State {
    slots: Vec<Slot>,
    next_id: u64,
    /// The quickest round trip seen (a request that left at once).
    fastest: Option<Duration>,
    paused_until: Option<Instant>,
    reduced_until: Option<Instant>,
}

#[derive(Debug)]
struct Shared {
    limit: usize,
    window: Duration,
    state: Mutex<State>,
    answered: Notify,
}

#[derive(Debug, Clone)]
pub struct RateLimiter {
    shared: Arc<Shared>,
}

/// A request let through. Dropping it says the answer came back (or the request was given up).
#[derive(Debug)]
pub struct Permit {
    shared: Arc<Shared>,
    id: u64,
    let_through: Instant,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut s = self.shared.lock();
        let trip = now.duration_since(self.let_through);
        let fastest = *s.fastest.get_or_insert(trip);
        s.fastest = Some(fastest.min(trip));
        let left = (now - s.fastest.unwrap_or(trip)).max(self.let_through);
        if let Some(slot) = s.slots.iter_mut().find(|x| x.id == self.id) {
            slot.at = left;
            slot.in_flight = false;
        }
        drop(s);
        self.shared.answered.notify_waiters();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RateLimiter {
    /// At most `limit` requests in any `window`.
    pub fn new(limit: usize, window: Duration) -> Self {
        RateLimiter {
            shared: Arc::new(Shared {
                limit: limit.max(1),
                window,
                state: Mutex::new(State {
                    slots: Vec::new(),
                    next_id: 0,
                    fastest: None,
                    paused_until: None,
                    reduced_until: None,
                }),
                answered: Notify::new(),
            }),
        }
    }

    /// The API's 20 per second, with 100 ms of margin.
    pub fn for_wechatpay() -> Self {
        Self::new(20, Duration::from_millis(1_100))
    }

    pub fn limit(&self) -> usize {
        self.shared.limit
    }

    pub fn window(&self) -> Duration {
        self.shared.window
    }

    /// Waits until a request may be sent, and holds its slot until the permit is dropped.
    pub async fn acquire(&self) -> Permit {
        let sh = &self.shared;
        let started = Instant::now();
        let mut waited = false;
        loop {
            // Registered before looking, so an answer that comes in between is not missed.
            let answered = sh.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let wait_until = {
                let mut s = sh.lock();
                let now = Instant::now();
                let window = sh.window;
                s.slots
                    .retain(|x| x.in_flight || now.duration_since(x.at) < window);
                let limit = match s.reduced_until {
                    Some(until) if until > now => (sh.limit / 2).max(1),
                    _ => sh.limit,
                };
                match s.paused_until {
                    Some(until) if until > now => Some(until),
                    _ if s.slots.len() < limit => {
                        let id = s.next_id;
                        s.next_id += 1;
                        s.slots.push(Slot {
                            id,
                            at: now,
                            in_flight: true,
                        });
                        if waited {
                            crate::metrics::get().limiter_waited(started.elapsed());
                        }
                        return Permit {
                            shared: sh.clone(),
                            id,
                            let_through: now,
                        };
                    }
                    // Full: the earliest answered slot to expire frees a place; if all are
                    // in flight, an answer must come first.
                    _ => s
                        .slots
                        .iter()
                        .filter(|x| !x.in_flight)
                        .map(|x| x.at + window)
                        .min(),
                }
            };
            waited = true;
            match wait_until {
                Some(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t) => {}
                        _ = answered => {}
                    }
                }
                None => answered.await,
            }
        }
    }

    /// Called on `FREQUENCY_LIMITED`: pause for a window, then half the rate for a minute.
    pub fn back_off(&self) {
        let mut s = self.shared.lock();
        let now = Instant::now();
        s.paused_until = Some(now + self.shared.window);
        s.reduced_until = Some(now + Duration::from_secs(60));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest number of instants inside any half-open window of `window` length.
    fn max_in_window(times: &[Instant], window: Duration) -> usize {
        let mut best = 0;
        for (i, start) in times.iter().enumerate() {
            let n = times[i..]
                .iter()
                .take_while(|t| t.duration_since(*start) < window)
                .count();
            best = best.max(n);
        }
        best
    }

    /// Twenty workers (as many as a sync keeps in flight) each send 10 requests answered after
    /// `latency` (one of them, the first of all, leaving `late` after it was let through);
    /// returns when each arrived.
    async fn run(latency: Duration, late: Duration) -> Vec<Instant> {
        let limiter = RateLimiter::for_wechatpay();
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (l, a, f) = (limiter.clone(), arrivals.clone(), first.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..10 {
                    let permit = l.acquire().await;
                    if f.swap(false, std::sync::atomic::Ordering::SeqCst) {
                        tokio::time::sleep(late).await;
                    }
                    a.lock().unwrap().push(Instant::now());
                    tokio::time::sleep(latency).await;
                    drop(permit);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut times = arrivals.lock().unwrap().clone();
        times.sort();
        times
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_any_window() {
        let times = run(Duration::ZERO, Duration::ZERO).await;
        assert_eq!(times.len(), 200);
        assert_eq!(max_in_window(&times, Duration::from_millis(1_100)), 20);
        // 200 sends take 9 further windows: 9.9 s of (virtual) time.
        let span = times[199].duration_since(times[0]);
        assert!(
            span >= Duration::from_millis(9_900) && span < Duration::from_millis(10_000),
            "{span:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn answers_that_take_time_cost_no_throughput() {
        // 150 ms round trips: still 20 a window, 200 in ten windows (9.9 s between the first
        // and the last).
        let times = run(Duration::from_millis(150), Duration::ZERO).await;
        assert!(max_in_window(&times, Duration::from_secs(1)) <= 20);
        let span = times[199].duration_since(times[0]);
        assert!(span < Duration::from_millis(10_000), "{span:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_leaves_late_pushes_the_next_window_back() {
        // The first request leaves 400 ms after it was let through (a slow TLS handshake):
        // what arrives stays within 20 in any second all the same.
        let times = run(Duration::from_millis(50), Duration::from_millis(400)).await;
        assert_eq!(times.len(), 200);
        assert!(
            max_in_window(&times, Duration::from_secs(1)) <= 20,
            "{}",
            max_in_window(&times, Duration::from_secs(1))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn back_off_pauses_then_halves_the_rate() {
        let limiter = RateLimiter::new(20, Duration::from_secs(1));
        let start = Instant::now();
        limiter.back_off();
        let p = limiter.acquire().await;
        drop(p);
        assert!(start.elapsed() >= Duration::from_secs(1), "paused a window");
        for _ in 0..9 {
            drop(limiter.acquire().await);
        }
        let before = Instant::now();
        drop(limiter.acquire().await); // the 11th in this window must wait: the limit is halved
        assert!(
            before.elapsed() >= Duration::from_millis(900),
            "{:?}",
            before.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_is_held_while_its_request_is_unanswered() {
        let limiter = RateLimiter::new(2, Duration::from_millis(100));
        let a = limiter.acquire().await;
        let _b = limiter.acquire().await;
        let l2 = limiter.clone();
        let third = tokio::spawn(async move {
            let _p = l2.acquire().await;
            Instant::now()
        });
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!third.is_finished(), "both still in flight after 5 s");
        drop(a);
        let at = third.await.unwrap();
        assert!(at.duration_since(start) >= Duration::from_secs(5));
    }
}
