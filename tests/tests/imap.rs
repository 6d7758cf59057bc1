//! IMAP over real sockets and real TLS, on SQLite and PostgreSQL: every
//! command's answers as a client reads them, and the bad inputs of issue 5.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_directory::AccountUpdate;
use pillarbox_tests::imap::{append, command as cmd, has, last};
use pillarbox_tests::{LineClient, TestServer, backends};
use std::time::Duration;

const PASSWORD: &str = "imap pass";

/// A logged-in session over implicit TLS.
async fn imaps(ts: &TestServer, address: &str) -> LineClient {
    let mut c = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
    let greeting = c.read_line().await;
    assert!(
        greeting.starts_with("* OK [CAPABILITY IMAP4rev1 IMAP4rev2"),
        "{greeting}"
    );
    let lines = cmd(&mut c, &format!("l LOGIN {address} \"{PASSWORD}\"")).await;
    assert!(last(&lines).starts_with("l OK"), "{lines:?}");
    c
}

const PLAIN: &str = "From: Ann Example <ann@remote.test>\r\nTo: alice@example.test\r\nSubject: Lunch on Friday\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <lunch@remote.test>\r\n\r\nShall we meet at noon?\r\n";

const MULTIPART: &str = "From: bob@remote.test\r\nTo: alice@example.test\r\nSubject: =?UTF-8?Q?Caf=C3=A9_photos?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nThe caf=C3=A9 pictures.\r\n--b1\r\nContent-Type: application/octet-stream; name=\"p.bin\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"p.bin\"\r\n\r\nAAECAwQ=\r\n--b1--\r\n";

#[tokio::test]
async fn greeting_login_states_and_tls() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        let mut c = LineClient::connect(ts.addr("imap")).await;
        let greeting = c.read_line().await;
        assert!(
            greeting.contains("STARTTLS") && greeting.contains("LOGINDISABLED"),
            "{greeting}"
        );
        // Plaintext LOGIN is refused before TLS.
        let lines = cmd(&mut c, "a LOGIN alice@example.test secret").await;
        assert!(
            last(&lines).starts_with("a NO [PRIVACYREQUIRED]"),
            "{lines:?}"
        );
        // Commands in the wrong state, unknown and malformed commands.
        let lines = cmd(&mut c, "b SELECT INBOX").await;
        assert!(
            last(&lines).starts_with("b BAD") && last(&lines).contains("login"),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "c FROBNICATE").await;
        assert!(
            last(&lines).starts_with("c BAD unknown command FROBNICATE"),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "d LOGIN \"unterminated").await;
        assert!(last(&lines).starts_with("d BAD") && last(&lines).contains("unterminated"));
        c.send_line("no-space-here").await;
        assert!(c.read_line().await.starts_with("no-space-here BAD"));
        // STARTTLS; pipelined plaintext after it is discarded.
        c.send(b"e STARTTLS\r\nf LOGOUT\r\n").await;
        assert!(c.read_line().await.starts_with("e OK"));
        let mut c = c.start_tls(&ts.tls_connector()).await;
        let lines = cmd(&mut c, "g CAPABILITY").await;
        assert!(
            has(&lines, "AUTH=PLAIN") && !has(&lines, "STARTTLS"),
            "{lines:?}"
        );
        // Wrong password: delayed, counted, AUTHENTICATIONFAILED.
        let lines = cmd(&mut c, "h LOGIN alice@example.test wrong").await;
        assert!(
            last(&lines).starts_with("h NO [AUTHENTICATIONFAILED]"),
            "{lines:?}"
        );
        // AUTHENTICATE PLAIN with SASL-IR ("\0alice@example.test\0imap pass").
        use base64::Engine;
        let ir = base64::engine::general_purpose::STANDARD
            .encode(format!("\0alice@example.test\0{PASSWORD}"));
        let lines = cmd(&mut c, &format!("i AUTHENTICATE PLAIN {ir}")).await;
        assert!(last(&lines).starts_with("i OK [CAPABILITY"), "{lines:?}");
        let lines = cmd(&mut c, "j LOGIN alice@example.test x").await;
        assert!(last(&lines).starts_with("j BAD Already logged in"));
        let lines = cmd(&mut c, "k FETCH 1 FLAGS").await;
        assert!(last(&lines).starts_with("k BAD") && last(&lines).contains("SELECT"));
        let lines = cmd(&mut c, "l LOGOUT").await;
        assert!(lines[0].starts_with("* BYE") && last(&lines).starts_with("l OK"));
        assert!(c.is_closed().await);

        // AUTHENTICATE with a continuation, and IMAP switched off for the account.
        ts.directory()
            .update_account(
                "alice@example.test",
                &AccountUpdate {
                    imap: Some(false),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let mut c = LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
        c.read_line().await;
        c.send_line("a AUTHENTICATE PLAIN").await;
        assert_eq!(c.read_line().await, "+ \r\n");
        c.send_line(&ir).await;
        let answer = c.read_line().await;
        assert!(
            answer.starts_with("a NO [CONTACTADMIN]") && answer.contains("switched off"),
            "{answer}"
        );
        ts.stop().await;
    }
}

