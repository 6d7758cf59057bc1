//! `pillarbox dns DOMAIN`: every DNS record a self-hoster publishes for a
//! domain, in zone-file syntax, each with a one-line reason; and
//! `pillarbox health`, the container health check.

use crate::config::Config;
use anyhow::bail;
use pillarbox_store::Store;

fn port(config: &Config, name: &str, standard: u16) -> u16 {
    config
        .listener
        .get(name)
        .filter(|l| l.enabled)
        .map(|l| l.addr.port())
        .unwrap_or(standard)
}

/// The records for `domain`, as text.
pub async fn records(config: &Config, store: &Store, domain: &str) -> anyhow::Result<String> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() || !domain.contains('.') {
        bail!("{domain:?} is not a domain name: give one like example.org");
    }
    let host = config.hostname.trim_end_matches('.');
    let mut out = String::new();
    fn line(out: &mut String, reason: &str, record: String) {
        out.push_str(&format!("; {reason}\n{record}\n"));
    }
    out.push_str(&format!(
        "; DNS records for {domain}, served by {host}. Publish them in the zone of {domain}.\n"
    ));
    if host == "localhost" || !host.contains('.') {
        out.push_str(&format!(
            "; WARNING: the hostname is {host:?}; set `hostname` in the configuration to this server's public name first.\n"
        ));
    }
    line(
        &mut out,
        &format!("MX: mail for {domain} is delivered to this server."),
        format!("{domain}. 3600 IN MX 10 {host}."),
    );
    line(
        &mut out,
        &format!("SPF: only {domain}'s MX hosts may send as @{domain}; everyone else fails."),
        format!("{domain}. 3600 IN TXT \"v=spf1 mx -all\""),
    );
    match store.dkim_key(&domain).await? {
        Some((selector, algorithm, _, public)) => {
            let value = pillarbox_smtp::outbound::dkim::txt_record(&algorithm, &public);
            line(
                &mut out,
                "DKIM: the public key receivers use to check this server's signatures.",
                crate::cli_queue::zone_line(&selector, &domain, &value),
            );
        }
        None => out.push_str(&format!(
            "; DKIM: no signing key yet. Run `pillarbox dkim generate {domain}` and run this command again.\n"
        )),
    }
    line(
        &mut out,
        "DMARC: receivers quarantine mail failing both SPF and DKIM alignment, and send reports to postmaster.",
        format!(
            "_dmarc.{domain}. 3600 IN TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}\""
        ),
    );
    let id = time::OffsetDateTime::now_utc().unix_timestamp();
    line(
        &mut out,
        &format!(
            "MTA-STS: senders must reach your MX over TLS; also serve the policy at https://mta-sts.{domain}/.well-known/mta-sts.txt (change id when the policy changes)."
        ),
        format!("_mta-sts.{domain}. 3600 IN TXT \"v=STSv1; id={id}\""),
    );
    line(
        &mut out,
        "TLS-RPT: where other servers report failures to reach you over TLS.",
        format!("_smtp._tls.{domain}. 3600 IN TXT \"v=TLSRPTv1; rua=mailto:postmaster@{domain}\""),
    );
    line(
        &mut out,
        "Thunderbird autoconfiguration (served on the http listener; put it behind HTTPS on port 443).",
        format!("autoconfig.{domain}. 3600 IN CNAME {host}."),
    );
    line(
        &mut out,
        "Outlook autodiscover (same endpoint).",
        format!("autodiscover.{domain}. 3600 IN CNAME {host}."),
    );
    out.push_str(
        "; RFC 6186 / RFC 8314 service records: clients find the servers from the address alone.\n",
    );
    for (service, listener, standard) in [
        ("_imaps", "imaps", 993),
        ("_imap", "imap", 143),
        ("_pop3s", "pop3s", 995),
        ("_pop3", "pop3", 110),
        ("_submissions", "submissions", 465),
        ("_submission", "submission", 587),
    ] {
        out.push_str(&format!(
            "{service}._tcp.{domain}. 3600 IN SRV 0 1 {} {host}.\n",
            port(config, listener, standard)
        ));
    }
    out.push_str(&format!(
        "; And an A/AAAA record for {host} pointing at this server, with a matching PTR (reverse DNS) set by your hosting provider.\n"
    ));
    Ok(out)
}

/// Asks the running server's `/healthz`; Ok when it answers 200.
pub async fn health(config: &Config) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(listener) = config.listener.get("http").filter(|l| l.enabled) else {
        bail!("the http listener is disabled: enable [listener.http] to use health checks");
    };
    let mut addr = listener.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), check)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from http://{addr}/healthz within 10 s"))?
        .map_err(|e| anyhow::anyhow!("cannot reach http://{addr}/healthz: {e}"))?;
    let status = response.lines().next().unwrap_or_default().to_string();
    if status.contains(" 200 ") {
        println!("healthy: {}", response.lines().last().unwrap_or_default());
        Ok(())
    } else {
        bail!("unhealthy: {status}")
    }
}
