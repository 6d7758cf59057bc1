//! Steps shared by several write transactions, as macros so the one text
//! compiles for both backends (sqlx 0.9 has no generic executor over them).
//! They expand where used: the caller imports the names they mention.

/// Expunges inside a transaction; evaluates to the UIDs and the change event.
macro_rules! expunge_in {
    ($tx:expr, $mailbox:expr, $uids:expr) => {{
        let tx = &mut *$tx;
        let mailbox: MailboxId = $mailbox;
        let uids: &[Uid] = $uids;
        let result: Result<(Vec<Uid>, Option<ChangeEvent>)> = async {

    if uids.is_empty() {
        return Ok((Vec::new(), None));
    }
    let owner: Option<(i64,)> = sqlx::query_as("SELECT account_id FROM mailboxes WHERE id = $1")
        .bind(mailbox.0)
        .fetch_optional(&mut **tx)
        .await?;
    let Some((account,)) = owner else {
        return Err(StoreError::MailboxIdNotFound(mailbox));
    };
    let mut present: Vec<(i64, i64)> = Vec::new();
    for chunk in uids.chunks(500) {
        let list = crate::id_list(chunk.iter().map(|u| u.0));
        let rows: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT mm.uid, m.size FROM mailbox_messages mm JOIN messages m ON m.id = mm.message_id \
             WHERE mm.mailbox_id = $1 AND mm.uid IN ({list}) ORDER BY mm.uid"
        )))
        .bind(mailbox.0)
        .fetch_all(&mut **tx)
        .await?;
        present.extend(rows);
    }
    if present.is_empty() {
        return Ok((Vec::new(), None));
    }
    let (modseq,): (i64,) = sqlx::query_as(
        "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1 RETURNING highest_modseq",
    )
    .bind(mailbox.0)
    .fetch_one(&mut **tx)
    .await?;
    let mut freed = 0i64;
    for chunk in present.chunks(500) {
        let list = crate::id_list(chunk.iter().map(|(uid, _)| *uid));
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM mailbox_messages WHERE mailbox_id = $1 AND uid IN ({list})"
        )))
        .bind(mailbox.0)
        .execute(&mut **tx)
        .await?;
        let values = chunk
            .iter()
            .map(|(uid, _)| format!("({}, {uid}, {modseq})", mailbox.0))
            .collect::<Vec<_>>()
            .join(",");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO expunged (mailbox_id, uid, modseq) VALUES {values}"
        )))
        .execute(&mut **tx)
        .await?;
        freed += chunk.iter().map(|(_, size)| size).sum::<i64>();
    }
    sqlx::query("UPDATE accounts SET used_bytes = used_bytes - $1 WHERE id = $2")
        .bind(freed)
        .bind(account)
        .execute(&mut **tx)
        .await?;
    let expunged = present.iter().map(|(uid, _)| Uid(*uid as u32)).collect();
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
