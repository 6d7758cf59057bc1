//! The `pillarbox` binary as a library: configuration, the server, the admin
//! commands. End-to-end tests start the server in-process through [`serve`].

pub mod cli;
mod cli_dns;
mod cli_queue;
pub mod config;
pub mod http;
pub mod import;
pub mod lab;
pub mod serve;
mod sweep;
