//! Smaller IMAP extensions over real sockets, on SQLite and PostgreSQL:
//! WITHIN (RFC 5032), CREATE-SPECIAL-USE (RFC 6154 §3), QUOTA (RFC 9208),
//! PREVIEW, UNAUTHENTICATE, SORT/THREAD, SAVEDATE and OBJECTID (RFC 8474).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_directory::AccountUpdate;
use pillarbox_tests::imap::{append, command, has, last, login, ok};
use pillarbox_tests::{LineClient, TestServer, backends};

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "extensions pass";

/// A server with alice logged in over TLS, once her CAPABILITY answer
/// has been checked to name each of `capabilities`.
async fn alice_after_capability(
    backend: pillarbox_tests::Backend,
    capabilities: &[&str],
) -> (TestServer, LineClient) {
    let ts = TestServer::start(backend).await;
    ts.add_account(ALICE, PASSWORD).await;
    let mut c = login(&ts, ALICE, PASSWORD).await;
    let lines = command(&mut c, "a CAPABILITY").await;
    for capability in capabilities {
        assert!(has(&lines, capability), "{capability}: {lines:?}");
    }
    (ts, c)
}

#[tokio::test]
async fn within_searches_by_age() {
    for backend in backends() {
        let (ts, mut c) = alice_after_capability(backend, &[" WITHIN"]).await;
        // One message dated 2001, one arriving now.
        c.send_line("b APPEND INBOX \"17-Jul-2001 02:44:25 +0000\" {16}")
            .await;
        assert!(c.read_line().await.starts_with("+ "));
        c.send(b"Subject: old\r\n\r\n\r\n").await;
        ok(&c.read_until(|l| l.starts_with("b ")).await, "b");
        assert!(
            append(&mut c, "INBOX", "()", "Subject: new\r\n\r\nhi\r\n")
                .await
                .starts_with("ap OK")
        );
        ok(&command(&mut c, "c SELECT INBOX").await, "c");
        let lines = command(&mut c, "d SEARCH YOUNGER 3600").await;
        assert!(has(&lines, "* SEARCH 2\r"), "{lines:?}");
        let lines = command(&mut c, "e SEARCH OLDER 3600").await;
        assert!(has(&lines, "* SEARCH 1\r"), "{lines:?}");
        let lines = command(&mut c, "f SEARCH OLDER 0").await;
        assert!(last(&lines).starts_with("f BAD"), "{lines:?}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn create_with_a_special_use() {
    for backend in backends() {
        let (ts, mut c) = alice_after_capability(backend, &[" CREATE-SPECIAL-USE"]).await;
        // RFC 6154 §5.2's example.
        ok(
            &command(&mut c, "t1 CREATE \"Important Messages\" (USE (\\Flagged))").await,
            "t1",
        );
        let lines = command(&mut c, "t2 LIST \"\" \"Important Messages\"").await;
        assert!(has(&lines, "\\Flagged"), "{lines:?}");
        let lines = command(&mut c, "t3 CREATE \"Other\" (USE (\\Important))").await;
        assert!(last(&lines).starts_with("t3 NO [USEATTR]"), "{lines:?}");
        let lines = command(&mut c, "t4 CREATE \"Both\" (USE (\\Sent \\Trash))").await;
        assert!(last(&lines).starts_with("t4 NO [USEATTR]"), "{lines:?}");
        let lines = command(&mut c, "t5 LIST \"\" %").await;
        assert!(
            !has(&lines, "\"Other\"") && !has(&lines, "\"Both\""),
            "{lines:?}"
        );
        ts.stop().await;
    }
}

#[tokio::test]
async fn quota_reports_the_account_storage() {
    for backend in backends() {
        let (ts, mut c) = alice_after_capability(backend, &[" QUOTA ", "QUOTA=RES-STORAGE"]).await;
        // No quota: no root.
        let lines = command(&mut c, "b GETQUOTAROOT INBOX").await;
        ok(&lines, "b");
        assert!(has(&lines, "* QUOTAROOT \"INBOX\"\r"), "{lines:?}");
        assert!(!has(&lines, "* QUOTA "), "{lines:?}");
        let lines = command(&mut c, "c GETQUOTA \"\"").await;
        assert!(last(&lines).starts_with("c NO [NONEXISTENT]"), "{lines:?}");

        // 1 MiB, set while the session is logged in, with 3000 octets used.
        ts.directory()
            .update_account(
                ALICE,
                &AccountUpdate {
                    quota: Some(Some(1024 * 1024)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let message = format!("Subject: q\r\n\r\n{}\r\n", "x".repeat(2984));
        assert_eq!(message.len(), 3000);
        assert!(
            append(&mut c, "INBOX", "()", &message)
                .await
                .starts_with("ap OK")
        );
        let lines = command(&mut c, "d GETQUOTAROOT INBOX").await;
        ok(&lines, "d");
        assert!(has(&lines, "* QUOTAROOT \"INBOX\" \"\""), "{lines:?}");
        assert!(has(&lines, "* QUOTA \"\" (STORAGE 3 1024)"), "{lines:?}");
        let lines = command(&mut c, "e GETQUOTA \"\"").await;
        assert!(has(&lines, "* QUOTA \"\" (STORAGE 3 1024)"), "{lines:?}");
        let lines = command(&mut c, "f GETQUOTA \"user.alice\"").await;
        assert!(last(&lines).starts_with("f NO [NONEXISTENT]"), "{lines:?}");
        let lines = command(&mut c, "g SETQUOTA \"\" (STORAGE 99999)").await;
        assert!(last(&lines).starts_with("g NO [NOPERM]"), "{lines:?}");
        let lines = command(&mut c, "h GETQUOTAROOT Nowhere").await;
        assert!(last(&lines).starts_with("h NO [NONEXISTENT]"), "{lines:?}");

        // STATUS DELETED-STORAGE: what EXPUNGE would free.
        ok(&command(&mut c, "i SELECT INBOX").await, "i");
        ok(&command(&mut c, "j STORE 1 +FLAGS (\\Deleted)").await, "j");
        let lines = command(&mut c, "k STATUS INBOX (DELETED DELETED-STORAGE)").await;
        assert!(has(&lines, "(DELETED 1 DELETED-STORAGE 3000)"), "{lines:?}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn preview_is_the_start_of_the_text() {
    for backend in backends() {
        let (ts, mut c) = alice_after_capability(backend, &[" PREVIEW"]).await;
        let plain = "Subject: p\r\n\r\nHello,\r\n\r\n   world!\r\n";
        assert!(
            append(&mut c, "INBOX", "()", plain)
                .await
                .starts_with("ap OK")
        );
        let html = "Subject: h\r\nContent-Type: text/html\r\n\r\n<html><body><p>Hi <b>there</b></p></body></html>\r\n";
        assert!(
            append(&mut c, "INBOX", "()", html)
                .await
                .starts_with("ap OK")
        );
        let long = format!("Subject: l\r\n\r\n{}\r\n", "word ".repeat(200));
        assert!(
            append(&mut c, "INBOX", "()", &long)
                .await
                .starts_with("ap OK")
        );
        ok(&command(&mut c, "s EXAMINE INBOX").await, "s");
        // RFC 8970 §3's forms: plain, LAZY, in a list with other items.
        let lines = command(&mut c, "b FETCH 1 (PREVIEW)").await;
        assert!(
            has(&lines, "* 1 FETCH (PREVIEW \"Hello, world!\")"),
            "{lines:?}"
        );
        let lines = command(&mut c, "c FETCH 2 (UID PREVIEW (LAZY) FLAGS)").await;
        ok(&lines, "c");
        let line = lines[0].trim_end();
        assert!(
            line.contains("PREVIEW \"") && line.contains("Hi") && line.contains("there"),
            "{line}"
        );
        assert!(!line.contains('<'), "{line}");
        assert!(line.contains("FLAGS ("), "{line}");
        let lines = command(&mut c, "d FETCH 3 PREVIEW").await;
        let text = lines[0].split('"').nth(1).unwrap();
        assert_eq!(text.chars().count(), 256, "{lines:?}");
        let lines = command(&mut c, "e FETCH 1 (PREVIEW (EAGER))").await;
        assert!(last(&lines).starts_with("e BAD"), "{lines:?}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn unauthenticate_returns_to_the_login_state() {
    for backend in backends() {
        let (ts, mut c) = alice_after_capability(backend, &[" UNAUTHENTICATE"]).await;
        ts.add_account("bob@example.test", PASSWORD).await;
        assert!(
            append(&mut c, "INBOX", "()", "Subject: alice's\r\n\r\nhi\r\n")
                .await
                .starts_with("ap OK")
        );
        ok(&command(&mut c, "b ENABLE CONDSTORE").await, "b");
        ok(&command(&mut c, "c SELECT INBOX").await, "c");
        ok(&command(&mut c, "d UNAUTHENTICATE").await, "d");
        // Not logged in: mailbox commands are refused, the session goes on.
        let lines = command(&mut c, "e SELECT INBOX").await;
        assert!(last(&lines).starts_with("e BAD"), "{lines:?}");
        let lines = command(&mut c, "f FETCH 1 FLAGS").await;
        assert!(last(&lines).starts_with("f BAD"), "{lines:?}");
        ok(&command(&mut c, "g NOOP").await, "g");
        // Another user logs in on the same TLS connection and sees only
        // their own mailbox, with nothing of the last login enabled.
        ok(
            &command(&mut c, &format!("h LOGIN bob@example.test \"{PASSWORD}\"")).await,
            "h",
        );
        let lines = command(&mut c, "i SELECT INBOX").await;
        assert!(has(&lines, "* 0 EXISTS"), "{lines:?}");
        assert!(
            append(&mut c, "INBOX", "()", "Subject: bob's\r\n\r\nhi\r\n")
                .await
                .starts_with("ap OK")
        );
        let lines = command(&mut c, "j FETCH 1 (FLAGS ENVELOPE)").await;
        assert!(has(&lines, "bob's") && !has(&lines, "MODSEQ"), "{lines:?}");
        // Before any login it is refused.
        let mut fresh =
            pillarbox_tests::LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
        fresh.read_line().await;
        let lines = command(&mut fresh, "k UNAUTHENTICATE").await;
        assert!(last(&lines).starts_with("k BAD"), "{lines:?}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn sort_by_the_rfc_5256_and_5957_keys() {
    for backend in backends() {
        let (ts, mut c) = alice_after_capability(backend, &[" SORT ", "SORT=DISPLAY"]).await;
        for (from, day, subject) in [
            ("Zed <carol@x.test>", 3, "Re: banana"),
            ("=?UTF-8?Q?J=C3=BCrgen?= <j@x.test>", 1, "apple"),
            ("alice@x.test", 2, "=?UTF-8?Q?Cherry?="),
            ("Bob <bob@x.test>", 5, "[list] Apple (fwd)"),
            ("dave@x.test", 4, "banana"),
        ] {
            let message = format!(
                "From: {from}\r\nDate: Mon, {day} Jun 2026 10:00:00 +0000\r\nSubject: {subject}\r\n\r\nbody\r\n"
            );
            // Arrival on the same day as the Date header.
            let flags_and_date = format!("() \"0{day}-Jun-2026 10:00:00 +0000\"");
            let answer = append(&mut c, "INBOX", &flags_and_date, &message).await;
            assert!(answer.starts_with("ap OK"), "{answer}");
        }
        ok(&command(&mut c, "s SELECT INBOX").await, "s");
        for (query, expected) in [
            // Base subjects: APPLE (2, 4), BANANA (1, 5), CHERRY (3).
            ("SORT (SUBJECT) UTF-8 ALL", "* SORT 2 4 1 5 3"),
            ("SORT (SUBJECT REVERSE DATE) UTF-8 ALL", "* SORT 4 2 5 1 3"),
            ("SORT (DATE) UTF-8 ALL", "* SORT 2 3 1 5 4"),
            ("SORT (REVERSE DATE) UTF-8 ALL", "* SORT 4 5 1 3 2"),
            ("SORT (REVERSE ARRIVAL) UTF-8 ALL", "* SORT 4 5 1 3 2"),
            // Equal keys keep mailbox order, whichever way the key runs.
            ("SORT (REVERSE CC) UTF-8 ALL", "* SORT 1 2 3 4 5"),
            ("SORT (FROM) UTF-8 ALL", "* SORT 3 4 1 5 2"),
            ("SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 3 4 5 2 1"),
            ("UID SORT (SUBJECT) UTF-8 FROM bob", "* SORT 4"),
            ("SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\"", "* SORT"),
            // ESORT (RFC 5267): MIN/MAX first and last in sort order, ALL
            // the order itself with ascending runs as ranges.
            (
                "SORT RETURN (MIN MAX COUNT) (SUBJECT) UTF-8 ALL",
                "* ESEARCH (TAG \"q\") MIN 2 MAX 3 COUNT 5",
            ),
            (
                "UID SORT RETURN (ALL) (DATE) UTF-8 ALL",
                "* ESEARCH (TAG \"q\") UID ALL 2:3,1,5,4",
            ),
            (
                "SORT RETURN () (SUBJECT) UTF-8 ALL",
                "* ESEARCH (TAG \"q\") ALL 2,4,1,5,3",
            ),
        ] {
            let lines = command(&mut c, &format!("q {query}")).await;
            ok(&lines, "q");
            assert_eq!(lines[0].trim_end(), expected, "{query}: {lines:?}");
        }
        // THREAD ORDEREDSUBJECT: APPLE from day 1, CHERRY from day 2,
        // BANANA from day 3; a single reply follows its parent.
        let lines = command(&mut c, "t THREAD ORDEREDSUBJECT UTF-8 ALL").await;
        ok(&lines, "t");
        assert_eq!(lines[0].trim_end(), "* THREAD (2 4)(3)(1 5)", "{lines:?}");
        let lines = command(&mut c, "u UID THREAD ORDEREDSUBJECT UTF-8 SUBJECT banana").await;
        assert_eq!(lines[0].trim_end(), "* THREAD (1 5)", "{lines:?}");
        let lines = command(&mut c, "v THREAD FORWARDS UTF-8 ALL").await;
        assert!(last(&lines).starts_with("v BAD"), "{lines:?}");
        let lines = command(&mut c, "w SORT RETURN (SAVE) (SUBJECT) UTF-8 ALL").await;
        assert!(last(&lines).starts_with("w BAD"), "{lines:?}");
        let lines = command(&mut c, "x SORT (SUBJECT) KOI8-R ALL").await;
        assert!(last(&lines).starts_with("x NO [BADCHARSET"), "{lines:?}");
        let lines = command(&mut c, "y SORT (COLOUR) UTF-8 ALL").await;
        assert!(last(&lines).starts_with("y BAD"), "{lines:?}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn thread_siblings_are_nested_lists() {
    let ts = TestServer::start(pillarbox_tests::Backend::Sqlite).await;
    ts.add_account(ALICE, PASSWORD).await;
    let mut c = login(&ts, ALICE, PASSWORD).await;
    for (day, subject) in [(1, "x"), (3, "Fwd: x"), (2, "Re: x"), (4, "other")] {
        let message =
            format!("Date: Mon, {day} Jun 2026 10:00:00 +0000\r\nSubject: {subject}\r\n\r\nb\r\n");
        assert!(
            append(&mut c, "INBOX", "()", &message)
                .await
                .starts_with("ap OK")
        );
    }
    ok(&command(&mut c, "s SELECT INBOX").await, "s");
    let lines = command(&mut c, "t THREAD ORDEREDSUBJECT UTF-8 ALL").await;
    assert_eq!(lines[0].trim_end(), "* THREAD (1 (3)(2))(4)", "{lines:?}");
    let lines = command(&mut c, "u THREAD ORDEREDSUBJECT UTF-8 SUBJECT nothing").await;
    assert_eq!(lines[0].trim_end(), "* THREAD", "{lines:?}");
    ts.stop().await;
}

#[tokio::test]
async fn thread_references_follows_the_headers() {
    for backend in backends() {
        let (ts, mut c) = alice_after_capability(backend, &["THREAD=REFERENCES"]).await;
        // 1 starts; 2 answers 1 (In-Reply-To only); 3 answers 2 (References,
        // folded); 4 answers 1; 5 is alone; 6 answers a message not here;
        // 7 has 5's subject with Re: and no headers linking it.
        for (day, headers) in [
            (1, "Message-ID: <a@x>\r\nSubject: Lunch"),
            (
                2,
                "Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nSubject: Re: Lunch",
            ),
            (
                3,
                "Message-ID: <c@x>\r\nReferences: <a@x>\r\n <b@x>\r\nSubject: Re: Lunch",
            ),
            (
                4,
                "Message-ID: <d@x>\r\nReferences: <a@x>\r\nSubject: Re: Lunch",
            ),
            (5, "Message-ID: <e@x>\r\nSubject: Report"),
            (
                6,
                "Message-ID: <f@x>\r\nReferences: <gone@x>\r\nSubject: Re: Old",
            ),
            (7, "Message-ID: <g@x>\r\nSubject: Re: Report"),
        ] {
            let message = format!(
                "{headers}\r\nFrom: b@x.test\r\nDate: Mon, {day} Jun 2026 10:00:00 +0000\r\n\r\nbody\r\n"
            );
            let answer = append(&mut c, "INBOX", "()", &message).await;
            assert!(answer.starts_with("ap OK"), "{answer}");
        }
        ok(&command(&mut c, "s SELECT INBOX").await, "s");
        let lines = command(&mut c, "t THREAD REFERENCES UTF-8 ALL").await;
        ok(&lines, "t");
        assert_eq!(
            lines[0].trim_end(),
            "* THREAD (1 (2 3)(4))(5 7)(6)",
            "{lines:?}"
        );
        let lines = command(&mut c, "u UID THREAD REFERENCES UTF-8 NOT SUBJECT report").await;
        assert_eq!(lines[0].trim_end(), "* THREAD (1 (2 3)(4))(6)", "{lines:?}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn savedate_is_when_a_message_reached_the_mailbox() {
    for backend in backends() {
        let (ts, mut c) = alice_after_capability(backend, &[" SAVEDATE"]).await;
        // One message dated 2001 by its APPEND, one arriving now.
        let old = append(
            &mut c,
            "INBOX",
            "() \"17-Jul-2001 02:44:25 +0000\"",
            "Subject: old\r\n\r\nx\r\n",
        )
        .await;
        assert!(old.starts_with("ap OK"), "{old}");
        assert!(
            append(&mut c, "INBOX", "()", "Subject: new\r\n\r\ny\r\n")
                .await
                .starts_with("ap OK")
        );
        ok(&command(&mut c, "s SELECT INBOX").await, "s");
        let lines = command(&mut c, "b FETCH 1:2 (INTERNALDATE SAVEDATE)").await;
        ok(&lines, "b");
        // "17-Jul-2001 02:44:25 +0000" → the day part, "17-Jul-2001".
        let day_of = |line: &str, item: &str| -> String {
            let rest = line.split_once(&format!("{item} \"")).unwrap().1;
            rest.split(' ').next().unwrap().to_string()
        };
        let today = day_of(&lines[1], "INTERNALDATE");
        assert_eq!(day_of(&lines[0], "INTERNALDATE"), "17-Jul-2001");
        // Saved today, both: the internal date of the first is the client's.
        assert_eq!(day_of(&lines[0], "SAVEDATE"), today, "{lines:?}");
        assert_eq!(day_of(&lines[1], "SAVEDATE"), today, "{lines:?}");
        for (query, expected) in [
            ("SEARCH SAVEDATESUPPORTED", "* SEARCH 1 2"),
            (&format!("SEARCH SAVEDON {today}") as &str, "* SEARCH 1 2"),
            ("SEARCH SAVEDBEFORE 1-Jan-2002", "* SEARCH"),
            ("SEARCH BEFORE 1-Jan-2002", "* SEARCH 1"),
        ] {
            let lines = command(&mut c, &format!("q {query}")).await;
            ok(&lines, "q");
            assert_eq!(lines[0].trim_end(), expected, "{query}: {lines:?}");
        }
        // A copy is saved anew; the original keeps its save date.
        ok(&command(&mut c, "c CREATE Keep").await, "c");
        ok(&command(&mut c, "d COPY 1 Keep").await, "d");
        ok(&command(&mut c, "e SELECT Keep").await, "e");
        let lines = command(&mut c, "f FETCH 1 (INTERNALDATE SAVEDATE)").await;
        assert_eq!(day_of(&lines[0], "INTERNALDATE"), "17-Jul-2001");
        assert_eq!(day_of(&lines[0], "SAVEDATE"), today, "{lines:?}");
        ts.stop().await;
    }
}

/// The id between the parentheses after `word` in the first line holding it.
fn object_id(lines: &[String], word: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l.contains(word))
        .unwrap_or_else(|| panic!("no {word} in {lines:?}"));
    let start = line.find(word).unwrap() + word.len() + 2;
    let end = start + line[start..].find(')').unwrap();
    line[start..end].to_string()
}

#[tokio::test]
async fn objectid_names_mailboxes_and_messages_for_good() {
    for backend in backends() {
        let (ts, mut c) = alice_after_capability(backend, &[" OBJECTID"]).await;
        // RFC 8474 §4.1: CREATE says the new mailbox's id; RENAME keeps it;
        // a mailbox made again under an old name gets a new one.
        let created = command(&mut c, "b CREATE foo").await;
        ok(&created, "b");
        let foo = object_id(&created, "MAILBOXID");
        assert!(foo.bytes().all(|b| b.is_ascii_alphanumeric()), "{foo}");
        ok(&command(&mut c, "c RENAME foo bar").await, "c");
        let lines = command(&mut c, "d STATUS bar (MAILBOXID)").await;
        assert_eq!(object_id(&lines, "MAILBOXID"), foo);
        ok(&command(&mut c, "e DELETE bar").await, "e");
        let again = command(&mut c, "f CREATE bar").await;
        assert_ne!(object_id(&again, "MAILBOXID"), foo);
        let lines = command(&mut c, "g LIST \"\" INBOX RETURN (STATUS (MAILBOXID))").await;
        let inbox = object_id(&lines, "MAILBOXID");
        assert_ne!(inbox, foo);

        // RFC 8474 §5: EMAILID per message, kept by COPY and MOVE; THREADID
        // NIL (threads are not kept per message).
        for subject in ["one", "two"] {
            let message = format!("Subject: {subject}\r\n\r\nbody\r\n");
            assert!(
                append(&mut c, "INBOX", "()", &message)
                    .await
                    .starts_with("ap OK")
            );
        }
        let lines = command(&mut c, "h SELECT INBOX").await;
        assert_eq!(object_id(&lines, "MAILBOXID"), inbox);
        let lines = command(&mut c, "i FETCH 1:2 (EMAILID THREADID)").await;
        let first = object_id(&lines[..1], "EMAILID");
        let second = object_id(&lines[1..], "EMAILID");
        assert_ne!(first, second);
        assert!(has(&lines, "THREADID NIL"), "{lines:?}");
        let lines = command(&mut c, &format!("j SEARCH EMAILID {second}")).await;
        assert!(has(&lines, "* SEARCH 2\r"), "{lines:?}");
        let lines = command(&mut c, "k SEARCH THREADID T1").await;
        assert!(has(&lines, "* SEARCH\r"), "{lines:?}");
        ok(&command(&mut c, "l COPY 1 bar").await, "l");
        ok(&command(&mut c, "m MOVE 2 bar").await, "m");
        ok(&command(&mut c, "n SELECT bar").await, "n");
        let lines = command(&mut c, "o FETCH 1:2 (EMAILID)").await;
        assert_eq!(object_id(&lines[..1], "EMAILID"), first);
        assert_eq!(object_id(&lines[1..], "EMAILID"), second);
        ts.stop().await;
    }
}
