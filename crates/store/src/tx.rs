//! Steps shared by several write transactions, as macros so the one text
//! compiles for both backends: a function generic over the two transaction
//! types would need a bound for every statement's `Encode`/`Decode` and
//! executor lifetimes, for each query (see `with_pool!` in lib.rs for why we
//! do not use sqlx's `Any` driver). They expand where used: the caller
//! imports the names they mention (and the `dialect` traits).

/// Expunges inside a transaction; evaluates to the UIDs and the change event.
///
/// Locks before it reads: the mailbox row first, so a concurrent EXPUNGE of
/// the same UIDs waits and then finds them gone (and un-charges nothing
/// twice); then the account (its usage) and the message rows, in the order
/// every writer takes them (mailboxes, accounts, messages).
macro_rules! expunge_in {
    ($tx:expr, $mailbox:expr, $uids:expr) => {{
        let tx = &mut *$tx;
        let mailbox: MailboxId = $mailbox;
        let uids: &[Uid] = $uids;
        let result: Result<(Vec<Uid>, Option<ChangeEvent>)> = async {

    if uids.is_empty() {
        return Ok((Vec::new(), None));
    }
    tx.lock_mailboxes(&[mailbox.0]).await?;
    let owner: Option<(i64,)> = sqlx::query_as("SELECT account_id FROM mailboxes WHERE id = $1")
        .bind(mailbox.0)
        .fetch_optional(&mut **tx)
        .await?;
    let Some((account,)) = owner else {
        return Err(StoreError::MailboxIdNotFound(mailbox));
    };
    // (uid, message id, size): stable while the mailbox row is locked.
    let mut present: Vec<(i64, i64, i64)> = Vec::new();
    for chunk in uids.chunks(500) {
        let list = crate::id_list(chunk.iter().map(|u| u.0));
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT uid, message_id, size FROM mailbox_messages \
             WHERE mailbox_id = $1 AND uid IN ({list}) ORDER BY uid"
        )))
        .bind(mailbox.0)
        .fetch_all(&mut **tx)
        .await?;
        present.extend(rows);
    }
    if present.is_empty() {
        return Ok((Vec::new(), None));
    }
    tx.lock_accounts(&[account]).await?;
    let freed: i64 = present.iter().map(|(_, _, size)| size).sum();
    sqlx::query("UPDATE accounts SET used_bytes = used_bytes - $1 WHERE id = $2")
        .bind(freed)
        .bind(account)
        .execute(&mut **tx)
        .await?;
    let mut messages: Vec<i64> = present.iter().map(|(_, message, _)| *message).collect();
    messages.sort_unstable();
    messages.dedup();
    tx.lock_messages(&messages).await?;
    let (modseq,): (i64,) = sqlx::query_as(
        "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq",
    )
    .bind(mailbox.0)
    .fetch_one(&mut **tx)
    .await?;
    for chunk in present.chunks(500) {
        let list = crate::id_list(chunk.iter().map(|(uid, _, _)| *uid));
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM mailbox_messages WHERE mailbox_id = $1 AND uid IN ({list})"
        )))
        .bind(mailbox.0)
        .execute(&mut **tx)
        .await?;
        let values = chunk
            .iter()
            .map(|(uid, _, _)| format!("({}, {uid}, {modseq})", mailbox.0))
            .collect::<Vec<_>>()
            .join(",");
        // A UID is expunged once; the lock above makes a second try find
        // nothing, and a conflict here would still not fail the EXPUNGE.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES {values} \
             ON CONFLICT (mailbox_id, uid) DO NOTHING"
        )))
        .execute(&mut **tx)
        .await?;
    }
    release_messages_in!(&mut *tx, &messages)?;
    let expunged = present.iter().map(|(uid, _, _)| Uid(*uid as u32)).collect();
    Ok((
        expunged,
        Some(ChangeEvent {
            account: AccountId(account),
            mailbox,
            kind: ChangeKind::Expunged,
            modseq: ModSeq(modseq as u64),
        }),
    ))
        }.await;
        result
    }};
}

/// Deletes mailboxes with everything in them inside a transaction: their
/// message rows, their expunge history, the messages no other mailbox holds
/// (see `release_messages_in`), and the bytes from the account's usage.
/// The caller has locked the mailbox rows; this locks the account, then the
/// messages. Evaluates to `Result<()>`.
macro_rules! drop_mailboxes_in {
    ($tx:expr, $account:expr, $mailboxes:expr) => {{
        let tx = &mut *$tx;
        let account: AccountId = $account;
        let mailboxes: &[i64] = $mailboxes;
        let result: Result<()> = async {
            let mut messages: Vec<i64> = Vec::new();
            let mut freed = 0i64;
            for chunk in mailboxes.chunks(500) {
                let list = crate::id_list(chunk.iter().copied());
                let rows: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT message_id, size FROM mailbox_messages WHERE mailbox_id IN ({list})"
                )))
                .fetch_all(&mut **tx)
                .await?;
                for (message, size) in rows {
                    messages.push(message);
                    freed += size;
                }
            }
            tx.lock_accounts(&[account.0]).await?;
            messages.sort_unstable();
            messages.dedup();
            tx.lock_messages(&messages).await?;
            for chunk in mailboxes.chunks(500) {
                let list = crate::id_list(chunk.iter().copied());
                for table in ["mailbox_messages", "expunged", "metadata"] {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DELETE FROM {table} WHERE mailbox_id IN ({list})"
                    )))
                    .execute(&mut **tx)
                    .await?;
                }
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM mailboxes WHERE id IN ({list})"
                )))
                .execute(&mut **tx)
                .await?;
            }
            sqlx::query("UPDATE accounts SET used_bytes = used_bytes - $1 WHERE id = $2")
                .bind(freed)
                .bind(account.0)
                .execute(&mut **tx)
                .await?;
            release_messages_in!(&mut *tx, &messages)?;
            Ok(())
        }
        .await;
        result
    }};
}

