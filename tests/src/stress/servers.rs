//! The servers a stress run talks to when it starts its own: Pillarbox on
//! loopback with a fresh store, as the tests start it ([`TestDb`],
//! [`TestServer::config_for`]) — on SQLite, on PostgreSQL, or two nodes
//! sharing one PostgreSQL database.

use super::Node;
use super::finish::QuotaSource;
use crate::{Backend, DATABASE_URL_VAR, TestDb, TestServer, Verifier};
use anyhow::{Context, bail};
use pillarbox::config::Config;
use pillarbox::serve::RunningServer;
use pillarbox_directory::Directory;
use pillarbox_store::Store;
use std::sync::Arc;

/// Which server configuration a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    Sqlite,
    Postgres,
    /// Two Pillarbox nodes on one PostgreSQL database, clients spread across both.
    TwoNodes,
}

impl Setup {
    pub fn parse(name: &str) -> Option<Setup> {
        match name {
            "sqlite" => Some(Setup::Sqlite),
            "postgres" => Some(Setup::Postgres),
            "two-nodes" => Some(Setup::TwoNodes),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Setup::Sqlite => "sqlite",
            Setup::Postgres => "postgres",
            Setup::TwoNodes => "two-nodes",
        }
    }
}

/// Servers started for a run, on a fresh database dropped by [`Launched::stop`].
pub struct Launched {
    servers: Vec<RunningServer>,
    db: TestDb,
    pub nodes: Vec<Node>,
}

/// The configuration of a stress node: plaintext login on loopback (no
/// TLS to get in the way), the limits a load test needs, production's
/// store pool size.
fn config(db: &TestDb, node: usize) -> Config {
    let mut config = TestServer::config_for(db, |c| {
        c.store.max_connections = Config::default().store.max_connections;
        for name in ["imaps", "pop3s", "submission", "submissions", "http"] {
            if let Some(listener) = c.listener.get_mut(name) {
                listener.enabled = false;
            }
        }
        for name in ["imap", "pop3", "smtp"] {
            if let Some(listener) = c.listener.get_mut(name) {
                listener.allow_plaintext_auth = true;
                listener.max_connections = 10_000;
                listener.max_connections_per_ip = 10_000;
                listener.max_unauthenticated_per_ip = 10_000;
            }
        }
    });
    config.data_dir = db.dir.path().join(format!("node{node}"));
    config
}

fn node(server: &RunningServer) -> anyhow::Result<Node> {
    let addr = |name: &str| {
        server
            .addr(name)
            .with_context(|| format!("the {name} listener is not running"))
    };
    Ok(Node {
        smtp: addr("smtp")?,
        pop3: addr("pop3")?,
        imap: addr("imap")?,
    })
}

impl Launched {
    /// Starts the servers of `setup` and adds `accounts` with `password`.
    pub async fn start(
        setup: Setup,
        accounts: &[String],
        password: &str,
    ) -> anyhow::Result<Launched> {
        let backend = match setup {
            Setup::Sqlite => Backend::Sqlite,
            Setup::Postgres | Setup::TwoNodes => {
                if std::env::var(DATABASE_URL_VAR).is_err() {
                    bail!(
                        "the {} configuration needs PostgreSQL: set {DATABASE_URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/test); each run makes a fresh database there",
                        setup.name()
                    );
                }
                Backend::Postgres
            }
        };
        let db = TestDb::new(backend).await;
        let count = if setup == Setup::TwoNodes { 2 } else { 1 };
        let mut servers = Vec::new();
        for i in 0..count {
            // One after the other: the first applies the migrations.
            let server = pillarbox::serve::start_with_verifier(
                config(&db, i),
                Arc::new(Verifier::offline()),
            )
            .await
            .with_context(|| format!("cannot start stress node {i}"))?;
            servers.push(server);
        }
        let nodes = servers
            .iter()
            .map(node)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let directory = &servers[0].directory;
        for address in accounts {
            let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
            if !directory.is_local_domain(domain).await? {
                directory.add_domain(domain).await?;
            }
            directory
                .add_account(address, password)
                .await
                .with_context(|| format!("cannot add the account {address}"))?;
        }
        Ok(Launched { servers, db, nodes })
    }

    /// The store's quota figures (read from the first node).
    pub fn quota(&self) -> Arc<dyn QuotaSource> {
        Arc::new(StoreQuota {
            store: self.servers[0].store.clone(),
            directory: self.servers[0].directory.clone(),
        })
    }

    pub async fn stop(self) {
        for server in self.servers {
            server.stop().await;
        }
        self.db.cleanup().await;
    }
}

struct StoreQuota {
    store: Store,
    directory: Directory,
}

impl QuotaSource for StoreQuota {
    fn quota_used<'a>(
        &'a self,
        account: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<u64, String>> + Send + 'a>> {
        Box::pin(async move {
            let found = self
                .directory
                .account_by_address(account)
                .await
                .map_err(|e| format!("cannot look up {account}: {e}"))?
                .ok_or_else(|| format!("no account {account}"))?;
            self.store
                .quota_used(found.id)
                .await
                .map_err(|e| format!("cannot read the quota of {account}: {e}"))
        })
    }
}
