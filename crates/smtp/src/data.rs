//! Reading the DATA section (RFC 5321 §4.1.1.4, §4.5.2).
//!
//! The data ends only at `<CRLF>.<CRLF>`: a `.` line counts as the end only
//! when it ends in CRLF *and* the line before it ended in CRLF (the CRLF of
//! the DATA command counts for the first line). `<LF>.<LF>`, `<LF>.<CR><LF>`
//! and `<CR>.<CR>` are kept as data, so a message can never be split in two
//! (no SMTP smuggling). A line that starts with `.` after a CRLF loses that
//! dot (§4.5.2 transparency).
//!
//! [`DataDecoder`] applies these rules byte by byte, with no I/O and no line
//! buffer: a line of any length is data like any other, and the rules hold
//! whatever its length and however the input is cut into pieces. The only
//! bound is the message size: beyond it the decoder keeps reading to the
//! true end of data and drops what it reads (the client then gets 552).

use pillarbox_net::{Connection, ReadError, Reservation};

/// Where the decoder is in the line structure of the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line that follows a CRLF (or the start of the data).
    LineStart,
    /// A `.` at a line start, held back: it is either dot-stuffing or the
    /// start of the end marker.
    Dot,
    /// `.` and CR at a line start, held back.
    DotCr,
    /// Inside a line.
    Inside,
    /// Just after a CR inside a line (a following LF ends the line).
    Cr,
    /// The end marker was read.
    Done,
}

/// What a [`DataDecoder::feed`] step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// All input was consumed; the data goes on.
    NeedMore,
    /// The end marker `<CRLF>.<CRLF>` ends at this offset of the input; the
    /// bytes after it are the client's next commands.
    Done { consumed: usize },
}

/// The message was over the size limit; it was read to its end and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("message of {size} octets or more, over the limit of {limit}")]
pub struct TooBig {
    pub size: u64,
    pub limit: u64,
}

/// A streaming, pure decoder of the DATA section: feed it what arrives,
/// it says where the data ends and keeps the un-stuffed message.
#[derive(Debug)]
pub struct DataDecoder {
    max_size: u64,
    state: State,
    message: Vec<u8>,
    /// Octets of message content decoded so far, kept or dropped.
    size: u64,
    /// The message is being dropped for a reason other than its size.
    discarding: bool,
}

impl DataDecoder {
    /// A decoder that keeps at most `max_size` octets of message.
    pub fn new(max_size: u64) -> DataDecoder {
        DataDecoder {
            max_size,
            state: State::LineStart,
            message: Vec::new(),
            size: 0,
            discarding: false,
        }
    }

    /// Drops what was kept and keeps nothing more, while still finding the
    /// end of the data (the memory budget had no room for the message).
    pub fn discard(&mut self) {
        self.discarding = true;
        self.message = Vec::new();
    }

    /// True once the message is known to be over the size limit.
    pub fn too_big(&self) -> bool {
        self.size > self.max_size
    }

    /// Octets of message held in memory now (for the memory budget).
    pub fn buffered(&self) -> usize {
        self.message.len()
    }

