//! Each invariant fails when fed the responses of a server that breaks it,
//! and stays quiet for one that keeps it.

use super::*;
use crate::stress::model::SelectedModel;
use crate::stress::wire::{Response, parse};

fn key() -> MailboxKey {
    MailboxKey::new("a@example.test", "INBOX")
}

fn ctx(name: &'static str) -> CommandContext {
    CommandContext {
        name,
        forbids_expunge: CommandContext::forbids_expunge(name),
        sent_at: 1,
        target: None,
    }
}

/// A session that selected the mailbox at clock 10.
fn session(id: u64, read_only: bool) -> SessionModel {
    let mut model = SessionModel::new(id, format!("s{id}"), "a@example.test");
    model.selected = Some(SelectedModel::new(key(), read_only, 10));
    model
}

fn feed(
    model: &mut SessionModel,
    world: &mut World,
    name: &'static str,
    lines: &[&str],
) -> Vec<Rule> {
    let mut rules = Vec::new();
    for line in lines {
        let raw = format!("{line}\r\n");
        let Ok(Response::Untagged(response)) = parse(raw.as_bytes()) else {
            panic!("not an untagged response: {line}");
        };
        rules.extend(
            apply(model, world, &ctx(name), &response)
                .into_iter()
                .map(|f| f.rule),
        );
    }
    rules
}

const SELECTED: &[&str] = &[
    "* 3 EXISTS",
    "* FLAGS (\\Seen \\Deleted $Label1)",
    "* 1 FETCH (UID 5 FLAGS ($Label1))",
    "* 2 FETCH (UID 7 FLAGS ())",
    "* 3 FETCH (UID 9 FLAGS (\\Seen))",
];

#[test]
fn a_session_that_follows_exists_and_expunge_breaks_nothing() {
    let mut world = World::default();
    let mut s = session(1, false);
    assert_eq!(feed(&mut s, &mut world, "FETCH", SELECTED), vec![]);
    let rules = feed(
        &mut s,
        &mut world,
        "NOOP",
        &[
            "* 2 EXPUNGE",
            "* 2 FETCH (UID 9 FLAGS (\\Seen $Label1))",
            "* 3 EXISTS",
            "* 3 FETCH (UID 12 FLAGS ())",
        ],
    );
    assert_eq!(rules, vec![]);
    let sel = s.selected.as_ref().expect("selected");
    assert_eq!(sel.uids, vec![Some(5), Some(9), Some(12)]);
    assert!(sel.flags[&9].contains("$label1"));
    assert!(world.mailboxes[&key()].uids[&7].expunged_at.is_some());
}

#[test]
fn sequence_numbers_that_drift_from_what_the_session_was_told_are_found() {
    let mut world = World::default();
    let mut s = session(1, false);
    feed(&mut s, &mut world, "FETCH", SELECTED);
    assert_eq!(
        feed(&mut s, &mut world, "NOOP", &["* 2 FETCH (UID 9 FLAGS ())"]),
        vec![Rule::SequenceMismatch]
    );
    assert_eq!(
        feed(&mut s, &mut world, "NOOP", &["* 4 FETCH (UID 20 FLAGS ())"]),
        vec![Rule::SequenceOutOfRange]
    );
    assert_eq!(
        feed(&mut s, &mut world, "NOOP", &["* 5 EXPUNGE"]),
        vec![Rule::SequenceOutOfRange]
    );
    assert_eq!(
        feed(&mut s, &mut world, "NOOP", &["* 2 EXISTS"]),
        vec![Rule::ExistsShrank]
    );
}

#[test]
fn uids_must_ascend_with_sequence_numbers() {
    let mut world = World::default();
    let mut s = session(1, false);
    let rules = feed(
        &mut s,
        &mut world,
        "FETCH",
        &["* 3 EXISTS", "* 1 FETCH (UID 5)", "* 3 FETCH (UID 4)"],
    );
    assert_eq!(rules, vec![Rule::UidOrder]);
}

#[test]
fn expunge_is_refused_while_fetch_store_or_search_is_answered() {
    let mut world = World::default();
    let mut s = session(1, false);
    feed(&mut s, &mut world, "FETCH", SELECTED);
    assert_eq!(
        feed(&mut s, &mut world, "FETCH", &["* 1 EXPUNGE"]),
        vec![Rule::ExpungeDuringFetch]
    );
    assert_eq!(
        feed(&mut s, &mut world, "UID FETCH", &["* 1 EXPUNGE"]),
        vec![]
    );
}

#[test]
fn a_uid_shown_with_another_message_or_after_its_expunge_is_found() {
    let mut world = World::default();
    let k = key();
    assert!(world.see_uid(&k, 5, Some("<a@x>"), 0).is_empty());
    assert!(world.see_uid(&k, 5, Some("<a@x>"), 0).is_empty());
    let rules: Vec<Rule> = world
        .see_uid(&k, 5, Some("<b@x>"), 0)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, vec![Rule::UidReused]);
    world.clock = 3;
    world.expunged(&k, 6);
    // A session that selected before the expunge was seen may still show it.
    assert!(world.see_uid(&k, 6, None, 2).is_empty());
    let rules: Vec<Rule> = world
        .see_uid(&k, 6, None, 4)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, vec![Rule::ExpungedUidReturned]);
    let rules: Vec<Rule> = world
        .new_uid(&k, 6, (0, 0))
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, vec![Rule::UidReused]);
}

