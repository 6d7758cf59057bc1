//! The SMTP command parser (RFC 5321 §4.1): any line gives a command or a
//! 5xx reply whose text is one line. A parsed command written back as a
//! line parses to the same command, and paths hold no control characters,
//! spaces or angle brackets (they end up in stored trace headers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox_smtp::{Command, parse};

type Params = [(String, Option<String>)];

fn path(verb: &str, address: &str, params: &Params) -> String {
    assert!(
        !address
            .chars()
            .any(|c| c.is_control() || matches!(c, ' ' | '<' | '>')),
        "{address:?}"
    );
    let mut line = format!("{verb}:<{address}>");
    for (key, value) in params {
        line.push(' ');
        line.push_str(key);
        if let Some(value) = value {
            line.push('=');
            line.push_str(value);
        }
    }
    line
}

/// The command as a client would write it.
fn line(command: &Command) -> String {
    match command {
        Command::Ehlo(name) => format!("EHLO {name}"),
        Command::Helo(name) => format!("HELO {name}"),
        Command::Mail { from, params } => path("MAIL FROM", from, params),
        Command::Rcpt { to, params } => path("RCPT TO", to, params),
        Command::Data => "DATA".into(),
        Command::Bdat { size, last: false } => format!("BDAT {size}"),
        Command::Bdat { size, last: true } => format!("BDAT {size} LAST"),
        Command::Rset => "RSET".into(),
        Command::Noop => "NOOP".into(),
        Command::Quit => "QUIT".into(),
        Command::Vrfy => "VRFY".into(),
        Command::Help => "HELP".into(),
        Command::StartTls => "STARTTLS".into(),
        Command::Auth {
            mechanism,
            initial: None,
        } => format!("AUTH {mechanism}"),
        Command::Auth {
            mechanism,
            initial: Some(initial),
        } => format!("AUTH {mechanism} {initial}"),
    }
}

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(command) => {
            let written = format!("{}\r\n", line(&command));
            assert_eq!(parse(written.as_bytes()), Ok(command), "{written:?}");
        }
        Err(reject) => {
            assert!((500..600).contains(&reject.0), "{reject:?}");
            assert!(!reject.2.contains(['\r', '\n']), "{reject:?}");
        }
    }
});
