//! Client autoconfiguration from the live configuration: Thunderbird's
//! autoconfig (config-v1.1.xml), Outlook's POX autodiscover, and an Apple
//! configuration profile. Each describes IMAP on the `imaps` listener, POP3
//! on `pop3s` and submission on `submissions` (TLS) and `submission`
//! (STARTTLS), with the server's hostname.

use super::HttpState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

/// The request's `<EMailAddress>` with XML's predefined entities decoded.
fn xml_unescape(value: &str) -> String {
    value
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn xml_escape(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// An e-mail address a client sent, if it looks like one.
fn address(value: Option<&String>) -> Option<String> {
    let value = value?.trim();
    let (local, domain) = value.rsplit_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && value.len() <= 254
        && !value.chars().any(|c| c.is_control() || c.is_whitespace());
    ok.then(|| value.to_ascii_lowercase())
}

struct Endpoints {
    host: String,
    imaps: Option<u16>,
    pop3s: Option<u16>,
    submissions: Option<u16>,
    submission: Option<u16>,
}

fn endpoints(state: &HttpState) -> Endpoints {
    let port = |name: &str| state.addrs.get(name).map(|a| a.port());
    Endpoints {
        host: state.config.hostname.clone(),
        imaps: port("imaps"),
        pop3s: port("pop3s"),
        submissions: port("submissions"),
        submission: port("submission"),
    }
}

/// 404 unless `domain` is one of this server's domains: a client asking
/// for someone else's domain must not be told to use this server.
async fn unknown_domain(state: &HttpState, domain: &str) -> Option<Response> {
    let directory = pillarbox_directory::Directory::new(state.store.clone());
    match directory.is_local_domain(domain).await {
        Ok(true) => None,
        Ok(false) => Some(
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{domain} is not a domain of this server\n"),
            )
                .into_response(),
        ),
        Err(error) => {
            tracing::warn!(%error, "autoconfiguration: the store did not answer");
            Some(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store did not answer; try again\n",
                )
                    .into_response(),
            )
        }
    }
}

fn domain_of(email: &str) -> &str {
    email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
}

