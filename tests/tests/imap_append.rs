//! APPEND beyond one message over real sockets, on SQLite and PostgreSQL:
//! MULTIAPPEND (RFC 3502, all or nothing) and UTF8=ACCEPT (RFC 6855: UTF-8
//! mailbox names, APPEND's UTF8 data item, no conflicting CHARSET).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_directory::AccountUpdate;
use pillarbox_tests::imap::{command, has, last, login, ok};
use pillarbox_tests::{LineClient, TestServer, backends};

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "append pass";

async fn status_messages(c: &mut LineClient, mailbox: &str) -> String {
    let lines = command(c, &format!("s STATUS {mailbox} (MESSAGES)")).await;
    ok(&lines, "s");
    lines[0].trim_end().to_string()
}

/// Sends an APPEND of `messages` (flags and date text, message), each a
/// synchronizing literal answered by `+`; returns the tagged answer.
async fn multiappend(
    c: &mut LineClient,
    tag: &str,
    mailbox: &str,
    messages: &[(&str, &str)],
) -> String {
    let mut line = format!("{tag} APPEND {mailbox}");
    for (i, (attributes, message)) in messages.iter().enumerate() {
        if !attributes.is_empty() {
            line.push(' ');
            line.push_str(attributes);
        }
        line.push_str(&format!(" {{{}}}", message.len()));
        c.send_line(&line).await;
        let go = c.read_line().await;
        if !go.starts_with("+ ") {
            return go;
        }
        c.send(message.as_bytes()).await;
        line = String::new();
        if i + 1 == messages.len() {
            c.send(b"\r\n").await;
        }
    }
    let lines = c.read_until(|l| l.starts_with(&format!("{tag} "))).await;
    last(&lines).to_string()
}

