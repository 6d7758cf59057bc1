//! The messages the checker sends: each with a Message-ID unique to the run,
//! sizes from a few hundred octets to past the store's 128 KiB inline limit.

use rand::Rng;

/// The domain of every Message-ID the checker makes.
pub const DOMAIN: &str = "stress.pillarbox.test";

/// Words for subjects and bodies.
const WORDS: &[&str] = &[
    "invoice", "meeting", "lunch", "report", "draft", "budget", "photos", "travel", "review",
    "release", "backup", "server", "garden", "concert", "ticket", "schedule",
];

pub struct Made {
    pub message_id: String,
    pub bytes: Vec<u8>,
}

fn word(rng: &mut impl Rng) -> &'static str {
    WORDS[rng.random_range(0..WORDS.len())]
}

/// A message to `to`; `run` and `n` make its Message-ID unique.
pub fn make(rng: &mut impl Rng, run: &str, n: &str, to: &str) -> Made {
    let message_id = format!("<{run}.{n}@{DOMAIN}>");
    let subject = format!("{} {} {n}", word(rng), word(rng));
    // Most small, some larger, a few past 128 KiB (stored outside the row with SQLite).
    let body_len = match rng.random_range(0..100) {
        0..=69 => rng.random_range(100..2_000),
        70..=96 => rng.random_range(2_000..40_000),
        _ => rng.random_range(130_000..160_000),
    };
    let mut body = String::with_capacity(body_len + 80);
    while body.len() < body_len {
        let mut line = String::new();
        while line.len() < 70 {
            line.push_str(word(rng));
            line.push(' ');
        }
        body.push_str(line.trim_end());
        body.push_str("\r\n");
    }
    let mut text = format!(
        "From: Stress Sender <sender@remote.test>\r\n\
         To: {to}\r\n\
         Subject: {subject}\r\n\
         Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\
         Message-ID: {message_id}\r\n\
         MIME-Version: 1.0\r\n"
    );
    if rng.random_bool(0.2) {
        text.push_str(
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        );
        text.push_str(&body);
        text.push_str(
            "--b1\r\nContent-Type: application/octet-stream\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--b1--\r\n",
        );
    } else {
        text.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
        text.push_str(&body);
    }
    Made {
        message_id,
        bytes: text.into_bytes(),
    }
}

/// The Message-ID header of a message (the first one), trimmed.
pub fn message_id(bytes: &[u8]) -> Option<String> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    let header = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = header.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("Message-ID") {
            let mut value = value.trim().to_string();
            // Folded onto the next lines.
            while let Some(next) = lines.peek()
                && next.starts_with([' ', '\t'])
            {
                value.push_str(next.trim());
                lines.next();
            }
            return Some(value);
        }
    }
    None
}

/// True for a Message-ID this run made.
pub fn is_ours(message_id: &str, run: &str) -> bool {
    message_id.starts_with(&format!("<{run}.")) && message_id.ends_with(&format!("@{DOMAIN}>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn made_messages_carry_their_message_id() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for i in 0..50 {
            let made = make(&mut rng, "r1", &format!("c0.{i}"), "a@example.test");
            assert_eq!(
                message_id(&made.bytes).as_deref(),
                Some(made.message_id.as_str())
            );
            assert!(is_ours(&made.message_id, "r1"));
            assert!(!is_ours(&made.message_id, "r2"));
            assert!(made.bytes.ends_with(b"\r\n"));
            assert!(!made.bytes.windows(3).any(|w| w == b"\n.\r"));
        }
        let folded = b"Subject: x\r\nMessage-ID:\r\n <a@b>\r\n\r\nbody";
        assert_eq!(message_id(folded).as_deref(), Some("<a@b>"));
    }
}
