//! pillarbox-pop3: the POP3 server.

use pillarbox_directory::Directory;
use pillarbox_net::{Connection, Handler};
use pillarbox_store::Store;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `[pop3]` section of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {}

/// The POP3 session handler plugged into every POP3 listener.
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
        "pop3"
    }

    fn default_idle_timeout(&self) -> Duration {
        Duration::from_secs(600)
    }

    fn too_many_connections(&self) -> &'static [u8] {
        b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"
    }

    async fn handle(&self, mut connection: Connection) {
        // The protocol itself is not built yet: say so in the protocol's own
        // words instead of dropping the connection.
        let _ = connection
            .send(b"-ERR [SYS/PERM] POP3 is not built yet in this version of Pillarbox\r\n")
            .await;
        connection.close().await;
    }
}
