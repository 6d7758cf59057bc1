//! What the protocols ask: is this login right, where does this address go.

use crate::accounts::{ACCOUNT_COLUMNS, AccountRow, account_from_row};
use crate::address::normalize_address;
use crate::throttle::{Admission, account_key};
use crate::{Account, AuthError, Directory, DirectoryError, Protocol, Recipient, password};
use pillarbox_store::{AccountId, with_pool};
use std::net::IpAddr;
use std::time::Instant;

/// An account row followed by its password hash.
type LoginRow = (
    i64,
    String,
    bool,
    bool,
    bool,
    String,
    bool,
    String,
    Option<i64>,
    String,
);

impl Directory {
    /// A login from `ip`, through the shared throttle: every protocol (and
    /// the lab's HTTP login) calls this. It waits for the IP's turn, then
    /// checks the password as [`Directory::authenticate`] does. An attempt on
    /// a locked account, or from an IP penalised for longer than the longest
    /// delay, fails exactly as a wrong password does (same error, and a
    /// locked account still costs a password hash), so neither the lockout
    /// nor the account's existence shows in the answer. A failure is answered
    /// after the IP's current delay.
    pub async fn login(
        &self,
        ip: IpAddr,
        login: &str,
        password: &str,
        protocol: Protocol,
    ) -> Result<Account, AuthError> {
        let key = account_key(login);
        let throttle = self.throttle();
        let longest = std::time::Duration::from_secs(throttle.config().max_delay_secs);
        let asked = Instant::now();
        // Held until the answer: it counts among the IP's checks in progress.
        let attempt = loop {
            let attempt = throttle.admit_at(ip, &key, Instant::now());
            if attempt.admission != Admission::Busy || asked.elapsed() >= longest {
                break attempt;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let start = attempt.start;
        match attempt.admission {
            Admission::Refused | Admission::Busy => {
                metrics::counter!("pillarbox_logins_refused_total").increment(1);
                tokio::time::sleep(longest.saturating_sub(asked.elapsed())).await;
                return Err(AuthError::InvalidCredentials);
            }
            Admission::Locked => {
                tokio::time::sleep_until(start.into()).await;
                // The same work as a real check, so a lockout takes as long.
                let _ = password::verify(password, None).await;
                let (delay, _) = throttle.record_failure_at(ip, &key, Instant::now());
                tracing::info!(login = ?key, %ip, "login refused: the account is locked");
                tokio::time::sleep(delay).await;
                return Err(AuthError::InvalidCredentials);
            }
            Admission::Check => tokio::time::sleep_until(start.into()).await,
        }
        let result = self.authenticate(login, password, protocol).await;
        match &result {
            // The password was right (the protocol may still be off).
            Ok(_) | Err(AuthError::ProtocolDisabled(_)) => throttle.record_success(ip, &key),
            Err(AuthError::InvalidCredentials) => {
                let (delay, locked) = throttle.record_failure_at(ip, &key, Instant::now());
                if locked {
                    tracing::warn!(
                        account = ?key,
                        %ip,
                        lockout_secs = throttle.config().lockout_secs,
                        "account locked after repeated failed logins"
                    );
                    metrics::counter!("pillarbox_account_lockouts_total").increment(1);
                }
                tokio::time::sleep(delay).await;
            }
            Err(AuthError::Temporary(_)) => {}
        }
        result
    }

    /// Checks a login (the account address, case-insensitive) and password
    /// (argon2id, off the async runtime) for a protocol. Unknown users cost
    /// the same time as wrong passwords and get the same answer. Not
    /// throttled: servers call [`Directory::login`].
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
        protocol: Protocol,
    ) -> Result<Account, AuthError> {
        let result = self.check_login(login, password, protocol).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(AuthError::InvalidCredentials) => "failed",
            Err(AuthError::ProtocolDisabled(_)) => "disabled",
            Err(AuthError::Temporary(_)) => "error",
        };
        let protocol = match protocol {
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Submission => "submission",
        };
        metrics::counter!("pillarbox_logins_total", "protocol" => protocol, "result" => outcome)
            .increment(1);
        // Only accounts that exist are named: a guesser's user names must not
        // become labels.
        if let (true, Ok(account)) = (self.account_metrics, &result) {
            metrics::counter!("pillarbox_account_logins_total", "account" => account.address.clone(), "protocol" => protocol)
                .increment(1);
        }
        result
    }