#[tokio::test]
async fn multiappend_stores_every_message_or_none() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut c = login(&ts, ALICE, PASSWORD).await;
        let lines = command(&mut c, "a CAPABILITY").await;
        assert!(has(&lines, " MULTIAPPEND"), "{lines:?}");

        // RFC 3502 §6.3.11's example: two messages, the second with a date.
        let first = "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nSubject: afternoon meeting\r\n\r\nHello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
        let second = "Date: Mon, 7 Feb 1994 22:43:04 -0800\r\nSubject: afternoon meeting 2\r\n\r\nHello Joe, never mind about the meeting.\r\n";
        let answer = multiappend(
            &mut c,
            "b",
            "INBOX",
            &[
                ("(\\Seen)", first),
                ("(\\Seen) \"7-Feb-1994 22:43:04 -0800\"", second),
            ],
        )
        .await;
        assert!(answer.starts_with("b OK [APPENDUID "), "{answer}");
        assert!(answer.contains(" 1:2] "), "{answer}");
        ok(&command(&mut c, "c SELECT INBOX").await, "c");
        let lines = command(&mut c, "d FETCH 1:2 (FLAGS INTERNALDATE RFC822.SIZE)").await;
        assert!(
            has(&lines, &format!("RFC822.SIZE {}", first.len())),
            "{lines:?}"
        );
        assert!(has(&lines, "\"08-Feb-1994 06:43:04 +0000\""), "{lines:?}");
        assert_eq!(
            lines.iter().filter(|l| l.contains("\\Seen")).count(),
            2,
            "{lines:?}"
        );

        // LITERAL+: three messages in one go.
        c.send(b"e APPEND INBOX {10+}\r\nSubject:\r\n () {10+}\r\nSubject:\r\n {10+}\r\nSubject:\r\n\r\n")
            .await;
        let lines = c.read_until(|l| l.starts_with("e ")).await;
        assert!(last(&lines).contains(" 3:5] "), "{lines:?}");

        // An empty message among them: nothing is stored.
        let answer = multiappend(
            &mut c,
            "f",
            "INBOX",
            &[("", "Subject: ok\r\n\r\nx\r\n"), ("", "")],
        )
        .await;
        assert!(
            answer.starts_with("f NO [CANNOT] Message 2 of 2"),
            "{answer}"
        );
        assert_eq!(
            status_messages(&mut c, "INBOX").await,
            "* STATUS \"INBOX\" (MESSAGES 5)"
        );

        // Over quota with the second message: neither is stored.
        let used: u64 = (first.len() + second.len() + 3 * 10) as u64;
        ts.directory()
            .update_account(
                ALICE,
                &AccountUpdate {
                    quota: Some(Some(used + 1500)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let kilobyte = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(1000));
        let answer = multiappend(&mut c, "g", "INBOX", &[("", &kilobyte), ("", &kilobyte)]).await;
        assert!(answer.starts_with("g NO [OVERQUOTA]"), "{answer}");
        assert_eq!(
            status_messages(&mut c, "INBOX").await,
            "* STATUS \"INBOX\" (MESSAGES 5)"
        );
        // One of them still fits.
        let answer = multiappend(&mut c, "h", "INBOX", &[("", &kilobyte)]).await;
        assert!(answer.starts_with("h OK [APPENDUID "), "{answer}");

        // A mailbox that does not exist: TRYCREATE, nothing stored.
        let answer = multiappend(
            &mut c,
            "i",
            "Nowhere",
            &[
                ("", "Subject: a\r\n\r\n\r\n"),
                ("", "Subject: b\r\n\r\n\r\n"),
            ],
        )
        .await;
        assert!(answer.starts_with("i NO [TRYCREATE]"), "{answer}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn utf8_accept_speaks_utf8_names_and_messages() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut c = login(&ts, ALICE, PASSWORD).await;
        let lines = command(&mut c, "a CAPABILITY").await;
        assert!(has(&lines, " UTF8=ACCEPT"), "{lines:?}");

        // A UTF-8 message (RFC 6532 header) in APPEND's UTF8 data item:
        // refused until the client enables UTF8=ACCEPT.
        let message =
            "From: Jürgen <jürgen@example.test>\r\nSubject: Grüße aus Köln\r\n\r\nHallo!\r\n";
        let append_utf8 = format!("b APPEND INBOX UTF8 (~{{{}+}}\r\n{message})", message.len());
        let lines = command(&mut c, &append_utf8).await;
        assert!(last(&lines).starts_with("b BAD"), "{lines:?}");
        let lines = command(&mut c, "c ENABLE UTF8=ACCEPT").await;
        assert!(has(&lines, "* ENABLED UTF8=ACCEPT"), "{lines:?}");
        ok(&lines, "c");
        let lines = command(&mut c, &append_utf8.replacen("b ", "d ", 1)).await;
        assert!(last(&lines).starts_with("d OK [APPENDUID "), "{lines:?}");

        // Mailbox names are UTF-8 both ways now.
        ok(&command(&mut c, "e CREATE \"Grüße\"").await, "e");
        let lines = command(&mut c, "f LIST \"\" \"Gr*\"").await;
        assert!(has(&lines, "\"Grüße\""), "{lines:?}");
        assert!(!has(&lines, "&"), "{lines:?}");
        let lines = command(&mut c, "g STATUS \"Grüße\" (MESSAGES)").await;
        assert!(has(&lines, "* STATUS \"Grüße\" (MESSAGES 0)"), "{lines:?}");

        // SEARCH takes UTF-8 strings and no CHARSET; SORT only UTF-8.
        ok(&command(&mut c, "h SELECT INBOX").await, "h");
        let lines = command(&mut c, "i SEARCH SUBJECT \"grüße\"").await;
        assert!(has(&lines, "* SEARCH 1\r"), "{lines:?}");
        let lines = command(&mut c, "j SEARCH CHARSET UTF-8 SUBJECT x").await;
        assert!(last(&lines).starts_with("j BAD"), "{lines:?}");
        let lines = command(&mut c, "k SORT (SUBJECT) US-ASCII ALL").await;
        assert!(last(&lines).starts_with("k BAD"), "{lines:?}");
        ok(&command(&mut c, "l SORT (SUBJECT) UTF-8 ALL").await, "l");
        let lines = command(&mut c, "m FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]").await;
        assert!(has(&lines, "Subject: Grüße aus Köln"), "{lines:?}");

        // A session that did not enable it sees modified UTF-7 names, and
        // its CHARSET still works.
        let mut other = login(&ts, ALICE, PASSWORD).await;
        let lines = command(&mut other, "a LIST \"\" \"Gr*\"").await;
        assert!(has(&lines, "Gr&APwA3w-e"), "{lines:?}");
        ok(&command(&mut other, "b SELECT INBOX").await, "b");
        let lines = command(&mut other, "c SEARCH CHARSET UTF-8 SUBJECT {5+}\r\nKöln").await;
        assert!(has(&lines, "* SEARCH 1\r"), "{lines:?}");

        // UNAUTHENTICATE turns it off again.
        ok(&command(&mut c, "n UNAUTHENTICATE").await, "n");
        ok(
            &command(&mut c, &format!("o LOGIN {ALICE} \"{PASSWORD}\"")).await,
            "o",
        );
        let lines = command(&mut c, "p LIST \"\" \"Gr*\"").await;
        assert!(has(&lines, "Gr&APwA3w-e"), "{lines:?}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn catenate_builds_a_message_from_stored_parts() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut c = login(&ts, ALICE, PASSWORD).await;
        let lines = command(&mut c, "a CAPABILITY").await;
        assert!(has(&lines, " CATENATE"), "{lines:?}");
        let draft = "From: alice@example.test\r\nSubject: report\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee the figures.\r\n--b1\r\nContent-Type: text/csv\r\n\r\nq1,q2\r\n1,2\r\n--b1--\r\n";
        assert!(
            multiappend(&mut c, "b", "Drafts", &[("", draft)])
                .await
                .starts_with("b OK")
        );
        let lines = command(&mut c, "c STATUS Drafts (UIDVALIDITY)").await;
        let validity: u32 = lines[0]
            .split("UIDVALIDITY ")
            .nth(1)
            .and_then(|v| v.trim_end().trim_end_matches(')').parse().ok())
            .unwrap();

        // The header and the text again: the same message, byte for byte.
        let lines = command(
            &mut c,
            &format!(
                "d APPEND Drafts (\\Draft) CATENATE (URL \"/Drafts;UIDVALIDITY={validity}/;UID=1/;SECTION=HEADER\" URL \"imap://alice@localhost/Drafts/;UID=1/;SECTION=TEXT\")"
            ),
        )
        .await;
        assert!(last(&lines).starts_with("d OK [APPENDUID "), "{lines:?}");
        // RFC 4469 §5's way: a new header, text of one's own, a stored
        // part with its MIME header, and a PARTIAL.
        let header = "From: alice@example.test\r\nSubject: forwarded figures\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b2\"\r\n\r\n--b2\r\n";
        let lines = command(
            &mut c,
            &format!(
                "e APPEND Drafts CATENATE (TEXT {{{}+}}\r\n{header} URL \"/Drafts/;UID=1/;SECTION=2.MIME\" URL \"/Drafts/;UID=1/;SECTION=2\" TEXT {{10+}}\r\n\r\n--b2--\r\n URL \"/Drafts/;UID=1/;SECTION=1/;PARTIAL=0.3\")",
                header.len()
            ),
        )
        .await;
        assert!(last(&lines).starts_with("e OK"), "{lines:?}");

        ok(&command(&mut c, "f SELECT Drafts").await, "f");
        let lines = command(&mut c, "g FETCH 2 BODY.PEEK[]").await;
        assert_eq!(lines[1..lines.len() - 2].concat(), draft, "{lines:?}");
        let lines = command(&mut c, "h FETCH 3 (BODY.PEEK[] BODY.PEEK[1])").await;
        let whole = lines.concat();
        assert!(
            whole.contains("Content-Type: text/csv\r\n\r\nq1,q2\r\n1,2\r\n--b2--\r\nSee"),
            "{lines:?}"
        );
        assert!(has(&lines, "BODY[1] {10}"), "{lines:?}");

        // A URL naming nothing stored: NO [BADURL], nothing appended.
        for (tag, url) in [
            ("i", "/Drafts/;UID=99".to_string()),
            ("j", format!("/Drafts;UIDVALIDITY={}/;UID=1", validity + 1)),
            ("k", "/Nowhere/;UID=1".to_string()),
            ("l", "/Drafts/;UID=1/;SECTION=9".to_string()),
            ("m", "not a url".to_string()),
        ] {
            let lines = command(
                &mut c,
                &format!("{tag} APPEND Drafts CATENATE (TEXT {{4+}}\r\nhi\r\n URL \"{url}\")"),
            )
            .await;
            assert!(
                last(&lines).starts_with(&format!("{tag} NO [BADURL ")),
                "{lines:?}"
            );
        }
        assert_eq!(
            status_messages(&mut c, "Drafts").await,
            "* STATUS \"Drafts\" (MESSAGES 3)"
        );
        ts.stop().await;
    }
}
