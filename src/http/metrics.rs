//! Request counts by route and status, and latency histograms by route (D28), for
//! `GET /metrics`.
//!
//! One mutex around plain counters: it is held for a few hash-map steps per request,
//! so even `GET /health` at 100 000 req/s on two workers keeps it free almost always,
//! and there is nothing to aggregate when `/metrics` renders.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds (the last bucket is `+Inf`).
const LATENCY_BOUNDS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

#[derive(Default)]
struct Latency {
    /// Requests per bucket (not cumulative; rendering sums them), `+Inf` last. Their
    /// total is the count.
    buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: u64,
}

#[derive(Default)]
struct Tallies {
    /// (route, status) → requests.
    requests: HashMap<(&'static str, u16), u64>,
    latency: HashMap<&'static str, Latency>,
}

#[derive(Default)]
pub struct RequestMetrics {
    tallies: Mutex<Tallies>,
}

impl RequestMetrics {
    /// Counts one answered request. `route` is the endpoint name (`unmatched` for an
    /// unknown path), so the label set stays bounded whatever clients send.
    pub fn record(&self, route: &'static str, status: u16, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|&le| us <= le)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        let mut t = self.lock();
        *t.requests.entry((route, status)).or_default() += 1;
        let l = t.latency.entry(route).or_default();
        l.buckets[bucket] += 1;
        l.sum_us = l.sum_us.saturating_add(us);
    }

    fn lock(&self) -> MutexGuard<'_, Tallies> {
        // Plain counters: a panic while holding the lock leaves them usable.
        self.tallies.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Prometheus text of both families, routes in name order.
    pub fn render(&self, out: &mut String) {
        let t = self.lock();
        let mut requests: Vec<_> = t.requests.iter().collect();
        requests.sort();
        out.push_str(
            "# HELP stardag_http_requests_total Requests answered, by route and status.\n\
             # TYPE stardag_http_requests_total counter\n",
        );
        for ((route, status), n) in requests {
            let _ = writeln!(
                out,
                "stardag_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let mut latency: Vec<_> = t.latency.iter().collect();
        latency.sort_by_key(|(route, _)| *route);
        out.push_str(
            "# HELP stardag_http_request_duration_seconds Time from the request head to the answer, by route.\n\
             # TYPE stardag_http_request_duration_seconds histogram\n",
        );
        for (route, l) in latency {
            write_histogram(
                out,
                "stardag_http_request_duration_seconds",
                &format!("route=\"{route}\","),
                |i| (LATENCY_BOUNDS_US[i] as f64 / 1e6).to_string(),
                &l.buckets,
                l.sum_us as f64 / 1e6,
            );
        }
    }
}

/// The `_bucket`, `_sum` and `_count` lines of one Prometheus histogram. `buckets` are
/// per-bucket counts with `+Inf` last; `le(i)` names the bound of bucket `i`; `labels`
/// is empty or ends with a comma. The count is the `+Inf` bucket, so the two agree.
pub fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &str,
    le: impl Fn(usize) -> String,
    buckets: &[u64],
    sum: impl std::fmt::Display,
) {
    let mut cumulative = 0;
    for (i, n) in buckets.iter().enumerate() {
        cumulative += n;
        let le = if i + 1 == buckets.len() {
            "+Inf".to_owned()
        } else {
            le(i)
        };
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
    }
    let labels = match labels.trim_end_matches(',') {
        "" => String::new(),
        l => format!("{{{l}}}"),
    };
    let _ = writeln!(
        out,
        "{name}_sum{labels} {sum}\n{name}_count{labels} {cumulative}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_routes_sorted() {
        let m = RequestMetrics::default();
        m.record("tasks", 201, Duration::from_micros(300));
        m.record("tasks", 201, Duration::from_millis(3));
        m.record("tasks", 404, Duration::from_secs(20));
        m.record("health", 200, Duration::from_micros(500));
        let mut out = String::new();
        m.render(&mut out);

        let line = |prefix: &str| {
            out.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in:\n{out}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            line("stardag_http_requests_total{route=\"tasks\",status=\"201\"}"),
            "2"
        );
        assert_eq!(
            line("stardag_http_requests_total{route=\"tasks\",status=\"404\"}"),
            "1"
        );
        let b = |le: &str| {
            line(&format!(
                "stardag_http_request_duration_seconds_bucket{{route=\"tasks\",le=\"{le}\"}}"
            ))
        };
        assert_eq!(b("0.0005"), "1");
        assert_eq!(b("0.0025"), "1");
        assert_eq!(b("0.005"), "2");
        assert_eq!(b("10"), "2");
        assert_eq!(b("+Inf"), "3");
        // Exactly on a bound counts in that bucket.
        assert_eq!(
            line("stardag_http_request_duration_seconds_bucket{route=\"health\",le=\"0.0005\"}"),
            "1"
        );
        assert_eq!(
            line("stardag_http_request_duration_seconds_count{route=\"tasks\"}"),
            "3"
        );
        assert_eq!(
            line("stardag_http_request_duration_seconds_sum{route=\"tasks\"}"),
            "20.0033"
        );
        let health = out.find("route=\"health\"").unwrap();
        let tasks = out.find("route=\"tasks\"").unwrap();
        assert!(health < tasks, "routes in name order:\n{out}");
    }
}
