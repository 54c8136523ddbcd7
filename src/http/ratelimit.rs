//! Rate limits (D24), with governor's keyed GCRA limiters: per credential (API key or
//! user) after authentication, per client IP for requests without a credential (and for
//! failed authentication). `0` disables a limit. Over the limit: 429 with `Retry-After`
//! and the body the SDK recognises (`{"detail": {"code": "RATE_LIMIT", …}}`).

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde_json::json;
use uuid::Uuid;

use super::response::ApiError;
use crate::config::RateLimitConfig;

pub struct RateLimits {
    per_credential: Option<DefaultKeyedRateLimiter<Uuid>>,
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

fn limiter<K: Hash + Eq + Clone>(rps: u32, burst: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rps = NonZeroU32::new(rps)?;
    let burst = NonZeroU32::new(burst).unwrap_or(rps);
    Some(RateLimiter::keyed(
        Quota::per_second(rps).allow_burst(burst),
    ))
}

fn check<K: Hash + Eq + Clone>(
    limiter: &Option<DefaultKeyedRateLimiter<K>>,
    key: &K,
) -> Result<(), ApiError> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        // Whole seconds, at least one: the SDK sleeps for Retry-After.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let secs = secs.max(1);
        ApiError::Structured {
            status: http::StatusCode::TOO_MANY_REQUESTS,
            detail: json!({
                "code": "RATE_LIMIT",
                "message": format!("Rate limit exceeded, retry after {secs} s"),
            }),
            retry_after: Some(secs),
        }
    })
}

impl RateLimits {
    pub fn new(cfg: &RateLimitConfig) -> RateLimits {
        RateLimits {
            per_credential: limiter(cfg.per_credential_rps, cfg.per_credential_burst),
            per_ip: limiter(cfg.per_ip_rps, cfg.per_ip_burst),
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        check(&self.per_ip, &ip)
    }

    /// `id` is the API key's id or the user's id, never the secret.
    pub fn check_credential(&self, id: Uuid) -> Result<(), ApiError> {
        check(&self.per_credential, &id)
    }

    /// Forgets keys whose buckets are full again, so memory does not grow with the
    /// number of distinct clients ever seen.
    pub fn housekeeping(&self) {
        if let Some(l) = &self.per_credential {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }

    /// Keys currently tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.per_credential.as_ref().map_or(0, |l| l.len())
            + self.per_ip.as_ref().map_or(0, |l| l.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn housekeeping_forgets_idle_keys() {
        let limits = RateLimits::new(&RateLimitConfig {
            per_credential_rps: 1000,
            per_credential_burst: 1,
            per_ip_rps: 1000,
            per_ip_burst: 1,
        });
        for i in 0..500u32 {
            limits.check_ip(IpAddr::from(i.to_be_bytes())).unwrap();
            limits
                .check_credential(Uuid::from_u128(u128::from(i)))
                .unwrap();
        }
        assert_eq!(limits.tracked(), 1000);
        // With a burst of one at 1000/s, every bucket is full again after a few ms.
        std::thread::sleep(std::time::Duration::from_millis(20));
        limits.housekeeping();
        assert_eq!(limits.tracked(), 0);
    }

    #[test]
    fn zero_disables_and_over_limit_has_retry_after() {
        let off = RateLimits::new(&RateLimitConfig {
            per_credential_rps: 0,
            per_credential_burst: 0,
            per_ip_rps: 0,
            per_ip_burst: 0,
        });
        for _ in 0..10_000 {
            off.check_ip(IpAddr::from([1, 2, 3, 4])).unwrap();
        }
        let on = RateLimits::new(&RateLimitConfig {
            per_credential_rps: 1,
            per_credential_burst: 1,
            per_ip_rps: 1,
            per_ip_burst: 1,
        });
        let id = Uuid::now_v7();
        on.check_credential(id).unwrap();
        match on.check_credential(id) {
            Err(ApiError::Structured {
                retry_after: Some(s),
                ..
            }) => assert_eq!(s, 1),
            other => panic!("expected 429, got {other:?}"),
        }
    }
}
