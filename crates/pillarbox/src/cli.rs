//! The command line: `serve`, `check-config` and the admin commands.

use crate::config::{Config, LogFormat};
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use pillarbox_directory::{AccountUpdate, AfterDownload, Directory, Pop3List};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

/// Pillarbox: one mail server for SMTP, POP3 and IMAP over one store.
#[derive(Debug, Parser)]
#[command(name = "pillarbox", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Also PILLARBOX_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: every enabled listener, until Ctrl-C or SIGTERM.
    Serve,
    /// Print the effective configuration (defaults, file, environment), secrets masked.
    CheckConfig,
    /// Manage the domains this server receives mail for.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage accounts (mailbox owners who log in).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage aliases: extra addresses delivering to accounts.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Look at and act on the outbound queue.
    #[command(subcommand)]
    Queue(crate::cli_queue::QueueCommand),
    /// DKIM signing keys of local domains.
    #[command(subcommand)]
    Dkim(crate::cli_queue::DkimCommand),
    /// Print the DNS records to publish for DOMAIN (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV…).
    Dns { domain: String },
    /// Ask the running server's /healthz (exit status 0 when healthy): for container health checks.
    Health,
    /// Start a throw-away server with a demo account and the POP3-vs-IMAP lab page.
    Lab,
    /// Bring mail in from an mbox file or a Maildir.
    #[command(subcommand)]
    Import(crate::cli_queue::ImportCommand),
    /// Write every folder of an account to DIR as mbox files or a Maildir.
    Export {
        address: String,
        /// mbox or maildir.
        #[arg(long, default_value = "mbox")]
        format: String,
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Add a local domain.
    Add { domain: String },
    /// List local domains.
    List,
    /// Remove a domain (it must have no accounts left).
    Remove { domain: String },
    /// Deliver mail for unknown addresses of DOMAIN to ADDRESS (or stop, with --none).
    CatchAll {
        domain: String,
        /// The account receiving the domain's unknown addresses.
        address: Option<String>,
        /// Remove the catch-all.
        #[arg(long, conflicts_with = "address")]
        none: bool,
    },
}

#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add an account; it gets INBOX, Drafts, Sent, Trash, Junk and Archive.
    Add {
        address: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// List accounts with their switches, POP3 policy and quota.
    List,
    /// Remove an account with all its mail.
    Remove { address: String },
    /// Set a new password.
    Passwd {
        address: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Change an account's protocol switches, POP3 policy or quota.
    Set(SetArgs),
}

#[derive(Debug, Args)]
pub struct SetArgs {
    pub address: String,
    /// Allow IMAP logins.
    #[arg(long, value_parser = on_off)]
    pub imap: Option<bool>,
    /// Allow POP3 logins.
    #[arg(long, value_parser = on_off)]
    pub pop3: Option<bool>,
    /// Allow sending through the submission ports.
    #[arg(long, value_parser = on_off)]
    pub submission: Option<bool>,
    /// What a POP3 download does: keep, mark-seen, archive or delete.
    #[arg(long, value_name = "POLICY")]
    pub pop3_after_download: Option<AfterDownload>,
    /// Whether POP3 DELE really deletes (off: Outlook.com-style protection).
    #[arg(long, value_parser = on_off)]
    pub pop3_honour_deletes: Option<bool>,
    /// Which messages POP3 lists: all, new (never downloaded) or recent (30 days).
    #[arg(long, value_name = "MODE")]
    pub pop3_list: Option<Pop3List>,
    /// Storage quota, e.g. 500M, 2G, 1048576; `none` for unlimited.
    #[arg(long, value_parser = quota_arg)]
    pub quota: Option<Quota>,
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Deliver mail for ALIAS to the account TARGET (repeat for several accounts).
    Add { alias: String, target: String },
    /// List aliases and where they deliver.
    List,
    /// Remove an alias (only towards TARGET when given).
    Remove {
        alias: String,
        target: Option<String>,
    },
}

/// A quota given on the command line: bytes, or `None` for unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota(pub Option<u64>);

fn quota_arg(value: &str) -> Result<Quota, String> {
    quota(value).map(Quota)
}

fn on_off(value: &str) -> Result<bool, String> {
    match value {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        other => Err(format!("{other:?}: use on or off")),
    }
}

/// Parses `none`, a byte count, or a count with K/M/G/T (powers of 1024).
pub fn quota(value: &str) -> Result<Option<u64>, String> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("none") || value.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let (number, unit) = value
        .find(|c: char| !c.is_ascii_digit())
        .map(|i| value.split_at(i))
        .unwrap_or((value, ""));
    let multiplier: u64 = match unit.trim().to_ascii_uppercase().trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("{value:?}: use a size like 500M or 2G, or none")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .map(Some)
        .ok_or_else(|| format!("{value:?}: use a size like 500M or 2G, or none"))
}

fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}")
}

fn read_password(source: &PasswordSource) -> anyhow::Result<String> {
    let password = if source.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("while reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            bail!(
                "no terminal to ask for the password: pass it on standard input with --password-stdin"
            );
        }
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Password again: ")?;
        if first != second {
            bail!("the two passwords differ: nothing was changed, try again");
        }
        first
    };
    if password.is_empty() {
        bail!("the password is empty: nothing was changed");
    }
    Ok(password)
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: journald, `docker logs` and files get plain text.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn directory(config: &Config) -> anyhow::Result<Directory> {
    let store = crate::serve::open_store(config).await?;
    Ok(Directory::new(store))
}

/// Runs the command line; errors are printed in one line by `main`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            init_logging(&config);
            crate::serve::run(config).await
        }
        Command::CheckConfig => {
            print!("{}", config.to_masked_toml());
            Ok(())
        }
        Command::Domain(command) => {
            let directory = directory(&config).await?;
            match command {
                DomainCommand::Add { domain } => {
                    directory.add_domain(&domain).await?;
                    println!("added domain {}", domain.to_ascii_lowercase());
                }
                DomainCommand::List => {
                    for domain in directory.list_domains().await? {
                        println!("{domain}");
                    }
                }
                DomainCommand::Remove { domain } => {
                    directory.remove_domain(&domain).await?;
                    println!("removed domain {domain}");
                }
                DomainCommand::CatchAll {
                    domain,
                    address,
                    none,
                } => match (address, none) {
                    (Some(address), false) => {
                        directory.set_catch_all(&domain, Some(&address)).await?;
                        println!("mail for unknown addresses of {domain} goes to {address}");
                    }
                    (None, true) => {
                        directory.set_catch_all(&domain, None).await?;
                        println!("{domain} has no catch-all now");
                    }
                    _ => bail!("give the catch-all ADDRESS, or --none to remove it"),
                },
            }
            Ok(())
        }
        Command::Account(command) => {
            let directory = directory(&config).await?;
            match command {
                AccountCommand::Add { address, password } => {
                    let password = read_password(&password)?;
                    let account = directory.add_account(&address, &password).await?;
                    println!("added account {}", account.address);
                }
                AccountCommand::List => {
                    println!(
                        "{:<36} {:<5} {:<5} {:<10} {:<14} {:<7} {:<7} {:>10} {:>8}",
                        "ADDRESS",
                        "IMAP",
                        "POP3",
                        "SUBMISSION",
                        "POP3-DOWNLOAD",
                        "DELETES",
                        "LIST",
                        "USED",
                        "QUOTA"
                    );
                    for account in directory.list_accounts().await? {
                        let used = directory.store().quota_used(account.id).await.unwrap_or(0);
                        let yes_no = |b: bool| if b { "on" } else { "off" };
                        println!(
                            "{:<36} {:<5} {:<5} {:<10} {:<14} {:<7} {:<7} {:>10} {:>8}",
                            account.address,
                            yes_no(account.imap),
                            yes_no(account.pop3),
                            yes_no(account.submission),
                            account.pop3_policy.after_download.to_string(),
                            if account.pop3_policy.honour_deletes {
                                "honour"
                            } else {
                                "ignore"
                            },
                            account.pop3_policy.list.to_string(),
                            used,
                            account
                                .quota_bytes
                                .map(human_size)
                                .unwrap_or_else(|| "none".into()),
                        );
                    }
                }
                AccountCommand::Remove { address } => {
                    directory.remove_account(&address).await?;
                    println!("removed account {address} and all its mail");
                }
                AccountCommand::Passwd { address, password } => {
                    let password = read_password(&password)?;
                    directory.set_password(&address, &password).await?;
                    println!("password changed for {address}");
                }
                AccountCommand::Set(args) => {
                    let update = AccountUpdate {
                        imap: args.imap,
                        pop3: args.pop3,
                        submission: args.submission,
                        after_download: args.pop3_after_download,
                        honour_deletes: args.pop3_honour_deletes,
                        pop3_list: args.pop3_list,
                        quota: args.quota.map(|q| q.0),
                    };
                    if update == AccountUpdate::default() {
                        bail!(
                            "nothing to change: give at least one option (see `pillarbox account set --help`)"
                        );
                    }
                    let account = directory.update_account(&args.address, &update).await?;
                    println!(
                        "{}: imap {}, pop3 {}, submission {}, pop3-after-download {}, pop3-honour-deletes {}, pop3-list {}, quota {}",
                        account.address,
                        on(account.imap),
                        on(account.pop3),
                        on(account.submission),
                        account.pop3_policy.after_download,
                        on(account.pop3_policy.honour_deletes),
                        account.pop3_policy.list,
                        account
                            .quota_bytes
                            .map(human_size)
                            .unwrap_or_else(|| "none".into())
                    );
                }
            }
            Ok(())
        }
        Command::Alias(command) => {
            let directory = directory(&config).await?;
            match command {
                AliasCommand::Add { alias, target } => {
                    directory.add_alias(&alias, &target).await?;
                    println!("{alias} now delivers to {target}");
                }
                AliasCommand::List => {
                    for (alias, target) in directory.list_aliases().await? {
                        println!("{alias} -> {target}");
                    }
                }
                AliasCommand::Remove { alias, target } => {
                    directory.remove_alias(&alias, target.as_deref()).await?;
                    println!("removed alias {alias}");
                }
            }
            Ok(())
        }
        Command::Queue(command) => {
            let store = crate::serve::open_store(&config).await?;
            crate::cli_queue::queue(&store, command).await
        }
        Command::Dkim(command) => {
            let store = crate::serve::open_store(&config).await?;
            crate::cli_queue::dkim(&store, command).await
        }
        Command::Dns { domain } => {
            let store = crate::serve::open_store(&config).await?;
            print!(
                "{}",
                crate::cli_dns::records(&config, &store, &domain).await?
            );
            Ok(())
        }
        Command::Health => crate::cli_dns::health(&config).await,
        Command::Lab => {
            init_logging(&config);
            crate::serve::run_lab(config).await
        }
        Command::Import(command) => {
            let store = crate::serve::open_store(&config).await?;
            crate::cli_queue::import(&store, command).await
        }
        Command::Export {
            address,
            format,
            dir,
        } => {
            let store = crate::serve::open_store(&config).await?;
            crate::cli_queue::export(&store, &address, &format, &dir).await
        }
    }
}

fn on(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

#[cfg(test)]
mod tests {
    use super::quota;

    #[test]
    fn quota_sizes() {
        assert_eq!(quota("2G"), Ok(Some(2 << 30)));
        assert_eq!(quota("500M"), Ok(Some(500 << 20)));
        assert_eq!(quota("1024"), Ok(Some(1024)));
        assert_eq!(quota("none"), Ok(None));
        assert!(quota("2X").is_err());
        assert!(quota("-1").is_err());
        assert!(quota("99999999999T").is_err());
    }
}
