//! The IMAP framing and command parser: any bytes, taken as one command with
//! literals inline and as the wire brings them (lines, then the literals
//! they announce, under the server's limits). The parser answers Ok or Err,
//! never panics; a parsed tag is the tag `parse_tag` finds, and a BAD
//! answer's text is one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox_imap::fuzzing::frame;
use pillarbox_imap::parse::{parse_request, parse_tag};

fn check(command: &[u8]) {
    match parse_request(command) {
        Ok(request) => {
            assert!(!request.tag.is_empty() && !request.tag.contains('+'));
            assert_eq!(parse_tag(command).as_deref(), Some(request.tag.as_str()));
            let _ = request.command.name();
        }
        Err((tag, error)) => {
            if let Some(tag) = tag {
                assert_eq!(parse_tag(command), Some(tag));
            }
            // The text goes after `tag BAD ` on one line.
            assert!(
                !error.0.contains(['\r', '\n']),
                "line break in {:?}",
                error.0
            );
            assert!(error.0.len() < 300, "long error text {:?}", error.0);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some((command, _)) = frame(data) {
        check(&command);
    }
});
