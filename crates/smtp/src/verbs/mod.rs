//! One file per SMTP command (or close family): each takes the parsed
//! command and the session, checks the state it needs beside the work it
//! does, and writes its reply.

pub(crate) mod bdat;
pub(crate) mod data;
pub(crate) mod hello;
pub(crate) mod mail;
pub(crate) mod noop;
pub(crate) mod quit;
pub(crate) mod rcpt;
pub(crate) mod rset;
pub(crate) mod starttls;