    /// True once the end marker was read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.size = self.size.saturating_add(bytes.len() as u64);
        if self.size > self.max_size || self.discarding {
            // Over the limit: give the memory back at once, count the rest.
            if self.message.capacity() > 0 {
                self.message = Vec::new();
            }
        } else {
            self.message.extend_from_slice(bytes);
        }
    }

    /// Decodes the next piece of input. After `Done` it consumes nothing.
    pub fn feed(&mut self, input: &[u8]) -> Progress {
        let mut position = 0;
        while position < input.len() {
            let byte = input[position];
            match self.state {
                State::Done => return Progress::Done { consumed: 0 },
                State::Inside => {
                    // The common case, a run of line content, in one piece.
                    let run = input[position..]
                        .iter()
                        .position(|b| *b == b'\r')
                        .unwrap_or(input.len() - position);
                    self.emit(&input[position..position + run]);
                    position += run;
                    if position < input.len() {
                        self.emit(b"\r");
                        self.state = State::Cr;
                        position += 1;
                    }
                    continue;
                }
                State::LineStart => match byte {
                    b'.' => self.state = State::Dot,
                    _ => self.inside(byte),
                },
                State::Dot => match byte {
                    b'\r' => self.state = State::DotCr,
                    // §4.5.2: the first dot of a line with more on it is
                    // dropped; the rest is an ordinary line.
                    _ => self.inside(byte),
                },
                State::DotCr => match byte {
                    b'\n' => {
                        self.state = State::Done;
                        return Progress::Done {
                            consumed: position + 1,
                        };
                    }
                    _ => {
                        // `.<CR>` then something else: a line of data whose
                        // stuffing dot is dropped; the CR is content.
                        self.emit(b"\r");
                        self.state = State::Cr;
                        self.after_cr(byte);
                    }
                },
                State::Cr => self.after_cr(byte),
            }
            position += 1;
        }
        if self.state == State::Done {
            Progress::Done { consumed: 0 }
        } else {
            Progress::NeedMore
        }
    }

    /// A content byte inside a line.
    fn inside(&mut self, byte: u8) {
        self.emit(&[byte]);
        self.state = if byte == b'\r' {
            State::Cr
        } else {
            State::Inside
        };
    }

    /// The byte after a CR inside a line: only LF makes a line start. A bare
    /// LF does not (the next line's dot is content, never an end).
    fn after_cr(&mut self, byte: u8) {
        self.emit(&[byte]);
        self.state = match byte {
            b'\n' => State::LineStart,
            b'\r' => State::Cr,
            _ => State::Inside,
        };
    }

    /// The message once the end marker was read; an error when it was over
    /// the size limit.
    pub fn finish(self) -> Result<Vec<u8>, TooBig> {
        if self.too_big() {
            Err(TooBig {
                size: self.size,
                limit: self.max_size,
            })
        } else {
            Ok(self.message)
        }
    }
}

#[derive(Debug)]
pub enum DataError {
    /// Over the size limit; the rest was read and dropped.
    TooBig,
    /// The server-wide memory budget had no room; the rest was read and dropped.
    Busy,
    Read(ReadError),
}

/// The message is charged to the memory budget in steps of this size.
const BUDGET_STEP: u64 = 64 * 1024;

