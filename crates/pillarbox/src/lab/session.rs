//! Real protocol sessions for the lab, over the server's own listeners, with
//! a transcript of every line (`C:` / `S:`), passwords masked.

use anyhow::{Context, bail};
use std::net::SocketAddr;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Transcript {
    stream: BufReader<Box<dyn Io>>,
    pub lines: Vec<String>,
    secret: Option<String>,
}

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

impl Transcript {
    /// Connects; `tls` for the implicit-TLS listeners (our own certificate, on loopback).
    pub async fn connect(
        addr: SocketAddr,
        tls: bool,
        secret: Option<&str>,
    ) -> anyhow::Result<Transcript> {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        let stream: Box<dyn Io> = if tls {
            let config = pillarbox_net::tls::client_config_opportunistic();
            let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
            Box::new(
                tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await?,
            )
        } else {
            Box::new(tcp)
        };
        Ok(Transcript {
            stream: BufReader::new(stream),
            lines: Vec::new(),
            secret: secret.map(str::to_string),
        })
    }

    fn mask(&self, line: &str) -> String {
        match &self.secret {
            Some(s) if !s.is_empty() => line.replace(s.as_str(), "••••••"),
            _ => line.to_string(),
        }
    }

    pub async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        let shown = self.mask(line);
        self.lines.push(format!("C: {shown}"));
        self.stream
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        Ok(())
    }

    /// Sends data without logging it line by line (message bodies).
    pub async fn send_data(&mut self, data: &str, summary: &str) -> anyhow::Result<()> {
        self.lines.push(format!("C: {summary}"));
        self.stream.get_mut().write_all(data.as_bytes()).await?;
        Ok(())
    }

    pub async fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        let n = tokio::time::timeout(TIMEOUT, self.stream.read_line(&mut line))
            .await
            .context("the server did not answer")??;
        if n == 0 {
            bail!("the server closed the connection");
        }
        let line = line.trim_end().to_string();
        self.lines.push(format!("S: {line}"));
        Ok(line)
    }

    /// Reads a line without recording its content (message data).
    pub async fn quiet_line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        tokio::time::timeout(TIMEOUT, self.stream.read_line(&mut line))
            .await
            .context("the server did not answer")??;
        Ok(line)
    }

    /// SMTP: reads a (multi-line) reply.
    pub async fn smtp(&mut self) -> anyhow::Result<String> {
        loop {
            let line = self.line().await?;
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(line);
            }
        }
    }

    /// IMAP: reads up to the tagged answer.
    pub async fn imap(&mut self, tag: &str) -> anyhow::Result<String> {
        loop {
            let line = self.line().await?;
            if line.starts_with(&format!("{tag} ")) {
                return Ok(line);
            }
        }
    }
}
