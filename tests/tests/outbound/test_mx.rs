//! A tiny SMTP server for slow.test, written for the queue worker's tests:
//! it takes every message and stalls where a test tells it to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Where [`TestMx`] stops answering until [`TestMx::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Before its 220 greeting.
    Greeting,
    /// After the end of the data, before its 250.
    EndOfData,
}

/// A tiny SMTP server for slow.test: takes every message and stalls where
/// told to (for at most a minute), counting what happens.
pub struct TestMx {
    pub addr: SocketAddr,
    state: Arc<MxState>,
}

pub struct MxState {
    stall: Stall,
    release: tokio::sync::watch::Sender<bool>,
    pub connections: AtomicUsize,
    /// Messages whose data ended (`<CRLF>.<CRLF>`), answered or not.
    pub messages: AtomicUsize,
    /// Messages answered `250` after their data.
    pub answered: AtomicUsize,
    /// Connections the client closed while this server stalled.
    pub dropped: AtomicUsize,
}

impl TestMx {
    pub async fn start(addr: SocketAddr, stall: Stall) -> TestMx {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(MxState {
            stall,
            release: tokio::sync::watch::channel(false).0,
            connections: AtomicUsize::new(0),
            messages: AtomicUsize::new(0),
            answered: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        });
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(mx_session(stream, shared.clone()));
            }
        });
        TestMx { addr, state }
    }

    pub fn release(&self) {
        self.state.release.send_replace(true);
    }

    pub fn count(&self, what: fn(&MxState) -> &AtomicUsize) -> usize {
        what(&self.state).load(Ordering::SeqCst)
    }
}

/// Waits until released (true) or the client closes the connection (false).
async fn mx_stall(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, state: &MxState) -> bool {
    let mut release = state.release.subscribe();
    let released = async {
        let _ = tokio::time::timeout(Duration::from_secs(60), release.wait_for(|r| *r)).await;
    };
    tokio::select! {
        _ = released => true,
        read = reader.fill_buf() => {
            if read.map(|b| b.is_empty()).unwrap_or(true) {
                state.dropped.fetch_add(1, Ordering::SeqCst);
                false
            } else {
                true
            }
        }
    }
}

async fn mx_session(stream: tokio::net::TcpStream, state: Arc<MxState>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    if state.stall == Stall::Greeting && !mx_stall(&mut reader, &state).await {
        return;
    }
    let _ = write.write_all(b"220 mx.slow.test ESMTP\r\n").await;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 mx.slow.test\r\n",
            "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 2.0.0 ok\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                return;
            }
            "DATA" => {
                let _ = write.write_all(b"354 go ahead\r\n").await;
                loop {
                    let mut data = String::new();
                    if reader.read_line(&mut data).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if data == ".\r\n" {
                        break;
                    }
                }
                state.messages.fetch_add(1, Ordering::SeqCst);
                if state.stall == Stall::EndOfData && !mx_stall(&mut reader, &state).await {
                    return;
                }
                state.answered.fetch_add(1, Ordering::SeqCst);
                b"250 2.0.0 queued\r\n"
            }
            _ => b"500 5.5.1 what?\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}
