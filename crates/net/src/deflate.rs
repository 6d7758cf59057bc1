//! A compression layer for a connection: raw DEFLATE (RFC 1951) in both
//! directions, as IMAP COMPRESS=DEFLATE (RFC 4978) needs.
//!
//! Memory stays bounded whatever the client sends:
//! - compressed bytes from the socket wait in `pending`, at most one socket
//!   read (the connection reads the socket again only once `pending` is
//!   used up);
//! - each [`Deflate::inflate`] produces at most [`INFLATE_STEP`] octets, so
//!   a "compression bomb" (a few KiB that inflate to gigabytes) is handed
//!   to the protocol's readers step by step, and they apply their own
//!   bounds (line length, literal size) as to uncompressed input;
//! - the compressor (about 300 KiB of tables) exists only while a response
//!   is being written: [`Deflate::release_compressor`] drops it when the
//!   session waits for the client, so an idle compressed connection holds
//!   only the decompressor (its 32 KiB window and state). Every write ends
//!   with a sync flush, so a new compressor simply continues the stream
//!   with new blocks (the client's decompressor keeps its own window).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::io;

/// The most plaintext one [`Deflate::inflate`] call produces.
pub const INFLATE_STEP: usize = 16 * 1024;

/// Both directions of a compressed connection.
pub struct Deflate {
    inflate: Decompress,
    /// Compressed bytes read from the client, not yet inflated.
    pending: Vec<u8>,
    /// The last inflate step filled its output: the decompressor may hold
    /// more plaintext even with no input waiting.
    more: bool,
    /// The client's stream was corrupt; every later read fails too.
    failed: bool,
    deflate: Option<Box<Compress>>,
    /// Octets sent, before and after compression (for the log).
    plain_out: u64,
    compressed_out: u64,
}

impl Default for Deflate {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflate {
    pub fn new() -> Deflate {
        Deflate {
            // Raw DEFLATE: no zlib header (RFC 4978 §4).
            inflate: Decompress::new(false),
            pending: Vec::new(),
            more: false,
            failed: false,
            deflate: None,
            plain_out: 0,
            compressed_out: 0,
        }
    }

    /// Compressed bytes from the client, to be inflated.
    pub fn push_input(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// True when compressed bytes wait to be inflated (or the last step
    /// stopped because its output was full).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.more
    }

