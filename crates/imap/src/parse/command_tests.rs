//! The RFCs' command examples and bad input, as unit tests of the parser.
use super::*;
use crate::parse::SortKey;
use crate::sequence::SeqBound;

fn parse(line: &str) -> Command {
    parse_request(line.as_bytes()).unwrap().command
}

fn bad(line: &str) -> String {
    parse_request(line.as_bytes()).unwrap_err().1.0
}

#[test]
fn rfc_9051_examples() {
    assert_eq!(parse("a002 NOOP\r\n"), Command::Noop);
    assert_eq!(
        parse("a001 LOGIN SMITH SESAME\r\n"),
        Command::Login {
            user: "SMITH".into(),
            password: "SESAME".into()
        }
    );
    assert_eq!(
        parse("A142 SELECT INBOX\r\n"),
        Command::Select {
            mailbox: b"INBOX".to_vec(),
            read_only: false,
            condstore: false,
            qresync: None,
        }
    );
    assert_eq!(
        parse("A003 CREATE owatagusiam/\r\n"),
        Command::Create {
            mailbox: b"owatagusiam/".to_vec(),
            special_use: Vec::new(),
        }
    );
    assert_eq!(
        parse("A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n"),
        Command::Status {
            mailbox: b"blurdybloop".to_vec(),
            items: vec![StatusItem::UidNext, StatusItem::Messages]
        }
    );
    assert_eq!(
        parse("A003 STORE 2:4 +FLAGS (\\Deleted)\r\n"),
        Command::Store {
            uid: false,
            set: SequenceSet::Ranges(vec![(SeqBound::Num(2), SeqBound::Num(4))]),
            op: StoreOp::Add,
            silent: false,
            flags: vec!["\\Deleted".into()],
            unchanged_since: None,
        }
    );
    assert_eq!(
        parse("A003 COPY 2:4 MEETING\r\n"),
        Command::Copy {
            uid: false,
            set: SequenceSet::Ranges(vec![(SeqBound::Num(2), SeqBound::Num(4))]),
            mailbox: b"MEETING".to_vec()
        }
    );
    assert_eq!(
        parse("A999 UID FETCH 4827313:4828442 FLAGS\r\n"),
        Command::Fetch {
            uid: true,
            set: SequenceSet::Ranges(vec![(SeqBound::Num(4827313), SeqBound::Num(4828442))]),
            attrs: vec![FetchAttr::Flags],
            changed_since: None,
            vanished: false,
        }
    );
    // RFC 9051 §6.3.12 APPEND with a synchronizing literal.
    let append = "A003 APPEND saved-messages (\\Seen) {14}\r\nHello Joe!\r\n\r\n";
    match parse(append) {
        Command::Append { mailbox, messages } => {
            assert_eq!(mailbox, b"saved-messages");
            assert_eq!(
                messages,
                vec![AppendMessage {
                    flags: vec!["\\Seen".to_string()],
                    date: None,
                    message: b"Hello Joe!\r\n\r\n".to_vec(),
                    utf8: false,
                    catenate: Vec::new(),
                }]
            );
        }
        other => panic!("{other:?}"),
    }
    // RFC 5258 extended LIST.
    match parse("A02 LIST (SUBSCRIBED) \"\" (\"*\" \"%\") RETURN (CHILDREN STATUS (MESSAGES))\r\n")
    {
        Command::List {
            patterns,
            select,
            ret,
            extended,
            ..
        } => {
            assert!(extended && select.subscribed && ret.children);
            assert_eq!(patterns, vec![b"*".to_vec(), b"%".to_vec()]);
            assert_eq!(ret.status, Some(vec![StatusItem::Messages]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse("a ID (\"name\" \"sodr\" \"version\" NIL)\r\n"),
        Command::Id(vec![
            ("name".into(), Some("sodr".into())),
            ("version".into(), None)
        ])
    );
    assert_eq!(
        parse("a AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q=\r\n"),
        Command::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some("dGVzdAB0ZXN0AHRlc3Q=".into())
        }
    );
    assert!(matches!(
        parse("a UID EXPUNGE 3000:3002\r\n"),
        Command::Expunge { uids: Some(_) }
    ));
    assert!(matches!(
        parse("a APPEND x {3+}\r\nabc\r\n"),
        Command::Append { .. }
    ));
}

/// RFC 3502 §6's example: two messages in one APPEND; RFC 6855 §4's
/// UTF8 data item.
#[test]
fn multiappend_and_utf8_append() {
    let two = "A003 APPEND saved-messages (\\Seen) {329}\r\n".to_string()
        + &"a".repeat(329)
        + " (\\Seen) \" 7-Feb-1994 22:43:04 -0800\" {295}\r\n"
        + &"b".repeat(295)
        + "\r\n";
    match parse(&two) {
        Command::Append { mailbox, messages } => {
            assert_eq!(mailbox, b"saved-messages");
            assert_eq!(messages.len(), 2);
            assert_eq!(messages[0].message.len(), 329);
            assert_eq!(messages[0].date, None);
            assert_eq!(messages[1].message.len(), 295);
            assert_eq!(messages[1].date, Some(760_689_784));
            assert!(messages.iter().all(|m| m.flags == ["\\Seen"] && !m.utf8));
        }
        other => panic!("{other:?}"),
    }
    match parse("a APPEND INBOX UTF8 (~{5}\r\nhi\u{e9}!)\r\n") {
        Command::Append { messages, .. } => {
            assert!(messages[0].utf8);
            assert_eq!(messages[0].message, "hi\u{e9}!".as_bytes());
        }
        other => panic!("{other:?}"),
    }
    // RFC 4469 §5's example, with a second URL form.
    match parse(
        "A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;SECTION=HEADER\" TEXT {42+}\r\n\r\n--------------030308070208000400050907\r\n URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;SECTION=1.MIME\")\r\n",
    ) {
        Command::Append { messages, .. } => {
            let parts = &messages[0].catenate;
            assert_eq!(parts.len(), 3);
            assert!(matches!(&parts[1], CatPart::Text(t) if t.len() == 42));
            assert!(matches!(&parts[2], CatPart::Url(u) if u.ends_with("SECTION=1.MIME")));
            assert!(messages[0].message.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(bad("a APPEND INBOX CATENATE (BOGUS x)\r\n").contains("CATENATE"));
    // A UTF8 item must be closed, and an APPEND needs a message.
    assert!(bad("a APPEND INBOX UTF8 (~{2}\r\nhi\r\n").contains("')'"));
    assert!(bad("a APPEND INBOX\r\n").contains("message"));
}

/// Found by the imap_command fuzz target: the client's words (an unknown
/// command, an unknown search key) were echoed whole, so a BAD line grew
/// with whatever the client sent.
#[test]
fn bad_texts_echo_the_client_only_in_part() {
    let text = bad(&format!("a AUTH{}\r\n", "E".repeat(5000)));
    assert!(text.starts_with("unknown command AUTHEEE"), "{text}");
    assert!(text.chars().count() <= 121, "{text}");
    let text = bad(&format!("a SEARCH H{}\r\n", "1:4,".repeat(500)));
    assert!(text.starts_with("unknown search key H1:4"), "{text}");
    assert!(text.chars().count() <= 121, "{text}");
}

#[test]
fn bad_commands_say_why() {
    assert!(bad("a FROB\r\n").contains("unknown command FROB"));
    assert!(bad("a FETCH 0 FLAGS\r\n").contains("start at 1"));
    assert!(bad("a FETCH *:x FLAGS\r\n").contains("sequence set"));
    assert!(bad("a LOGIN \"joe\r\n").contains("unterminated"));
    assert!(bad("a SELECT\r\n").contains("expected a space"));
    assert!(bad("a NOOP extra\r\n").contains("end of the command"));
    assert_eq!(parse_request(b"+ NOOP\r\n").unwrap_err().0, None);
    // Reversed ranges are valid.
    assert!(parse_request(b"a FETCH 5:2 FLAGS\r\n").is_ok());
}

#[test]
fn random_input_never_panics() {
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let alphabet = b"aA01 ()[]<>{}*%\\\"+-.:,$~\r\nFETCHSEARCHUIDBODY";
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let len = (seed % 60) as usize;
        let mut line = b"t ".to_vec();
        let mut s = seed;
        for _ in 0..len {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            line.push(alphabet[(s >> 33) as usize % alphabet.len()]);
        }
        line.extend_from_slice(b"\r\n");
        let _ = parse_request(&line);
    }
}

#[test]
fn deep_nesting_is_refused() {
    let mut line = String::from("a SEARCH ");
    line.push_str(&"(".repeat(100));
    line.push_str("ALL");
    line.push_str(&")".repeat(100));
    line.push_str("\r\n");
    assert!(bad(&line).contains("nested"));
}

/// RFC 7162's examples of the CONDSTORE forms (§3.1.3-3.1.5, §3.1.8).
#[test]
fn condstore_forms() {
    assert_eq!(
        parse("a SELECT INBOX (CONDSTORE)\r\n"),
        Command::Select {
            mailbox: b"INBOX".to_vec(),
            read_only: false,
            condstore: true,
            qresync: None,
        }
    );
    match parse("a103 UID STORE 6,4,8 (UNCHANGEDSINCE 12121230045) +FLAGS.SILENT (\\Deleted)\r\n") {
        Command::Store {
            uid: true,
            silent: true,
            op: StoreOp::Add,
            unchanged_since: Some(12121230045),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    // UNCHANGEDSINCE 0 is allowed (it fails every message).
    match parse("a STORE 1 (UNCHANGEDSINCE 0) FLAGS (\\Seen)\r\n") {
        Command::Store {
            unchanged_since: Some(0),
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse("s100 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n"),
        Command::Fetch {
            uid: true,
            set: SequenceSet::Ranges(vec![(SeqBound::Num(1), SeqBound::Star)]),
            attrs: vec![FetchAttr::Flags],
            changed_since: Some(12345),
            vanished: false,
        }
    );
    assert_eq!(
        parse("a FETCH 1 (MODSEQ)\r\n"),
        Command::Fetch {
            uid: false,
            set: SequenceSet::Ranges(vec![(SeqBound::Num(1), SeqBound::Num(1))]),
            attrs: vec![FetchAttr::ModSeq],
            changed_since: None,
            vanished: false,
        }
    );
    match parse("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338\r\n") {
        Command::Search { key, .. } => assert_eq!(format!("{key:?}"), "ModSeq(620162338)"),
        other => panic!("{other:?}"),
    }
    for bad in [
        "a FETCH 1 FLAGS (CHANGEDSINCE 0)\r\n",
        "a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)\r\n",
        "a SELECT INBOX (QRESYNC-SOMETHING)\r\n",
        "a STORE 1 (FROBNICATE 1) FLAGS (\\Seen)\r\n",
        "a SEARCH MODSEQ \"/flags/\\\\draft\" nobody 1\r\n",
    ] {
        assert!(parse_request(bad.as_bytes()).is_err(), "{bad}");
    }
}

/// RFC 7162 §3.2.5-3.2.6: SELECT's QRESYNC parameter and UID FETCH's
/// VANISHED modifier.
#[test]
fn qresync_forms() {
    match parse("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n") {
        Command::Select {
            qresync: Some(params),
            ..
        } => {
            assert_eq!(params.uid_validity, 67890007);
            assert_eq!(params.modseq, 20050715194045000);
            let known = params.known_uids.unwrap();
            assert!(known.contains(41, 600) && known.contains(300, 600));
            assert!(!known.contains(42, 600) && !known.contains(600, 600));
        }
        other => panic!("{other:?}"),
    }
    // With sequence match data, and with neither optional part.
    match parse(
        "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))\r\n",
    ) {
        Command::Select {
            qresync: Some(params),
            ..
        } => assert_eq!(params.modseq, 90060115194045000),
        other => panic!("{other:?}"),
    }
    match parse("a EXAMINE INBOX (QRESYNC (1 2))\r\n") {
        Command::Select {
            read_only: true,
            qresync: Some(params),
            ..
        } => assert!(params.known_uids.is_none()),
        other => panic!("{other:?}"),
    }
    match parse("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n") {
        Command::Fetch {
            uid: true,
            changed_since: Some(12345),
            vanished: true,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    for bad in [
        // VANISHED needs UID FETCH and CHANGEDSINCE.
        "a FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n",
        "a UID FETCH 1:* (FLAGS) (VANISHED)\r\n",
        // UIDVALIDITY is non-zero, the mod-sequence present.
        "a SELECT INBOX (QRESYNC (0 5))\r\n",
        "a SELECT INBOX (QRESYNC (5))\r\n",
        "a SELECT INBOX (QRESYNC (1 2 3:4 (1:2)))\r\n",
    ] {
        assert!(parse_request(bad.as_bytes()).is_err(), "{bad}");
    }
}

/// RFC 5256 §3's SORT examples, RFC 5957's display keys, and bad forms.
#[test]
fn sort_forms() {
    match parse("A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL\r\n") {
        Command::Sort {
            uid: false,
            ret: None,
            criteria,
            charset,
            key: SearchKey::All,
        } => {
            assert_eq!(charset, "UTF-8");
            assert_eq!(
                criteria,
                vec![
                    SortCriterion {
                        key: SortKey::Subject,
                        reverse: false
                    },
                    SortCriterion {
                        key: SortKey::Date,
                        reverse: true
                    }
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    match parse("A284 UID SORT (DISPLAYFROM) us-ascii TEXT \"not in mailbox\"\r\n") {
        Command::Sort {
            uid: true,
            charset,
            key: SearchKey::Text(text),
            ..
        } => assert_eq!(
            (charset.as_str(), text.as_str()),
            ("US-ASCII", "not in mailbox")
        ),
        other => panic!("{other:?}"),
    }
    for bad in [
        "a SORT () UTF-8 ALL\r\n",
        "a SORT (SUBJECT) ALL\r\n",
        "a SORT (REVERSE) UTF-8 ALL\r\n",
        "a SORT SUBJECT UTF-8 ALL\r\n",
    ] {
        assert!(parse_request(bad.as_bytes()).is_err(), "{bad}");
    }
}
