//! The Maildir reader of `pillarbox import`: a file name, a
//! `dovecot-keywords` file and a message file (separated by NUL). Flags
//! from the name are system flags or defined keywords that IMAP can write;
//! the message gets CRLF line ends with nothing else changed; and the store
//! can parse the result (as delivery does).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox::import::maildir::{flags_of, parse_keywords, to_crlf};
use pillarbox_fuzz::assert_keyword_atom;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let name = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let keywords_file = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let message = parts.next().unwrap_or_default();

    let keywords = parse_keywords(&keywords_file);
    assert_eq!(keywords.len(), 26);
    let flags = flags_of(&name, &keywords);
    for keyword in flags.keywords() {
        assert!(keywords.contains(keyword), "{keyword:?}");
        assert_keyword_atom(keyword);
    }

    let crlf = to_crlf(message);
    let bare_lfs = message
        .iter()
        .enumerate()
        .filter(|(i, b)| **b == b'\n' && (*i == 0 || message[i - 1] != b'\r'))
        .count();
    assert_eq!(crlf.len(), message.len() + bare_lfs);
    let mut i = 0;
    let restored: Vec<u8> = crlf
        .iter()
        .copied()
        .filter(|b| {
            i += 1;
            !(*b == b'\r' && crlf.get(i) == Some(&b'\n'))
        })
        .collect();
    let original: Vec<u8> = {
        let mut j = 0;
        message
            .iter()
            .copied()
            .filter(|b| {
                j += 1;
                !(*b == b'\r' && message.get(j) == Some(&b'\n'))
            })
            .collect()
    };
    assert_eq!(restored, original);
    let _ = pillarbox_store::meta::parse(&crlf);
});
