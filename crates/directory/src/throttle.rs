//! Failed logins per IP: counted in a window, answered ever more slowly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long failures are remembered.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest delay before answering a failed login.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// Counts failed logins per IP and says how long to delay the next answer.
/// Shared by every protocol of one server.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginThrottle {
    pub fn new() -> LoginThrottle {
        LoginThrottle::default()
    }

    /// Records a failure from `ip`; returns how long to wait before answering:
    /// 1 s for the first, doubling up to 10 s.
    pub fn record_failure(&self, ip: IpAddr) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, last)| now.duration_since(*last) < WINDOW);
        let entry = map.entry(ip).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let exponent = (entry.0 - 1).min(4);
        Duration::from_secs(1u64 << exponent).min(MAX_DELAY)
    }

    /// Records a success (clears the count for `ip`).
    pub fn record_success(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&ip);
    }

    /// Failures counted for `ip` in the current window.
    pub fn failures(&self, ip: IpAddr) -> u32 {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&ip)
            .filter(|(_, last)| last.elapsed() < WINDOW)
            .map(|(count, _)| *count)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_per_ip_and_success_clears_it() {
        let throttle = LoginThrottle::new();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(throttle.record_failure(ip), Duration::from_secs(1));
        assert_eq!(throttle.record_failure(ip), Duration::from_secs(2));
        assert_eq!(throttle.record_failure(ip), Duration::from_secs(4));
        for _ in 0..10 {
            assert!(throttle.record_failure(ip) <= MAX_DELAY);
        }
        assert_eq!(throttle.failures(ip), 13);
        assert_eq!(throttle.failures(other), 0);
        throttle.record_success(ip);
        assert_eq!(throttle.failures(ip), 0);
    }
}
