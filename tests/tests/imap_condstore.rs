//! CONDSTORE (RFC 7162 §3.1) over real sockets, on SQLite and PostgreSQL:
//! HIGHESTMODSEQ on SELECT, the MODSEQ fetch item, CHANGEDSINCE,
//! UNCHANGEDSINCE with [MODIFIED], SEARCH MODSEQ, and MODSEQ in the FETCH
//! responses of a session that enabled it.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_tests::imap::{append, command, has, last, login, ok};
use pillarbox_tests::{LineClient, TestServer, backends};

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "condstore pass";

/// The number in `MODSEQ (n)` of the FETCH line for message `seq`.
fn modseq_of(lines: &[String], seq: u32) -> u64 {
    let line = lines
        .iter()
        .find(|l| l.starts_with(&format!("* {seq} FETCH ")))
        .unwrap_or_else(|| panic!("no FETCH for {seq} in {lines:?}"));
    let (_, rest) = line
        .split_once("MODSEQ (")
        .unwrap_or_else(|| panic!("no MODSEQ in {line}"));
    rest.split(')').next().unwrap().parse().unwrap()
}

async fn server_with_three() -> Vec<(TestServer, LineClient)> {
    let mut out = Vec::new();
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut c = login(&ts, ALICE, PASSWORD).await;
        for n in 1..=3 {
            let message = format!("Subject: m{n}\r\n\r\nbody {n}\r\n");
            assert!(
                append(&mut c, "INBOX", "()", &message)
                    .await
                    .starts_with("ap OK")
            );
        }
        out.push((ts, c));
    }
    out
}