/// Reads the message up to the terminating dot, un-stuffing leading dots.
/// Bytes the client pipelined after the end marker stay in the connection.
/// The message's memory is charged to the server-wide budget as it grows;
/// the reservation comes back with the message, to be held until it is
/// stored.
pub async fn read_data(
    conn: &mut Connection,
    max_size: u64,
) -> Result<(Vec<u8>, Option<Reservation>), DataError> {
    let mut decoder = DataDecoder::new(max_size);
    let mut reservation: Option<Reservation> = None;
    let mut busy = false;
    loop {
        let input = conn.read_some().await.map_err(DataError::Read)?;
        let progress = decoder.feed(&input);
        let held = reservation.as_ref().map_or(0, Reservation::bytes);
        let buffered = decoder.buffered() as u64;
        if !busy && buffered > held {
            let step = (buffered - held).max(BUDGET_STEP);
            let charged = match reservation.as_mut() {
                Some(reservation) => reservation.grow(step).await,
                None => conn
                    .budget()
                    .reserve(step)
                    .await
                    .map(|taken| reservation = Some(taken)),
            };
            if charged.is_err() {
                busy = true;
                reservation = None;
                decoder.discard();
            }
        }
        if let Progress::Done { consumed } = progress {
            conn.unread(&input[consumed..]);
            break;
        }
    }
    if busy {
        return Err(DataError::Busy);
    }
    decoder
        .finish()
        .map(|message| (message, reservation))
        .map_err(|_| DataError::TooBig)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds everything in one piece; the message (or `None` when it did
    /// not end) and the bytes after the end.
    fn decode(input: &[u8], max: u64) -> (Option<Result<Vec<u8>, TooBig>>, Vec<u8>) {
        let mut decoder = DataDecoder::new(max);
        match decoder.feed(input) {
            Progress::Done { consumed } => (Some(decoder.finish()), input[consumed..].to_vec()),
            Progress::NeedMore => (None, Vec::new()),
        }
    }

    fn pieces(
        input: &[u8],
        splits: &[usize],
        max: u64,
    ) -> (Option<Result<Vec<u8>, TooBig>>, Vec<u8>) {
        let mut decoder = DataDecoder::new(max);
        let mut start = 0;
        let mut bounds: Vec<usize> = splits.to_vec();
        bounds.push(input.len());
        for end in bounds {
            let piece = &input[start..end];
            if let Progress::Done { consumed } = decoder.feed(piece) {
                let mut rest = piece[consumed..].to_vec();
                rest.extend_from_slice(&input[end..]);
                return (Some(decoder.finish()), rest);
            }
            start = end;
        }
        (None, Vec::new())
    }

    #[test]
    fn ends_at_crlf_dot_crlf_and_keeps_what_follows() {
        let (message, rest) = decode(b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", 1000);
        assert_eq!(message, Some(Ok(b"Subject: x\r\n\r\nbody\r\n".to_vec())));
        assert_eq!(rest, b"QUIT\r\n");
    }

    #[test]
    fn a_dot_line_first_is_an_empty_message() {
        let (message, rest) = decode(b".\r\nNOOP\r\n", 1000);
        assert_eq!(message, Some(Ok(Vec::new())));
        assert_eq!(rest, b"NOOP\r\n");
    }

    #[test]
    fn leading_dots_are_unstuffed_rfc5321_4_5_2() {
        let (message, _) = decode(b"..\r\n..x\r\n.y\r\n.\r\n", 1000);
        assert_eq!(message, Some(Ok(b".\r\n.x\r\ny\r\n".to_vec())));
    }

    #[test]
    fn bare_lf_and_bare_cr_never_end_the_data() {
        for input in [
            &b"a\n.\n"[..],
            b"a\n.\r\n",
            b"a\r.\r",
            b"a\r.\r\n",
            b"a\r\n.\n",
            b"a\r\n.\rb",
        ] {
            assert_eq!(decode(input, 1000).0, None, "{input:?} ended the data");
        }
        // After a bare LF the dot is content, not stuffing.
        let (message, _) = decode(b"a\n.\r\nb\r\n.\r\n", 1000);
        assert_eq!(message, Some(Ok(b"a\n.\r\nb\r\n".to_vec())));
    }

    #[test]
    fn a_line_of_any_length_follows_the_same_end_rule() {
        // The smuggling attack: a line over any line limit that ends in a
        // bare LF, then `.<CRLF>` and commands. All of it is one message.
        let mut input = vec![b'x'; (1 << 20) + 10];
        input.extend_from_slice(b"\n.\r\nMAIL FROM:<admin@example.test>\r\n.\r\n");
        let (message, rest) = decode(&input, 50 << 20);
        let message = message.expect("ended").expect("fits");
        assert!(message.ends_with(b"\n.\r\nMAIL FROM:<admin@example.test>\r\n"));
        assert_eq!(rest, b"");
    }

    #[test]
    fn over_the_limit_reads_to_the_true_end_and_drops_it() {
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\n.\r\nMAIL FROM:<a@b>\r\n.\r\nQUIT\r\n");
        let mut decoder = DataDecoder::new(10);
        let Progress::Done { consumed } = decoder.feed(&input) else {
            panic!("did not end");
        };
        assert_eq!(&input[consumed..], b"QUIT\r\n");
        assert_eq!(decoder.buffered(), 0);
        assert!(matches!(decoder.finish(), Err(TooBig { limit: 10, .. })));
    }

    #[test]
    fn the_limit_is_inclusive() {
        let (message, _) = decode(b"abc\r\n.\r\n", 5);
        assert_eq!(message, Some(Ok(b"abc\r\n".to_vec())));
        let (message, _) = decode(b"abcd\r\n.\r\n", 5);
        assert!(matches!(message, Some(Err(_))));
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let tricky: &[u8] =
            b"..a\r\r\n.\r.\n.\n\r\n.x\r\n\r.\r\n\n.\r\nx.\r\n..\r\n.\r\r\n.\r\nEHLO x\r\n";
        let whole = decode(tricky, 1000);
        assert!(whole.0.is_some());
        for first in 0..=tricky.len() {
            assert_eq!(pieces(tricky, &[first], 1000), whole, "split at {first}");
            for second in first..=tricky.len() {
                assert_eq!(
                    pieces(tricky, &[first, second], 1000),
                    whole,
                    "split at {first} and {second}"
                );
            }
        }
        // One byte at a time, and over the limit.
        let every: Vec<usize> = (1..tricky.len()).collect();
        assert_eq!(pieces(tricky, &every, 1000), whole);
        assert_eq!(pieces(tricky, &every, 8), decode(tricky, 8));
    }

    #[test]
    fn feeding_after_the_end_consumes_nothing() {
        let mut decoder = DataDecoder::new(100);
        assert_eq!(decoder.feed(b".\r\n"), Progress::Done { consumed: 3 });
        assert_eq!(decoder.feed(b"more"), Progress::Done { consumed: 0 });
        assert!(decoder.is_done());
    }
}
