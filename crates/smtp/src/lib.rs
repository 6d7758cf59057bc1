//! pillarbox-smtp: the SMTP server.

use pillarbox_directory::Directory;
use pillarbox_net::{Connection, Handler};
use pillarbox_store::Store;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `[smtp]` section of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}

/// The SMTP session handler plugged into every SMTP listener.
pub struct Server {
    #[allow(dead_code)]
    store: Store,
    #[allow(dead_code)]
    directory: Directory,
    #[allow(dead_code)]
    config: Config,
    #[allow(dead_code)]
    hostname: String,
}

impl Server {
    pub fn new(store: Store, directory: Directory, config: Config, hostname: String) -> Server {
        Server {
            store,
            directory,
            config,
            hostname,
        }
    }
}

impl Handler for Server {
    fn protocol(&self) -> &'static str {
        "smtp"
    }

    fn default_idle_timeout(&self) -> Duration {
        Duration::from_secs(300)
    }

    fn too_many_connections(&self) -> &'static [u8] {
        b"421 4.7.0 Too many connections, try again later\r\n"
    }

    async fn handle(&self, mut connection: Connection) {
        // The protocol itself is not built yet (issue 3): say so in the
        // protocol's own words instead of dropping the connection.
        let reply = format!(
            "421 4.3.2 {} ESMTP service not available: SMTP is not built yet in this version of Pillarbox\r\n",
            self.hostname
        );
        let _ = connection.send(reply.as_bytes()).await;
        connection.close().await;
    }
}