/// After mailbox rows of `messages` were deleted in this transaction (and
/// the message rows locked before): deletes the messages no mailbox holds
/// any more, and gives their blobs a tombstone when no other message uses
/// them, for the blob sweep (`gc.rs`). Costs a few indexed lookups per
/// message given, whatever the size of the store. Evaluates to `Result<()>`.
macro_rules! release_messages_in {
    ($tx:expr, $messages:expr) => {{
        let tx = &mut *$tx;
        let messages: &[i64] = $messages;
        let result: Result<()> = async {
            let mut hashes: Vec<String> = Vec::new();
            for chunk in messages.chunks(500) {
                let list = crate::id_list(chunk.iter().copied());
                let gone: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM messages WHERE id IN ({list}) AND NOT EXISTS \
                     (SELECT 1 FROM mailbox_messages mm WHERE mm.message_id = messages.id) \
                     RETURNING blob_hash"
                )))
                .fetch_all(&mut **tx)
                .await?;
                hashes.extend(gone.into_iter().map(|(hash,)| hash));
            }
            hashes.sort_unstable();
            hashes.dedup();
            let now = crate::queue::unix_now();
            for chunk in hashes.chunks(500) {
                let list = crate::gc::hash_list(chunk);
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO blob_tombstones (hash, since) \
                     SELECT b.hash, $1 FROM blobs b WHERE b.hash IN ({list}) AND NOT EXISTS \
                     (SELECT 1 FROM messages m WHERE m.blob_hash = b.hash) \
                     ON CONFLICT (hash) DO NOTHING"
                )))
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            Ok(())
        }
        .await;
        result
    }};
}

/// Adds `bytes` to the account's usage inside the transaction, failing with
/// `OverQuota` when the account has a limit that would be passed. A macro, so
/// the one text compiles for both backends.
macro_rules! charge_quota {
    ($tx:expr, $account:expr, $bytes:expr) => {{
        let tx = &mut *$tx;
        let account: AccountId = $account;
        let bytes: i64 = $bytes;
        let result: Result<()> = async {
    let charged: Option<(i64,)> = sqlx::query_as(
        "UPDATE accounts SET used_bytes = used_bytes + $1 \
         WHERE id = $2 AND (quota_bytes IS NULL OR used_bytes + $1 <= quota_bytes) RETURNING used_bytes",
    )
    .bind(bytes)
    .bind(account.0)
    .fetch_optional(&mut **tx)
    .await?;
    if charged.is_some() {
        return Ok(());
    }
    let row: Option<(i64, Option<i64>)> = sqlx::query_as("SELECT used_bytes, quota_bytes FROM accounts WHERE id = $1")
        .bind(account.0)
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some((used, limit)) => Err(StoreError::OverQuota {
            account,
            used: used.max(0) as u64,
            limit: limit.unwrap_or(0).max(0) as u64,
            needed: bytes.max(0) as u64,
        }),
        None => Err(StoreError::AccountNotFound(account)),
    }
        }.await;
        result
    }};
}

/// Inserts an outbound message and its recipients inside the transaction;
/// evaluates to `Result<QueueId>`.
macro_rules! queue_in {
    ($tx:expr, $outbound:expr) => {{
        let tx = &mut *$tx;
        let outbound: &$crate::queue::OutboundMessage = $outbound;
        let result: Result<$crate::queue::QueueId> = async {
            let now = $crate::queue::unix_now();
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO queue_messages (sender, data, size, envid, ret_full, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(&outbound.sender)
            .bind(&outbound.data[..])
            .bind(outbound.data.len() as i64)
            .bind(&outbound.envid)
            .bind(i64::from(outbound.ret_full))
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            for r in &outbound.recipients {
                let domain = r
                    .address
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_ascii_lowercase())
                    .unwrap_or_default();
                sqlx::query(
                    "INSERT INTO queue_recipients (message_id, address, domain, next_attempt, notify, orcpt) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(&r.address)
                .bind(domain)
                .bind(now)
                .bind(&r.notify)
                .bind(&r.orcpt)
                .execute(&mut **tx)
                .await?;
            }
            Ok($crate::queue::QueueId(id))
        }
        .await;
        result
    }};
}
