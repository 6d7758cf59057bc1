//! SEARCH: the first byte gives the message's flags, then come search
//! criteria as the wire brings them (a line and the literals it announces),
//! then a message. The criteria are parsed as `t SEARCH <criteria>` and
//! evaluated against the message in IMAP4rev1 and IMAP4rev2 modes. Nothing
//! panics; NOT inverts the answer; and a matching message passes the
//! condition the store checks first (else SEARCH would miss it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox_imap::fuzzing::{SearchOutcome, flags_from_bits, frame, search};
use pillarbox_imap::parse::{Command, SearchKey, parse_request};
use pillarbox_store::TextFilter;

/// Case-insensitive ASCII substring test, as SQL LIKE (SQLite) and ILIKE
/// (PostgreSQL, C locale) do it, with the exact-check way out the store
/// gives rows holding U+0130 or U+212A.
fn like(haystack: &str, needle: &str) -> bool {
    let lower = needle.to_ascii_lowercase();
    haystack.to_ascii_lowercase().contains(&lower)
        || (lower.contains('i') && haystack.contains('\u{130}'))
        || (lower.contains('k') && haystack.contains('\u{212a}'))
}

/// Whether the store's filter lets the message through.
fn passes(filter: &TextFilter, outcome: &SearchOutcome) -> bool {
    match filter {
        TextFilter::Header(needle) => like(&outcome.fields, needle),
        TextFilter::Body(needle) => like(&outcome.body, needle),
        TextFilter::And(all) => all.iter().all(|f| passes(f, outcome)),
        TextFilter::Or(any) => any.is_empty() || any.iter().any(|f| passes(f, outcome)),
    }
}

fuzz_target!(|data: &[u8]| {
    let [bits, rest @ ..] = data else {
        return;
    };
    let Some((criteria, message)) = frame(rest) else {
        return;
    };
    let mut command = b"t SEARCH ".to_vec();
    command.extend_from_slice(&criteria);
    let Ok(request) = parse_request(&command) else {
        return;
    };
    let Command::Search { key, .. } = request.command else {
        return;
    };
    let flags = flags_from_bits(*bits);
    let date = 1_700_000_000 + i64::from(*bits) * 86_400;
    for rev2 in [false, true] {
        let outcome = search(&key, message, flags.clone(), date, rev2);
        if outcome.matches
            && let Some(filter) = &outcome.prefilter
        {
            assert!(
                passes(filter, &outcome),
                "the store's filter {filter:?} drops a matching message: {outcome:?}"
            );
        }
        let not = SearchKey::Not(Box::new(key.clone()));
        let inverted = search(&not, message, flags.clone(), date, rev2);
        assert_eq!(inverted.matches, !outcome.matches, "NOT of {key:?}");
    }
});
