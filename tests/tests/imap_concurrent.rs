//! Several IMAP sessions on one mailbox, on SQLite and PostgreSQL: \Recent
//! belongs to one session, a new keyword is announced before it is shown,
//! and a FETCH racing another session's EXPUNGE is never a server error.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_tests::imap::{append, command, has, last, login, untagged_number};
use pillarbox_tests::{TestServer, backends};

const PASSWORD: &str = "imap pass";
const ALICE: &str = "alice@example.test";

fn message(n: u32) -> String {
    format!(
        "From: ann@remote.test\r\nTo: {ALICE}\r\nSubject: note {n}\r\nMessage-ID: <note{n}@remote.test>\r\n\r\nBody of note {n}.\r\n"
    )
}

/// RFC 3501 §2.3.2: a message is recent in exactly one session, the first
/// to learn of it; EXAMINE shows recent messages without taking them.
#[tokio::test]
async fn recent_is_given_to_exactly_one_session() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut loader = login(&ts, ALICE, PASSWORD).await;
        for n in 1..=2 {
            assert!(
                append(&mut loader, "INBOX", "()", &message(n))
                    .await
                    .starts_with("ap OK")
            );
        }
        // Nobody has selected INBOX yet: both messages are recent for STATUS.
        let lines = command(&mut loader, "s STATUS INBOX (RECENT)").await;
        assert!(has(&lines, "(RECENT 2)"), "{lines:?}");

        // EXAMINE sees them as recent and leaves them recent.
        let mut reader = login(&ts, ALICE, PASSWORD).await;
        let lines = command(&mut reader, "e EXAMINE INBOX").await;
        assert_eq!(untagged_number(&lines, "RECENT"), Some(2), "{lines:?}");
        let lines = command(&mut reader, "e FETCH 1 FLAGS").await;
        assert!(has(&lines, "\\Recent"), "{lines:?}");

        // The first SELECT takes them; a second SELECT gets none.
        let mut a = login(&ts, ALICE, PASSWORD).await;
        let mut b = login(&ts, ALICE, PASSWORD).await;
        let lines = command(&mut a, "a SELECT INBOX").await;
        assert_eq!(untagged_number(&lines, "RECENT"), Some(2), "{lines:?}");
        let lines = command(&mut a, "a FETCH 1:2 FLAGS").await;
        assert_eq!(
            lines.iter().filter(|l| l.contains("\\Recent")).count(),
            2,
            "{lines:?}"
        );
        let lines = command(&mut b, "b SELECT INBOX").await;
        assert_eq!(untagged_number(&lines, "RECENT"), Some(0), "{lines:?}");
        let lines = command(&mut b, "b FETCH 1:2 FLAGS").await;
        assert!(!has(&lines, "\\Recent"), "{lines:?}");
        let lines = command(&mut b, "b SEARCH RECENT").await;
        assert_eq!(lines[0], "* SEARCH\r\n", "{lines:?}");
        let lines = command(&mut a, "a SEARCH RECENT").await;
        assert_eq!(lines[0], "* SEARCH 1 2\r\n", "{lines:?}");
        let lines = command(&mut loader, "s STATUS INBOX (RECENT)").await;
        assert!(has(&lines, "(RECENT 0)"), "taken by a SELECT: {lines:?}");

        // A new message while both are selected: recent in one of them only.
        assert!(
            append(&mut loader, "INBOX", "()", &message(3))
                .await
                .starts_with("ap OK")
        );
        let lines_a = command(&mut a, "a NOOP").await;
        let lines_b = command(&mut b, "b NOOP").await;
        assert!(has(&lines_a, "* 3 EXISTS") && has(&lines_b, "* 3 EXISTS"));
        let fetch_a = command(&mut a, "a FETCH 3 FLAGS").await;
        let fetch_b = command(&mut b, "b FETCH 3 FLAGS").await;
        let recent_in = [&fetch_a, &fetch_b]
            .iter()
            .filter(|lines| has(lines, "\\Recent"))
            .count();
        assert_eq!(recent_in, 1, "a: {fetch_a:?} b: {fetch_b:?}");
        // RECENT counts every message recent in the session: A had 2, so
        // A then has 3 and B 0, or A 2 and B 1.
        let counts = (
            untagged_number(&lines_a, "RECENT"),
            untagged_number(&lines_b, "RECENT"),
        );
        assert!(
            counts == (Some(3), Some(0)) || counts == (Some(2), Some(1)),
            "a: {lines_a:?} b: {lines_b:?}"
        );
        ts.stop().await;
    }
}

