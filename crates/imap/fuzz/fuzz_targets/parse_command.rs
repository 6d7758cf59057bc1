//! Any bytes, as a complete command with literals inline: the parser must
//! answer Ok or Err, never panic, loop or allocate beyond the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = pillarbox_imap::parse::parse_request(data);
    let _ = pillarbox_imap::parse::parse_tag(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pillarbox_imap::mutf7::decode(text);
    }
});