fn xml(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=…`, and
/// `GET /mail/config-v1.1.xml` on `autoconfig.DOMAIN` (Thunderbird asks
/// both; without `emailaddress` the domain comes from the Host header).
pub async fn thunderbird(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let e = endpoints(&state);
    let domain = match address(query.get("emailaddress")) {
        Some(email) => domain_of(&email).to_string(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
            let host = host.to_ascii_lowercase();
            host.strip_prefix("autoconfig.")
                .unwrap_or(&host)
                .to_string()
        }
    };
    if let Some(refusal) = unknown_domain(&state, &domain).await {
        return refusal;
    }
    let host = xml_escape(&e.host);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  <emailProvider id=\"{d}\">\n    <domain>{d}</domain>\n    <displayName>{d} (Pillarbox)</displayName>\n    <displayShortName>{d}</displayShortName>\n",
        d = xml_escape(&domain)
    );
    let server = |kind: &str, tag: &str, port: u16, socket: &str| {
        format!(
            "    <{tag} type=\"{kind}\">\n      <hostname>{host}</hostname>\n      <port>{port}</port>\n      <socketType>{socket}</socketType>\n      <authentication>password-cleartext</authentication>\n      <username>%EMAILADDRESS%</username>\n    </{tag}>\n"
        )
    };
    if let Some(port) = e.imaps {
        out.push_str(&server("imap", "incomingServer", port, "SSL"));
    }
    if let Some(port) = e.pop3s {
        out.push_str(&server("pop3", "incomingServer", port, "SSL"));
    }
    if let Some(port) = e.submissions {
        out.push_str(&server("smtp", "outgoingServer", port, "SSL"));
    }
    if let Some(port) = e.submission {
        out.push_str(&server("smtp", "outgoingServer", port, "STARTTLS"));
    }
    out.push_str("  </emailProvider>\n</clientConfig>\n");
    xml(out)
}

/// `POST /autodiscover/autodiscover.xml` (Outlook, POX schema).
pub async fn outlook(State(state): State<Arc<HttpState>>, body: String) -> Response {
    let requested = body
        .split("<EMailAddress>")
        .nth(1)
        .and_then(|rest| rest.split("</EMailAddress>").next())
        .map(xml_unescape);
    let Some(email) = address(requested.as_ref()) else {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "send an Autodiscover request with <EMailAddress>you@example.org</EMailAddress>\n",
        )
            .into_response();
    };
    if let Some(refusal) = unknown_domain(&state, domain_of(&email)).await {
        return refusal;
    }
    let e = endpoints(&state);
    let login = xml_escape(&email);
    let host = xml_escape(&e.host);
    let protocol = |kind: &str, port: u16, encryption: &str| {
        format!(
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{host}</Server>\n        <Port>{port}</Port>\n        <LoginName>{login}</LoginName>\n        <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n        <Encryption>{encryption}</Encryption>\n        <AuthRequired>on</AuthRequired>\n      </Protocol>\n"
        )
    };
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n",
    );
    if let Some(port) = e.imaps {
        out.push_str(&protocol("IMAP", port, "SSL"));
    }
    if let Some(port) = e.pop3s {
        out.push_str(&protocol("POP3", port, "SSL"));
    }
    if let Some(port) = e.submissions {
        out.push_str(&protocol("SMTP", port, "SSL"));
    } else if let Some(port) = e.submission {
        out.push_str(&protocol("SMTP", port, "TLS"));
    }
    out.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    xml(out)
}

/// A stable UUID-shaped identifier derived from `seed` (profiles must keep
/// their identifiers so that installing again replaces, not duplicates).
fn stable_uuid(seed: &str) -> String {
    let hash = pillarbox_store::blob::hash(seed.as_bytes());
    let h: String = hash
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(32)
        .collect();
    let h = format!("{h:0<32}").to_ascii_uppercase();
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// `GET /apple/pillarbox.mobileconfig?emailaddress=…` (iOS, macOS Mail).
pub async fn apple(
    State(state): State<Arc<HttpState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(email) = address(query.get("emailaddress")) else {
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "add ?emailaddress=you@example.org to the address\n",
        )
            .into_response();
    };
    if let Some(refusal) = unknown_domain(&state, domain_of(&email)).await {
        return refusal;
    }
    let e = endpoints(&state);
    let (imap_port, smtp_port) = (
        e.imaps.unwrap_or(993),
        e.submissions.or(e.submission).unwrap_or(465),
    );
    let host = xml_escape(&e.host);
    let login = xml_escape(&email);
    let id = format!(
        "{}.pillarbox.mail",
        e.host.split('.').rev().collect::<Vec<_>>().join(".")
    );
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>EmailAccountDescription</key><string>{login}</string>
      <key>EmailAccountName</key><string>{login}</string>
      <key>EmailAccountType</key><string>EmailTypeIMAP</string>
      <key>EmailAddress</key><string>{login}</string>
      <key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>IncomingMailServerHostName</key><string>{host}</string>
      <key>IncomingMailServerPortNumber</key><integer>{imap_port}</integer>
      <key>IncomingMailServerUseSSL</key><true/>
      <key>IncomingMailServerUsername</key><string>{login}</string>
      <key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>OutgoingMailServerHostName</key><string>{host}</string>
      <key>OutgoingMailServerPortNumber</key><integer>{smtp_port}</integer>
      <key>OutgoingMailServerUseSSL</key><true/>
      <key>OutgoingMailServerUsername</key><string>{login}</string>
      <key>OutgoingPasswordSameAsIncomingPassword</key><true/>
      <key>PayloadDescription</key><string>Mail account {login}</string>
      <key>PayloadDisplayName</key><string>{login}</string>
      <key>PayloadIdentifier</key><string>{id}.account.{uuid_account}</string>
      <key>PayloadType</key><string>com.apple.mail.managed</string>
      <key>PayloadUUID</key><string>{uuid_account}</string>
      <key>PayloadVersion</key><integer>1</integer>
    </dict>
  </array>
  <key>PayloadDisplayName</key><string>Mail ({host})</string>
  <key>PayloadIdentifier</key><string>{id}</string>
  <key>PayloadRemovalDisallowed</key><false/>
  <key>PayloadType</key><string>Configuration</string>
  <key>PayloadUUID</key><string>{uuid_profile}</string>
  <key>PayloadVersion</key><integer>1</integer>
</dict>
</plist>
"#,
        uuid_account = stable_uuid(&format!("account {email}")),
        uuid_profile = stable_uuid(&format!("profile {email}")),
    );
    (
        [
            (header::CONTENT_TYPE, "application/x-apple-aspen-config"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"pillarbox.mobileconfig\"",
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_escaping() {
        assert_eq!(
            address(Some(&"Alice@Example.test".to_string())).as_deref(),
            Some("alice@example.test")
        );
        assert!(address(Some(&"no-at-sign".to_string())).is_none());
        assert!(address(Some(&"a b@c".to_string())).is_none());
        assert_eq!(xml_escape("<a&b>"), "&lt;a&amp;b&gt;");
        assert_eq!(xml_unescape("a&amp;lt;&lt;"), "a&lt;<");
        let u = stable_uuid("x");
        assert_eq!(u.len(), 36);
        assert_eq!(u, stable_uuid("x"));
    }
}
