//! The peer to compare with: Postfix (SMTP) delivering over LMTP to Dovecot
//! (IMAP, POP3, Maildir), as self-hosters run them. Both from Debian's
//! packages (installed when missing), started on loopback with their own
//! throw-away configuration: passwd-file users with the bench password, no
//! TLS, every message fsynced as each does by default (Postfix's queue file
//! before its 250, Dovecot's Maildir file before its LMTP 250).

use anyhow::{Context, bail};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SMTP_PORT: u16 = 21025;
pub const IMAP_PORT: u16 = 21143;
pub const POP3_PORT: u16 = 21110;
const LMTP_PORT: u16 = 21024;

/// Postfix and Dovecot, stopped (and their data removed) on drop.
pub struct Peer {
    // Dropped in this order: Postfix stops before the Dovecot it delivers to.
    _postfix: Postfix,
    _dovecot: Dovecot,
}

impl Peer {
    pub fn start(accounts: usize) -> anyhow::Result<Peer> {
        ensure_installed()?;
        let dovecot = Dovecot::start(accounts)?;
        let postfix = Postfix::start()?;
        Ok(Peer {
            _postfix: postfix,
            _dovecot: dovecot,
        })
    }

    /// Proportional set size of every Postfix and Dovecot process, in KiB
    /// (shared pages counted once, not once per process).
    pub fn memory_kib(&self) -> u64 {
        processes_pss_kib(|exe| {
            exe.contains("/dovecot/")
                || exe.ends_with("/dovecot")
                || exe.starts_with("/usr/lib/postfix/")
        })
    }
}

fn ensure_installed() -> anyhow::Result<()> {
    let have = |program: &str, arg: &str| Command::new(program).arg(arg).output().is_ok();
    if have("dovecot", "--version")
        && Path::new("/usr/lib/dovecot/lmtp").exists()
        && have("postfix", "-h")
    {
        return Ok(());
    }
    let packages = ["dovecot-imapd", "dovecot-pop3d", "dovecot-lmtpd", "postfix"];
    eprintln!("$ apt-get install -y {}", packages.join(" "));
    // Postfix asks how to configure itself: it gets its own configuration here.
    let _ = Command::new("sh")
        .args([
            "-c",
            "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections",
        ])
        .status();
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        bail!(
            "cannot install the peer: run `apt-get install {}` as root",
            packages.join(" ")
        );
    }
    Ok(())
}

