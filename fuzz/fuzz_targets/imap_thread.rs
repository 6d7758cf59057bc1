//! SORT's base subject and THREAD=REFERENCES over arbitrary headers: lines
//! `message-id|references|subject`. Whatever the headers (loops, duplicate
//! and missing IDs, deep chains), the answer names every message exactly
//! once, its parentheses balance, and a base subject never grows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox_imap::fuzzing::thread_references;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (threads, subjects) = thread_references(text);
    let count = text.lines().take(2_000).count();
    let mut seen: Vec<u32> = threads
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (1..=count as u32).collect::<Vec<_>>(), "{threads}");
    let mut depth = 0i64;
    for c in threads.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        assert!(depth >= 0, "{threads}");
    }
    assert_eq!(depth, 0, "{threads}");
    for (line, base) in text.lines().zip(&subjects) {
        let subject = line.splitn(3, '|').nth(2).unwrap_or_default();
        assert!(base.len() <= subject.len(), "{subject:?} -> {base:?}");
    }
});
