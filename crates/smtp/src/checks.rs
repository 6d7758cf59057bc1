//! Inbound message authentication on the MX listener (RFC 7208 SPF, RFC 6376
//! DKIM, RFC 7489 DMARC) with mail-auth, written as one
//! `Authentication-Results:` header (RFC 8601).
//!
//! DNS answers go through one cache of our own (bounded, honouring TTLs), used
//! by every check; tests and operators without DNS can put records into it.
//! A DNS failure never loses mail: it becomes `temperror` in the header.

use mail_auth::common::headers::HeaderWriter;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::{Dmarc, Policy};
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::spf::Spf;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, DnssecStatus, MX,
    MessageAuthenticator, Parameters, RecordSet, ResolverCache, Txt,
    dmarc::verify::DmarcParameters, spf::verify::SpfParameters,
};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries kept per record type; beyond it expired entries are dropped first.
const MAX_ENTRIES: usize = 10_000;

/// A bounded DNS cache honouring each answer's validity.
pub struct DnsCache<K, V> {
    map: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K, V> Default for DnsCache<K, V> {
    fn default() -> Self {
        DnsCache {
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for DnsCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(name) {
            Some((value, until)) if *until > Instant::now() => Some(value.clone()),
            _ => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key, (value, valid_until));
    }
}

/// The DNS caches of every record type the checks look up.
#[derive(Default)]
pub struct DnsCaches {
    txt: DnsCache<Box<str>, Txt>,
    mx: DnsCache<Box<str>, RecordSet<MX>>,
    ipv4: DnsCache<Box<str>, RecordSet<Ipv4Addr>>,
    ipv6: DnsCache<Box<str>, RecordSet<Ipv6Addr>>,
    ptr: DnsCache<IpAddr, RecordSet<Box<str>>>,
}

fn fqdn(name: &str) -> Box<str> {
    let name = name.to_ascii_lowercase();
    if name.ends_with('.') {
        name.into_boxed_str()
    } else {
        format!("{name}.").into_boxed_str()
    }
}

/// Far enough in the future for records put in by hand.
fn forever() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 86400)
}

impl DnsCaches {
    /// Puts a TXT record (SPF `v=spf1`, DKIM key `v=DKIM1`/`p=`, DMARC
    /// `v=DMARC1`) into the cache; it never expires.
    pub fn add_txt(&self, name: &str, record: &str) -> Result<(), String> {
        let bytes = record.as_bytes();
        let txt: Txt = if record.starts_with("v=spf1") {
            Spf::parse(bytes).map_err(|e| e.to_string())?.into()
        } else if record.starts_with("v=DMARC1") {
            Dmarc::parse(bytes).map_err(|e| e.to_string())?.into()
        } else {
            DomainKey::parse(bytes).map_err(|e| e.to_string())?.into()
        };
        self.txt.insert(fqdn(name), txt, forever());
        Ok(())
    }

    /// Records that `name` has no TXT record (NXDOMAIN); never expires.
    pub fn add_missing_txt(&self, name: &str) {
        let missing = mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(
            mail_auth::hickory_resolver::proto::op::ResponseCode::NXDomain,
        ));
        self.txt.insert(fqdn(name), Txt::Error(missing), forever());
    }

    /// Puts an MX record set into the cache: (preference, exchange host); never expires.
    pub fn add_mx(&self, name: &str, exchanges: &[(u16, &str)]) {
        let records: Vec<MX> = exchanges
            .iter()
            .map(|(preference, host)| MX {
                exchanges: vec![fqdn(host)].into_boxed_slice(),
                preference: *preference,
            })
            .collect();
        self.mx.insert(
            fqdn(name),
            RecordSet {
                rrset: Arc::from(records.into_boxed_slice()),
                dnssec_status: DnssecStatus::Indeterminate,
            },
            forever(),
        );
    }

    /// Puts A records into the cache; they never expire.
    pub fn add_ipv4(&self, name: &str, addrs: Vec<Ipv4Addr>) {
        self.ipv4.insert(
            fqdn(name),
            RecordSet {
                rrset: Arc::from(addrs.into_boxed_slice()),
                dnssec_status: DnssecStatus::Indeterminate,
            },
            forever(),
        );
    }

    #[allow(clippy::type_complexity)]
    fn parameters<T>(
        &self,
        params: T,
    ) -> Parameters<
        '_,
        T,
        DnsCache<Box<str>, Txt>,
        DnsCache<Box<str>, RecordSet<MX>>,
        DnsCache<Box<str>, RecordSet<Ipv4Addr>>,
        DnsCache<Box<str>, RecordSet<Ipv6Addr>>,
        DnsCache<IpAddr, RecordSet<Box<str>>>,
    > {
        Parameters::new(params)
            .with_txt_cache(&self.txt)
            .with_mx_cache(&self.mx)
            .with_ipv4_cache(&self.ipv4)
            .with_ipv6_cache(&self.ipv6)
            .with_ptr_cache(&self.ptr)
    }
}

