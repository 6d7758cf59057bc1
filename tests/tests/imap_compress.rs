//! IMAP COMPRESS=DEFLATE (RFC 4978) over real TLS, on SQLite and
//! PostgreSQL: a real client crate (async-imap's `compress`) works through
//! a compressed session, and a raw client checks the command's rules, the
//! bytes on the wire, a compression bomb and a corrupt stream.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures::TryStreamExt;
use pillarbox_tests::imap::{command, has, last, login};
use pillarbox_tests::{TestServer, backends};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::client::TlsStream;

const ALICE: &str = "alice@example.test";
const PASSWORD: &str = "compress pass";

/// A message of `lines` ordinary text lines (compresses well, as mail does).
fn message(subject: &str, lines: usize) -> String {
    let mut m = format!("From: ann@remote.test\r\nTo: {ALICE}\r\nSubject: {subject}\r\n\r\n");
    for i in 0..lines {
        m.push_str(&format!(
            "Line {i} of the quarterly report, with the usual figures.\r\n"
        ));
    }
    m
}

async fn tls(ts: &TestServer) -> TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(ts.addr("imaps"))
        .await
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    ts.tls_connector().connect(name, tcp).await.unwrap()
}

#[tokio::test]
async fn async_imap_works_through_a_compressed_session() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;
        let mut client = async_imap::Client::new(tls(&ts).await);
        client.read_response().await.unwrap().unwrap();
        let mut s = client
            .login(ALICE, PASSWORD)
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        assert!(s.capabilities().await.unwrap().has_str("COMPRESS=DEFLATE"));
        let mut s = s.compress(|stream| stream).await.unwrap();

        let small = message("small", 3);
        let large = message("large", 5_000); // about 300 KB
        s.append("INBOX", None, None, small.as_bytes())
            .await
            .unwrap();
        s.append("INBOX", Some("(\\Flagged)"), None, large.as_bytes())
            .await
            .unwrap();
        let mailbox = s.select("INBOX").await.unwrap();
        assert_eq!(mailbox.exists, 2);
        let fetched: Vec<_> = s
            .fetch("1:2", "(FLAGS BODY.PEEK[])")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(fetched.len(), 2);
        assert_eq!(fetched[0].body().unwrap(), small.as_bytes());
        assert_eq!(fetched[1].body().unwrap(), large.as_bytes());
        let _: Vec<_> = s
            .store("1", "+FLAGS (\\Seen)")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        s.logout().await.unwrap();

        // An uncompressed session sees what the compressed one did.
        let mut c = login(&ts, ALICE, PASSWORD).await;
        command(&mut c, "a SELECT INBOX").await;
        let lines = command(&mut c, "b FETCH 1:2 (FLAGS RFC822.SIZE)").await;
        assert!(has(&lines, "\\Seen"), "{lines:?}");
        assert!(
            has(&lines, &format!("RFC822.SIZE {}", large.len())),
            "{lines:?}"
        );
        ts.stop().await;
    }
}

/// A client's side of a compressed session over TLS, by hand.
struct Deflated {
    stream: TlsStream<tokio::net::TcpStream>,
    compress: Compress,
    decompress: Decompress,
    plain: Vec<u8>,
    /// Octets received on the wire since compression began.
    wire_in: usize,
}