/// RFC 9051 §7.3.5 (RFC 3501 §7.2.6): a keyword new to the mailbox comes in
/// an untagged FLAGS (and PERMANENTFLAGS) before any FETCH that shows it, in
/// the session that set it and in every other session.
#[tokio::test]
async fn a_new_keyword_is_announced_before_it_is_shown() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut a = login(&ts, ALICE, PASSWORD).await;
        let mut b = login(&ts, ALICE, PASSWORD).await;
        append(&mut a, "INBOX", "()", &message(1)).await;
        let lines = command(&mut a, "a SELECT INBOX").await;
        assert!(!has(&lines, "$Label1"), "{lines:?}");
        command(&mut b, "b SELECT INBOX").await;

        let lines = command(&mut a, "a STORE 1 +FLAGS ($Label1)").await;
        let flags = lines
            .iter()
            .position(|l| l.starts_with("* FLAGS (") && l.contains("$Label1"));
        let permanent = lines
            .iter()
            .position(|l| l.starts_with("* OK [PERMANENTFLAGS (") && l.contains("$Label1"));
        let fetch = lines
            .iter()
            .position(|l| l.contains("FETCH (FLAGS ($Label1"));
        assert!(
            flags.is_some() && permanent.is_some() && fetch.is_some(),
            "{lines:?}"
        );
        assert!(flags < fetch && permanent < fetch, "FLAGS first: {lines:?}");

        let lines = command(&mut b, "b NOOP").await;
        let flags = lines
            .iter()
            .position(|l| l.starts_with("* FLAGS (") && l.contains("$Label1"));
        let fetch = lines.iter().position(|l| l.contains("FLAGS ($Label1"));
        assert!(flags.is_some() && fetch.is_some(), "{lines:?}");
        assert!(flags < fetch, "FLAGS first: {lines:?}");
        // Announced once: the next change of that keyword needs no FLAGS.
        command(&mut a, "a STORE 1 -FLAGS.SILENT ($Label1)").await;
        let lines = command(&mut b, "b NOOP").await;
        assert!(!has(&lines, "* FLAGS"), "{lines:?}");

        // A message APPENDed elsewhere with a new keyword: announced before
        // the FETCH that shows it.
        append(&mut a, "INBOX", "($Project)", &message(2)).await;
        command(&mut b, "b NOOP").await;
        let lines = command(&mut b, "b FETCH 2 FLAGS").await;
        let flags = lines
            .iter()
            .position(|l| l.starts_with("* FLAGS (") && l.contains("$Project"));
        let fetch = lines
            .iter()
            .position(|l| l.contains("FETCH (FLAGS ($Project"));
        assert!(
            flags.is_some() && fetch.is_some() && flags < fetch,
            "{lines:?}"
        );
        ts.stop().await;
    }
}

/// A session still numbering a message another session expunged gets the
/// data of the others and NO [EXPUNGEISSUED] (RFC 2180 §4.1.2, RFC 5530),
/// never a server error; the EXPUNGE is reported at its next NOOP.
#[tokio::test]
async fn fetch_of_a_message_expunged_elsewhere_is_never_a_server_error() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut a = login(&ts, ALICE, PASSWORD).await;
        let mut b = login(&ts, ALICE, PASSWORD).await;
        for n in 1..=3 {
            append(&mut a, "INBOX", "()", &message(n)).await;
        }
        command(&mut a, "a SELECT INBOX").await;
        command(&mut b, "b SELECT INBOX").await;
        command(&mut b, "b STORE 2 +FLAGS.SILENT (\\Deleted)").await;
        let lines = command(&mut b, "b EXPUNGE").await;
        assert!(has(&lines, "* 2 EXPUNGE"), "{lines:?}");

        let lines = command(&mut a, "a FETCH 1:3 (UID BODY.PEEK[] ENVELOPE)").await;
        assert!(
            !has(&lines, "SERVERBUG") && !has(&lines, "UNAVAILABLE"),
            "{lines:?}"
        );
        assert!(
            has(&lines, "Body of note 1.") && has(&lines, "Body of note 3."),
            "{lines:?}"
        );
        assert!(!has(&lines, "Body of note 2."), "{lines:?}");
        assert!(
            last(&lines).starts_with("a NO [EXPUNGEISSUED]"),
            "{lines:?}"
        );
        // The others answer as usual; the expunged one again says why.
        let lines = command(&mut a, "a2 FETCH 1 (UID FLAGS)").await;
        assert!(
            has(&lines, "* 1 FETCH (UID 1 FLAGS (") && last(&lines).starts_with("a2 OK"),
            "{lines:?}"
        );
        let lines = command(&mut a, "a3 FETCH 2 (UID FLAGS)").await;
        assert!(
            last(&lines).starts_with("a3 NO [EXPUNGEISSUED]"),
            "{lines:?}"
        );
        let lines = command(&mut a, "a NOOP").await;
        assert!(has(&lines, "* 2 EXPUNGE"), "{lines:?}");
        ts.stop().await;
    }
}