/// Why no mail host could be found for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub temporary: bool,
    pub text: String,
}

impl RouteError {
    fn temporary(text: String) -> RouteError {
        RouteError {
            temporary: true,
            text,
        }
    }

    fn permanent(text: String) -> RouteError {
        RouteError {
            temporary: false,
            text,
        }
    }
}

/// What the checks concluded about one message.
pub struct Verdict {
    /// The `Authentication-Results:` header, CRLF-terminated.
    pub header: String,
    /// `Some(domain)` when DMARC failed for a domain whose policy is reject.
    pub dmarc_reject: Option<String>,
}

/// SPF, DKIM and DMARC verification with a resolver and its cache.
pub struct Verifier {
    authenticator: MessageAuthenticator,
    caches: DnsCaches,
}

impl Verifier {
    /// Uses the system's resolver (`/etc/resolv.conf`); DNS lookups time out
    /// after 5 s. Without a readable resolver configuration the checks run
    /// with no DNS at all (results `temperror`/`none`), and say so in the log.
    pub fn system() -> Verifier {
        let (config, mut options) = match mail_auth::hickory_resolver::system_conf::read_system_conf(
        ) {
            Ok(conf) => conf,
            Err(error) => {
                tracing::warn!(%error, "cannot read the system DNS configuration: SPF, DKIM and DMARC checks will report temperror");
                (
                    ResolverConfig::from_parts(None, vec![], vec![]),
                    ResolverOpts::default(),
                )
            }
        };
        options.timeout = Duration::from_secs(5);
        options.attempts = 2;
        Verifier::with_config(config, options)
    }

    /// No resolver: only records put into [`Verifier::dns`] are found
    /// (tests, or servers that must not query DNS).
    pub fn offline() -> Verifier {
        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_millis(100);
        options.attempts = 1;
        Verifier::with_config(ResolverConfig::from_parts(None, vec![], vec![]), options)
    }

    fn with_config(config: ResolverConfig, options: ResolverOpts) -> Verifier {
        let authenticator = match MessageAuthenticator::new(config, options) {
            Ok(a) => a,
            Err(error) => {
                tracing::warn!(%error, "cannot build the DNS resolver: checks will report temperror");
                let mut options = ResolverOpts::default();
                options.attempts = 1;
                #[allow(clippy::expect_used)]
                MessageAuthenticator::new(ResolverConfig::from_parts(None, vec![], vec![]), options)
                    .expect("a resolver without name servers always builds")
            }
        };
        Verifier {
            authenticator,
            caches: DnsCaches::default(),
        }
    }

    /// The DNS cache, to put records into.
    pub fn dns(&self) -> &DnsCaches {
        &self.caches
    }

