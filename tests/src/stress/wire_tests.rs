//! The response framing and parser on RFC-shaped and malformed input.

use super::*;

#[test]
fn a_response_ends_after_its_literals() {
    let two = b"* 1 FETCH (BODY[] {5}\r\nab\ncd UID 3)\r\n* 2 EXISTS\r\n";
    let first = complete_len(two).expect("complete");
    assert_eq!(&two[..first], b"* 1 FETCH (BODY[] {5}\r\nab\ncd UID 3)\r\n");
    assert_eq!(complete_len(&two[..20]), None);
    assert_eq!(complete_len(b"* 1 FETCH (BODY[] {5}\r\nab"), None);
    assert_eq!(complete_len(b"a OK done\r\n"), Some(11));
}

#[test]
fn fetch_items_with_literals_sections_and_flags() {
    let raw =
        b"* 3 FETCH (UID 17 FLAGS (\\Seen $Label1) BODY[HEADER.FIELDS (MESSAGE-ID)] {4}\r\nab\r\n RFC822.SIZE 44)\r\n";
    let Ok(Response::Untagged(Untagged::Fetch { seq, items })) = parse(raw) else {
        panic!("a FETCH: {:?}", parse(raw));
    };
    assert_eq!(seq, 3);
    assert_eq!(item(&items, "UID"), Some(&Value::Atom("17".into())));
    assert_eq!(
        item(&items, "FLAGS"),
        Some(&Value::List(vec![
            Value::Atom("\\Seen".into()),
            Value::Atom("$Label1".into())
        ]))
    );
    assert_eq!(
        item(&items, "BODY[HEADER.FIELDS (MESSAGE-ID)]"),
        Some(&Value::Str(b"ab\r\n".to_vec()))
    );
    assert_eq!(
        item(&items, "RFC822.SIZE").and_then(Value::as_number),
        Some(44)
    );
}

#[test]
fn envelope_with_quoted_escapes_and_nil() {
    let raw = b"* 1 FETCH (ENVELOPE (\"Mon, 7 Feb 1994\" \"a \\\"b\\\"\" NIL NIL NIL NIL NIL NIL NIL \"<x@y>\"))\r\n";
    let Ok(Response::Untagged(Untagged::Fetch { items, .. })) = parse(raw) else {
        panic!("a FETCH");
    };
    let envelope = item(&items, "ENVELOPE")
        .and_then(Value::as_list)
        .expect("list");
    assert_eq!(envelope[1], Value::Str(b"a \"b\"".to_vec()));
    assert_eq!(envelope[2], Value::Nil);
    assert_eq!(envelope[9].as_text().as_deref(), Some("<x@y>"));
}

#[test]
fn tagged_untagged_and_codes() {
    assert_eq!(
        parse(b"a7 NO [EXPUNGEISSUED] Some messages were expunged\r\n"),
        Ok(Response::Tagged {
            tag: "a7".into(),
            status: Status::No,
            code: Some(Code {
                name: "EXPUNGEISSUED".into(),
                args: String::new()
            }),
            text: "Some messages were expunged".into(),
        })
    );
    let Ok(Response::Tagged {
        code: Some(code), ..
    }) = parse(b"a1 OK [COPYUID 9 3:4,1 10:12] done\r\n")
    else {
        panic!("tagged with a code");
    };
    assert_eq!(code.copy_uid(), Some((9, vec![(3, 10), (4, 11), (1, 12)])));
    assert_eq!(
        parse(b"* 4 EXPUNGE\r\n"),
        Ok(Response::Untagged(Untagged::Expunge(4)))
    );
    assert_eq!(
        parse(b"* FLAGS (\\Seen $Label2)\r\n"),
        Ok(Response::Untagged(Untagged::Flags(vec![
            "\\Seen".into(),
            "$Label2".into()
        ])))
    );
    assert_eq!(
        parse(b"* STATUS Work (MESSAGES 3 UIDNEXT 9)\r\n"),
        Ok(Response::Untagged(Untagged::Status {
            mailbox: "Work".into(),
            items: vec![("MESSAGES".into(), 3), ("UIDNEXT".into(), 9)]
        }))
    );
    assert_eq!(
        parse(b"* ESEARCH (TAG \"a\") UID ALL 1:3,7 COUNT 4\r\n"),
        Ok(Response::Untagged(Untagged::Esearch {
            uid: true,
            all: vec![1, 2, 3, 7]
        }))
    );
    assert_eq!(
        parse(b"* VANISHED (EARLIER) 5:6\r\n"),
        Ok(Response::Untagged(Untagged::Vanished {
            earlier: true,
            uids: vec![5, 6]
        }))
    );
    assert_eq!(
        parse(b"+ idling\r\n"),
        Ok(Response::Continuation("idling".into()))
    );
}

#[test]
fn malformed_responses_are_errors_not_panics() {
    for raw in [
        &b"* 1 FETCH (UID\r\n"[..],
        b"* 1 FETCH (BODY[] {99}\r\nab)\r\n",
        b"* 1 FETCH (\"open\r\n",
        b"a1 MAYBE\r\n",
        b"* 1 FETCH UID 3\r\n",
    ] {
        assert!(parse(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
    }
    assert_eq!(uid_set("1:4294967295"), None);
}
