//! The client-side rate limiter. The API's rule (20000730) is a count in a window: more than 20
//! requests in 1 s from one client and the next is refused. This limiter enforces the same shape
//! with a margin: at most `limit` sends in any `window` (1 s + 100 ms for network jitter), so
//! bursts go out at once and the rate stays just under 20/s. (A GCRA limiter such as `governor`
//! with a burst of 20 would allow up to 39 in some 1-second windows; with no burst it spaces
//! requests evenly and cannot reach the throughput target.) A `FREQUENCY_LIMITED` answer backs it
//! off: a pause of one window, then a reduced limit for a minute.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
    reduced_until: Option<Instant>,
}

#[derive(Debug)]
pub struct RateLimiter {
    limit: usize,
    window: Duration,
    state: Mutex<State>,
}

impl RateLimiter {
    /// At most `limit` acquisitions in any `window`.
    pub fn new(limit: usize, window: Duration) -> Self {
        RateLimiter {
            limit: limit.max(1),
            window,
            state: Mutex::new(State {
                sent: VecDeque::new(),
                paused_until: None,
                reduced_until: None,
            }),
        }
    }

    /// The API's 20 per second, with 100 ms of margin.
    pub fn for_wechatpay() -> Self {
        Self::new(20, Duration::from_millis(1_100))
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Waits until a request may be sent, and counts it.
    pub async fn acquire(&self) {
        loop {
            let wait_until = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                while s
                    .sent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    s.sent.pop_front();
                }
                let limit = match s.reduced_until {
                    Some(until) if until > now => (self.limit / 2).max(1),
                    _ => self.limit,
                };
                match s.paused_until {
                    Some(until) if until > now => until,
                    _ if s.sent.len() < limit => {
                        s.sent.push_back(now);
                        return;
                    }
                    _ => s.sent[s.sent.len() - limit] + self.window,
                }
            };
            tokio::time::sleep_until(wait_until).await;
        }
    }

    /// Called on `FREQUENCY_LIMITED`: pause for a window, then half the rate for a minute.
    pub async fn back_off(&self) {
        let mut s = self.state.lock().await;
        let now = Instant::now();
        s.paused_until = Some(now + self.window);
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

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_any_window() {
        let limiter = std::sync::Arc::new(RateLimiter::for_wechatpay());
        let times = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (l, t) = (limiter.clone(), times.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..25 {
                    l.acquire().await;
                    t.lock().await.push(Instant::now());
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let mut times = times.lock().await.clone();
        times.sort();
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
    async fn back_off_pauses_then_halves_the_rate() {
        let limiter = RateLimiter::new(20, Duration::from_secs(1));
        let start = Instant::now();
        limiter.back_off().await;
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(1), "paused a window");
        for _ in 0..9 {
            limiter.acquire().await;
        }
        let before = Instant::now();
        limiter.acquire().await; // the 11th in this window must wait: the limit is halved
        assert!(
            before.elapsed() >= Duration::from_millis(900),
            "{:?}",
            before.elapsed()
        );
    }
}