    /// MX hosts of a domain with their addresses, best first (RFC 5321 §5.1:
    /// without MX records, the domain's own A/AAAA records).
    pub async fn mail_hosts(&self, domain: &str) -> Result<Vec<(String, Vec<IpAddr>)>, RouteError> {
        use mail_auth::hickory_resolver::proto::op::ResponseCode;
        use mail_auth::{DnsError, Error, IpLookupStrategy};
        let a = &self.authenticator;
        let c = &self.caches;
        let addresses = |host: String| async move {
            let ips = a
                .ip_lookup(
                    host.trim_end_matches('.'),
                    IpLookupStrategy::Ipv4thenIpv6,
                    8,
                    Some(&c.ipv4),
                    Some(&c.ipv6),
                )
                .await;
            (host, ips)
        };
        let mut hosts: Vec<String> = match a.mx_lookup(domain, Some(&c.mx)).await {
            Ok(records) => {
                let mut records: Vec<MX> = records.rrset.iter().cloned().collect();
                records.sort_by_key(|m| m.preference);
                let names: Vec<String> = records
                    .iter()
                    .flat_map(|m| m.exchanges.iter().map(|e| e.to_string()))
                    .collect();
                if names.iter().all(|n| n == "." || n.is_empty()) && !names.is_empty() {
                    return Err(RouteError::permanent(format!(
                        "{domain} does not accept mail (null MX, RFC 7505)"
                    )));
                }
                names
            }
            Err(Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain))) => {
                return Err(RouteError::permanent(format!(
                    "domain {domain} does not exist"
                )));
            }
            Err(Error::Dns(DnsError::RecordNotFound(_)))
            | Err(Error::Dns(DnsError::InvalidRecordType)) => {
                vec![domain.to_string()]
            }
            Err(error) => {
                return Err(RouteError::temporary(format!(
                    "MX lookup of {domain} failed: {error}"
                )));
            }
        };
        if hosts.is_empty() {
            hosts.push(domain.to_string());
        }
        let mut out = Vec::new();
        let mut last_error = None;
        for host in hosts {
            let (host, ips) = addresses(host).await;
            match ips {
                Ok(ips) if !ips.is_empty() => {
                    out.push((host.trim_end_matches('.').to_string(), ips))
                }
                Ok(_) => {}
                Err(error) => {
                    last_error = Some(format!("address lookup of {host} failed: {error}"))
                }
            }
        }
        if out.is_empty() {
            return Err(RouteError::temporary(last_error.unwrap_or_else(|| {
                format!("no address found for the mail hosts of {domain}")
            })));
        }
        Ok(out)
    }

    /// Runs SPF (MAIL FROM, or HELO for a null sender), DKIM and DMARC.
    pub async fn check(
        &self,
        hostname: &str,
        ip: IpAddr,
        helo: &str,
        mail_from: &str,
        raw: &[u8],
    ) -> Verdict {
        let spf = if mail_from.is_empty() {
            self.authenticator
                .verify_spf(
                    self.caches
                        .parameters(SpfParameters::verify_ehlo(ip, helo, hostname)),
                )
                .await
        } else {
            self.authenticator
                .verify_spf(self.caches.parameters(SpfParameters::verify_mail_from(
                    ip, helo, hostname, mail_from,
                )))
                .await
        };
        let mail_from_domain = mail_from
            .rsplit_once('@')
            .map(|(_, d)| d)
            .unwrap_or(helo)
            .to_string();
        let mut results = AuthenticationResults::new(hostname);
        results = if mail_from.is_empty() {
            results.with_spf_ehlo_result(&spf, ip, helo)
        } else {
            results.with_spf_mailfrom_result(&spf, ip, mail_from, helo)
        };
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            // Not parseable as a message: no DKIM/DMARC to evaluate.
            return Verdict {
                header: results.to_header(),
                dmarc_reject: None,
            };
        };
        let dkim = self
            .authenticator
            .verify_dkim(self.caches.parameters(&message))
            .await;
        let header_from = message.from().to_string();
        results = results.with_dkim_results(&dkim, &header_from);
        let dmarc = self
            .authenticator
            .verify_dmarc(self.caches.parameters(DmarcParameters::new(
                &message,
                &dkim,
                &mail_from_domain,
                &spf,
            )))
            .await;
        if !dmarc.domain().is_empty() {
            results = results.with_dmarc_result(&dmarc);
        }
        // A temporary DNS error is not a failure: such mail is accepted.
        let failed = matches!(dmarc.result(), DmarcResult::Fail(_));
        let dmarc_reject =
            (failed && dmarc.policy() == Policy::Reject).then(|| dmarc.domain().to_string());
        tracing::debug!(
            spf = ?spf.result(),
            dkim = ?dkim.iter().map(|d| d.result()).collect::<Vec<&DkimResult>>(),
            dmarc_reject = ?dmarc_reject,
            "message authentication"
        );
        Verdict {
            header: results.to_header(),
            dmarc_reject,
        }
    }
}
