//! QUIT (RFC 5321 §4.1.1.10): the answer is sent, then the session closes.

use crate::Server;
use pillarbox_net::Connection;

pub(crate) async fn quit(server: &Server, conn: &mut Connection) {
    let _ = conn
        .send(format!("221 2.0.0 {} closing connection\r\n", server.hostname).as_bytes())
        .await;
}
