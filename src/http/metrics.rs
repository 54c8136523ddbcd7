//! Request counts by route and status, and latency histograms by route (D28), for
//! `GET /metrics`.
//!
//! One mutex around plain counters: it is held for a few hash-map steps per request,
//! so even `GET /health` at 100 000 req/s on two workers keeps it free almost always,
//! and there is nothing to aggregate when `/metrics` renders.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds (the last bucket is `+Inf`).
const LATENCY_BOUNDS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

#[derive(Default)]
struct Latency {
    /// Requests per bucket (not cumulative; rendering sums them), `+Inf` last.
    buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: u64,
    count: u64,
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
        let mut t = match self.tallies.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        *t.requests.entry((route, status)).or_default() += 1;
        let l = t.latency.entry(route).or_default();
        l.buckets[bucket] += 1;
        l.sum_us = l.sum_us.saturating_add(us);
        l.count += 1;
    }

    /// The Prometheus text of both families, routes in name order.
    pub fn render(&self, out: &mut String) {
        let t = match self.tallies.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
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
            let mut cumulative = 0;
            for (i, n) in l.buckets.iter().enumerate() {
                cumulative += n;
                let le = LATENCY_BOUNDS_US
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |&us| (us as f64 / 1e6).to_string());
                let _ = writeln!(
                    out,
                    "stardag_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "stardag_http_request_duration_seconds_sum{{route=\"{route}\"}} {}\n\
                 stardag_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                l.sum_us as f64 / 1e6,
                l.count
            );
        }
    }
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
