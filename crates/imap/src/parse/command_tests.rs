//! The RFCs' command examples and bad input, as unit tests of the parser.
use super::*;
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
            read_only: false
        }
    );
    assert_eq!(
        parse("A003 CREATE owatagusiam/\r\n"),
        Command::Create(b"owatagusiam/".to_vec())
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
            flags: vec!["\\Deleted".into()]
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
            attrs: vec![FetchAttr::Flags]
        }
    );
    // RFC 9051 §6.3.12 APPEND with a synchronizing literal.
    let append = "A003 APPEND saved-messages (\\Seen) {14}\r\nHello Joe!\r\n\r\n";
    match parse(append) {
        Command::Append {
            mailbox,
            flags,
            date,
            message,
        } => {
            assert_eq!(mailbox, b"saved-messages");
            assert_eq!(flags, vec!["\\Seen".to_string()]);
            assert_eq!(date, None);
            assert_eq!(message, b"Hello Joe!\r\n\r\n");
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
