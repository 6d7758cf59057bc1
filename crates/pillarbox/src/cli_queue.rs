//! `pillarbox queue …` and `pillarbox dkim …`: the outbound queue and the
//! DKIM keys of local domains.

use anyhow::{Context, bail};
use clap::Subcommand;
use pillarbox_store::Store;
use pillarbox_store::queue::QueueId;

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// One line per recipient: queue id, recipient, state, attempts, next attempt, last error.
    List,
    /// Everything about one queued message.
    Show { id: i64 },
    /// Try every undelivered recipient of a message again now.
    Retry { id: i64 },
    /// Drop a message from the queue (no bounce is sent).
    Remove { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Make a signing key for DOMAIN, store it, and print the DNS record to publish.
    Generate {
        domain: String,
        /// ed25519 (small, modern) or rsa (RSA-2048, understood everywhere).
        #[arg(long, default_value = "rsa")]
        algorithm: String,
        /// The selector: the record goes at SELECTOR._domainkey.DOMAIN.
        #[arg(long)]
        selector: Option<String>,
    },
    /// Print the DNS record of DOMAIN's current key.
    Show { domain: String },
}

fn when(unix: i64) -> String {
    if unix <= 0 {
        return "-".into();
    }
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

pub async fn queue(store: &Store, command: QueueCommand) -> anyhow::Result<()> {
    match command {
        QueueCommand::List => {
            let messages = store.queue_list().await?;
            if messages.is_empty() {
                println!("the queue is empty");
                return Ok(());
            }
            println!(
                "{:<6} {:<32} {:<9} {:>8} {:<20} LAST ERROR",
                "ID", "RECIPIENT", "STATE", "ATTEMPTS", "NEXT ATTEMPT"
            );
            for m in messages {
                for r in &m.recipients {
                    let next = if r.state.is_final() {
                        "-".into()
                    } else {
                        when(r.next_attempt)
                    };
                    println!(
                        "{:<6} {:<32} {:<9} {:>8} {:<20} {}",
                        m.id,
                        r.address,
                        r.state.as_str(),
                        r.attempts,
                        next,
                        r.last_error.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        QueueCommand::Show { id } => {
            let Some(m) = store.queue_get(QueueId(id)).await? else {
                bail!("no queued message {id}: see `pillarbox queue list`");
            };
            println!("id:        {}", m.id);
            println!("sender:    <{}>", m.sender);
            println!("size:      {} octets", m.size);
            println!("queued:    {}", when(m.created_at));
            if let Some(envid) = &m.envid {
                println!("envid:     {envid}");
            }
            for r in &m.recipients {
                println!(
                    "recipient: {} — {}, {} attempts, next {}, last: {}",
                    r.address,
                    r.state.as_str(),
                    r.attempts,
                    if r.state.is_final() {
                        "-".into()
                    } else {
                        when(r.next_attempt)
                    },
                    r.last_error.as_deref().unwrap_or("-")
                );
            }
        }
        QueueCommand::Retry { id } => {
            let n = store.queue_retry(QueueId(id)).await?;
            if n == 0 {
                bail!(
                    "no undelivered recipient in queued message {id}: see `pillarbox queue list`"
                );
            }
            println!(
                "{n} recipient(s) of message {id} will be tried again at once by the running server"
            );
        }
        QueueCommand::Remove { id } => {
            if !store.queue_remove(QueueId(id)).await? {
                bail!("no queued message {id}: see `pillarbox queue list`");
            }
            println!("removed message {id} from the queue");
        }
    }
    Ok(())
}

pub async fn dkim(store: &Store, command: DkimCommand) -> anyhow::Result<()> {
    match command {
        DkimCommand::Generate {
            domain,
            algorithm,
            selector,
        } => {
            let domain = domain.to_ascii_lowercase();
            let key =
                pillarbox_smtp::outbound::dkim::generate(&algorithm).map_err(anyhow::Error::msg)?;
            let selector = selector.unwrap_or_else(|| {
                let year = time::OffsetDateTime::now_utc().year();
                format!(
                    "pb{year}{}",
                    if key.algorithm == "ed25519" { "e" } else { "r" }
                )
            });
            store
                .dkim_key_put(
                    &domain,
                    &selector,
                    key.algorithm,
                    &key.private_key,
                    &key.public_key,
                )
                .await
                .context("cannot store the DKIM key")?;
            println!(
                "; Publish this TXT record; mail from {domain} is signed with the new key from now on."
            );
            println!("{}", zone_line(&selector, &domain, &key.txt_record()));
        }
        DkimCommand::Show { domain } => {
            let Some((selector, algorithm, _, public)) = store.dkim_key(&domain).await? else {
                bail!("no DKIM key for {domain}: make one with `pillarbox dkim generate {domain}`");
            };
            println!(
                "{}",
                zone_line(
                    &selector,
                    &domain,
                    &pillarbox_smtp::outbound::dkim::txt_record(&algorithm, &public)
                )
            );
        }
    }
    Ok(())
}

/// A TXT record in zone-file syntax, split into 255-octet strings, all on
/// one line (no parentheses: some zone parsers take no quoted strings
/// inside them).
pub(crate) fn zone_line(selector: &str, domain: &str, value: &str) -> String {
    let chunks: Vec<String> = value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!(
        "{selector}._domainkey.{domain}. 3600 IN TXT {}",
        chunks.join(" ")
    )
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import an mbox file (mboxo or mboxrd) into one folder, or a directory
    /// written by `pillarbox export --format mbox` into the folders it names.
    Mbox {
        /// An mbox file, or a directory of `*.mbox` files (then `--folder`
        /// is not used: each file's path names its folder).
        file: std::path::PathBuf,
        /// The account that receives the messages.
        #[arg(long)]
        to: String,
        /// Target folder (made if missing).
        #[arg(long, default_value = "INBOX")]
        folder: String,
        /// List what would be copied; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy every folder from another IMAP server (a hosted provider); run
    /// again to copy only what is new.
    Imap {
        /// imaps://USER@HOST[:PORT] (implicit TLS) or imap://USER@HOST[:PORT] (STARTTLS).
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Read the source password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Trust this certificate (PEM) instead of the web PKI roots.
        #[arg(long)]
        ca_file: Option<std::path::PathBuf>,
        /// Do not check the server's certificate (only on a network you trust).
        #[arg(long)]
        insecure: bool,
        #[arg(long)]
        dry_run: bool,
    },
    /// Import a Maildir (Maildir++ folders, flags, Dovecot keywords).
    Maildir {
        dir: std::path::PathBuf,
        #[arg(long)]
        to: String,
        #[arg(long)]
        dry_run: bool,
    },
}

async fn account_of(store: &Store, address: &str) -> anyhow::Result<pillarbox_store::AccountId> {
    let directory = pillarbox_directory::Directory::new(store.clone());
    match directory.account_by_address(address).await? {
        Some(account) => Ok(account.id),
        None => bail!("no account {address}: add it with `pillarbox account add {address}` first"),
    }
}

pub async fn import(store: &Store, command: ImportCommand) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (summary, dry_run) = match command {
        ImportCommand::Mbox {
            file,
            to,
            folder,
            dry_run,
        } => {
            let account = account_of(store, &to).await?;
            let mut importer = crate::import::Importer::new(store, account, dry_run);
            if file.is_dir() {
                crate::import::mbox::import_tree(&mut importer, &file).await?;
            } else {
                let reader = std::io::BufReader::with_capacity(
                    1 << 20,
                    std::fs::File::open(&file)
                        .with_context(|| format!("cannot open {}", file.display()))?,
                );
                crate::import::mbox::import(&mut importer, reader, &folder).await?;
            }
            (importer.finish().await?, dry_run)
        }
        ImportCommand::Imap {
            from,
            to,
            password_stdin,
            ca_file,
            insecure,
            dry_run,
        } => {
            let account = account_of(store, &to).await?;
            let source = crate::import::imap::Source::parse(&from)?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                rpassword::prompt_password(format!("Password of {}: ", source.user))?
            };
            let tls = match (ca_file, insecure) {
                (Some(path), _) => pillarbox_net::tls::client_config_trusting(&path)?,
                (None, true) => pillarbox_net::tls::client_config_opportunistic(),
                (None, false) => pillarbox_net::tls::client_config_webpki(),
            };
            let summary =
                crate::import::imap::import(store, account, &source, &password, tls, dry_run)
                    .await?;
            (summary, dry_run)
        }
        ImportCommand::Maildir { dir, to, dry_run } => {
            let account = account_of(store, &to).await?;
            let mut importer = crate::import::Importer::new(store, account, dry_run);
            crate::import::maildir::import(&mut importer, &dir).await?;
            (importer.finish().await?, dry_run)
        }
    };
    summary.print(dry_run);
    let seconds = started.elapsed().as_secs_f64();
    if summary.copied > 0 && seconds > 0.0 {
        println!("{:.0} messages/s", summary.copied as f64 / seconds);
    }
    if !summary.failed.is_empty() {
        bail!("{} messages could not be imported", summary.failed.len());
    }
    Ok(())
}

pub async fn export(
    store: &Store,
    address: &str,
    format: &str,
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    if !matches!(format, "mbox" | "maildir") {
        bail!("unknown format {format:?}: use mbox or maildir");
    }
    let account = account_of(store, address).await?;
    let n = crate::import::export::export(store, account, format, dir).await?;
    println!(
        "exported {n} messages of {address} to {} ({format})",
        dir.display()
    );
    Ok(())
}
