//! The LIST/LSUB pattern matcher: a pattern and a mailbox name (UTF-8,
//! separated by the first newline). Its answer must equal that of a
//! dynamic-programming matcher written from RFC 9051 §6.3.9 (`*` matches
//! anything, `%` anything but the hierarchy delimiter), in time and stack
//! linear in the input, whatever the pattern.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox_imap::fuzzing::list_matches;
use pillarbox_store::DELIMITER;

/// Whether `pattern` matches all of `name`: after each pattern character,
/// which prefixes of the name the pattern so far matches.
fn reference(pattern: &[char], name: &[char]) -> bool {
    let mut matched = vec![false; name.len() + 1];
    matched[0] = true;
    for &p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            '*' => {
                let mut any = false;
                for j in 0..=name.len() {
                    any |= matched[j];
                    next[j] = any;
                }
            }
            '%' => {
                let mut any = false;
                for j in 0..=name.len() {
                    if j > 0 && name[j - 1] == DELIMITER {
                        any = false;
                    }
                    any |= matched[j];
                    next[j] = any;
                }
            }
            c => {
                for j in 0..name.len() {
                    next[j + 1] = matched[j] && name[j] == c;
                }
            }
        }
        matched = next;
    }
    matched[name.len()]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, name) = text.split_once('\n').unwrap_or((text, ""));
    let expected = reference(
        &pattern.chars().collect::<Vec<_>>(),
        &name.chars().collect::<Vec<_>>(),
    );
    assert_eq!(
        list_matches(pattern, name),
        expected,
        "pattern {pattern:?} name {name:?}"
    );
});
