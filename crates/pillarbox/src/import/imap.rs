//! Import from another IMAP server (a hosted provider): every folder with
//! its messages, flags, keywords and internal dates; special-use folders
//! (RFC 6154 attributes, Gmail-style names) mapped onto the account's own.
//! Per source folder the UIDVALIDITY and last UID copied are kept, so a
//! second run copies only what is new and an interrupted run resumes; when
//! UIDVALIDITY changed, content fingerprints keep copies from doubling.

use super::Importer;
use anyhow::{Context, bail};
use futures::TryStreamExt;
use pillarbox_store::{AccountId, Flags, Store, SystemFlag};
use std::sync::Arc;
use tokio::net::TcpStream;

/// UIDs fetched per round trip (and per saved checkpoint).
const CHUNK: u32 = 200;

pub struct Source {
    pub tls: bool,
    pub user: String,
    pub host: String,
    pub port: u16,
}

impl Source {
    /// `imaps://user@host[:port]` (implicit TLS) or `imap://…` (STARTTLS).
    pub fn parse(url: &str) -> anyhow::Result<Source> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("imaps://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("imap://") {
            (false, rest)
        } else {
            bail!("{url:?}: use imaps://USER@HOST[:PORT] (or imap:// for STARTTLS)");
        };
        let rest = rest.trim_end_matches('/');
        let (user, hostport) = rest
            .rsplit_once('@')
            .with_context(|| format!("{url:?} names no user: use imaps://USER@HOST"))?;
        let user = user.replace("%40", "@");
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse().with_context(|| format!("bad port in {url:?}"))?,
            ),
            _ => (hostport.to_string(), if tls { 993 } else { 143 }),
        };
        if user.is_empty() || host.is_empty() {
            bail!("{url:?}: use imaps://USER@HOST[:PORT]");
        }
        Ok(Source {
            tls,
            user,
            host,
            port,
        })
    }

    pub fn key(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }
}

type Session = async_imap::Session<tokio_rustls::client::TlsStream<TcpStream>>;

async fn connect(
    source: &Source,
    password: &str,
    tls: Arc<rustls::ClientConfig>,
) -> anyhow::Result<Session> {
    let tcp = TcpStream::connect((source.host.as_str(), source.port))
        .await
        .with_context(|| format!("cannot connect to {}:{}", source.host, source.port))?;
    let name = rustls_pki_types::ServerName::try_from(source.host.clone())
        .with_context(|| format!("{} is not a valid server name", source.host))?;
    let connector = tokio_rustls::TlsConnector::from(tls);
    let stream = if source.tls {
        connector
            .connect(name, tcp)
            .await
            .context("TLS handshake failed (use --insecure only if you trust the network)")?
    } else {
        let mut plain = async_imap::Client::new(tcp);
        plain.read_response().await?.context("no greeting")?;
        plain
            .run_command_and_check_ok("STARTTLS", None)
            .await
            .context("STARTTLS refused")?;
        connector
            .connect(name, plain.into_inner())
            .await
            .context("TLS handshake failed (use --insecure only if you trust the network)")?
    };
    let mut client = async_imap::Client::new(stream);
    if source.tls {
        client.read_response().await?.context("no greeting")?;
    }
    client
        .login(&source.user, password)
        .await
        .map_err(|(e, _)| anyhow::anyhow!("login as {} failed: {e}", source.user))
}

fn flags_of(fetch: &async_imap::types::Fetch) -> Flags {
    use async_imap::types::Flag;
    let mut flags = Flags::new();
    for flag in fetch.flags() {
        match flag {
            Flag::Seen => flags.insert(SystemFlag::Seen),
            Flag::Answered => flags.insert(SystemFlag::Answered),
            Flag::Flagged => flags.insert(SystemFlag::Flagged),
            Flag::Deleted => flags.insert(SystemFlag::Deleted),
            Flag::Draft => flags.insert(SystemFlag::Draft),
            Flag::Custom(k) if !k.starts_with('\\') => flags.insert_keyword(&k),
            _ => {}
        }
    }
    flags
}

/// The local folder for a remote one: special-use attributes first, then names.
fn local_name(remote: &str, delimiter: Option<&str>, attributes: &str) -> String {
    for (attr, local) in [
        ("Sent", "Sent"),
        ("Drafts", "Drafts"),
        ("Trash", "Trash"),
        ("Junk", "Junk"),
        ("Archive", "Archive"),
    ] {
        if attributes.contains(attr) {
            return local.into();
        }
    }
    let decoded = pillarbox_imap::mutf7::decode(remote).unwrap_or_else(|| remote.to_string());
    match delimiter {
        Some(d) if d != "/" && !d.is_empty() => decoded.replace(d, "/"),
        _ => decoded,
    }
}