    /// Inflates waiting input, appending at most [`INFLATE_STEP`] octets
    /// to `out`; returns how many were appended (0: more input is needed).
    /// Corrupt input, or a client ending the stream (the connection's
    /// stream never ends), is an error: the session cannot go on.
    pub fn inflate(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the client's compressed stream is broken",
            ));
        }
        let result = self.inflate_step(out);
        self.failed = result.is_err();
        result
    }

    fn inflate_step(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        let mut chunk = [0u8; INFLATE_STEP];
        let mut produced = 0;
        while produced < INFLATE_STEP && (!self.pending.is_empty() || self.more) {
            let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(&self.pending, &mut chunk[produced..], FlushDecompress::None)
                .map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("corrupt compressed data from the client: {e}"),
                    )
                })?;
            let consumed = (self.inflate.total_in() - in_before) as usize;
            let made = (self.inflate.total_out() - out_before) as usize;
            self.pending.drain(..consumed);
            self.more = produced + made == INFLATE_STEP;
            produced += made;
            if status == Status::StreamEnd {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the client ended its compressed stream",
                ));
            }
            if consumed == 0 && made == 0 {
                // The rest of a block has not arrived yet.
                self.more = false;
                break;
            }
        }
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = Vec::new();
        }
        out.extend_from_slice(&chunk[..produced]);
        Ok(produced)
    }

    /// Compresses `plain` and appends the result to `out`, ending with a
    /// sync flush: everything written so far can be decompressed by the
    /// client now, and the stream is at a block boundary.
    pub fn deflate(&mut self, plain: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let compress = self
            .deflate
            .get_or_insert_with(|| Box::new(Compress::new(Compression::default(), false)));
        let before = out.len();
        let mut input = plain;
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(input.len() / 2 + 1024);
            }
            let in_before = compress.total_in();
            compress
                .compress_vec(input, out, FlushCompress::Sync)
                .map_err(io::Error::other)?;
            input = &input[(compress.total_in() - in_before) as usize..];
            // Done once all input is taken and the output had room left
            // (zlib's rule for a complete flush).
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        if plain.is_empty() {
            // Nothing to say; no flush marker either.
            out.truncate(before);
        }
        self.plain_out += plain.len() as u64;
        self.compressed_out += (out.len() - before) as u64;
        Ok(())
    }

    /// Drops the compressor's tables; the next write makes new ones.
    pub fn release_compressor(&mut self) {
        self.deflate = None;
    }

    /// Octets the session wrote and octets that went out compressed.
    pub fn output_totals(&self) -> (u64, u64) {
        (self.plain_out, self.compressed_out)
    }

    /// Octets received compressed and what they inflated to.
    pub fn input_totals(&self) -> (u64, u64) {
        (self.inflate.total_in(), self.inflate.total_out())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Decompress};

    /// A client's side of the stream, as RFC 4978 §4 describes it.
    fn client_deflate(c: &mut Compress, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + 1024);
        c.compress_vec(plain, &mut out, FlushCompress::Sync)
            .unwrap();
        out
    }

    fn client_inflate(d: &mut Decompress, compressed: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(compressed.len() * 20 + 1024);
        d.decompress_vec(compressed, &mut out, FlushDecompress::Sync)
            .unwrap();
        out
    }

    #[test]
    fn commands_and_responses_round_trip_across_writes() {
        let mut server = Deflate::new();
        let mut client_c = Compress::new(Compression::fast(), false);
        let mut client_d = Decompress::new(false);

        server.push_input(&client_deflate(&mut client_c, b"a LIST \"\" *\r\n"));
        let mut plain = Vec::new();
        server.inflate(&mut plain).unwrap();
        assert_eq!(plain, b"a LIST \"\" *\r\n");
        assert!(!server.has_pending());

        let mut wire = Vec::new();
        server
            .deflate(
                b"* LIST () \"/\" INBOX\r\na OK LIST completed\r\n",
                &mut wire,
            )
            .unwrap();
        assert_eq!(
            client_inflate(&mut client_d, &wire),
            b"* LIST () \"/\" INBOX\r\na OK LIST completed\r\n"
        );
        // The compressor is dropped while the session waits; the stream
        // goes on with a new one and the client reads it unchanged.
        server.release_compressor();
        let mut wire = Vec::new();
        server.deflate(b"* 3 EXISTS\r\n", &mut wire).unwrap();
        assert_eq!(client_inflate(&mut client_d, &wire), b"* 3 EXISTS\r\n");
    }

    #[test]
    fn a_compression_bomb_comes_out_one_step_at_a_time() {
        let mut client = Compress::new(Compression::best(), false);
        let bomb = vec![b'A'; 8 * 1024 * 1024];
        let compressed = client_deflate(&mut client, &bomb);
        assert!(compressed.len() < 64 * 1024, "{}", compressed.len());
        let mut server = Deflate::new();
        server.push_input(&compressed);
        let mut total = 0;
        loop {
            let mut out = Vec::new();
            let n = server.inflate(&mut out).unwrap();
            assert!(n <= INFLATE_STEP);
            assert_eq!(out.len(), n);
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, bomb.len());
    }

    #[test]
    fn input_split_anywhere_inflates_the_same() {
        let mut client = Compress::new(Compression::default(), false);
        let text = b"a1 SELECT INBOX\r\na2 FETCH 1:* (FLAGS)\r\n".repeat(50);
        let compressed = client_deflate(&mut client, &text);
        let mut server = Deflate::new();
        let mut plain = Vec::new();
        for byte in &compressed {
            server.push_input(std::slice::from_ref(byte));
            server.inflate(&mut plain).unwrap();
        }
        assert_eq!(plain, text);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut server = Deflate::new();
        server.push_input(&[0xff; 64]);
        let mut out = Vec::new();
        assert!(server.inflate(&mut out).is_err());
    }

    #[test]
    fn a_large_response_is_compressed_in_steps_and_read_back_whole() {
        let body: Vec<u8> = (0..300_000u32)
            .map(|i| b"abcdefghij\r\n"[(i % 12) as usize])
            .collect();
        let mut server = Deflate::new();
        let mut wire = Vec::new();
        server.deflate(&body, &mut wire).unwrap();
        assert!(wire.len() < body.len() / 10);
        let mut client = Decompress::new(false);
        let mut out = Vec::with_capacity(body.len() + 1024);
        client
            .decompress_vec(&wire, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(out, body);
        assert_eq!(
            server.output_totals(),
            (body.len() as u64, wire.len() as u64)
        );
    }
}