#[test]
fn new_uids_and_uidnext_only_grow() {
    let mut world = World::default();
    let k = key();
    assert!(world.new_uid(&k, 8, (7, 8)).is_empty());
    let rules: Vec<Rule> = world
        .new_uid(&k, 7, (7, 0))
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, vec![Rule::UidNotNew]);
    assert!(world.see_uid_next(&k, 9, (8, 9)).is_empty());
    let rules: Vec<Rule> = world
        .see_uid_next(&k, 8, (8, 9))
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, vec![Rule::UidNextWentBack, Rule::UidNextWentBack]);
    assert!(world.see_uid_validity(&k, 100).is_empty());
    let rules: Vec<Rule> = world
        .see_uid_validity(&k, 101)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, vec![Rule::UidValidityChanged]);
}

#[test]
fn bytes_envelope_and_size_of_a_uid_never_change() {
    let mut world = World::default();
    let k = key();
    assert!(world.see_body(&k, 1, b"abc", "BODY[]").is_empty());
    assert!(world.see_size(&k, 1, 3, "RFC822.SIZE").is_empty());
    let rules: Vec<Rule> = world
        .see_body(&k, 1, b"abd", "POP3 RETR")
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, vec![Rule::ContentChanged]);
    let rules: Vec<Rule> = world
        .see_size(&k, 1, 4, "RFC822.SIZE")
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, vec![Rule::ContentChanged, Rule::SizeMismatch]);
    let mut s = session(1, false);
    let envelope = |subject: &str| {
        format!("* 1 FETCH (UID 1 ENVELOPE (NIL \"{subject}\" NIL NIL NIL NIL NIL NIL NIL NIL))")
    };
    let first = envelope("a");
    let second = envelope("b");
    feed(&mut s, &mut world, "FETCH", &["* 1 EXISTS"]);
    assert_eq!(feed(&mut s, &mut world, "FETCH", &[first.as_str()]), vec![]);
    assert_eq!(
        feed(&mut s, &mut world, "FETCH", &[second.as_str()]),
        vec![Rule::ContentChanged]
    );
}

#[test]
fn a_keyword_needs_a_flags_response_first() {
    let mut world = World::default();
    let mut s = session(1, false);
    feed(&mut s, &mut world, "FETCH", SELECTED);
    let rules = feed(
        &mut s,
        &mut world,
        "STORE",
        &[
            "* 1 FETCH (FLAGS ($Label1 $Label2))",
            "* 2 FETCH (FLAGS ($Label2))",
        ],
    );
    // Once per keyword and session.
    assert_eq!(rules, vec![Rule::KeywordNotAnnounced]);
    let rules = feed(
        &mut s,
        &mut world,
        "STORE",
        &[
            "* FLAGS (\\Seen \\Deleted $Label1 $Label3)",
            "* 3 FETCH (FLAGS ($Label3))",
        ],
    );
    assert_eq!(rules, vec![]);
}

#[test]
fn recent_in_two_read_write_sessions_is_found_once() {
    let mut world = World::default();
    let mut a = session(1, false);
    let mut b = session(2, false);
    let mut reader = session(3, true);
    let lines = ["* 1 EXISTS", "* 1 FETCH (UID 5 FLAGS (\\Recent))"];
    assert_eq!(feed(&mut a, &mut world, "NOOP", &lines), vec![]);
    assert_eq!(feed(&mut a, &mut world, "NOOP", &lines[1..]), vec![]);
    assert_eq!(feed(&mut reader, &mut world, "NOOP", &lines), vec![]);
    assert_eq!(
        feed(&mut b, &mut world, "NOOP", &lines),
        vec![Rule::RecentInTwoSessions]
    );
    assert_eq!(feed(&mut b, &mut world, "NOOP", &lines[1..]), vec![]);
}

#[test]
fn search_hits_are_messages_the_session_has() {
    let mut world = World::default();
    let mut s = session(1, false);
    feed(&mut s, &mut world, "FETCH", SELECTED);
    assert_eq!(
        feed(&mut s, &mut world, "SEARCH", &["* SEARCH 1 3"]),
        vec![]
    );
    assert_eq!(
        feed(&mut s, &mut world, "SEARCH", &["* SEARCH 1 4"]),
        vec![Rule::SequenceOutOfRange]
    );
    assert_eq!(
        feed(&mut s, &mut world, "UID SEARCH", &["* SEARCH 5 9"]),
        vec![]
    );
    assert_eq!(
        feed(&mut s, &mut world, "UID SEARCH", &["* SEARCH 6"]),
        vec![Rule::SequenceOutOfRange]
    );
}

#[test]
fn two_pop3_sessions_holding_one_maildrop_are_found() {
    let mut world = World::default();
    let pass_a = world.tick();
    assert!(world.pop3_login("a", 1, pass_a).is_empty());
    // B sent PASS after A had the lock; A has not sent QUIT.
    let pass_b = world.tick();
    let rules: Vec<Rule> = world
        .pop3_login("a", 2, pass_b)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, vec![Rule::Pop3LockShared]);
    world.pop3_logout("a", 1);
    world.pop3_logout("a", 2);
    // C's PASS was sent before D got the lock: the order is not known, no finding.
    let pass_c = world.tick();
    assert!(world.pop3_login("a", 4, world.clock).is_empty());
    world.pop3_logout("a", 4);
    assert!(world.pop3_login("a", 3, pass_c).is_empty());
    assert!(world.pop3_login("b", 5, world.clock).is_empty());
}
