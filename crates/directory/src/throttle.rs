//! The login throttle every way to log in goes through (IMAP, POP3, SMTP
//! AUTH, the lab's HTTP Basic login), keyed per client IP and per account.
//!
//! The rules it enforces:
//!
//! - **Per IP, a schedule, not a per-connection delay.** Each IP has a
//!   "next attempt allowed at" time. Every attempt takes the next slot and
//!   moves it on by [`ATTEMPT_INTERVAL`]; every failure moves it on by a delay
//!   that doubles with the IP's failures (1 s, 2 s, 4 s … up to
//!   `max_delay_secs`). Attempts wait for their slot, so N parallel
//!   connections from one IP make no more guesses per second than one. An
//!   attempt whose slot is more than `max_delay_secs` away is refused with
//!   the ordinary failure answer, without its password being checked.
//!   IPv6 clients are keyed by their /64, which one client usually holds whole.
//! - **Per account, a lockout.** `max_failures_per_account` failures within
//!   `failure_window_secs` (from any IP) lock the account for `lockout_secs`:
//!   every attempt then fails the same way a wrong password does, the right
//!   password too. Unknown accounts are counted and locked alike, so the
//!   answers never tell whether an account exists.
//! - **A success clears only its own failures**: those of that account from
//!   that IP, never another account's, never another IP's.
//! - **Bounded memory.** Each map holds at most `max_tracked` entries; past
//!   that, entries that no longer matter go first, then the least recently
//!   used quarter.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What every attempt costs an IP's schedule, success or not: a clean IP may
/// make [`BURST`] attempts at once (a mail client opening several
/// connections), then four a second.
const ATTEMPT_INTERVAL: Duration = Duration::from_millis(250);
/// Attempts a clean IP may make at once.
const BURST: u32 = 8;
/// Account keys longer than this are cut: a guessed "user name" of a
/// megabyte must not be kept.
const MAX_KEY_LEN: usize = 320;

/// `[auth]`: login throttling and account lockout, shared by every protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// Failed logins for one account (from any IP) within
    /// `failure_window_secs` that lock it (default 10).
    pub max_failures_per_account: u32,
    /// How long failures are remembered, in seconds (default 900).
    pub failure_window_secs: u64,
    /// How long a locked account refuses every login, in seconds (default
    /// 900). Logged at WARN with the account and the IP.
    pub lockout_secs: u64,
    /// The longest an IP's next attempt is delayed after failures, in seconds
    /// (default 10); an attempt that would wait longer is refused unchecked.
    pub max_delay_secs: u64,
    /// The most IPs, and the most accounts, remembered at once (default 100000).
    pub max_tracked: usize,
}

impl Default for ThrottleConfig {
    fn default() -> ThrottleConfig {
        ThrottleConfig {
            max_failures_per_account: 10,
            failure_window_secs: 15 * 60,
            lockout_secs: 15 * 60,
            max_delay_secs: 10,
            max_tracked: 100_000,
        }
    }
}

/// What the throttle says about one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the password (after waiting for the IP's slot).
    Check,
    /// The account is locked: answer as for a wrong password.
    Locked,
    /// The IP is penalised for longer than the longest delay: answer as for
    /// a wrong password, without checking it.
    Refused,
    /// The IP already has as many checks running as it may (one, once it has
    /// failed; [`BURST`] otherwise): ask again shortly. Without this, a slow
    /// password hash would let many attempts in before the first failure
    /// is counted.
    Busy,
}

/// One admitted attempt; while it lives it counts among its IP's checks in
/// progress (also when the session is dropped half-way).
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    ip: IpAddr,
    pub admission: Admission,
    /// When the check may start.
    pub start: Instant,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if matches!(self.admission, Admission::Check | Admission::Locked) {
            let mut maps = self.throttle.lock();
            if let Some(state) = maps.ips.get_mut(&ip_key(self.ip)) {
                state.in_flight = state.in_flight.saturating_sub(1);
            }
        }
    }
}

#[derive(Debug, Clone)]
struct IpState {
    /// Failures in the window, all accounts together.
    failures: u32,
    last_failure: Option<Instant>,
    /// The theoretical time of the next attempt (GCRA): attempts are let in
    /// from `next - BURST × interval` on.
    next: Instant,
    /// Failures per account from this IP (what a success clears).
    accounts: HashMap<String, u32>,
    last_seen: Instant,
    /// Checks admitted and not finished.
    in_flight: u32,
}

impl IpState {
    fn new(now: Instant) -> IpState {
        IpState {
            failures: 0,
            last_failure: None,
            next: now,
            accounts: HashMap::new(),
            last_seen: now,
            in_flight: 0,
        }
    }
}

