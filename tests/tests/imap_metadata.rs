//! IMAP METADATA and METADATA-SERVER (RFC 5464) over real sockets, on
//! SQLite and PostgreSQL, from the RFC's examples: entries on a mailbox and
//! on the server, DEPTH, MAXSIZE, removal with NIL, and the bounds.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_tests::imap::{command, has, last, login, ok};
use pillarbox_tests::{LineClient, TestServer, backends};

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "metadata pass";

/// The untagged METADATA lines of an answer, joined.
fn metadata(lines: &[String]) -> String {
    let start = lines.iter().position(|l| l.starts_with("* METADATA"));
    match start {
        Some(i) => lines[i..lines.len() - 1].concat(),
        None => String::new(),
    }
}

async fn alice(ts: &TestServer) -> LineClient {
    login(ts, ALICE, PASSWORD).await
}

#[tokio::test]
async fn metadata_on_mailboxes_and_the_server() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut c = alice(&ts).await;
        let lines = command(&mut c, "a CAPABILITY").await;
        assert!(
            has(&lines, " METADATA ") && has(&lines, " METADATA-SERVER"),
            "{lines:?}"
        );

        // RFC 5464 §4.3's example, then §4.2's.
        let comment = "My new comment across\r\ntwo lines.";
        let lines = command(
            &mut c,
            &format!(
                "b SETMETADATA INBOX (/private/comment {{{}+}}\r\n{comment})",
                comment.len()
            ),
        )
        .await;
        ok(&lines, "b");
        let lines = command(&mut c, "c GETMETADATA \"INBOX\" /private/comment").await;
        ok(&lines, "c");
        assert_eq!(
            metadata(&lines),
            format!(
                "* METADATA \"INBOX\" (\"/private/comment\" {{{}}}\r\n{comment})\r\n",
                comment.len()
            )
        );
        // Names are compared without case; one not set is NIL.
        let lines = command(
            &mut c,
            "d GETMETADATA INBOX (/shared/comment /PRIVATE/Comment)",
        )
        .await;
        assert!(
            metadata(&lines).starts_with("* METADATA \"INBOX\" (\"/private/comment\" {"),
            "{lines:?}"
        );
        assert!(
            metadata(&lines).ends_with(" \"/shared/comment\" NIL)\r\n"),
            "{lines:?}"
        );

        // DEPTH (§4.2.2).
        ok(
            &command(
                &mut c,
                "e SETMETADATA INBOX (/private/filters/values/small \"1\" /private/filters/values/big \"2\" /private/filters/values/big/x \"3\")",
            )
            .await,
            "e",
        );
        let lines = command(
            &mut c,
            "f GETMETADATA (DEPTH 1) INBOX (/private/filters/values)",
        )
        .await;
        assert_eq!(
            metadata(&lines),
            "* METADATA \"INBOX\" (\"/private/filters/values/big\" \"2\" \"/private/filters/values/small\" \"1\")\r\n"
        );
        let lines = command(
            &mut c,
            "g GETMETADATA (DEPTH infinity) INBOX /private/filters",
        )
        .await;
        assert!(
            has(&lines, "\"/private/filters/values/big/x\" \"3\""),
            "{lines:?}"
        );

        // MAXSIZE (§4.2.1): the longer value is left out and its size said.
        let long = "x".repeat(2199);
        ok(
            &command(
                &mut c,
                &format!("h SETMETADATA INBOX (/shared/comment \"{long}\")"),
            )
            .await,
            "h",
        );
        let lines = command(
            &mut c,
            "i GETMETADATA (MAXSIZE 1024) INBOX (/shared/comment /private/filters/values/small)",
        )
        .await;
        assert!(
            last(&lines).starts_with("i OK [METADATA LONGENTRIES 2199]"),
            "{lines:?}"
        );
        assert!(!has(&lines, "xxxx") && has(&lines, "\"1\""), "{lines:?}");

        // NIL removes; a value may hold any octet (literal8).
        ok(
            &command(
                &mut c,
                "j SETMETADATA INBOX (/private/comment NIL /private/bin ~{3+}\r\na\0b)",
            )
            .await,
            "j",
        );
        let lines = command(
            &mut c,
            "k GETMETADATA INBOX (/private/comment /private/bin)",
        )
        .await;
        assert!(has(&lines, "\"/private/bin\" ~{3}\r"), "{lines:?}");
        assert!(has(&lines, "\"/private/comment\" NIL"), "{lines:?}");

        // The server: /private is the account's own, /shared is refused.
        ok(
            &command(
                &mut c,
                "l SETMETADATA \"\" (/private/vendor/client/theme \"dark\")",
            )
            .await,
            "l",
        );
        let lines = command(&mut c, "m GETMETADATA \"\" /private/vendor/client/theme").await;
        assert!(
            has(
                &lines,
                "* METADATA \"\" (\"/private/vendor/client/theme\" \"dark\")"
            ),
            "{lines:?}"
        );
        let lines = command(&mut c, "n SETMETADATA \"\" (/shared/comment \"hello all\")").await;
        assert!(last(&lines).starts_with("n NO [NOPERM]"), "{lines:?}");
        // Another account sees none of alice's entries.
        ts.add_account("bob@example.test", PASSWORD).await;
        let mut bob = login(&ts, "bob@example.test", PASSWORD).await;
        let lines = command(&mut bob, "a GETMETADATA \"\" /private/vendor/client/theme").await;
        assert!(
            has(&lines, "\"/private/vendor/client/theme\" NIL"),
            "{lines:?}"
        );

        // RENAME keeps a mailbox's entries; DELETE takes them away.
        ok(&command(&mut c, "o CREATE Projects").await, "o");
        ok(
            &command(&mut c, "p SETMETADATA Projects (/private/comment \"work\")").await,
            "p",
        );
        ok(&command(&mut c, "q RENAME Projects Work").await, "q");
        let lines = command(&mut c, "r GETMETADATA Work /private/comment").await;
        assert!(has(&lines, "\"work\""), "{lines:?}");
        ok(&command(&mut c, "s DELETE Work").await, "s");
        ok(&command(&mut c, "t CREATE Work").await, "t");
        let lines = command(&mut c, "u GETMETADATA Work /private/comment").await;
        assert!(has(&lines, "\"/private/comment\" NIL"), "{lines:?}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn metadata_refusals_change_nothing() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut c = alice(&ts).await;
        for (tag, line) in [
            ("a", "a SETMETADATA INBOX (/other/x \"1\")"),
            ("b", "b SETMETADATA INBOX (/private \"1\")"),
            ("c", "c SETMETADATA INBOX (/private/a* \"1\")"),
            ("d", "d GETMETADATA INBOX /private//a"),
            ("e", "e GETMETADATA (DEPTH 2) INBOX /private"),
        ] {
            let lines = command(&mut c, line).await;
            assert!(last(&lines).starts_with(&format!("{tag} BAD")), "{lines:?}");
        }
        let lines = command(&mut c, "f GETMETADATA Nowhere /private/comment").await;
        assert!(last(&lines).starts_with("f NO [NONEXISTENT]"), "{lines:?}");

        // A value over 16 KiB: nothing is set, not even the entry before it.
        let big = "y".repeat(16 * 1024 + 1);
        let lines = command(
            &mut c,
            &format!(
                "g SETMETADATA INBOX (/private/ok \"fine\" /private/big {{{}+}}\r\n{big})",
                big.len()
            ),
        )
        .await;
        assert!(
            last(&lines).starts_with("g NO [METADATA MAXSIZE 16384]"),
            "{lines:?}"
        );
        // More entries than an account keeps: none of them is set.
        let mut line = "h SETMETADATA INBOX (".to_string();
        for i in 0..1001 {
            line.push_str(&format!("/private/n/{i} \"v\" "));
        }
        line.pop();
        line.push(')');
        let lines = command(&mut c, &line).await;
        assert!(
            last(&lines).starts_with("h NO [METADATA TOOMANY]"),
            "{lines:?}"
        );
        let lines = command(&mut c, "i GETMETADATA (DEPTH infinity) INBOX (/private)").await;
        ok(&lines, "i");
        assert!(!has(&lines, "* METADATA"), "{lines:?}");
        // The session goes on.
        ok(
            &command(&mut c, "j SETMETADATA INBOX (/private/ok \"fine\")").await,
            "j",
        );
        ts.stop().await;
    }
}