#[tokio::test]
async fn mailboxes_list_status_and_names() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        let mut c = imaps(&ts, "alice@example.test").await;
        let lines = cmd(&mut c, "a LIST \"\" \"\"").await;
        assert_eq!(lines[0], "* LIST (\\Noselect) \"/\" \"\"\r\n");
        let lines = cmd(&mut c, "b LIST \"\" *").await;
        assert!(
            has(&lines, "* LIST (\\HasNoChildren) \"/\" \"INBOX\""),
            "{lines:?}"
        );
        assert!(
            has(&lines, "* LIST (\\Sent \\HasNoChildren) \"/\" \"Sent\""),
            "{lines:?}"
        );
        assert!(has(&lines, "(\\Trash \\HasNoChildren) \"/\" \"Trash\""));
        // CREATE with parents, ALREADYEXISTS, hierarchy in LIST.
        assert!(last(&cmd(&mut c, "c CREATE Projects/2024").await).starts_with("c OK"));
        let lines = cmd(&mut c, "d CREATE a//b").await;
        assert!(last(&lines).starts_with("d NO [CANNOT]"), "{lines:?}");
        let lines = cmd(&mut c, "e CREATE Projects/2024").await;
        assert!(
            last(&lines).starts_with("e NO [ALREADYEXISTS]"),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "f CREATE inbox").await;
        assert!(
            last(&lines).starts_with("f NO [ALREADYEXISTS]"),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "g LIST \"\" %").await;
        assert!(
            has(&lines, "(\\HasChildren) \"/\" \"Projects\""),
            "{lines:?}"
        );
        assert!(!has(&lines, "Projects/2024"));
        let lines = cmd(&mut c, "h LIST Projects/ %").await;
        assert!(has(&lines, "\"Projects/2024\""), "{lines:?}");
        // DELETE: INBOX refused, unknown mailbox NONEXISTENT.
        let lines = cmd(&mut c, "i DELETE INBOX").await;
        assert!(last(&lines).starts_with("i NO [CANNOT]"), "{lines:?}");
        let lines = cmd(&mut c, "j DELETE Nowhere").await;
        assert!(last(&lines).starts_with("j NO [NONEXISTENT]"), "{lines:?}");
        let lines = cmd(&mut c, "k SELECT Nowhere").await;
        assert!(last(&lines).starts_with("k NO [NONEXISTENT]"), "{lines:?}");
        // Modified UTF-7 names (IMAP4rev1) are stored as UTF-8.
        assert!(last(&cmd(&mut c, "l CREATE Entw&APw-rfe").await).starts_with("l OK"));
        let account = ts
            .directory()
            .account_by_address("alice@example.test")
            .await
            .unwrap()
            .unwrap();
        assert!(
            ts.store()
                .mailbox(account.id, "Entwürfe")
                .await
                .unwrap()
                .is_some()
        );
        let lines = cmd(&mut c, "m CREATE &Jjo!").await;
        assert!(
            last(&lines).starts_with("m NO [CANNOT]") && last(&lines).contains("UTF-7"),
            "{lines:?}"
        );
        // RENAME with children; RENAME INBOX moves the messages, INBOX stays.
        assert!(last(&cmd(&mut c, "n RENAME Projects Work").await).starts_with("n OK"));
        let lines = cmd(&mut c, "o LIST \"\" Work*").await;
        assert!(has(&lines, "\"Work/2024\""), "{lines:?}");
        append(&mut c, "INBOX", "()", PLAIN).await;
        assert!(last(&cmd(&mut c, "p RENAME INBOX Old").await).starts_with("p OK"));
        let lines = cmd(
            &mut c,
            "q STATUS Old (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE DELETED)",
        )
        .await;
        assert!(
            has(
                &lines,
                "* STATUS \"Old\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "
            ),
            "{lines:?}"
        );
        assert!(
            has(&lines, &format!("UNSEEN 1 SIZE {} DELETED 0)", PLAIN.len())),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "r STATUS INBOX (MESSAGES)").await;
        assert!(has(&lines, "* STATUS \"INBOX\" (MESSAGES 0)"), "{lines:?}");
        // SUBSCRIBE, LSUB, LIST-EXTENDED selection and return options.
        assert!(last(&cmd(&mut c, "s SUBSCRIBE Work/2024").await).starts_with("s OK"));
        assert!(last(&cmd(&mut c, "s UNSUBSCRIBE Work").await).starts_with("s OK"));
        let lines = cmd(&mut c, "t LSUB \"\" *").await;
        assert!(has(&lines, "* LSUB () \"/\" \"Work/2024\""), "{lines:?}");
        let lines = cmd(&mut c, "u LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %").await;
        assert!(
            has(&lines, "\"Work\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
            "{lines:?}"
        );
        let lines = cmd(
            &mut c,
            "v LIST (SPECIAL-USE) \"\" * RETURN (STATUS (MESSAGES))",
        )
        .await;
        assert!(
            has(&lines, "\\Drafts") && !has(&lines, "\"Work\""),
            "{lines:?}"
        );
        assert!(has(&lines, "* STATUS \"Drafts\" (MESSAGES 0)"), "{lines:?}");
        let lines = cmd(&mut c, "w NAMESPACE").await;
        assert!(has(&lines, "* NAMESPACE ((\"\" \"/\")) NIL NIL"));
        // IMAP4rev2: UTF-8 names on the wire.
        let lines = cmd(&mut c, "x ENABLE IMAP4rev2").await;
        assert!(has(&lines, "* ENABLED IMAP4rev2"), "{lines:?}");
        let lines = cmd(&mut c, "y LIST \"\" Entw*").await;
        assert!(has(&lines, "\"Entwürfe\""), "{lines:?}");
        assert!(last(&cmd(&mut c, "z CREATE \"Archiv/Größe\"").await).starts_with("z OK"));
        assert!(
            ts.store()
                .mailbox(account.id, "Archiv/Größe")
                .await
                .unwrap()
                .is_some()
        );
        ts.stop().await;
    }
}