#[tokio::test]
async fn condstore_by_the_rfc_examples() {
    for (ts, mut c) in server_with_three().await {
        let lines = command(&mut c, "a CAPABILITY").await;
        assert!(has(&lines, " CONDSTORE"), "{lines:?}");
        let lines = command(&mut c, "b ENABLE CONDSTORE").await;
        assert!(has(&lines, "* ENABLED CONDSTORE"), "{lines:?}");
        let lines = command(&mut c, "c SELECT INBOX").await;
        ok(&lines, "c");
        let highest = lines
            .iter()
            .find_map(|l| l.strip_prefix("* OK [HIGHESTMODSEQ "))
            .and_then(|rest| rest.split(']').next())
            .map(|n| n.parse::<u64>().unwrap())
            .unwrap_or_else(|| panic!("{lines:?}"));

        // The MODSEQ item (§3.1.4).
        let lines = command(&mut c, "d FETCH 1:3 (FLAGS MODSEQ)").await;
        ok(&lines, "d");
        let before: Vec<u64> = (1..=3).map(|n| modseq_of(&lines, n)).collect();
        assert!(before.iter().all(|m| *m <= highest), "{before:?} {highest}");

        // A STORE answers with the new MODSEQ, above every earlier one.
        let lines = command(&mut c, "e STORE 1 +FLAGS (\\Seen)").await;
        ok(&lines, "e");
        let first = modseq_of(&lines, 1);
        assert!(first > highest, "{lines:?}");
        assert!(has(&lines, "FLAGS (\\Seen"), "{lines:?}");

        // UNCHANGEDSINCE (§3.1.3): message 1 changed after `highest`, so it is
        // left alone and named by MODIFIED; 2 changes, and .SILENT still
        // reports its MODSEQ.
        let lines = command(
            &mut c,
            &format!("f STORE 1,2 (UNCHANGEDSINCE {highest}) +FLAGS.SILENT (\\Flagged)"),
        )
        .await;
        assert!(last(&lines).starts_with("f OK [MODIFIED 1]"), "{lines:?}");
        assert!(
            !lines.iter().any(|l| l.starts_with("* 1 FETCH")),
            "{lines:?}"
        );
        let second = modseq_of(&lines, 2);
        assert!(second > first, "{lines:?}");
        assert!(!has(&lines, "FLAGS"), "{lines:?}");
        let lines = command(&mut c, "g FETCH 1:2 FLAGS").await;
        assert!(!lines[0].contains("\\Flagged"), "{lines:?}");
        assert!(lines[1].contains("\\Flagged"), "{lines:?}");

        // UNCHANGEDSINCE 0 fails every message (UIDs under UID STORE).
        let lines = command(
            &mut c,
            "h UID STORE 1:3 (UNCHANGEDSINCE 0) +FLAGS (\\Draft)",
        )
        .await;
        assert!(last(&lines).starts_with("h OK [MODIFIED 1:3]"), "{lines:?}");

        // CHANGEDSINCE (§3.1.4.1): only what changed after it, with MODSEQ.
        let lines = command(
            &mut c,
            &format!("i UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})"),
        )
        .await;
        ok(&lines, "i");
        let fetched: Vec<&String> = lines.iter().filter(|l| l.starts_with("* ")).collect();
        assert_eq!(fetched.len(), 2, "{lines:?}");
        assert_eq!(modseq_of(&lines, 1), first);
        assert_eq!(modseq_of(&lines, 2), second);
        assert!(fetched.iter().all(|l| l.contains("UID ")), "{lines:?}");

        // SEARCH MODSEQ (§3.1.5) answers with the highest MODSEQ found.
        let lines = command(&mut c, &format!("j SEARCH MODSEQ {first}")).await;
        assert!(
            has(&lines, &format!("* SEARCH 1 2 (MODSEQ {second})")),
            "{lines:?}"
        );
        let lines = command(
            &mut c,
            &format!("k SEARCH RETURN (ALL) MODSEQ \"/flags/\\\\draft\" all {first}"),
        )
        .await;
        assert!(
            has(&lines, &format!("ALL 1:2 MODSEQ {second}")),
            "{lines:?}"
        );

        // Another session's change arrives with its MODSEQ.
        let mut other = login(&ts, ALICE, PASSWORD).await;
        ok(&command(&mut other, "a SELECT INBOX").await, "a");
        let lines = command(&mut other, "b STORE 3 +FLAGS (\\Answered)").await;
        ok(&lines, "b");
        // Without CONDSTORE enabled there, no MODSEQ in its answer.
        assert!(!has(&lines, "MODSEQ"), "{lines:?}");
        let lines = command(&mut c, "l NOOP").await;
        let third = modseq_of(&lines, 3);
        assert!(third > second, "{lines:?}");
        assert!(has(&lines, "\\Answered"), "{lines:?}");
        // STATUS agrees with the last change.
        let lines = command(&mut other, "c STATUS INBOX (HIGHESTMODSEQ)").await;
        assert!(has(&lines, &format!("HIGHESTMODSEQ {third}")), "{lines:?}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn select_condstore_and_first_use_enable_it() {
    for (ts, mut c) in server_with_three().await {
        // SELECT (CONDSTORE) enables it: STORE answers carry MODSEQ.
        ok(&command(&mut c, "a SELECT INBOX (CONDSTORE)").await, "a");
        let lines = command(&mut c, "b STORE 1 +FLAGS (\\Seen)").await;
        assert!(has(&lines, "MODSEQ ("), "{lines:?}");
        // A fresh session: plain STORE has no MODSEQ until FETCH MODSEQ.
        let mut fresh = login(&ts, ALICE, PASSWORD).await;
        ok(&command(&mut fresh, "a EXAMINE INBOX").await, "a");
        let lines = command(&mut fresh, "b FETCH 1 FLAGS").await;
        assert!(!has(&lines, "MODSEQ"), "{lines:?}");
        let lines = command(&mut fresh, "c FETCH 1 MODSEQ").await;
        assert!(has(&lines, "MODSEQ ("), "{lines:?}");
        let lines = command(&mut fresh, "d FETCH 1 FLAGS").await;
        assert!(has(&lines, "MODSEQ ("), "{lines:?}");
        // Unknown select parameters and modifiers are BAD, not ignored.
        let lines = command(&mut fresh, "e SELECT INBOX (FROBNICATE)").await;
        assert!(last(&lines).starts_with("e BAD"), "{lines:?}");
        ts.stop().await;
    }
}

/// `[NAME n]` from the untagged OK lines of a SELECT.
fn code_value(lines: &[String], name: &str) -> u64 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&format!("* OK [{name} ")))
        .and_then(|rest| rest.split(']').next())
        .map(|n| n.parse().unwrap())
        .unwrap_or_else(|| panic!("no {name} in {lines:?}"))
}

