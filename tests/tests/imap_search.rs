//! SEARCH by header and text, where the store narrows the messages down
//! first: every message that matches is still found — folded header lines,
//! RFC 2047 encoded words (Q and B), any letter case, non-ASCII text — on
//! SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_tests::imap::command as cmd;
use pillarbox_tests::{LineClient, TestServer, backends};

const PASSWORD: &str = "search pass";

/// (message, what it is for)
const MESSAGES: [&str; 6] = [
    // 1: a folded Subject: "Quarterly report" is split across two lines.
    "From: Ann Example <ann@remote.test>\r\nSubject: The Quarterly\r\n report is ready\r\n\r\nNumbers inside.\r\n",
    // 2: a base64 encoded-word: nothing of "Meeting notes" is in the raw header.
    "From: bob@remote.test\r\nSubject: =?UTF-8?B?TWVldGluZyBub3Rlcw==?=\r\n\r\nSee the attachment.\r\n",
    // 3: a Q encoded-word with non-ASCII.
    "From: =?UTF-8?Q?J=C3=BCrgen?= <j@remote.test>\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\nBis bald in K\u{f6}ln.\r\n",
    // 4: upper case everywhere.
    "FROM: CAROL <CAROL@REMOTE.TEST>\r\nSUBJECT: LOUD NEWS\r\n\r\nTHE BODY SHOUTS.\r\n",
    // 5: nothing in common with the searches.
    "From: dave@remote.test\r\nSubject: unrelated\r\n\r\nquiet\r\n",
    // 6: a Kelvin sign (lowercases to an ASCII k) and SQL wildcard characters.
    "From: lab@remote.test\r\nSubject: 100% done_now\r\n\r\nAt 3 \u{212a}elvin.\r\n",
];

#[tokio::test]
async fn header_and_text_searches_find_every_match() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        let mut c = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
        c.read_line().await;
        cmd(
            &mut c,
            &format!("l LOGIN alice@example.test \"{PASSWORD}\""),
        )
        .await;
        for message in MESSAGES {
            c.send(format!("a APPEND INBOX {{{}+}}\r\n", message.len()).as_bytes())
                .await;
            c.send(message.as_bytes()).await;
            c.send(b"\r\n").await;
            let lines = c.read_until(|l| l.starts_with("a ")).await;
            assert!(lines.last().unwrap().starts_with("a OK"), "{lines:?}");
        }
        cmd(&mut c, "s SELECT INBOX").await;
        // Twice: with the header fields kept at delivery, then as for
        // messages stored before they were kept (no rows of fields).
        for pass in ["fields", "no fields"] {
            if pass == "no fields" {
                let sql = "DELETE FROM message_fields";
                match ts.store().db_write() {
                    pillarbox_store::Db::Sqlite(pool) => {
                        pillarbox_store::sqlx::query(sql)
                            .execute(pool)
                            .await
                            .unwrap();
                    }
                    pillarbox_store::Db::Postgres(pool) => {
                        pillarbox_store::sqlx::query(sql)
                            .execute(pool)
                            .await
                            .unwrap();
                    }
                }
            }
            for (search, expected) in [
                // Folded: the words are on two lines.
                ("SEARCH SUBJECT \"quarterly report\"", "* SEARCH 1\r\n"),
                // Encoded words, decoded before matching.
                ("SEARCH SUBJECT \"meeting notes\"", "* SEARCH 2\r\n"),
                ("SEARCH SUBJECT notes", "* SEARCH 2\r\n"),
                (
                    "SEARCH CHARSET UTF-8 FROM {7+}\r\nj\u{fc}rgen",
                    "* SEARCH 3\r\n",
                ),
                ("SEARCH FROM jurgen", "* SEARCH\r\n"),
                // Case.
                ("SEARCH FROM carol", "* SEARCH 4\r\n"),
                ("SEARCH BODY shouts", "* SEARCH 4\r\n"),
                ("SEARCH TEXT loud", "* SEARCH 4\r\n"),
                (
                    "SEARCH CHARSET UTF-8 BODY {5+}\r\nk\u{f6}ln",
                    "* SEARCH 3\r\n",
                ),
                (
                    "SEARCH CHARSET UTF-8 BODY {5+}\r\nK\u{d6}LN",
                    "* SEARCH 3\r\n",
                ),
                // Combinations the store cannot narrow (OR with a flag, NOT) and can (AND).
                ("SEARCH OR FROM ann SUBJECT loud", "* SEARCH 1 4\r\n"),
                ("SEARCH OR FROM ann UNSEEN", "* SEARCH 1 2 3 4 5 6\r\n"),
                ("SEARCH NOT FROM remote.test", "* SEARCH\r\n"),
                ("SEARCH NOT SUBJECT unrelated", "* SEARCH 1 2 3 4 6\r\n"),
                // Unicode lowercasing; LIKE wildcards are plain characters.
                ("SEARCH BODY kelvin", "* SEARCH 6\r\n"),
                ("SEARCH SUBJECT \"100%\"", "* SEARCH 6\r\n"),
                ("SEARCH SUBJECT \"0% d\"", "* SEARCH 6\r\n"),
                ("SEARCH SUBJECT e_n", "* SEARCH 6\r\n"),
                ("SEARCH SUBJECT \"1_0\"", "* SEARCH\r\n"),
                ("SEARCH SUBJECT \"%\"", "* SEARCH 6\r\n"),
                ("SEARCH FROM remote.test BODY inside", "* SEARCH 1\r\n"),
                // A header that exists, whatever its value.
                ("SEARCH HEADER SUBJECT \"\"", "* SEARCH 1 2 3 4 5 6\r\n"),
                ("SEARCH HEADER X-Nothing \"\"", "* SEARCH\r\n"),
            ] {
                let lines = cmd(&mut c, &format!("q {search}")).await;
                assert_eq!(
                    lines[0], expected,
                    "{backend:?} ({pass}): {search}: {lines:?}"
                );
                assert!(lines.last().unwrap().starts_with("q OK"), "{lines:?}");
            }
        }
        ts.stop().await;
    }
}