pub async fn import(
    store: &Store,
    account: AccountId,
    source: &Source,
    password: &str,
    tls: Arc<rustls::ClientConfig>,
    dry_run: bool,
) -> anyhow::Result<super::Summary> {
    let mut session = connect(source, password, tls).await?;
    let names: Vec<_> = session
        .list(Some(""), Some("*"))
        .await?
        .try_collect()
        .await?;
    let mut folders = Vec::new();
    for name in &names {
        let attributes = format!("{:?}", name.attributes());
        if attributes.contains("NoSelect") || attributes.contains("NonExistent") {
            continue;
        }
        // Virtual folders (Gmail's All Mail and Starred) would copy everything twice.
        if attributes.contains("All") || attributes.contains("Flagged") {
            continue;
        }
        folders.push((
            name.name().to_string(),
            local_name(name.name(), name.delimiter(), &attributes),
        ));
    }
    let key = source.key();
    let mut importer = Importer::new(store, account, dry_run);
    for (remote, local) in folders {
        let mailbox = session
            .examine(&remote)
            .await
            .with_context(|| format!("cannot open {remote}"))?;
        let uid_validity = mailbox.uid_validity.unwrap_or(0);
        let state = store.import_state(account, &key, &remote).await?;
        let mut next = match state {
            Some((v, last)) if v == uid_validity => last + 1,
            _ => 1,
        };
        let target = importer.folder(&local).await?;
        importer.progress.set_prefix(local.clone());
        if mailbox.exists == 0 {
            continue;
        }
        // Flags changed on the source since the last run are carried over.
        if next > 1 {
            let map = store.import_map(account, &key, &remote).await?;
            let fetches: Vec<_> = session
                .uid_fetch(format!("1:{}", next - 1), "(UID FLAGS)")
                .await?
                .try_collect()
                .await?;
            for fetch in &fetches {
                let Some(&(mailbox_id, local_uid)) = fetch.uid.and_then(|u| map.get(&u)) else {
                    continue;
                };
                let wanted = flags_of(fetch);
                let Some(current) = store.message(mailbox_id, local_uid).await? else {
                    continue;
                };
                if current.flags != wanted {
                    importer.summary.flags_updated += 1;
                    if !dry_run {
                        store
                            .store_flags(
                                mailbox_id,
                                &[local_uid],
                                pillarbox_store::FlagOp::Replace,
                                &wanted,
                                None,
                            )
                            .await?;
                    }
                }
            }
        }
        let uid_next = mailbox.uid_next.unwrap_or(u32::MAX);
        while next < uid_next {
            let last = next
                .saturating_add(CHUNK - 1)
                .min(uid_next.saturating_sub(1));
            let fetches: Vec<_> = session
                .uid_fetch(
                    format!("{next}:{last}"),
                    "(UID FLAGS INTERNALDATE BODY.PEEK[])",
                )
                .await?
                .try_collect()
                .await?;
            let mut highest = next.saturating_sub(1);
            for fetch in &fetches {
                let Some(uid) = fetch.uid else { continue };
                // `n:m` may answer with the last message when none is in range.
                if uid < next {
                    continue;
                }
                highest = highest.max(uid);
                let Some(body) = fetch.body() else {
                    importer
                        .summary
                        .failed
                        .push(format!("{remote} UID {uid}: no body returned"));
                    continue;
                };
                let date = fetch.internal_date().map(|d| d.timestamp());
                let stored = importer
                    .add_from(target, body.to_vec(), flags_of(fetch), date, Some(uid))
                    .await?;
                store
                    .set_import_map(account, &key, &remote, &stored)
                    .await?;
            }
            let stored = importer.flush().await?;
            store
                .set_import_map(account, &key, &remote, &stored)
                .await?;
            if !dry_run {
                // Checkpoint: an interrupted run resumes after this chunk.
                store
                    .set_import_state(account, &key, &remote, uid_validity, last.max(highest))
                    .await?;
            }
            next = last.saturating_add(1);
            if last == u32::MAX {
                break;
            }
        }
    }
    let _ = session.logout().await;
    importer.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = Source::parse("imaps://alice%40gmail.com@imap.gmail.com").unwrap();
        assert_eq!(
            (s.user.as_str(), s.host.as_str(), s.port, s.tls),
            ("alice@gmail.com", "imap.gmail.com", 993, true)
        );
        let s = Source::parse("imap://bob@127.0.0.1:1143").unwrap();
        assert_eq!((s.port, s.tls), (1143, false));
        assert!(Source::parse("pop3://x@y").is_err());
        assert!(Source::parse("imaps://host-only").is_err());
        assert_eq!(local_name("[Gmail]/Sent Mail", Some("/"), "[Sent]"), "Sent");
        assert_eq!(local_name("INBOX.Work", Some("."), "[]"), "INBOX/Work");
    }
}