impl Deflated {
    fn new(stream: TlsStream<tokio::net::TcpStream>) -> Deflated {
        Deflated {
            stream,
            compress: Compress::new(Compression::default(), false),
            decompress: Decompress::new(false),
            plain: Vec::new(),
            wire_in: 0,
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    async fn send(&mut self, plain: &[u8]) {
        let mut out = Vec::with_capacity(plain.len() / 2 + 1024);
        let mut input = plain;
        loop {
            let before = self.compress.total_in();
            self.compress
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .unwrap();
            input = &input[(self.compress.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity());
        }
        self.send_raw(&out).await;
    }

    /// The next line the server sent, or `None` once it closed.
    async fn read_line(&mut self) -> Option<String> {
        loop {
            if let Some(pos) = self.plain.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.plain.drain(..=pos).collect();
                return Some(String::from_utf8_lossy(&line).into_owned());
            }
            let mut buf = vec![0u8; 64 * 1024];
            let n = tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut buf))
                .await
                .expect("the server answered in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.wire_in += n;
            let mut input = &buf[..n];
            loop {
                self.plain.reserve(64 * 1024);
                let before = self.decompress.total_in();
                self.decompress
                    .decompress_vec(input, &mut self.plain, FlushDecompress::None)
                    .expect("the server's stream is valid DEFLATE");
                input = &input[(self.decompress.total_in() - before) as usize..];
                if input.is_empty() && self.plain.len() < self.plain.capacity() {
                    break;
                }
            }
        }
    }

    async fn command(&mut self, line: &str) -> Vec<String> {
        let tag = line.split(' ').next().unwrap().to_string();
        self.send(format!("{line}\r\n").as_bytes()).await;
        let mut lines = Vec::new();
        loop {
            let line = self.read_line().await.expect("an answer");
            let done = line.starts_with(&format!("{tag} "));
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}

/// Sends `line` uncompressed and reads up to the answer tagged `tag` (the
/// greeting for `*`), reading no further than its last CRLF.
async fn read_answer(
    stream: &mut TlsStream<tokio::net::TcpStream>,
    line: &str,
    tag: &str,
) -> String {
    stream.write_all(line.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        // One octet at a time: nothing after the answer (the first
        // compressed octets) may be consumed here.
        let n = stream.read(&mut byte).await.unwrap();
        assert!(n > 0, "the server closed");
        raw.push(byte[0]);
        if raw.ends_with(b"\r\n") {
            let text = String::from_utf8_lossy(&raw).into_owned();
            let last_line = text.trim_end().rsplit("\r\n").next().unwrap_or_default();
            if last_line.starts_with(&format!("{tag} ")) {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn compress_follows_rfc_4978_and_survives_hostile_streams() {
    for backend in backends() {
        let ts = TestServer::start(backend).await;
        ts.add_account(ALICE, PASSWORD).await;

        // Not before login, and not advertised before it.
        let mut c =
            pillarbox_tests::LineClient::connect_tls(ts.addr("imaps"), &ts.tls_connector()).await;
        c.read_line().await;
        let lines = command(&mut c, "a CAPABILITY").await;
        assert!(!has(&lines, "COMPRESS"), "{lines:?}");
        let lines = command(&mut c, "b COMPRESS DEFLATE").await;
        assert!(last(&lines).starts_with("b BAD"), "{lines:?}");

        // Logged in: advertised; an unknown mechanism is BAD and changes
        // nothing (the next command is read uncompressed).
        let mut c = login(&ts, ALICE, PASSWORD).await;
        let lines = command(&mut c, "a CAPABILITY").await;
        assert!(has(&lines, " COMPRESS=DEFLATE"), "{lines:?}");
        let lines = command(&mut c, "b COMPRESS LZMA").await;
        assert!(last(&lines).starts_with("b BAD"), "{lines:?}");
        let lines = command(&mut c, "c NOOP").await;
        assert!(last(&lines).starts_with("c OK"), "{lines:?}");
        drop(c);
        let large = message("large", 5_000);

        // The RFC's example, over TLS: the tagged OK comes uncompressed,
        // everything after it compressed, in both directions.
        let mut stream = tls(&ts).await;
        read_answer(&mut stream, "", "*").await;
        read_answer(
            &mut stream,
            &format!("a LOGIN {ALICE} \"{PASSWORD}\"\r\n"),
            "a",
        )
        .await;
        let answer = read_answer(&mut stream, "b COMPRESS DEFLATE\r\n", "b").await;
        assert!(answer.ends_with("b OK DEFLATE active\r\n"), "{answer:?}");
        let mut d = Deflated::new(stream);

        let lines = d.command("c CAPABILITY").await;
        assert!(last(&lines).starts_with("c OK"), "{lines:?}");
        assert!(!has(&lines, "COMPRESS=DEFLATE"), "{lines:?}");
        let lines = d.command("d COMPRESS DEFLATE").await;
        assert!(
            last(&lines).starts_with("d BAD [COMPRESSIONACTIVE]"),
            "{lines:?}"
        );

        // A literal inside the compressed stream, and a large response
        // that crosses the wire in far fewer octets than it holds.
        d.send(format!("e APPEND INBOX {{{}+}}\r\n", large.len()).as_bytes())
            .await;
        d.send(large.as_bytes()).await;
        d.send(b"\r\n").await;
        let answer = d.read_line().await.unwrap();
        assert!(answer.starts_with("e OK"), "{answer}");
        d.command("f SELECT INBOX").await;
        let wire_before = d.wire_in;
        let lines = d.command("g FETCH 1 BODY.PEEK[TEXT]").await;
        let text_len: usize = lines.iter().skip(1).map(String::len).sum();
        assert!(text_len > 250_000, "{text_len}");
        assert!(
            d.wire_in - wire_before < text_len / 5,
            "{} wire octets for {text_len}",
            d.wire_in - wire_before
        );

        // A compression bomb: 16 MiB of one letter in one command line,
        // about 16 KiB on the wire. It is refused as the over-long line it
        // is, and the session goes on.
        let mut bomb = b"h NOOP ".to_vec();
        bomb.resize(16 * 1024 * 1024, b'A');
        bomb.extend_from_slice(b"\r\n");
        d.send(&bomb).await;
        let answer = d.read_line().await.unwrap();
        assert!(answer.starts_with("* BAD [TOOBIG]"), "{answer}");
        let lines = d.command("i NOOP").await;
        assert!(last(&lines).starts_with("i OK"), "{lines:?}");

        // A corrupt stream ends this session, and only this one.
        d.send_raw(&[0xff; 32]).await;
        assert!(d.read_line().await.is_none(), "the session ended");
        let mut c = login(&ts, ALICE, PASSWORD).await;
        let lines = command(&mut c, "a STATUS INBOX (MESSAGES)").await;
        assert!(has(&lines, "(MESSAGES 1)"), "{lines:?}");
        ts.stop().await;
    }
}
