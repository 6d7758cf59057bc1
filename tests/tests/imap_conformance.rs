//! IMAP behaviour a strict client checks, over real sockets: mailbox names
//! as atoms, names that are not valid modified UTF-7, and subscriptions as a
//! list of names (RFC 3501 §6.3.6–6.3.9, RFC 9051 §6.3.7–6.3.9, RFC 5258).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use pillarbox_tests::imap::{command, has, last, login, ok};
use pillarbox_tests::{LineClient, TestServer, backends};

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "conformance pass";

/// The `* LIST`/`* LSUB` line for `name` (quoted or not), without CRLF.
fn listed<'a>(lines: &'a [String], kind: &str, name: &str) -> Option<&'a str> {
    lines.iter().map(|l| l.trim_end()).find(|l| {
        l.starts_with(&format!("* {kind} "))
            && [format!(" \"{name}\""), format!(" {name}")]
                .iter()
                .any(|n| l.ends_with(n.as_str()) || l.contains(&format!("{n} (")))
    })
}

#[tokio::test]
async fn mailbox_names_may_be_any_atom() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut c = login(&ts, ALICE, PASSWORD).await;
        // `~` starts a literal8 only before `{`: here it is a name's first
        // character, and a missing mailbox is NO, not BAD.
        for (tag, line) in [
            ("a", "a SELECT ~foo"),
            ("b", "b EXAMINE ~foo"),
            ("c", "c STATUS ~foo (MESSAGES)"),
            ("d", "d DELETE ~foo"),
        ] {
            let lines = command(&mut c, line).await;
            assert!(last(&lines).starts_with(&format!("{tag} NO")), "{lines:?}");
        }
        let lines = command(&mut c, "e CREATE ~foo").await;
        ok(&lines, "e");
        let lines = command(&mut c, "f SELECT ~foo").await;
        ok(&lines, "f");
        let lines = command(&mut c, "g STATUS ~foo (MESSAGES)").await;
        assert!(has(&lines, "* STATUS \"~foo\" (MESSAGES 0)"), "{lines:?}");
        // Every ATOM-CHAR that is not a letter (RFC 3501 §9); `&` is
        // written `&-` in modified UTF-7.
        let odd = "!#$&-'+,-.:;<=>?@^_`|}~09";
        let lines = command(&mut c, &format!("h CREATE {odd}")).await;
        ok(&lines, "h");
        let lines = command(&mut c, &format!("i SELECT {odd}")).await;
        ok(&lines, "i");
        let lines = command(&mut c, &format!("j DELETE {odd}")).await;
        ok(&lines, "j");
        let lines = command(&mut c, "k DELETE ~foo").await;
        assert!(last(&lines).starts_with("k NO") || last(&lines).starts_with("k OK"));
        ts.stop().await;
    }
}

#[tokio::test]
async fn names_that_are_not_modified_utf7_match_nothing() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut c = login(&ts, ALICE, PASSWORD).await;
        // `&Jjo` is unterminated modified UTF-7; `&AGE-` encodes a plain
        // "a", which must be written as itself.
        for name in ["&Jjo", "&AGE-"] {
            let lines = command(&mut c, &format!("a SELECT {name}")).await;
            assert!(last(&lines).starts_with("a NO"), "{lines:?}");
            let lines = command(&mut c, &format!("b STATUS {name} (MESSAGES)")).await;
            assert!(last(&lines).starts_with("b NO"), "{lines:?}");
            let lines = command(&mut c, &format!("c LIST \"\" {name}")).await;
            ok(&lines, "c");
            assert!(!has(&lines, "* LIST"), "{lines:?}");
            let lines = command(&mut c, &format!("d LIST {name} *")).await;
            ok(&lines, "d");
            assert!(!has(&lines, "* LIST"), "{lines:?}");
        }
        // The session goes on as before.
        let lines = command(&mut c, "e SELECT INBOX").await;
        ok(&lines, "e");
        ts.stop().await;
    }
}

