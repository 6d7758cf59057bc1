//! The compression layer of a connection (IMAP COMPRESS=DEFLATE): any
//! bytes a client sends, cut anywhere, inflate without a panic, one bounded
//! step at a time, and corrupt input is an error; anything the server
//! writes comes back unchanged through an ordinary raw-DEFLATE reader.
#![no_main]

use flate2::{Decompress, FlushDecompress};
use libfuzzer_sys::fuzz_target;
use pillarbox_net::deflate::{Deflate, INFLATE_STEP};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut) + 1;

    // Client to server: arbitrary compressed input.
    let mut server = Deflate::new();
    let mut total = 0usize;
    'input: for piece in data.chunks(cut) {
        server.push_input(piece);
        loop {
            let mut out = Vec::new();
            match server.inflate(&mut out) {
                Ok(0) => break,
                Ok(n) => {
                    assert!(n <= INFLATE_STEP && out.len() == n);
                    total += n;
                    // Raw DEFLATE expands at most 1032 times (plus a block).
                    assert!(total <= data.len() * 1032 + INFLATE_STEP);
                }
                Err(_) => {
                    assert!(server.inflate(&mut out).is_err(), "errors stay errors");
                    break 'input;
                }
            }
        }
    }

    // Server to client: the input as plaintext, written in pieces.
    let mut server = Deflate::new();
    let mut client = Decompress::new(false);
    let mut back = Vec::new();
    for (i, piece) in data.chunks(cut).enumerate() {
        let mut wire = Vec::new();
        server.deflate(piece, &mut wire).unwrap();
        if i % 3 == 2 {
            server.release_compressor();
        }
        let mut out = Vec::with_capacity(piece.len() + 64);
        client
            .decompress_vec(&wire, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(out, piece);
        back.extend_from_slice(&out);
    }
    assert_eq!(back, data);
});