#[derive(Debug, Clone)]
struct AccountState {
    failures: u32,
    last_failure: Instant,
    locked_until: Option<Instant>,
}

#[derive(Default)]
struct Maps {
    ips: HashMap<IpAddr, IpState>,
    accounts: HashMap<String, AccountState>,
}

/// Counts failed logins per IP and per account; says when an attempt may
/// be checked. Shared by every protocol of one server.
pub struct LoginThrottle {
    config: ThrottleConfig,
    maps: Mutex<Maps>,
}

impl Default for LoginThrottle {
    fn default() -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig::default())
    }
}

/// The key an IP is counted under: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

/// The key an account is counted under: the login as typed, lower case,
/// cut to [`MAX_KEY_LEN`] bytes (at a character boundary).
pub fn account_key(login: &str) -> String {
    let login = login.trim();
    let mut end = login.len().min(MAX_KEY_LEN);
    while !login.is_char_boundary(end) {
        end -= 1;
    }
    login[..end].to_lowercase()
}

/// Keeps `map` under `max` entries: first drops what `stale` says no longer
/// matters, then, if still full, the least recently used quarter. Runs only
/// when the map is full, so each insert costs O(1) on average.
fn make_room<K: Eq + Hash, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    stale: impl Fn(&V) -> bool,
    last_used: impl Fn(&V) -> Instant,
) {
    if map.len() < max.max(1) {
        return;
    }
    map.retain(|_, v| !stale(v));
    if map.len() < max.max(1) {
        return;
    }
    let mut times: Vec<Instant> = map.values().map(&last_used).collect();
    let quarter = times.len() / 4;
    let (_, cut, _) = times.select_nth_unstable(quarter);
    let cut = *cut;
    map.retain(|_, v| last_used(v) > cut);
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> LoginThrottle {
        LoginThrottle {
            config,
            maps: Mutex::default(),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.config.failure_window_secs)
    }

    fn max_delay(&self) -> Duration {
        Duration::from_secs(self.config.max_delay_secs)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides about one attempt from `ip` for `account` (an [`account_key`])
    /// at `now`; for [`Admission::Check`], also when it may start.
    pub fn admit_at(&self, ip: IpAddr, account: &str, now: Instant) -> Attempt<'_> {
        let (admission, start) = self.decide(ip, account, now);
        Attempt {
            throttle: self,
            ip,
            admission,
            start,
        }
    }

    fn decide(&self, ip: IpAddr, account: &str, now: Instant) -> (Admission, Instant) {
        let window = self.window();
        let mut maps = self.lock();
        let locked = match maps.accounts.get_mut(account) {
            Some(state) => match state.locked_until {
                Some(until) if until > now => true,
                Some(_) => {
                    // The lockout is over: a fresh count.
                    state.locked_until = None;
                    state.failures = 0;
                    false
                }
                None => false,
            },
            None => false,
        };
        let burst = ATTEMPT_INTERVAL * BURST;
        let max_tracked = self.config.max_tracked;
        if !maps.ips.contains_key(&ip_key(ip)) {
            make_room(
                &mut maps.ips,
                max_tracked,
                |s| {
                    s.in_flight == 0
                        && s.next + burst <= now
                        && s.last_failure.is_none_or(|t| now - t >= window)
                },
                |s| s.last_seen,
            );
        }
        let state = maps
            .ips
            .entry(ip_key(ip))
            .or_insert_with(|| IpState::new(now));
        state.last_seen = now;
        if state.last_failure.is_some_and(|t| now - t >= window) {
            state.failures = 0;
            state.last_failure = None;
            state.accounts.clear();
        }
        let parallel = if state.failures > 0 { 1 } else { BURST };
        if state.in_flight >= parallel {
            return (Admission::Busy, now);
        }
        let start = state.next.checked_sub(burst).unwrap_or(now).max(now);
        if start - now > self.max_delay() {
            return (Admission::Refused, now);
        }
        state.next = state.next.max(now) + ATTEMPT_INTERVAL;
        state.in_flight += 1;
        if locked {
            (Admission::Locked, start)
        } else {
            (Admission::Check, start)
        }
    }

    /// Records a wrong password (or an attempt on a locked account) from
    /// `ip` for `account` at `now`; returns how long to wait before
    /// answering, and whether this failure locked the account.
    pub fn record_failure_at(&self, ip: IpAddr, account: &str, now: Instant) -> (Duration, bool) {
        let window = self.window();
        let max_tracked = self.config.max_tracked;
        let mut maps = self.lock();
        let delay = {
            let state = maps
                .ips
                .entry(ip_key(ip))
                .or_insert_with(|| IpState::new(now));
            state.failures = state.failures.saturating_add(1);
            state.last_failure = Some(now);
            state.last_seen = now;
            if state.accounts.len() < max_tracked || state.accounts.contains_key(account) {
                *state.accounts.entry(account.to_string()).or_insert(0) += 1;
            }
            let exponent = (state.failures - 1).min(16);
            let delay = Duration::from_secs(1u64 << exponent).min(self.max_delay());
            state.next = state.next.max(now) + delay;
            delay
        };
        if !maps.accounts.contains_key(account) {
            make_room(
                &mut maps.accounts,
                max_tracked,
                |s| s.locked_until.is_none_or(|t| t <= now) && now - s.last_failure >= window,
                |s| s.last_failure,
            );
        }
        let state = maps
            .accounts
            .entry(account.to_string())
            .or_insert(AccountState {
                failures: 0,
                last_failure: now,
                locked_until: None,
            });
        if state.locked_until.is_some_and(|t| t > now) {
            // Attempts during a lockout do not lengthen it.
            return (delay, false);
        }
        if now - state.last_failure >= window {
            state.failures = 0;
        }
        state.failures = state.failures.saturating_add(1);
        state.last_failure = now;
        let locked = state.failures >= self.config.max_failures_per_account.max(1);
        if locked {
            state.locked_until = Some(now + Duration::from_secs(self.config.lockout_secs));
            state.failures = 0;
        }
        (delay, locked)
    }

    /// Records a right password from `ip` for `account`: clears that
    /// account's failures from that IP, and only those.
    pub fn record_success(&self, ip: IpAddr, account: &str) {
        let mut maps = self.lock();
        let cleared = match maps.ips.get_mut(&ip_key(ip)) {
            Some(state) => {
                let cleared = state.accounts.remove(account).unwrap_or(0);
                state.failures = state.failures.saturating_sub(cleared);
                cleared
            }
            None => 0,
        };
        if let Some(state) = maps.accounts.get_mut(account) {
            state.failures = state.failures.saturating_sub(cleared);
        }
    }

    /// Failures counted for `ip` in the current window.
    pub fn failures(&self, ip: IpAddr) -> u32 {
        let maps = self.lock();
        maps.ips
            .get(&ip_key(ip))
            .filter(|s| s.last_failure.is_some_and(|t| t.elapsed() < self.window()))
            .map(|s| s.failures)
            .unwrap_or(0)
    }

    /// Whether `login`'s account is locked now.
    pub fn is_locked(&self, login: &str) -> bool {
        let now = Instant::now();
        self.lock()
            .accounts
            .get(&account_key(login))
            .and_then(|s| s.locked_until)
            .is_some_and(|t| t > now)
    }

    /// IPs and accounts remembered (for tests of the bound).
    pub fn tracked(&self) -> (usize, usize) {
        let maps = self.lock();
        (maps.ips.len(), maps.accounts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_failures: u32, lockout_secs: u64) -> ThrottleConfig {
        ThrottleConfig {
            max_failures_per_account: max_failures,
            lockout_secs,
            ..ThrottleConfig::default()
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parallel_attempts_from_one_ip_share_one_schedule() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        let attacker = ip("192.0.2.1");
        // A burst is let in at once (a client opening several connections),
        // then attempts are spaced, however many arrive together.
        let starts: Vec<Instant> = (0..20)
            .map(|_| {
                let attempt = throttle.admit_at(attacker, "a", now);
                assert_eq!(attempt.admission, Admission::Check);
                attempt.start
            })
            .collect();
        assert_eq!(
            starts.iter().filter(|s| **s == now).count(),
            BURST as usize + 1
        );
        assert_eq!(starts[19], now + ATTEMPT_INTERVAL * (19 - BURST));
        // At most a burst of checks at once …
        let running: Vec<_> = (0..BURST)
            .map(|_| throttle.admit_at(ip("192.0.2.9"), "a", now))
            .collect();
        assert_eq!(
            throttle.admit_at(ip("192.0.2.9"), "a", now).admission,
            Admission::Busy
        );
        drop(running);
        // … and one, once the IP has failed.
        throttle.record_failure_at(ip("192.0.2.9"), "a", now);
        let running = throttle.admit_at(ip("192.0.2.9"), "a", now);
        assert_eq!(running.admission, Admission::Check);
        assert_eq!(
            throttle.admit_at(ip("192.0.2.9"), "a", now).admission,
            Admission::Busy
        );
        drop(running);
        // Failures push the schedule out by a doubling delay; past the
        // longest delay, attempts are refused unchecked.
        for _ in 0..5 {
            throttle.record_failure_at(attacker, "a", now);
        }
        assert_eq!(
            throttle.admit_at(attacker, "a", now).admission,
            Admission::Refused
        );
        // Another IP is not affected.
        let attempt = throttle.admit_at(ip("192.0.2.2"), "a", now);
        assert_eq!((attempt.admission, attempt.start), (Admission::Check, now));
        // Over a long run, one IP gets at most one attempt per longest delay.
        let mut checked = 0;
        let mut t = now;
        for _ in 0..600 {
            t += Duration::from_millis(100);
            if throttle.admit_at(attacker, "a", t).admission == Admission::Check {
                checked += 1;
                throttle.record_failure_at(attacker, "a", t);
            }
        }
        assert!(checked <= 8, "{checked} attempts checked in 60 s");
    }

    #[test]
    fn delays_double_up_to_the_longest() {
        let throttle = LoginThrottle::new(config(1000, 60));
        let now = Instant::now();
        let delays: Vec<u64> = (0..6)
            .map(|_| {
                throttle
                    .record_failure_at(ip("192.0.2.1"), "a", now)
                    .0
                    .as_secs()
            })
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        assert_eq!(throttle.failures(ip("192.0.2.1")), 6);
    }

    #[test]
    fn success_clears_only_that_accounts_failures_from_that_ip() {
        let throttle = LoginThrottle::new(config(5, 60));
        let now = Instant::now();
        let (one, two) = (ip("192.0.2.1"), ip("192.0.2.2"));
        for _ in 0..4 {
            throttle.record_failure_at(one, "b", now);
        }
        throttle.record_failure_at(one, "a", now);
        throttle.record_failure_at(two, "a", now);
        throttle.record_success(one, "a");
        assert_eq!(throttle.failures(one), 4, "b's failures stay");
        assert_eq!(throttle.failures(two), 1, "the other IP's failure stays");
        // b is one failure from its lockout still.
        assert!(!throttle.is_locked("b"));
        let (_, locked) = throttle.record_failure_at(one, "b", now);
        assert!(locked);
        assert!(throttle.is_locked("B"));
    }

    #[test]
    fn lockout_refuses_then_expires_with_a_fresh_count() {
        let throttle = LoginThrottle::new(config(3, 60));
        let now = Instant::now();
        for n in 0..3 {
            // From different IPs: the lockout is per account.
            let from = IpAddr::from([192, 0, 2, n]);
            assert_eq!(
                throttle.admit_at(from, "a", now).admission,
                Admission::Check
            );
            let (_, locked) = throttle.record_failure_at(from, "a", now);
            assert_eq!(locked, n == 2);
        }
        let fresh = ip("198.51.100.1");
        assert_eq!(
            throttle.admit_at(fresh, "a", now).admission,
            Admission::Locked
        );
        assert_eq!(
            throttle.admit_at(fresh, "other", now).admission,
            Admission::Check
        );
        // Attempts during the lockout do not lengthen it.
        throttle.record_failure_at(fresh, "a", now + Duration::from_secs(30));
        let later = now + Duration::from_secs(61);
        let elsewhere = ip("198.51.100.2");
        assert_eq!(
            throttle.admit_at(elsewhere, "a", later).admission,
            Admission::Check
        );
        let (_, locked) = throttle.record_failure_at(elsewhere, "a", later);
        assert!(!locked, "the count starts again after a lockout");
    }

    #[test]
    fn maps_stay_bounded_whatever_the_attacker_sends() {
        let throttle = LoginThrottle::new(ThrottleConfig {
            max_tracked: 1000,
            ..ThrottleConfig::default()
        });
        let now = Instant::now();
        for n in 0..20_000u32 {
            let from = IpAddr::from(n.to_be_bytes());
            let t = now + Duration::from_millis(u64::from(n));
            throttle.admit_at(from, &format!("user{n}"), t);
            throttle.record_failure_at(from, &format!("user{n}"), t);
        }
        let (ips, accounts) = throttle.tracked();
        assert!(
            ips <= 1000 && accounts <= 1000,
            "{ips} IPs, {accounts} accounts"
        );
    }

    #[test]
    fn keys_group_ipv6_by_prefix_and_cut_long_logins() {
        assert_eq!(
            ip_key(ip("2001:db8:1:2:3:4:5:6")),
            ip_key(ip("2001:db8:1:2:ffff::1"))
        );
        assert_ne!(ip_key(ip("2001:db8:1:2::1")), ip_key(ip("2001:db8:1:3::1")));
        assert_eq!(ip_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(account_key(" Alice@Example.TEST "), "alice@example.test");
        assert_eq!(account_key(&"é".repeat(1000)).len(), MAX_KEY_LEN);
    }
}