    async fn check_login(
        &self,
        login: &str,
        password: &str,
        protocol: Protocol,
    ) -> Result<Account, AuthError> {
        let address = normalize_address(login).ok();
        let row: Option<(AccountRow, String)> = match &address {
            Some(address) => {
                let result: Result<Option<LoginRow>, _> = with_pool!(self.store().db(), pool => {
                    pillarbox_store::sqlx::query_as(pillarbox_store::sqlx::AssertSqlSafe(format!(
                        "SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE address = $1"
                    )))
                    .bind(address)
                    .fetch_optional(pool)
                    .await
                });
                result
                    .map_err(|e| AuthError::Temporary(e.to_string()))?
                    .map(|(a, b, c, d, e, f, g, h, i, hash)| ((a, b, c, d, e, f, g, h, i), hash))
            }
            None => None,
        };
        let (account, hash) = match row {
            Some((row, hash)) => (Some(account_from_row(row)), Some(hash)),
            None => (None, None),
        };
        if !password::verify(password, hash).await {
            return Err(AuthError::InvalidCredentials);
        }
        let Some(account) = account else {
            return Err(AuthError::InvalidCredentials);
        };
        let allowed = match protocol {
            Protocol::Imap => account.imap,
            Protocol::Pop3 => account.pop3,
            Protocol::Submission => account.submission,
        };
        if !allowed {
            return Err(AuthError::ProtocolDisabled(protocol));
        }
        Ok(account)
    }

    /// True when `domain` is one of ours.
    pub async fn is_local_domain(&self, domain: &str) -> Result<bool, DirectoryError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let row: Option<(i64,)> = with_pool!(self.store().db(), pool => {
            pillarbox_store::sqlx::query_as("SELECT id FROM domains WHERE name = $1")
                .bind(&domain)
                .fetch_optional(pool)
                .await
                .map_err(pillarbox_store::StoreError::from)?
        });
        Ok(row.is_some())
    }

    /// Resolves an envelope recipient: account, then alias, then the domain's
    /// catch-all. `+tag` sub-addresses resolve like the address without the tag.
    pub async fn resolve_recipient(&self, address: &str) -> Result<Recipient, DirectoryError> {
        let address = normalize_address(address)?;
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(DirectoryError::InvalidAddress(address));
        };
        if !self.is_local_domain(domain).await? {
            return Ok(Recipient::NotLocal);
        }
        let mut candidates = vec![address.clone()];
        if let Some((base, _tag)) = local.split_once('+')
            && !base.is_empty()
        {
            candidates.push(format!("{base}@{domain}"));
        }
        for candidate in &candidates {
            if let Some(account) = self.account_by_address(candidate).await? {
                return Ok(Recipient::Local(vec![account]));
            }
            let rows: Vec<AccountRow> = with_pool!(self.store().db(), pool => {
                pillarbox_store::sqlx::query_as(pillarbox_store::sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM aliases al JOIN accounts ac ON ac.id = al.account_id \
                     WHERE al.address = $1 ORDER BY ac.id",
                    ACCOUNT_COLUMNS.split(", ").map(|c| format!("ac.{c}")).collect::<Vec<_>>().join(", ")
                )))
                .bind(candidate)
                .fetch_all(pool)
                .await
                .map_err(pillarbox_store::StoreError::from)?
            });
            if !rows.is_empty() {
                return Ok(Recipient::Local(
                    rows.into_iter().map(account_from_row).collect(),
                ));
            }
        }
        let catch_all: Option<(Option<i64>,)> = with_pool!(self.store().db(), pool => {
            pillarbox_store::sqlx::query_as("SELECT catch_all_account FROM domains WHERE name = $1")
                .bind(domain)
                .fetch_optional(pool)
                .await
                .map_err(pillarbox_store::StoreError::from)?
        });
        match catch_all {
            Some((Some(id),)) => Ok(Recipient::Local(vec![self.account(AccountId(id)).await?])),
            _ => Ok(Recipient::UnknownLocal),
        }
    }

    /// Every address an account may send as: its own and the aliases that point to it.
    pub async fn addresses_of(&self, account: AccountId) -> Result<Vec<String>, DirectoryError> {
        let own = self.account(account).await?.address;
        let rows: Vec<(String,)> = with_pool!(self.store().db(), pool => {
            pillarbox_store::sqlx::query_as("SELECT address FROM aliases WHERE account_id = $1 ORDER BY address")
                .bind(account.0)
                .fetch_all(pool)
                .await
                .map_err(pillarbox_store::StoreError::from)?
        });
        let mut addresses = vec![own];
        addresses.extend(rows.into_iter().map(|(a,)| a));
        Ok(addresses)
    }
}
