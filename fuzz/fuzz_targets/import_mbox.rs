//! The mbox reader of `pillarbox import`: any bytes. Every `From ` line
//! starts a message; messages have CRLF line ends only; and the messages
//! written back as an mboxrd file (as `pillarbox export` writes one) read
//! back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox::import::mbox::{Message, messages};

fn read(data: &[u8]) -> Vec<Message> {
    messages(data)
        .collect::<std::io::Result<Vec<_>>>()
        .unwrap_or_else(|e| panic!("reading from memory failed: {e}"))
}

/// An mboxrd file of `messages`: a `From ` line, the message with `>`
/// added before each `>*From ` line, and a blank line.
fn write(messages: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for message in messages {
        out.extend_from_slice(b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\r\n");
        for line in message.raw.split_inclusive(|b| *b == b'\n') {
            if line
                .iter()
                .skip_while(|b| **b == b'>')
                .take(5)
                .eq(b"From ".iter())
            {
                out.push(b'>');
            }
            out.extend_from_slice(line);
        }
        if !message.raw.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let messages = read(data);
    let starts = data
        .split(|b| *b == b'\n')
        .filter(|line| line.starts_with(b"From "))
        .count();
    assert_eq!(messages.len(), starts);
    let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
    let total: usize = messages.iter().map(|m| m.raw.len()).sum();
    assert!(
        total <= data.len() + lines,
        "{total} octets from {}",
        data.len()
    );
    for message in &messages {
        for (i, b) in message.raw.iter().enumerate() {
            assert!(
                *b != b'\n' || (i > 0 && message.raw[i - 1] == b'\r'),
                "bare LF"
            );
        }
    }
    let again = read(&write(&messages));
    assert_eq!(again.len(), messages.len());
    for (first, second) in messages.iter().zip(&again) {
        assert_eq!(first.raw, second.raw);
        assert!(second.flags.is_empty(), "{:?}", second.flags);
    }
});