#[tokio::test]
async fn subscriptions_are_a_list_of_names() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut c: LineClient = login(&ts, ALICE, PASSWORD).await;

        // CREATE subscribes nothing, not even the parent it makes.
        ok(&command(&mut c, "a CREATE Work/Projects").await, "a");
        let lines = command(&mut c, "b LSUB \"\" *").await;
        assert!(listed(&lines, "LSUB", "Work").is_none(), "{lines:?}");
        assert!(
            listed(&lines, "LSUB", "Work/Projects").is_none(),
            "{lines:?}"
        );
        assert!(listed(&lines, "LSUB", "INBOX").is_some(), "{lines:?}");

        ok(&command(&mut c, "c SUBSCRIBE Work/Projects").await, "c");
        // A name with no mailbox can be subscribed.
        ok(&command(&mut c, "d SUBSCRIBE Later/News").await, "d");

        // LIST (SUBSCRIBED): subscribed names, mailbox or not.
        let lines = command(&mut c, "e LIST (SUBSCRIBED) \"\" *").await;
        ok(&lines, "e");
        let projects = listed(&lines, "LIST", "Work/Projects").unwrap();
        assert!(projects.contains("\\Subscribed"), "{projects}");
        assert!(!projects.contains("\\NonExistent"), "{projects}");
        let later = listed(&lines, "LIST", "Later/News").unwrap();
        assert!(
            later.contains("\\NonExistent") && later.contains("\\Subscribed"),
            "{later}"
        );
        // The unsubscribed parents are not listed.
        assert!(listed(&lines, "LIST", "Work").is_none(), "{lines:?}");
        assert!(listed(&lines, "LIST", "Later").is_none(), "{lines:?}");

        // RECURSIVEMATCH: a parent with subscribed children is returned
        // with CHILDINFO, and without \Subscribed.
        let lines = command(&mut c, "f LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %").await;
        ok(&lines, "f");
        let work = listed(&lines, "LIST", "Work").unwrap();
        assert!(
            work.ends_with("\"Work\" (\"CHILDINFO\" (\"SUBSCRIBED\"))")
                || work.ends_with("Work (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
            "{work}"
        );
        assert!(!work.contains("\\Subscribed"), "{work}");
        let later = listed(&lines, "LIST", "Later").unwrap();
        assert!(
            later.contains("\\NonExistent") && later.contains("CHILDINFO"),
            "{later}"
        );
        assert!(
            listed(&lines, "LIST", "Work/Projects").is_none(),
            "{lines:?}"
        );
        let inbox = listed(&lines, "LIST", "INBOX").unwrap();
        assert!(
            inbox.contains("\\Subscribed") && !inbox.contains("CHILDINFO"),
            "{inbox}"
        );

        // LSUB: an unsubscribed parent under % is \Noselect (RFC 3501 §6.3.9).
        let lines = command(&mut c, "g LSUB \"\" %").await;
        ok(&lines, "g");
        let work = listed(&lines, "LSUB", "Work").unwrap();
        assert!(work.starts_with("* LSUB (\\Noselect)"), "{work}");
        let inbox = listed(&lines, "LSUB", "INBOX").unwrap();
        assert!(inbox.starts_with("* LSUB ()"), "{inbox}");

        // Plain LIST shows mailboxes only; RETURN (SUBSCRIBED) marks them.
        let lines = command(&mut c, "h LIST \"\" * RETURN (SUBSCRIBED)").await;
        ok(&lines, "h");
        assert!(listed(&lines, "LIST", "Later/News").is_none(), "{lines:?}");
        let work = listed(&lines, "LIST", "Work").unwrap();
        assert!(!work.contains("\\Subscribed"), "{work}");
        assert!(
            listed(&lines, "LIST", "Work/Projects")
                .unwrap()
                .contains("\\Subscribed")
        );

        // RENAME takes the subscriptions along; the old names then
        // unsubscribe without complaint, as a webmail client does.
        ok(&command(&mut c, "i RENAME Work Job").await, "i");
        ok(&command(&mut c, "j UNSUBSCRIBE Work/Projects").await, "j");
        ok(&command(&mut c, "k SUBSCRIBE Job/Projects").await, "k");
        let lines = command(&mut c, "l LIST (SUBSCRIBED) \"\" *").await;
        assert!(
            listed(&lines, "LIST", "Job/Projects").is_some(),
            "{lines:?}"
        );
        assert!(
            listed(&lines, "LIST", "Work/Projects").is_none(),
            "{lines:?}"
        );

        // DELETE leaves the subscription (RFC 3501 §6.3.4); UNSUBSCRIBE of
        // it, twice, succeeds.
        ok(&command(&mut c, "m DELETE Job/Projects").await, "m");
        let lines = command(&mut c, "n LIST (SUBSCRIBED) \"\" *").await;
        let gone = listed(&lines, "LIST", "Job/Projects").unwrap();
        assert!(
            gone.contains("\\NonExistent") && gone.contains("\\Subscribed"),
            "{gone}"
        );
        ok(&command(&mut c, "o UNSUBSCRIBE Job/Projects").await, "o");
        ok(&command(&mut c, "p UNSUBSCRIBE Job/Projects").await, "p");
        let lines = command(&mut c, "q LSUB \"\" *").await;
        assert!(
            listed(&lines, "LSUB", "Job/Projects").is_none(),
            "{lines:?}"
        );
        ts.stop().await;
    }
}

