//! NeoMutt, driven headless through tmux, against a real Pillarbox on
//! loopback with `imap_condstore` and `imap_qresync` on: it opens INBOX,
//! another session flags a message and expunges one, and NeoMutt's screen
//! shows both (it hears `VANISHED`); then NeoMutt quits, more changes happen
//! while it is away, and on its return it catches up from its header cache
//! with `UID FETCH … (CHANGEDSINCE n VANISHED)`.
//! `.ci/run` installs `neomutt` and `tmux` from Debian's packages.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_tests::imap::{append, command, last, login};
use pillarbox_tests::{TestServer, backends, client_output as text, run_client as run};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "neomutt pass";

/// One tmux server of this test's own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Tmux {
        Tmux {
            socket: format!("pillarbox-{name}-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["-L", self.socket.as_str()];
        all.extend_from_slice(args);
        run("tmux", "tmux", &all)
    }

    fn start(&self, command: &str) {
        let out = self.run(&[
            "new-session",
            "-d",
            "-s",
            "nm",
            "-x",
            "120",
            "-y",
            "30",
            command,
        ]);
        assert!(out.status.success(), "tmux: {}", text(&out));
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "nm"]).stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", "nm", keys]);
    }

    /// Waits until the screen satisfies `ready` (30 s at most).
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "NeoMutt never showed {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn stop(&self) {
        self.run(&["kill-server"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The index line of the message with this subject, if shown.
fn row<'a>(screen: &'a str, subject: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.trim_end().ends_with(subject))
}

fn muttrc(dir: &Path, ts: &TestServer) -> PathBuf {
    let cert = ts.running().config.data_dir.join("tls/cert.pem");
    let rc = format!(
        r#"set folder="imaps://127.0.0.1:{port}/"
set imap_user="{ALICE}"
set imap_pass="{PASSWORD}"
set spoolfile="+INBOX"
set ssl_verify_host=no
set certificate_file="{cert}"
set header_cache="{cache}"
set imap_condstore=yes
set imap_qresync=yes
set mail_check=1
set timeout=1
set sort=date
set index_format="%4C %Z %s"
"#,
        port = ts.addr("imaps").port(),
        cert = cert.display(),
        cache = dir.join("hcache").display(),
    );
    let path = dir.join("muttrc");
    std::fs::write(&path, rc).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neomutt_follows_changes_and_resyncs_with_qresync() {
    for (round, backend) in backends().into_iter().enumerate() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut other = login(&ts, ALICE, PASSWORD).await;
        for n in 1..=5 {
            let message = format!(
                "From: bob@remote.test\r\nDate: Mon, {n} Jun 2026 10:00:00 +0000\r\nSubject: message {n}\r\n\r\nbody {n}\r\n"
            );
            assert!(
                append(&mut other, "INBOX", "()", &message)
                    .await
                    .starts_with("ap OK")
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let rc = muttrc(dir.path(), &ts);
        let log = dir.path().join("neomutt.log");
        let neomutt = format!("neomutt -n -F {} -d 2 -l {}", rc.display(), log.display());
        let tmux = Tmux::new(&format!("neomutt{round}"));
        tmux.start(&neomutt);
        tmux.wait_for("the five messages", |s| row(s, "message 5").is_some());

        // Another device flags message 1 and expunges message 2.
        assert!(last(&command(&mut other, "a SELECT INBOX").await).starts_with("a OK"));
        let lines = command(&mut other, "b UID STORE 1 +FLAGS (\\Flagged)").await;
        assert!(last(&lines).starts_with("b OK"), "{lines:?}");
        command(&mut other, "c UID STORE 2 +FLAGS (\\Deleted)").await;
        assert!(last(&command(&mut other, "d EXPUNGE").await).starts_with("d OK"));
        let screen = tmux.wait_for("message 1 flagged and message 2 gone", |s| {
            row(s, "message 2").is_none() && row(s, "message 1").is_some_and(|r| r.contains('!'))
        });
        assert!(row(&screen, "message 5").is_some(), "{screen}");

        // NeoMutt leaves; message 3 is read and message 4 expunged meanwhile.
        tmux.keys("q");
        std::thread::sleep(Duration::from_millis(500));
        tmux.stop();
        command(&mut other, "e UID STORE 3 +FLAGS (\\Seen)").await;
        command(&mut other, "f UID STORE 4 +FLAGS (\\Deleted)").await;
        assert!(last(&command(&mut other, "g EXPUNGE").await).starts_with("g OK"));

        // A tmux server of its own: the first one may still be going away.
        let tmux = Tmux::new(&format!("neomutt{round}-return"));
        tmux.start(&neomutt);
        let screen = tmux.wait_for("message 4 gone after the return", |s| {
            row(s, "message 5").is_some() && row(s, "message 4").is_none()
        });
        assert!(row(&screen, "message 2").is_none(), "{screen}");
        let three = row(&screen, "message 3").unwrap();
        assert!(
            !three.contains(" N "),
            "message 3 was read elsewhere:\n{screen}"
        );
        assert!(row(&screen, "message 1").unwrap().contains('!'), "{screen}");
        tmux.keys("q");
        std::thread::sleep(Duration::from_millis(500));
        tmux.stop();

        // What NeoMutt said on its return (its newest log): QRESYNC on, and a
        // catch-up by mod-sequence that named the expunged message.
        let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("neomutt.log")
            })
            .collect();
        assert!(!logs.is_empty(), "NeoMutt wrote no log in {:?}", dir.path());
        logs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        let newest = std::fs::read_to_string(logs.last().unwrap()).unwrap_or_default();
        assert!(newest.contains("ENABLE QRESYNC"), "{newest}");
        assert!(
            newest.contains("(CHANGEDSINCE") && newest.contains(" VANISHED)"),
            "{newest}"
        );
        assert!(newest.contains("Handling VANISHED"), "{newest}");
        assert!(newest.contains("Expunging message UID 4"), "{newest}");
        ts.stop().await;
    }
}
