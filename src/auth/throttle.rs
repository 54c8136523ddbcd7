//! Login throttling (D11): at most 10 attempts per (email, IP) in 5 minutes and 30 per
//! email in 15 minutes; beyond that, 429 until the window has room again.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PAIR_LIMIT: usize = 10;
const PAIR_WINDOW: Duration = Duration::from_secs(5 * 60);
const EMAIL_LIMIT: usize = 30;
const EMAIL_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Above this many tracked keys, stale ones are dropped (memory stays bounded).
const PRUNE_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct LoginThrottle {
    inner: Mutex<Windows>,
}

#[derive(Default)]
struct Windows {
    by_pair: HashMap<(EmailKey, IpAddr), VecDeque<Instant>>,
    by_email: HashMap<EmailKey, VecDeque<Instant>>,
}

/// An e-mail as a key: the SHA-256 of its lower-case form, so every tracked address
/// costs 32 bytes, however long the one a client sent.
type EmailKey = [u8; 32];

fn email_key(email: &str) -> EmailKey {
    let digest = ring::digest::digest(&ring::digest::SHA256, email.to_lowercase().as_bytes());
    let mut key = [0; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

fn trim(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
}

/// Seconds until the oldest attempt in a full window leaves it.
fn wait(q: &VecDeque<Instant>, now: Instant, window: Duration) -> u64 {
    q.front()
        .map(|t| {
            window
                .saturating_sub(now.duration_since(*t))
                .as_secs()
                .max(1)
        })
        .unwrap_or(1)
}

impl LoginThrottle {
    /// Counts an attempt; `Err(retry_after_secs)` when over a limit (not counted then).
    pub fn attempt(&self, email: &str, ip: IpAddr) -> Result<(), u64> {
        let now = Instant::now();
        let mut w = match self.inner.lock() {
            Ok(w) => w,
            Err(p) => p.into_inner(),
        };
        if w.by_pair.len() > PRUNE_ABOVE || w.by_email.len() > PRUNE_ABOVE {
            w.by_pair.retain(|_, q| {
                trim(q, now, PAIR_WINDOW);
                !q.is_empty()
            });
            w.by_email.retain(|_, q| {
                trim(q, now, EMAIL_WINDOW);
                !q.is_empty()
            });
        }
        let email = email_key(email);
        let pair = w.by_pair.entry((email, ip)).or_default();
        trim(pair, now, PAIR_WINDOW);
        if pair.len() >= PAIR_LIMIT {
            return Err(wait(pair, now, PAIR_WINDOW));
        }
        let per_email = w.by_email.entry(email).or_default();
        trim(per_email, now, EMAIL_WINDOW);
        if per_email.len() >= EMAIL_LIMIT {
            return Err(wait(per_email, now, EMAIL_WINDOW));
        }
        per_email.push_back(now);
        if let Some(pair) = w.by_pair.get_mut(&(email, ip)) {
            pair.push_back(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_per_pair_then_thirty_per_email() {
        let t = LoginThrottle::default();
        let ip1: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..10 {
            assert!(t.attempt("A@x", ip1).is_ok());
        }
        assert!(
            t.attempt("a@x", ip1).is_err(),
            "email compares case-insensitively"
        );
        for i in 0..20 {
            let ip: IpAddr = format!("10.0.1.{i}").parse().unwrap();
            assert!(t.attempt("a@x", ip).is_ok());
        }
        let fresh: IpAddr = "10.0.2.1".parse().unwrap();
        let retry = t.attempt("a@x", fresh).unwrap_err();
        assert!((1..=900).contains(&retry));
        assert!(t.attempt("other@x", fresh).is_ok());
    }
}
