//! The POP3 command parser (RFC 1939, 2449, 5034): any line gives a command
//! or an error whose text is one line (it follows `-ERR `). A parsed
//! command written back as a line parses to the same command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pillarbox_pop3::parse::{Command, parse};

/// The command as a client would write it.
fn line(command: &Command) -> String {
    let optional = |verb: &str, n: &Option<u32>| match n {
        Some(n) => format!("{verb} {n}"),
        None => verb.to_string(),
    };
    match command {
        Command::User(name) => format!("USER {name}"),
        Command::Pass(password) => format!("PASS {password}"),
        Command::Auth {
            mechanism: None,
            initial: None,
        } => "AUTH".into(),
        Command::Auth {
            mechanism: Some(mechanism),
            initial: None,
        } => format!("AUTH {mechanism}"),
        Command::Auth {
            mechanism: Some(mechanism),
            initial: Some(initial),
        } => format!("AUTH {mechanism} {initial}"),
        Command::Auth {
            mechanism: None,
            initial: Some(_),
        } => panic!("an initial response without a mechanism: {command:?}"),
        Command::Capa => "CAPA".into(),
        Command::Stls => "STLS".into(),
        Command::Stat => "STAT".into(),
        Command::List(n) => optional("LIST", n),
        Command::Retr(n) => format!("RETR {n}"),
        Command::Dele(n) => format!("DELE {n}"),
        Command::Noop => "NOOP".into(),
        Command::Rset => "RSET".into(),
        Command::Quit => "QUIT".into(),
        Command::Top(n, lines) => format!("TOP {n} {lines}"),
        Command::Uidl(n) => optional("UIDL", n),
    }
}

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(command) => {
            let written = format!("{}\r\n", line(&command));
            assert_eq!(parse(written.as_bytes()), Ok(command), "{written:?}");
        }
        Err(error) => assert!(!error.0.contains(['\r', '\n']), "{error:?}"),
    }
});