fn wait_for_port(port: u16, what: &str, log: &Path) -> anyhow::Result<()> {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            bail!("{what} did not start; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A world-readable temporary directory (the daemons' users must enter it).
fn shared_tempdir() -> anyhow::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

struct Dovecot {
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

impl Dovecot {
    fn start(accounts: usize) -> anyhow::Result<Dovecot> {
        let dir = shared_tempdir()?;
        let d = dir.path();
        for sub in ["run", "state", "home"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        // Mail is owned by nobody (Dovecot refuses root for mail).
        std::os::unix::fs::chown(d.join("home"), Some(65534), Some(65534))?;
        // The same kind of hash Pillarbox keeps (argon2id, the same
        // parameters): a login costs both servers the same.
        let hash = {
            use argon2::PasswordHasher;
            argon2::Argon2::default()
                .hash_password(super::server::PASSWORD.as_bytes())
                .map_err(|e| anyhow::anyhow!("cannot hash the bench password: {e}"))?
                .to_string()
        };
        let users: String = (0..accounts)
            .map(|i| format!("user{i}@example.test:{{ARGON2ID}}{hash}::::::\n"))
            .collect();
        std::fs::write(d.join("users"), users)?;
        let p = d.display();
        std::fs::write(
            d.join("dovecot.conf"),
            format!(
                "base_dir = {p}/run\nstate_dir = {p}/state\nlog_path = {p}/dovecot.log\nprotocols = imap pop3 lmtp\nlisten = 127.0.0.1\nssl = no\n\
                 disable_plaintext_auth = no\nauth_mechanisms = plain login\ndefault_internal_user = dovecot\ndefault_login_user = dovenull\nfirst_valid_uid = 1\n\
                 postmaster_address = postmaster@example.test\n\
                 passdb {{\n  driver = passwd-file\n  args = username_format=%u {p}/users\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=65534 gid=65534 home={p}/home/%u\n}}\nmail_location = maildir:~/Maildir\n\
                 service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {IMAP_PORT}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n  client_limit = 20000\n  process_min_avail = 1\n}}\n\
                 service pop3-login {{\n  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {POP3_PORT}\n  }}\n  inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
                 service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {LMTP_PORT}\n  }}\n  unix_listener lmtp {{\n    mode = 0600\n  }}\n}}\n\
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
        let dovecot = Dovecot { child, dir };
        let log = dovecot.dir.path().join("dovecot.log");
        wait_for_port(IMAP_PORT, "Dovecot", &log)?;
        wait_for_port(LMTP_PORT, "Dovecot LMTP", &log)?;
        Ok(dovecot)
    }
}

struct Postfix {
    dir: tempfile::TempDir,
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(self.dir.path().join("conf"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // `postfix stop` returns before the master has gone.
        let pid_file = self.dir.path().join("queue/pid/master.pid");
        let start = Instant::now();
        while pid_file.exists() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Postfix {
    fn start() -> anyhow::Result<Postfix> {
        let dir = shared_tempdir()?;
        let d = dir.path();
        for sub in ["conf", "queue", "data"] {
            std::fs::create_dir_all(d.join(sub))?;
        }
        let postfix = users_id("postfix").context("the postfix user is missing")?;
        std::os::unix::fs::chown(d.join("data"), Some(postfix), None)?;
        let p = d.display();
        // Mail for example.test goes over LMTP to Dovecot; nothing else is accepted.
        std::fs::write(
            d.join("conf/main.cf"),
            format!(
                "compatibility_level = 3.6\nqueue_directory = {p}/queue\ndata_directory = {p}/data\n\
                 mail_owner = postfix\nsetgid_group = postdrop\ninet_interfaces = 127.0.0.1\ninet_protocols = ipv4\n\
                 myhostname = postfix.bench.test\nmydestination =\nmynetworks = 127.0.0.0/8\n\
                 virtual_mailbox_domains = example.test\nvirtual_transport = lmtp:inet:127.0.0.1:{LMTP_PORT}\n\
                 smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination\n\
                 maillog_file = {p}/postfix.log\nmaillog_file_prefixes = {p}\nmessage_size_limit = 52428800\n\
                 alias_maps =\nalias_database =\nbiff = no\nsmtpd_client_connection_count_limit = 0\n\
                 default_process_limit = 200\n"
            ),
        )?;
        // Only the services this setup uses; no chroot (the queue is in a temporary directory).
        let services = [
            format!("127.0.0.1:{SMTP_PORT} inet n - n - - smtpd"),
            "pickup unix n - n 60 1 pickup".into(),
            "cleanup unix n - n - 0 cleanup".into(),
            "qmgr unix n - n 300 1 qmgr".into(),
            "rewrite unix - - n - - trivial-rewrite".into(),
            "bounce unix - - n - 0 bounce".into(),
            "defer unix - - n - 0 bounce".into(),
            "trace unix - - n - 0 bounce".into(),
            "verify unix - - n - 1 verify".into(),
            "flush unix n - n 1000 0 flush".into(),
            "proxymap unix - - n - - proxymap".into(),
            "smtp unix - - n - - smtp".into(),
            "relay unix - - n - - smtp".into(),
            "showq unix n - n - - showq".into(),
            "error unix - - n - - error".into(),
            "retry unix - - n - - error".into(),
            "discard unix - - n - - discard".into(),
            "lmtp unix - - n - - lmtp".into(),
            "anvil unix - - n - 1 anvil".into(),
            "scache unix - - n - 1 scache".into(),
            "postlog unix-dgram n - n - 1 postlogd".into(),
        ];
        std::fs::write(d.join("conf/master.cf"), services.join("\n") + "\n")?;
        let ok = Command::new("postfix")
            .arg("-c")
            .arg(d.join("conf"))
            .arg("start")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let log = d.join("postfix.log");
        if !ok {
            bail!("Postfix did not start; see {}", log.display());
        }
        let postfix = Postfix { dir };
        wait_for_port(SMTP_PORT, "Postfix", &log)?;
        Ok(postfix)
    }
}

fn users_id(name: &str) -> Option<u32> {
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|l| {
            let mut fields = l.split(':');
            (fields.next()? == name).then(|| fields.nth(1)?.parse().ok())?
        })
}

/// The sum of `Pss:` over the processes whose executable `matches`.
pub fn processes_pss_kib(matches: impl Fn(&str) -> bool) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            let exe = std::fs::read_link(e.path().join("exe")).unwrap_or_default();
            matches(&exe.to_string_lossy())
        })
        .map(|e| pss_kib(&e.path()))
        .sum()
}

/// `Pss:` of one process (`/proc/PID`), in KiB.
pub fn pss_kib(proc_dir: &Path) -> u64 {
    std::fs::read_to_string(proc_dir.join("smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
