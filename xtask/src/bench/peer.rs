//! A peer to compare with: Dovecot (Debian's packages, installed when
//! missing) started in the foreground on loopback with its own throw-away
//! configuration: passwd-file users with the bench password, Maildir, no TLS.

use anyhow::{Context, bail};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const IMAP_PORT: u16 = 21143;
pub const POP3_PORT: u16 = 21110;

pub struct Dovecot {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let conf = self.dir.path().join("dovecot.conf");
        let _ = Command::new("dovecot")
            .arg("-c")
            .arg(&conf)
            .arg("stop")
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ensure_installed() -> anyhow::Result<()> {
    if Command::new("dovecot").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("$ apt-get install -y dovecot-imapd dovecot-pop3d");
    let ok = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "dovecot-imapd",
            "dovecot-pop3d",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        bail!("cannot install Dovecot: run `apt-get install dovecot-imapd dovecot-pop3d` as root");
    }
    Ok(())
}

impl Dovecot {
    pub fn start(accounts: usize) -> anyhow::Result<Dovecot> {
        ensure_installed()?;
        let dir = tempfile::tempdir()?;
        let d = dir.path();
        for sub in ["run", "state", "home"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        // Mail is owned by nobody (Dovecot refuses root for mail).
        std::os::unix::fs::chown(d.join("home"), Some(65534), Some(65534))?;
        let users: String = (0..accounts)
            .map(|i| {
                format!(
                    "user{i}@example.test:{{PLAIN}}{}::::::\n",
                    super::server::PASSWORD
                )
            })
            .collect();
        std::fs::write(d.join("users"), users)?;
        let p = d.display();
        std::fs::write(
            d.join("dovecot.conf"),
            format!(
                "base_dir = {p}/run\nstate_dir = {p}/state\nlog_path = {p}/dovecot.log\nprotocols = imap pop3\nlisten = 127.0.0.1\nssl = no\n\
                 disable_plaintext_auth = no\nauth_mechanisms = plain login\ndefault_internal_user = dovecot\ndefault_login_user = dovenull\nfirst_valid_uid = 1\n\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {p}/users\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={p}/home/%u\n}}\nmail_location = maildir:~/Maildir\n\
                 service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {IMAP_PORT}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n  client_limit = 20000\n  process_min_avail = 1\n}}\n\
                 service pop3-login {{\n  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {POP3_PORT}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
                 service imap {{\n  process_limit = 20000\n}}\nprotocol imap {{\n  mail_max_userip_connections = 100000\n}}\ndefault_process_limit = 20000\ndefault_client_limit = 40000\n"
            ),
        )?;
        let child = Command::new("dovecot")
            .arg("-c")
            .arg(d.join("dovecot.conf"))
            .arg("-F")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start dovecot")?;
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", IMAP_PORT)).is_err() {
            if start.elapsed() > Duration::from_secs(20) {
                bail!("Dovecot did not start; see {p}/dovecot.log");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Dovecot { child, dir })
    }

    /// RSS of every Dovecot process (master, login, imap, auth…), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let mut total = 0;
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return 0;
        };
        for e in entries.flatten() {
            let path = e.path();
            let exe = std::fs::read_link(path.join("exe")).unwrap_or_default();
            let exe = exe.to_string_lossy();
            if !(exe.contains("/dovecot/") || exe.ends_with("/dovecot")) {
                continue;
            }
            if let Ok(status) = std::fs::read_to_string(path.join("status")) {
                total += status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        total
    }
}