/// APPENDs `message` to INBOX of a fresh session; returns the session with
/// INBOX selected.
async fn with_message(ts: &TestServer, message: &str) -> LineClient {
    let mut c = login(ts, ALICE, PASSWORD).await;
    let answer = pillarbox_tests::imap::append(&mut c, "INBOX", "()", message).await;
    assert!(answer.starts_with("ap OK"), "{answer}");
    ok(&command(&mut c, "s SELECT INBOX").await, "s");
    c
}

#[tokio::test]
async fn envelope_groups_routes_and_search_on_parsed_addresses() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let message = "From: <user-from (comment)@ (comment) domain.org>\r\n\
                       Sender: <@route:user@domain>\r\n\
                       To: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\r\n\
                       Cc: group:;, group2: (foo) ;\r\n\
                       Subject: envelope\r\n\r\nbody\r\n";
        let mut c = with_message(&ts, message).await;
        let lines = command(&mut c, "a FETCH 1 ENVELOPE").await;
        ok(&lines, "a");
        let envelope = lines[0].trim_end();
        // from, sender, reply-to (= from), to, cc.
        assert!(
            envelope.contains(
                "((NIL NIL \"user-from\" \"domain.org\")) \
                 ((NIL \"@route\" \"user\" \"domain\")) \
                 ((NIL NIL \"user-from\" \"domain.org\")) \
                 ((\"Pete\" NIL \"pete\" \"silly.test\")) \
                 ((NIL NIL \"group\" NIL)(NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL NIL NIL)) NIL"
            ),
            "{envelope}"
        );
        // SEARCH FROM matches the address ENVELOPE shows.
        let lines = command(&mut c, "b SEARCH FROM user-from@domain.org").await;
        assert!(has(&lines, "* SEARCH 1"), "{lines:?}");
        let lines = command(&mut c, "c SEARCH TO pete@silly.test").await;
        assert!(has(&lines, "* SEARCH 1"), "{lines:?}");
        let lines = command(&mut c, "d SEARCH FROM nobody@domain.org").await;
        assert!(!has(&lines, "* SEARCH 1"), "{lines:?}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn binary_undoes_quoted_printable_by_rfc_2045() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        // Blanks at line ends are transport padding (rule 3); "=" then
        // blanks is still a soft line break (rule 5).
        let message = "Subject: qp\r\nMIME-Version: 1.0\r\n\
                       Content-Type: text/plain; charset=utf-8\r\n\
                       Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                       line one   \r\nsoft= \t\r\nbreak caf=C3=A9\r\n";
        let mut c = with_message(&ts, message).await;
        let decoded = "line one\r\nsoftbreak café\r\n";
        let lines = command(&mut c, "a FETCH 1 (BINARY.SIZE[1])").await;
        ok(&lines, "a");
        assert!(
            has(&lines, &format!("BINARY.SIZE[1] {}", decoded.len())),
            "{lines:?}"
        );
        let lines = command(&mut c, "b FETCH 1 (BINARY.PEEK[1])").await;
        ok(&lines, "b");
        let text: String = lines[1..lines.len() - 1].concat();
        assert!(text.starts_with(decoded), "{lines:?}");
        // A partial fetch counts in decoded octets.
        let lines = command(&mut c, "c FETCH 1 (BINARY.PEEK[1]<10.9>)").await;
        assert!(has(&lines, "BINARY[1]<10> {9}"), "{lines:?}");
        assert!(has(&lines, "softbreak"), "{lines:?}");
        ts.stop().await;
    }
}

#[tokio::test]
async fn nul_octets_only_travel_in_literal8() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut c = login(&ts, ALICE, PASSWORD).await;
        let message = "Subject: nul\r\n\r\nbefore\0after\r\n";
        c.send_line(&format!("a APPEND INBOX ~{{{}}}", message.len()))
            .await;
        let go = c.read_line().await;
        assert!(go.starts_with("+ "), "{go}");
        c.send(message.as_bytes()).await;
        c.send(b"\r\n").await;
        let lines = c.read_until(|l| l.starts_with("a ")).await;
        ok(&lines, "a");
        ok(&command(&mut c, "s SELECT INBOX").await, "s");
        // BODY[] is a literal, which cannot hold NUL (RFC 9051 §4.3).
        let lines = command(&mut c, "b FETCH 1 BODY.PEEK[]").await;
        ok(&lines, "b");
        assert!(has(&lines, "BODY[] {"), "{lines:?}");
        assert!(!lines.concat().contains('\0'), "{lines:?}");
        // BINARY[] is a literal8 and keeps every octet (RFC 3516 §4.3).
        let lines = command(&mut c, "c FETCH 1 BINARY.PEEK[]").await;
        ok(&lines, "c");
        assert!(has(&lines, "BINARY[] ~{"), "{lines:?}");
        assert!(lines.concat().contains("before\0after"), "{lines:?}");
        ts.stop().await;
    }
}
