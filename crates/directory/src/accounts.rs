//! Admin operations: domains, accounts, aliases, catch-all.

use crate::address::{normalize_address, normalize_domain};
use crate::{Account, AfterDownload, Directory, DirectoryError, Pop3List, Pop3Policy, password};
use pillarbox_store::{AccountId, SpecialUse, with_pool};
use std::fmt;
use std::str::FromStr;

/// The mailboxes every new account gets.
pub const DEFAULT_MAILBOXES: [(&str, Option<SpecialUse>); 6] = [
    ("INBOX", None),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Sent", Some(SpecialUse::Sent)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// Changes to an account's settings; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    pub imap: Option<bool>,
    pub pop3: Option<bool>,
    pub submission: Option<bool>,
    pub after_download: Option<AfterDownload>,
    pub honour_deletes: Option<bool>,
    pub pop3_list: Option<Pop3List>,
    /// `Some(None)` removes the quota.
    pub quota: Option<Option<u64>>,
}

impl FromStr for AfterDownload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keep" => Ok(AfterDownload::Keep),
            "mark-seen" => Ok(AfterDownload::MarkSeen),
            "archive" => Ok(AfterDownload::Archive),
            "delete" => Ok(AfterDownload::Delete),
            other => Err(format!(
                "{other:?} is not a POP3 after-download policy: use keep, mark-seen, archive or delete"
            )),
        }
    }
}

impl fmt::Display for AfterDownload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AfterDownload::Keep => "keep",
            AfterDownload::MarkSeen => "mark-seen",
            AfterDownload::Archive => "archive",
            AfterDownload::Delete => "delete",
        })
    }
}

impl FromStr for Pop3List {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(Pop3List::All),
            "new" => Ok(Pop3List::New),
            "recent" => Ok(Pop3List::Recent),
            other => Err(format!(
                "{other:?} is not a POP3 listing mode: use all, new or recent"
            )),
        }
    }
}

impl fmt::Display for Pop3List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pop3List::All => "all",
            Pop3List::New => "new",
            Pop3List::Recent => "recent",
        })
    }
}

pub(crate) type AccountRow = (
    i64,
    String,
    bool,
    bool,
    bool,
    String,
    bool,
    String,
    Option<i64>,
);

pub(crate) const ACCOUNT_COLUMNS: &str = "id, address, imap_enabled, pop3_enabled, submission_enabled, \
     pop3_after_download, pop3_honour_deletes, pop3_list, quota_bytes";