#[tokio::test]
async fn append_fetch_search_store() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        let mut c = imaps(&ts, "alice@example.test").await;
        let ok = append(
            &mut c,
            "INBOX",
            "(\\Seen $Work) \"07-Feb-1994 21:52:25 -0800\"",
            PLAIN,
        )
        .await;
        assert!(ok.starts_with("ap OK [APPENDUID "), "{ok}");
        let ok = append(&mut c, "INBOX", "()", MULTIPART).await;
        assert!(ok.contains(" 2] APPEND"), "{ok}");
        // LITERAL+: no continuation request.
        c.send(b"lp APPEND INBOX {19+}\r\nSubject: third\r\n\r\nx\r\n")
            .await;
        let lines = c.read_until(|l| l.starts_with("lp ")).await;
        assert!(last(&lines).starts_with("lp OK [APPENDUID"), "{lines:?}");
        let lines = cmd(&mut c, "np APPEND Nowhere {1+}\r\nx").await;
        assert!(last(&lines).starts_with("np NO [TRYCREATE]"), "{lines:?}");

        let lines = cmd(&mut c, "a SELECT INBOX").await;
        assert!(
            // Appended before any SELECT: recent for this first one.
            has(&lines, "* 3 EXISTS") && has(&lines, "* 3 RECENT"),
            "{lines:?}"
        );
        assert!(
            has(&lines, "[UNSEEN 2]") && has(&lines, "[UIDNEXT 4]"),
            "{lines:?}"
        );
        assert!(
            has(&lines, "$Work") && last(&lines).starts_with("a OK [READ-WRITE]"),
            "{lines:?}"
        );

        let lines = cmd(
            &mut c,
            "b FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE UID)",
        )
        .await;
        let expected = format!(
            "* 1 FETCH (FLAGS (\\Seen $Work \\Recent) INTERNALDATE \"08-Feb-1994 05:52:25 +0000\" RFC822.SIZE {} ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800\" \"Lunch on Friday\" ((\"Ann Example\" NIL \"ann\" \"remote.test\")) ((\"Ann Example\" NIL \"ann\" \"remote.test\")) ((\"Ann Example\" NIL \"ann\" \"remote.test\")) ((NIL NIL \"alice\" \"example.test\")) NIL NIL NIL \"<lunch@remote.test>\") UID 1)\r\n",
            PLAIN.len()
        );
        assert_eq!(lines[0], expected);
        let lines = cmd(&mut c, "c FETCH 2 BODYSTRUCTURE").await;
        assert!(lines[0].starts_with("* 2 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"charset\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" "), "{lines:?}");
        assert!(lines[0].contains("(\"APPLICATION\" \"OCTET-STREAM\" (\"name\" \"p.bin\") NIL NIL \"BASE64\" 8 NIL (\"ATTACHMENT\" (\"filename\" \"p.bin\")) NIL NIL) \"MIXED\" (\"boundary\" \"b1\") NIL NIL NIL))"), "{lines:?}");
        // Sections, partial, BINARY.
        let lines = cmd(&mut c, "d FETCH 2 (BODY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[1] BODY.PEEK[HEADER.FIELDS (SUBJECT)])").await;
        let text = lines.concat();
        assert!(
            text.contains("BODY[1] {23}\r\nThe caf=C3=A9 pictures. BINARY"),
            "{text}"
        );
        assert!(
            text.contains("BINARY[2] ~{5}\r\n\u{0}\u{1}\u{2}\u{3}\u{4}"),
            "{text:?}"
        );
        assert!(text.contains("BINARY.SIZE[1] 19"), "{text}");
        assert!(text.contains("BODY[HEADER.FIELDS (SUBJECT)] {41}\r\nSubject: =?UTF-8?Q?Caf=C3=A9_photos?=\r\n\r\n"), "{text}");
        assert!(!text.contains("\\Seen"), "PEEK does not set \\Seen: {text}");
        let lines = cmd(&mut c, "e FETCH 2 BODY[TEXT]<0.10>").await;
        let text = lines.concat();
        assert!(
            text.contains("BODY[TEXT]<0> {10}\r\n--b1\r\nCont"),
            "{text}"
        );
        assert!(
            text.contains("FLAGS (\\Seen \\Recent)"),
            "BODY[] sets \\Seen: {text}"
        );
        let lines = cmd(&mut c, "f UID FETCH 3 RFC822.HEADER").await;
        assert!(
            lines
                .concat()
                .contains("UID 3 RFC822.HEADER {18}\r\nSubject: third\r\n\r\n"),
            "{lines:?}"
        );
        // Bad sequence sets: 0 is a syntax error, beyond EXISTS is refused, reversed ranges work.
        assert!(last(&cmd(&mut c, "g FETCH 0 FLAGS").await).starts_with("g BAD"));
        assert!(
            last(&cmd(&mut c, "h FETCH 4 FLAGS").await)
                .starts_with("h BAD Invalid message sequence number")
        );
        let lines = cmd(&mut c, "i FETCH 3:2 UID").await;
        assert!(
            has(&lines, "* 2 FETCH (UID 2)") && has(&lines, "* 3 FETCH (UID 3)"),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "j UID FETCH 7:* UID").await;
        assert!(
            has(&lines, "* 3 FETCH (UID 3)") && lines.len() == 2,
            "{lines:?}"
        );

        // SEARCH: flags, headers (decoded), body, dates, sizes, OR/NOT, UID.
        let search = |q: &'static str| q;
        for (query, expected) in [
            (search("k1 SEARCH SEEN"), "* SEARCH 1 2\r\n"),
            ("k2 SEARCH UNSEEN", "* SEARCH 3\r\n"),
            ("k3 SEARCH KEYWORD $Work", "* SEARCH 1\r\n"),
            ("k4 SEARCH FROM ann", "* SEARCH 1\r\n"),
            ("k5 SEARCH SUBJECT \"café\"", "* SEARCH 2\r\n"),
            ("k6 SEARCH BODY noon", "* SEARCH 1\r\n"),
            ("k7 SEARCH TEXT pictures", "* SEARCH 2\r\n"),
            ("k8 SEARCH SENTON 7-Feb-1994", "* SEARCH 1\r\n"),
            ("k9 SEARCH BEFORE 1-Jan-2000", "* SEARCH 1\r\n"),
            ("ka SEARCH OR SUBJECT third NOT SEEN", "* SEARCH 3\r\n"),
            ("kb UID SEARCH SMALLER 100", "* SEARCH 3\r\n"),
            ("kc SEARCH HEADER Message-ID lunch@", "* SEARCH 1\r\n"),
            ("kd SEARCH 2:* UNDELETED", "* SEARCH 2 3\r\n"),
            (
                "ke SEARCH CHARSET UTF-8 SUBJECT {5+}\r\ncafé",
                "* SEARCH 2\r\n",
            ),
            ("kf SEARCH SUBJECT nothing-like-this", "* SEARCH\r\n"),
        ] {
            let lines = cmd(&mut c, query).await;
            assert_eq!(lines[0], expected, "{query}: {lines:?}");
            assert!(last(&lines).contains("OK"), "{query}: {lines:?}");
        }
        let lines = cmd(&mut c, "l SEARCH CHARSET KOI8-R ALL").await;
        assert!(last(&lines).starts_with("l NO [BADCHARSET"), "{lines:?}");
        let lines = cmd(&mut c, "m SEARCH RETURN (MIN MAX COUNT ALL) ALL").await;
        assert_eq!(
            lines[0],
            "* ESEARCH (TAG \"m\") MIN 1 MAX 3 COUNT 3 ALL 1:3\r\n"
        );
        let lines = cmd(&mut c, "n UID SEARCH RETURN (SAVE) SEEN").await;
        assert!(
            last(&lines).starts_with("n OK") && lines.len() == 1,
            "{lines:?}"
        );
        let lines = cmd(&mut c, "o FETCH $ UID").await;
        assert!(
            has(&lines, "(UID 1)") && has(&lines, "(UID 2)") && !has(&lines, "(UID 3)"),
            "{lines:?}"
        );

        // STORE: replace, add, remove, silent.
        let lines = cmd(&mut c, "p STORE 1 +FLAGS (\\Flagged)").await;
        assert_eq!(
            lines[0],
            "* 1 FETCH (FLAGS (\\Seen \\Flagged $Work \\Recent))\r\n"
        );
        let lines = cmd(&mut c, "q UID STORE 1 -FLAGS.SILENT ($Work)").await;
        assert!(
            lines.len() == 1 && last(&lines).starts_with("q OK"),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "r STORE 1 FLAGS (\\Deleted)").await;
        assert_eq!(lines[0], "* 1 FETCH (FLAGS (\\Deleted \\Recent))\r\n");
        let lines = cmd(&mut c, "s STORE 1 +FLAGS (\\Bogus)").await;
        assert!(last(&lines).starts_with("s BAD"), "{lines:?}");

        // COPY and MOVE with COPYUID; MOVE expunges from the source.
        let lines = cmd(&mut c, "t COPY 2:3 Archive").await;
        assert!(
            last(&lines).starts_with("t OK [COPYUID ") && last(&lines).contains(" 2:3 1:2]"),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "u UID MOVE 3 Trash").await;
        assert!(
            has(&lines, "* OK [COPYUID ") && has(&lines, "* 3 EXPUNGE"),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "v COPY 1 Nowhere").await;
        assert!(last(&lines).starts_with("v NO [TRYCREATE]"), "{lines:?}");
        // UID EXPUNGE only the named; EXPUNGE the rest.
        cmd(&mut c, "w STORE 2 +FLAGS.SILENT (\\Deleted)").await;
        let lines = cmd(&mut c, "x UID EXPUNGE 2").await;
        assert_eq!(lines[0], "* 2 EXPUNGE\r\n", "{lines:?}");
        let lines = cmd(&mut c, "y EXPUNGE").await;
        assert_eq!(lines[0], "* 1 EXPUNGE\r\n", "{lines:?}");
        let lines = cmd(&mut c, "z STATUS Archive (MESSAGES)").await;
        assert!(has(&lines, "(MESSAGES 2)"), "{lines:?}");
        // EXAMINE is read-only.
        let lines = cmd(&mut c, "z1 EXAMINE Archive").await;
        assert!(last(&lines).starts_with("z1 OK [READ-ONLY]"), "{lines:?}");
        let lines = cmd(&mut c, "z2 STORE 1 +FLAGS (\\Seen)").await;
        assert!(last(&lines).starts_with("z2 NO [READ-ONLY]"), "{lines:?}");
        let lines = cmd(&mut c, "z3 FETCH 1 BODY[]").await;
        assert!(
            !has(&lines, "\\Seen"),
            "EXAMINE never sets \\Seen: {lines:?}"
        );
        assert!(last(&cmd(&mut c, "z4 UNSELECT").await).starts_with("z4 OK"));
        assert!(last(&cmd(&mut c, "z5 FETCH 1 UID").await).starts_with("z5 BAD"));
        ts.stop().await;
    }
}

