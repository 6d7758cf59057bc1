//! QUOTA (RFC 9208): GETQUOTAROOT and GETQUOTA report the account's storage
//! quota, one quota root (`""`) for all its mailboxes. Usage is counted in
//! KiB, rounded up, as STORAGE is. Quotas are the operator's to set
//! (`pillarbox account set ADDRESS --quota 2G`): SETQUOTA is refused.

use crate::encode;
use crate::session::{Done, Session};
use pillarbox_directory::DirectoryError;
use pillarbox_store::{Result, StoreError};

/// The one quota root of an account.
const ROOT: &str = "";

impl Session<'_> {
    /// `* QUOTA "" (STORAGE used limit)`, or `None` when the account has
    /// no quota.
    async fn quota_line(&mut self) -> Result<Option<String>> {
        let account = self.account_id();
        // Read afresh: the operator may have changed it since the login.
        let limit = match self.server.directory.account(account).await {
            Ok(account) => account.quota_bytes,
            Err(DirectoryError::Store(error)) => return Err(error),
            Err(_) => return Err(StoreError::AccountNotFound(account)),
        };
        let Some(limit) = limit else {
            return Ok(None);
        };
        let used = self.server.store.quota_used(account).await?;
        Ok(Some(format!(
            "QUOTA \"{ROOT}\" (STORAGE {} {})",
            used.div_ceil(1024),
            limit / 1024
        )))
    }

    pub(crate) async fn get_quota_root(&mut self, raw: &[u8]) -> Result<Done> {
        let name = match self.mailbox_name(raw) {
            Ok(name) => name,
            Err(done) => return Ok(done),
        };
        let mailbox = self
            .server
            .store
            .require_mailbox(self.account_id(), &name)
            .await?;
        let quota = self.quota_line().await?;
        let mut line = b"* QUOTAROOT ".to_vec();
        encode::mailbox(&mut line, &mailbox.name, self.utf8_names());
        if quota.is_some() {
            line.extend_from_slice(format!(" \"{ROOT}\"").as_bytes());
        }
        line.extend_from_slice(b"\r\n");
        self.conn.write(&line);
        if let Some(quota) = quota {
            self.untagged(&quota);
        }
        Ok(Done::Ok("GETQUOTAROOT completed".into()))
    }

    pub(crate) async fn get_quota(&mut self, root: &[u8]) -> Result<Done> {
        if root != ROOT.as_bytes() {
            return Ok(Done::No(
                "[NONEXISTENT] No such quota root: this server has one, \"\"".into(),
            ));
        }
        match self.quota_line().await? {
            Some(quota) => {
                self.untagged(&quota);
                Ok(Done::Ok("GETQUOTA completed".into()))
            }
            None => Ok(Done::No("[NONEXISTENT] This account has no quota".into())),
        }
    }
}
