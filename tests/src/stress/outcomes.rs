//! Which answers other than success a valid command may get. The checker
//! only sends valid commands (mailboxes it made, sequence numbers the
//! session was told, flags the server offered), so everything else is a
//! failed command. The allowed list, and why:
//!
//! - IMAP FETCH, STORE, COPY, MOVE (and their UID forms) answered
//!   `NO [EXPUNGEISSUED]`: another session expunged a message named
//!   (RFC 9051 §7.1 EXPUNGEISSUED; RFC 2180 §4.1 lets a server refuse
//!   commands on messages expunged by others).
//! - POP3 `PASS` answered `-ERR [IN-USE]`: another POP3 session holds the
//!   maildrop's exclusive lock (RFC 1939 §4, §8; RFC 2449 §8.1.1).
//! - POP3 `RETR n` answered `-ERR` without a response code: the message
//!   listed at login was expunged since by IMAP (the maildrop is shared
//!   with IMAP; RFC 1939 has no way to withdraw a listed message). The
//!   checker then checks that the message is really gone at the end.
//!
//! Never allowed, whatever the command: `[SERVERBUG]`, `[UNAVAILABLE]`,
//! POP3 `[SYS/TEMP]`, SMTP 4xx/5xx, BAD, an unexpected BYE, a closed
//! connection, or no answer within the timeout.

use super::wire::{Code, Status};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// A valid outcome other than success: its kind for the report.
    Allowed(String),
    /// A failed command: its kind for the report.
    Failed(String),
}

fn code_text(code: Option<&Code>) -> String {
    code.map(|c| format!(" [{}]", c.name)).unwrap_or_default()
}

/// An IMAP tagged answer. `also` lists response codes this particular call
/// accepts (setup's CREATE accepts ALREADYEXISTS).
pub fn imap(command: &str, status: Status, code: Option<&Code>, also: &[&str]) -> Verdict {
    let name = code.map(|c| c.name.as_str()).unwrap_or("");
    if status == Status::Ok && !matches!(name, "SERVERBUG" | "UNAVAILABLE") {
        return Verdict::Ok;
    }
    let kind = format!("IMAP {command} {status}{}", code_text(code));
    let message_command = matches!(
        command,
        "FETCH" | "UID FETCH" | "STORE" | "UID STORE" | "COPY" | "UID COPY" | "MOVE" | "UID MOVE"
    );
    if status == Status::No
        && ((name == "EXPUNGEISSUED" && message_command) || also.contains(&name))
    {
        return Verdict::Allowed(kind);
    }
    Verdict::Failed(kind)
}

/// A POP3 answer (`+OK …` or `-ERR …`) to `command`.
pub fn pop3(command: &str, line: &str) -> Verdict {
    if line.starts_with("+OK") {
        return Verdict::Ok;
    }
    let rest = line.strip_prefix("-ERR").unwrap_or(line).trim_start();
    let code = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .map(|(c, _)| c.to_string());
    let kind = match &code {
        Some(c) => format!("POP3 {command} -ERR [{c}]"),
        None => format!("POP3 {command} -ERR"),
    };
    match (command, code.as_deref()) {
        ("PASS", Some("IN-USE")) => Verdict::Allowed(kind),
        ("RETR", None) if line.starts_with("-ERR") => {
            Verdict::Allowed(format!("{kind} (message deleted by another session)"))
        }
        _ => Verdict::Failed(kind),
    }
}

/// An SMTP reply to `command`, success when its code starts with `expect`.
pub fn smtp(command: &str, reply: &str, expect: char) -> Verdict {
    if reply.starts_with(expect) {
        Verdict::Ok
    } else {
        Verdict::Failed(format!(
            "SMTP {command} {}",
            reply.get(..3).unwrap_or(reply)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(name: &str) -> Code {
        Code {
            name: name.into(),
            args: String::new(),
        }
    }

    #[test]
    fn only_the_listed_refusals_are_allowed() {
        assert_eq!(imap("FETCH", Status::Ok, None, &[]), Verdict::Ok);
        assert!(matches!(
            imap("UID MOVE", Status::No, Some(&code("EXPUNGEISSUED")), &[]),
            Verdict::Allowed(_)
        ));
        assert!(matches!(
            imap("SELECT", Status::No, Some(&code("EXPUNGEISSUED")), &[]),
            Verdict::Failed(_)
        ));
        assert_eq!(
            imap("FETCH", Status::No, Some(&code("SERVERBUG")), &[]),
            Verdict::Failed("IMAP FETCH NO [SERVERBUG]".into())
        );
        assert!(matches!(
            imap("FETCH", Status::Ok, Some(&code("UNAVAILABLE")), &[]),
            Verdict::Failed(_)
        ));
        assert!(matches!(
            imap("NOOP", Status::Bad, None, &[]),
            Verdict::Failed(_)
        ));
        assert!(matches!(
            imap(
                "CREATE",
                Status::No,
                Some(&code("ALREADYEXISTS")),
                &["ALREADYEXISTS"]
            ),
            Verdict::Allowed(_)
        ));
        assert!(matches!(
            pop3("PASS", "-ERR [IN-USE] another session"),
            Verdict::Allowed(_)
        ));
        assert!(matches!(
            pop3("RETR", "-ERR message 3 was deleted"),
            Verdict::Allowed(_)
        ));
        assert_eq!(
            pop3("RETR", "-ERR [SYS/TEMP] cannot read"),
            Verdict::Failed("POP3 RETR -ERR [SYS/TEMP]".into())
        );
        assert!(matches!(
            pop3("DELE", "-ERR no such message"),
            Verdict::Failed(_)
        ));
        assert_eq!(smtp("DATA", "250 2.0.0 ok", '2'), Verdict::Ok);
        assert_eq!(
            smtp("DATA", "451 4.3.0 try later", '2'),
            Verdict::Failed("SMTP DATA 451".into())
        );
    }
}