#[tokio::test]
async fn sessions_see_each_other() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account("alice@example.test", PASSWORD).await;
        let mut a = imaps(&ts, "alice@example.test").await;
        let mut b = imaps(&ts, "alice@example.test").await;
        append(&mut a, "INBOX", "()", PLAIN).await;
        append(&mut a, "INBOX", "()", PLAIN).await;
        cmd(&mut a, "a SELECT INBOX").await;
        cmd(&mut b, "b SELECT INBOX").await;
        // A flag change by A reaches B at its next NOOP.
        cmd(&mut a, "a STORE 1 +FLAGS.SILENT (\\Answered)").await;
        let lines = cmd(&mut b, "b NOOP").await;
        assert_eq!(
            lines[0], "* 1 FETCH (UID 1 FLAGS (\\Answered))\r\n",
            "{lines:?}"
        );
        // A new message by A: B learns of it with EXISTS (and RECENT in
        // rev1: 0, as A learnt of it first, RFC 3501 §2.3.2).
        append(&mut a, "INBOX", "()", PLAIN).await;
        let lines = cmd(&mut b, "b NOOP").await;
        assert!(
            has(&lines, "* 3 EXISTS") && has(&lines, "* 0 RECENT"),
            "{lines:?}"
        );
        // An expunge by A: not during B's FETCH (RFC 9051 §7.5.1), then at NOOP.
        cmd(&mut a, "a STORE 1 +FLAGS.SILENT (\\Deleted)").await;
        let lines = cmd(&mut a, "a EXPUNGE").await;
        assert!(has(&lines, "* 1 EXPUNGE"), "{lines:?}");
        let lines = cmd(&mut b, "b FETCH 1:* UID").await;
        assert!(!has(&lines, "EXPUNGE"), "{lines:?}");
        assert!(
            has(&lines, "* 2 FETCH (UID 2)") && has(&lines, "* 3 FETCH (UID 3)"),
            "{lines:?}"
        );
        let lines = cmd(&mut b, "b STORE 2 +FLAGS.SILENT (\\Seen)").await;
        assert!(!has(&lines, "EXPUNGE"), "{lines:?}");
        let lines = cmd(&mut b, "b NOOP").await;
        assert_eq!(lines[0], "* 1 EXPUNGE\r\n", "{lines:?}");
        let lines = cmd(&mut b, "b FETCH 1 UID").await;
        assert!(
            has(&lines, "* 1 FETCH (UID 2)"),
            "numbers shift after EXPUNGE: {lines:?}"
        );
        let lines = cmd(&mut a, "a NOOP").await;
        // A selected first: its messages carry \Recent there.
        assert!(
            has(&lines, "* 1 FETCH (UID 2 FLAGS (\\Seen \\Recent))"),
            "{lines:?}"
        );
        ts.stop().await;
    }
}

