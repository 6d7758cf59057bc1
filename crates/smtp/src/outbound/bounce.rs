//! Delivery status notifications (RFC 3464): a `multipart/report` saying
//! which recipients failed and why, with the original message (RET=FULL) or
//! its header (RET=HDRS).

use mail_builder::MessageBuilder;
use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::text::Text;
use mail_builder::mime::MimePart;

/// One recipient the report is about.
pub struct Failure {
    pub recipient: String,
    pub orcpt: Option<String>,
    /// Enhanced status code, e.g. `5.1.1`.
    pub status: String,
    /// What the remote server said, or what went wrong.
    pub diagnostic: String,
    /// `failed` or `delayed`.
    pub action: &'static str,
}

pub struct Report<'a> {
    pub hostname: &'a str,
    /// The original envelope sender, who gets the report.
    pub to: &'a str,
    pub envid: Option<&'a str>,
    /// Unix seconds when the message was accepted.
    pub arrival: i64,
    pub failures: &'a [Failure],
    pub original: &'a [u8],
    pub full: bool,
}

fn rfc2822(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_default()
}

/// The enhanced status code in a reply text, or a default by reply class.
pub fn status_of(reply_text: &str, permanent: bool) -> String {
    let first = reply_text.split_whitespace().next().unwrap_or_default();
    let parts: Vec<&str> = first.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return first.to_string();
    }
    if permanent {
        "5.0.0".into()
    } else {
        "4.0.0".into()
    }
}

/// Builds the report message.
pub fn build(report: &Report<'_>) -> Vec<u8> {
    let delayed = report.failures.iter().all(|f| f.action == "delayed");
    let mut text = format!("This is the mail system at {}.\r\n\r\n", report.hostname);
    if delayed {
        text.push_str("Your message has not been delivered yet to the recipients below. The mail system keeps trying; you do not need to send it again.\r\n\r\n");
    } else {
        text.push_str("I'm sorry to have to inform you that your message could not be delivered to one or more recipients. It is attached below.\r\n\r\n");
    }
    for f in report.failures {
        text.push_str(&format!("<{}>: {}\r\n", f.recipient, f.diagnostic));
    }
    let mut status = format!("Reporting-MTA: dns; {}\r\n", report.hostname);
    if let Some(envid) = report.envid {
        status.push_str(&format!("Original-Envelope-Id: {envid}\r\n"));
    }
    status.push_str(&format!("Arrival-Date: {}\r\n", rfc2822(report.arrival)));
    for f in report.failures {
        status.push_str("\r\n");
        status.push_str(&format!("Final-Recipient: rfc822; {}\r\n", f.recipient));
        if let Some(orcpt) = &f.orcpt {
            status.push_str(&format!(
                "Original-Recipient: {}\r\n",
                orcpt.replacen(';', "; ", 1)
            ));
        }
        status.push_str(&format!("Action: {}\r\n", f.action));
        status.push_str(&format!("Status: {}\r\n", f.status));
        let diagnostic: String = f.diagnostic.chars().filter(|c| !c.is_control()).collect();
        status.push_str(&format!("Diagnostic-Code: smtp; {diagnostic}\r\n"));
    }
    let original: Vec<u8> = if report.full {
        report.original.to_vec()
    } else {
        let end = report
            .original
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 2)
            .unwrap_or(report.original.len());
        report.original[..end].to_vec()
    };
    let original_type = if report.full {
        "message/rfc822"
    } else {
        "text/rfc822-headers"
    };
    let body = MimePart::new(
        ContentType::new("multipart/report").attribute("report-type", "delivery-status"),
        vec![
            MimePart::new("text/plain", text),
            MimePart::new(
                ContentType::new("message/delivery-status"),
                status.into_bytes(),
            )
            .transfer_encoding("7bit"),
            MimePart::new(ContentType::new(original_type), original).transfer_encoding("8bit"),
        ],
    );
    let subject = if delayed {
        "Delayed Mail (still being retried)"
    } else {
        "Undelivered Mail Returned to Sender"
    };
    let daemon = format!("MAILER-DAEMON@{}", report.hostname);
    MessageBuilder::new()
        .from(("Mail Delivery System", daemon.as_str()))
        .to(report.to.to_string())
        .subject(subject)
        .header("Auto-Submitted", Text::new("auto-replied"))
        .body(body)
        .write_to_vec()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_parts() {
        let original = b"From: a@local.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let failures = [Failure {
            recipient: "x@remote.test".into(),
            orcpt: Some("rfc822;x@remote.test".into()),
            status: status_of("5.1.1 no such user", true),
            diagnostic: "550 5.1.1 no such user".into(),
            action: "failed",
        }];
        let report = build(&Report {
            hostname: "mail.local.test",
            to: "a@local.test",
            envid: Some("QQ314159"),
            arrival: 0,
            failures: &failures,
            original,
            full: false,
        });
        let text = String::from_utf8(report).unwrap();
        assert!(text.contains("multipart/report"), "{text}");
        assert!(
            text.contains("report-type=\"delivery-status\"")
                || text.contains("report-type=delivery-status"),
            "{text}"
        );
        assert!(
            text.contains("Final-Recipient: rfc822; x@remote.test"),
            "{text}"
        );
        assert!(text.contains("Status: 5.1.1"), "{text}");
        assert!(text.contains("Original-Envelope-Id: QQ314159"), "{text}");
        assert!(text.contains("text/rfc822-headers"), "{text}");
        assert!(!text.contains("\r\nbody\r\n"), "HDRS: no body: {text}");
        assert_eq!(status_of("mailbox full", false), "4.0.0");
    }
}