#[tokio::test]
async fn qresync_by_the_rfc_examples() {
    for (ts, mut a) in server_with_three().await {
        let lines = command(&mut a, "a CAPABILITY").await;
        assert!(has(&lines, " QRESYNC"), "{lines:?}");
        // Without ENABLE QRESYNC its forms are refused.
        let lines = command(&mut a, "b SELECT INBOX (QRESYNC (1 1))").await;
        assert!(last(&lines).starts_with("b BAD"), "{lines:?}");
        let lines = command(&mut a, "c ENABLE QRESYNC").await;
        assert!(has(&lines, "* ENABLED QRESYNC"), "{lines:?}");
        let lines = command(&mut a, "d SELECT INBOX").await;
        ok(&lines, "d");
        let validity = code_value(&lines, "UIDVALIDITY");
        let since = code_value(&lines, "HIGHESTMODSEQ");

        // Another session reads message 1 and expunges message 2.
        let mut b = login(&ts, ALICE, PASSWORD).await;
        ok(&command(&mut b, "a SELECT INBOX").await, "a");
        ok(&command(&mut b, "b STORE 1 +FLAGS (\\Seen)").await, "b");
        ok(&command(&mut b, "c STORE 2 +FLAGS (\\Deleted)").await, "c");
        ok(&command(&mut b, "d EXPUNGE").await, "d");

        // The QRESYNC session hears VANISHED, not EXPUNGE (§3.2.10).
        let lines = command(&mut a, "e NOOP").await;
        assert!(has(&lines, "* VANISHED 2"), "{lines:?}");
        assert!(!has(&lines, "EXPUNGE\r"), "{lines:?}");
        assert!(has(&lines, "UID 1 FLAGS (\\Seen"), "{lines:?}");
        assert!(has(&lines, "MODSEQ ("), "{lines:?}");

        // A client coming back with what it knew: only the differences
        // (§3.2.5.2).
        let mut c = login(&ts, ALICE, PASSWORD).await;
        ok(&command(&mut c, "a ENABLE QRESYNC").await, "a");
        let lines = command(
            &mut c,
            &format!("b SELECT INBOX (QRESYNC ({validity} {since} 1:3))"),
        )
        .await;
        ok(&lines, "b");
        assert!(has(&lines, "* VANISHED (EARLIER) 2"), "{lines:?}");
        let fetches: Vec<&String> = lines.iter().filter(|l| l.contains(" FETCH (")).collect();
        assert_eq!(fetches.len(), 1, "{lines:?}");
        assert!(
            fetches[0].starts_with("* 1 FETCH (UID 1 FLAGS (\\Seen")
                && fetches[0].contains("MODSEQ ("),
            "{lines:?}"
        );
        // Known UIDs limit the VANISHED answer.
        let lines = command(
            &mut c,
            &format!("c EXAMINE INBOX (QRESYNC ({validity} {since} 3))"),
        )
        .await;
        assert!(has(&lines, "* OK [CLOSED]"), "{lines:?}");
        assert!(!has(&lines, "VANISHED"), "{lines:?}");
        // Another UIDVALIDITY: the client's cache is void, nothing is sent.
        let lines = command(
            &mut c,
            &format!("d SELECT INBOX (QRESYNC ({} {since}))", validity + 1),
        )
        .await;
        ok(&lines, "d");
        assert!(
            !has(&lines, "VANISHED") && !has(&lines, " FETCH ("),
            "{lines:?}"
        );

        // UID FETCH … (CHANGEDSINCE n VANISHED) (§3.2.6).
        let lines = command(
            &mut c,
            &format!("e UID FETCH 1:* (FLAGS) (CHANGEDSINCE {since} VANISHED)"),
        )
        .await;
        ok(&lines, "e");
        assert!(has(&lines, "* VANISHED (EARLIER) 2"), "{lines:?}");
        let fetches: Vec<&String> = lines.iter().filter(|l| l.contains(" FETCH (")).collect();
        assert_eq!(fetches.len(), 1, "{lines:?}");

        // Its own EXPUNGE answers VANISHED too.
        ok(
            &command(&mut c, "f UID STORE 3 +FLAGS (\\Deleted)").await,
            "f",
        );
        let lines = command(&mut c, "g UID EXPUNGE 3").await;
        ok(&lines, "g");
        assert!(has(&lines, "* VANISHED 3"), "{lines:?}");
        // A session without QRESYNC still gets EXPUNGE.
        let lines = command(&mut b, "e NOOP").await;
        assert!(has(&lines, "* 2 EXPUNGE"), "{lines:?}");
        ts.stop().await;
    }
}