#[tokio::test]
async fn limits_and_bad_input_change_nothing() {
    for backend in backends() {
        let ts = TestServer::start_with(backend, |c| {
            c.imap.append_limit = 1000;
            c.listener.get_mut("imaps").unwrap().idle_timeout_secs = Some(3);
        })
        .await;
        let account = ts.add_account("alice@example.test", PASSWORD).await;
        let mut c = imaps(&ts, "alice@example.test").await;
        let lines = cmd(&mut c, "a CAPABILITY").await;
        assert!(has(&lines, "APPENDLIMIT=1000"), "{lines:?}");
        // A synchronizing literal over the limit is refused before it is sent.
        c.send_line("b APPEND INBOX {5000}").await;
        let answer = c.read_line().await;
        assert!(answer.starts_with("b NO [TOOBIG]"), "{answer}");
        // A non-synchronizing one is read and dropped; the session goes on.
        let mut big = b"c APPEND INBOX {5000+}\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 5000));
        big.extend_from_slice(b"\r\nd NOOP\r\n");
        c.send(&big).await;
        assert!(c.read_line().await.starts_with("c NO [TOOBIG]"));
        assert!(c.read_line().await.starts_with("d OK"));
        // A long line, deep nesting, an empty message.
        let long = format!("e SEARCH SUBJECT {}", "y".repeat(70_000));
        c.send_line(&long).await;
        assert!(c.read_line().await.starts_with("* BAD [TOOBIG]"));
        cmd(&mut c, "f SELECT INBOX").await;
        // `1:*` on an empty mailbox names nothing; a number that does not exist is an error.
        let lines = cmd(&mut c, "f1 FETCH 1:* FLAGS").await;
        assert!(
            lines.len() == 1 && last(&lines).starts_with("f1 OK"),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "f2 FETCH 1 FLAGS").await;
        assert!(last(&lines).starts_with("f2 BAD"), "{lines:?}");
        let nested = format!("g SEARCH {}ALL{}", "(".repeat(50), ")".repeat(50));
        let lines = cmd(&mut c, &nested).await;
        assert!(
            last(&lines).starts_with("g BAD") && last(&lines).contains("nested"),
            "{lines:?}"
        );
        let lines = cmd(&mut c, "h APPEND INBOX {0+}\r\n").await;
        assert!(last(&lines).starts_with("h NO"), "{lines:?}");
        // Over quota.
        ts.directory()
            .update_account(
                "alice@example.test",
                &AccountUpdate {
                    quota: Some(Some(100)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let ok = append(&mut c, "INBOX", "()", PLAIN).await;
        assert!(ok.starts_with("ap NO [OVERQUOTA]"), "{ok}");
        // Nothing was stored by any of it.
        let inbox = ts
            .store()
            .require_mailbox(account.id, "INBOX")
            .await
            .unwrap();
        assert_eq!(
            ts.store().mailbox_counts(inbox.id).await.unwrap().messages,
            0
        );
        assert_eq!(ts.store().quota_used(account.id).await.unwrap(), 0);
        // A client that sends half a line and nothing more is logged out.
        c.send(b"i NOO").await;
        let bye = c
            .try_read_line(Duration::from_secs(10))
            .await
            .unwrap_or_default();
        assert!(bye.starts_with("* BYE"), "{bye}");
        assert!(c.is_closed().await);
        ts.stop().await;
    }
}