pub(crate) fn account_from_row(row: AccountRow) -> Account {
    let (id, address, imap, pop3, submission, after, honour, list, quota) = row;
    Account {
        id: AccountId(id),
        address,
        imap,
        pop3,
        submission,
        pop3_policy: Pop3Policy {
            after_download: after.parse().unwrap_or_default(),
            honour_deletes: honour,
            list: list.parse().unwrap_or_default(),
        },
        quota_bytes: quota.map(|q| q.max(0) as u64),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn is_unique_violation(error: &pillarbox_store::sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

impl Directory {
    /// Adds a local domain.
    pub async fn add_domain(&self, domain: &str) -> Result<(), DirectoryError> {
        let domain = normalize_domain(domain)?;
        let result = with_pool!(self.store().db_write(), pool => {
            pillarbox_store::sqlx::query("INSERT INTO domains (name, created_at) VALUES ($1, $2)")
                .bind(&domain)
                .bind(now())
                .execute(pool)
                .await
                .map(|_| ())
        });
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(DirectoryError::DomainExists(domain)),
            Err(e) => Err(pillarbox_store::StoreError::from(e).into()),
        }
    }

    /// Removes a domain that has no accounts left; its aliases go with it.
    pub async fn remove_domain(&self, domain: &str) -> Result<(), DirectoryError> {
        let domain = normalize_domain(domain)?;
        let id = self.domain_id(&domain).await?;
        let (accounts,): (i64,) = with_pool!(self.store().db(), pool => {
            pillarbox_store::sqlx::query_as("SELECT CAST(COUNT(*) AS BIGINT) FROM accounts WHERE domain_id = $1")
                .bind(id)
                .fetch_one(pool)
                .await
                .map_err(pillarbox_store::StoreError::from)?
        });
        if accounts > 0 {
            return Err(DirectoryError::DomainNotEmpty(domain));
        }
        with_pool!(self.store().db_write(), pool => {
            let mut tx = pool.begin().await.map_err(pillarbox_store::StoreError::from)?;
            pillarbox_store::sqlx::query("DELETE FROM aliases WHERE address LIKE $1")
                .bind(format!("%@{domain}"))
                .execute(&mut *tx)
                .await
                .map_err(pillarbox_store::StoreError::from)?;
            pillarbox_store::sqlx::query("DELETE FROM domains WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(pillarbox_store::StoreError::from)?;
            tx.commit().await.map_err(pillarbox_store::StoreError::from)?;
        });
        Ok(())
    }

    /// Every local domain, sorted.
    pub async fn list_domains(&self) -> Result<Vec<String>, DirectoryError> {
        let rows: Vec<(String,)> = with_pool!(self.store().db(), pool => {
            pillarbox_store::sqlx::query_as("SELECT name FROM domains ORDER BY name")
                .fetch_all(pool)
                .await
                .map_err(pillarbox_store::StoreError::from)?
        });
        Ok(rows.into_iter().map(|(name,)| name).collect())
    }

    pub(crate) async fn domain_id(&self, domain: &str) -> Result<i64, DirectoryError> {
        let row: Option<(i64,)> = with_pool!(self.store().db(), pool => {
            pillarbox_store::sqlx::query_as("SELECT id FROM domains WHERE name = $1")
                .bind(domain)
                .fetch_optional(pool)
                .await
                .map_err(pillarbox_store::StoreError::from)?
        });
        row.map(|(id,)| id)
            .ok_or_else(|| DirectoryError::UnknownDomain(domain.to_string()))
    }

    /// Sets (or with `None` clears) the account that receives mail for
    /// unknown addresses of a domain.
    pub async fn set_catch_all(
        &self,
        domain: &str,
        address: Option<&str>,
    ) -> Result<(), DirectoryError> {
        let domain = normalize_domain(domain)?;
        let domain_id = self.domain_id(&domain).await?;
        let account = match address {
            Some(address) => Some(self.require_account(address).await?.id.0),
            None => None,
        };
        with_pool!(self.store().db_write(), pool => {
            pillarbox_store::sqlx::query("UPDATE domains SET catch_all_account = $1 WHERE id = $2")
                .bind(account)
                .bind(domain_id)
                .execute(pool)
                .await
                .map_err(pillarbox_store::StoreError::from)?;
        });
        Ok(())
    }

    /// Adds an account with its default mailboxes (INBOX, Drafts, Sent, Trash,
    /// Junk, Archive). Either all of it exists afterwards or none of it.
    pub async fn add_account(
        &self,
        address: &str,
        password: &str,
    ) -> Result<Account, DirectoryError> {
        let address = normalize_address(address)?;
        if password.is_empty() {
            return Err(DirectoryError::EmptyPassword);
        }
        let domain = address
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default();
        let domain_id = self.domain_id(&domain).await?;
        if self.alias_exists(&address).await? {
            return Err(DirectoryError::AliasShadowsAccount(address));
        }
        let hash = password::hash(password).await.map_err(|e| {
            DirectoryError::Store(pillarbox_store::StoreError::Blob {
                path: "password hash".into(),
                source: std::io::Error::other(e),
            })
        })?;
        let inserted = with_pool!(self.store().db_write(), pool => {
            pillarbox_store::sqlx::query_as::<_, AccountRow>(pillarbox_store::sqlx::AssertSqlSafe(format!(
                "INSERT INTO accounts (domain_id, address, password_hash, created_at) VALUES ($1, $2, $3, $4) \
                 RETURNING {ACCOUNT_COLUMNS}"
            )))
            .bind(domain_id)
            .bind(&address)
            .bind(&hash)
            .bind(now())
            .fetch_one(pool)
            .await
        });
        let account = match inserted {
            Ok(row) => account_from_row(row),
            Err(e) if is_unique_violation(&e) => {
                return Err(DirectoryError::AccountExists(address));
            }
            Err(e) => return Err(pillarbox_store::StoreError::from(e).into()),
        };
        for (name, special_use) in DEFAULT_MAILBOXES {
            if let Err(error) = self
                .store()
                .create_mailbox(account.id, name, special_use)
                .await
            {
                // Never leave half an account behind.
                let _ = self.delete_account_rows(account.id).await;
                return Err(error.into());
            }
            // The standard folders start subscribed, so clients that show
            // only subscribed folders show them.
            if let Err(error) = self.store().set_subscribed(account.id, name, true).await {
                let _ = self.delete_account_rows(account.id).await;
                return Err(error.into());
            }
        }
        Ok(account)
    }

    async fn delete_account_rows(&self, id: AccountId) -> Result<(), DirectoryError> {
        // The directory's own rows first; then the store deletes the mail
        // and the account row in one transaction.
        with_pool!(self.store().db_write(), pool => {
            let mut tx = pool.begin().await.map_err(pillarbox_store::StoreError::from)?;
            for statement in [
                "UPDATE domains SET catch_all_account = NULL WHERE catch_all_account = $1",
                "DELETE FROM aliases WHERE account_id = $1",
            ] {
                pillarbox_store::sqlx::query(statement)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(pillarbox_store::StoreError::from)?;
            }
            tx.commit().await.map_err(pillarbox_store::StoreError::from)?;
        });
        self.store().delete_account(id).await?;
        Ok(())
    }

    /// Removes an account, its mailboxes, its messages and aliases to it.
    pub async fn remove_account(&self, address: &str) -> Result<(), DirectoryError> {
        let account = self.require_account(address).await?;
        self.delete_account_rows(account.id).await
    }

    /// Every account, sorted by address.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, DirectoryError> {
        let rows: Vec<AccountRow> = with_pool!(self.store().db(), pool => {
            pillarbox_store::sqlx::query_as(pillarbox_store::sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY address"
            )))
            .fetch_all(pool)
            .await
            .map_err(pillarbox_store::StoreError::from)?
        });
        Ok(rows.into_iter().map(account_from_row).collect())
    }

    /// Like [`Directory::account_by_address`], but a missing account is an error.
    pub async fn require_account(&self, address: &str) -> Result<Account, DirectoryError> {
        let normalized = normalize_address(address)?;
        self.account_by_address(&normalized)
            .await?
            .ok_or(DirectoryError::UnknownAccount(normalized))
    }

    /// Current settings of an account, by address.
    pub async fn account_by_address(
        &self,
        address: &str,
    ) -> Result<Option<Account>, DirectoryError> {
        let Ok(address) = normalize_address(address) else {
            return Ok(None);
        };
        let row: Option<AccountRow> = with_pool!(self.store().db(), pool => {
            pillarbox_store::sqlx::query_as(pillarbox_store::sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE address = $1"
            )))
            .bind(&address)
            .fetch_optional(pool)
            .await
            .map_err(pillarbox_store::StoreError::from)?
        });
        Ok(row.map(account_from_row))
    }

    /// Current settings of an account, by id.
    pub async fn account(&self, id: AccountId) -> Result<Account, DirectoryError> {
        let row: Option<AccountRow> = with_pool!(self.store().db(), pool => {
            pillarbox_store::sqlx::query_as(pillarbox_store::sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
            )))
            .bind(id.0)
            .fetch_optional(pool)
            .await
            .map_err(pillarbox_store::StoreError::from)?
        });
        row.map(account_from_row)
            .ok_or_else(|| DirectoryError::UnknownAccount(format!("#{id}")))
    }

    /// Sets a new password.
    pub async fn set_password(&self, address: &str, password: &str) -> Result<(), DirectoryError> {
        if password.is_empty() {
            return Err(DirectoryError::EmptyPassword);
        }
        let account = self.require_account(address).await?;
        let hash = password::hash(password).await.map_err(|e| {
            DirectoryError::Store(pillarbox_store::StoreError::Blob {
                path: "password hash".into(),
                source: std::io::Error::other(e),
            })
        })?;
        with_pool!(self.store().db_write(), pool => {
            pillarbox_store::sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
                .bind(&hash)
                .bind(account.id.0)
                .execute(pool)
                .await
                .map_err(pillarbox_store::StoreError::from)?;
        });
        Ok(())
    }

    /// Changes switches, POP3 policy or quota; returns the account as it is now.
    pub async fn update_account(
        &self,
        address: &str,
        update: &AccountUpdate,
    ) -> Result<Account, DirectoryError> {
        let current = self.require_account(address).await?;
        let policy = current.pop3_policy;
        let quota = update.quota.unwrap_or(current.quota_bytes);
        with_pool!(self.store().db_write(), pool => {
            pillarbox_store::sqlx::query(
                "UPDATE accounts SET imap_enabled = $1, pop3_enabled = $2, submission_enabled = $3, \
                 pop3_after_download = $4, pop3_honour_deletes = $5, pop3_list = $6, quota_bytes = $7 WHERE id = $8",
            )
            .bind(update.imap.unwrap_or(current.imap))
            .bind(update.pop3.unwrap_or(current.pop3))
            .bind(update.submission.unwrap_or(current.submission))
            .bind(update.after_download.unwrap_or(policy.after_download).to_string())
            .bind(update.honour_deletes.unwrap_or(policy.honour_deletes))
            .bind(update.pop3_list.unwrap_or(policy.list).to_string())
            .bind(quota.map(|q| q.min(i64::MAX as u64) as i64))
            .bind(current.id.0)
            .execute(pool)
            .await
            .map_err(pillarbox_store::StoreError::from)?;
        });
        self.account(current.id).await
    }

    async fn alias_exists(&self, address: &str) -> Result<bool, DirectoryError> {
        let row: Option<(i64,)> = with_pool!(self.store().db(), pool => {
            pillarbox_store::sqlx::query_as("SELECT id FROM aliases WHERE address = $1 LIMIT 1")
                .bind(address)
                .fetch_optional(pool)
                .await
                .map_err(pillarbox_store::StoreError::from)?
        });
        Ok(row.is_some())
    }

    /// Makes `alias` deliver to the account `target` too (an alias may point
    /// at several accounts: add it once per account).
    pub async fn add_alias(&self, alias: &str, target: &str) -> Result<(), DirectoryError> {
        let alias = normalize_address(alias)?;
        let domain = alias
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default();
        self.domain_id(&domain).await?;
        if self.account_by_address(&alias).await?.is_some() {
            return Err(DirectoryError::AliasShadowsAccount(alias));
        }
        let account = self.require_account(target).await?;
        let result = with_pool!(self.store().db_write(), pool => {
            pillarbox_store::sqlx::query("INSERT INTO aliases (address, account_id) VALUES ($1, $2)")
                .bind(&alias)
                .bind(account.id.0)
                .execute(pool)
                .await
                .map(|_| ())
        });
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(DirectoryError::AliasExists(alias, account.address))
            }
            Err(e) => Err(pillarbox_store::StoreError::from(e).into()),
        }
    }

    /// Removes an alias (all its targets, or only `target`).
    pub async fn remove_alias(
        &self,
        alias: &str,
        target: Option<&str>,
    ) -> Result<(), DirectoryError> {
        let alias = normalize_address(alias)?;
        let target = match target {
            Some(t) => Some(self.require_account(t).await?.id.0),
            None => None,
        };
        let removed = with_pool!(self.store().db_write(), pool => {
            pillarbox_store::sqlx::query("DELETE FROM aliases WHERE address = $1 AND ($2 IS NULL OR account_id = $2)")
                .bind(&alias)
                .bind(target)
                .execute(pool)
                .await
                .map_err(pillarbox_store::StoreError::from)?
                .rows_affected()
        });
        if removed == 0 {
            return Err(DirectoryError::UnknownAlias(alias));
        }
        Ok(())
    }

    /// Every (alias, target account address), sorted.
    pub async fn list_aliases(&self) -> Result<Vec<(String, String)>, DirectoryError> {
        let rows: Vec<(String, String)> = with_pool!(self.store().db(), pool => {
            pillarbox_store::sqlx::query_as(
                "SELECT al.address, ac.address FROM aliases al JOIN accounts ac ON ac.id = al.account_id \
                 ORDER BY al.address, ac.address",
            )
            .fetch_all(pool)
            .await
            .map_err(pillarbox_store::StoreError::from)?
        });
        Ok(rows)
    }
}
