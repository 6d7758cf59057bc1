//! The `pillarbox` binary as an operator uses it.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn pillarbox(dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pillarbox"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("PILLARBOX_CONFIG")
        .env("PILLARBOX_DATA_DIR", dir.join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("binary runs");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("binary finishes")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn admin_commands_add_and_list_domains_accounts_and_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        pillarbox(d, &["domain", "add", "Example.test"], None, &[])
            .status
            .success()
    );
    let added = pillarbox(
        d,
        &["account", "add", "alice@example.test", "--password-stdin"],
        Some("s3cret\n"),
        &[],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let set = pillarbox(
        d,
        &[
            "account",
            "set",
            "alice@example.test",
            "--pop3",
            "off",
            "--quota",
            "2G",
            "--pop3-list",
            "new",
        ],
        None,
        &[],
    );
    assert!(set.status.success(), "{}", stderr(&set));
    assert!(
        pillarbox(
            d,
            &[
                "alias",
                "add",
                "postmaster@example.test",
                "alice@example.test"
            ],
            None,
            &[]
        )
        .status
        .success()
    );

    let list = pillarbox(d, &["account", "list"], None, &[]);
    let line = stdout(&list)
        .lines()
        .find(|l| l.starts_with("alice@example.test"))
        .map(str::to_string)
        .unwrap();
    let columns: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(columns[2], "off", "pop3 column: {line}");
    assert_eq!(columns[6], "new", "list mode column: {line}");
    assert_eq!(columns[8], "2G", "quota column: {line}");
    assert_eq!(
        stdout(&pillarbox(d, &["domain", "list"], None, &[])).trim(),
        "example.test"
    );
    assert_eq!(
        stdout(&pillarbox(d, &["alias", "list"], None, &[])).trim(),
        "postmaster@example.test -> alice@example.test"
    );
}

#[test]
fn bad_input_gets_one_line_that_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let unknown_domain = pillarbox(
        d,
        &["account", "add", "bob@nowhere.test", "--password-stdin"],
        Some("pw\n"),
        &[],
    );
    assert!(!unknown_domain.status.success());
    assert_eq!(stderr(&unknown_domain).lines().count(), 1);
    assert!(
        stderr(&unknown_domain).contains("pillarbox domain add nowhere.test"),
        "{}",
        stderr(&unknown_domain)
    );

    let no_password = pillarbox(d, &["account", "add", "bob@nowhere.test"], None, &[]);
    assert!(!no_password.status.success());
    assert!(
        stderr(&no_password).contains("--password-stdin"),
        "{}",
        stderr(&no_password)
    );

    let config = d.join("bad.toml");
    std::fs::write(&config, "[listener.imap]\nadress = \"127.0.0.1:1\"\n").unwrap();
    let bad_key = pillarbox(
        d,
        &["--config", config.to_str().unwrap(), "check-config"],
        None,
        &[],
    );
    assert!(!bad_key.status.success());
    assert!(
        stderr(&bad_key).contains("listener.imap.adress"),
        "{}",
        stderr(&bad_key)
    );

    let unreachable = pillarbox(
        d,
        &["domain", "list"],
        None,
        &[(
            "PILLARBOX_STORE__URL",
            "postgres://mail:hunter2@127.0.0.1:1/mail",
        )],
    );
    assert!(!unreachable.status.success());
    let message = stderr(&unreachable);
    assert!(
        message.contains("postgres://mail:***@127.0.0.1:1/mail"),
        "{message}"
    );
    assert!(
        !message.contains("hunter2"),
        "the password is masked: {message}"
    );
}

#[test]
fn check_config_masks_the_store_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = pillarbox(
        dir.path(),
        &["check-config"],
        None,
        &[(
            "PILLARBOX_STORE__URL",
            "postgres://mail:hunter2@db.example.test/mail",
        )],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("postgres://mail:***@db.example.test/mail"));
    assert!(!stdout(&out).contains("hunter2"));
}

#[test]
fn serve_with_no_config_starts_prints_endpoints_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // Ephemeral ports, so the test never collides with a running server.
    let mut env: Vec<(String, String)> = Vec::new();
    for name in [
        "SMTP",
        "SUBMISSION",
        "SUBMISSIONS",
        "POP3",
        "POP3S",
        "IMAP",
        "IMAPS",
        "HTTP",
    ] {
        env.push((
            format!("PILLARBOX_LISTENER__{name}__ADDR"),
            "127.0.0.1:0".into(),
        ));
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_pillarbox"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("PILLARBOX_CONFIG")
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut banner = String::new();
    while !banner.contains("Stop with") && started.elapsed() < Duration::from_secs(30) {
        let mut buf = [0u8; 1024];
        let n = std::io::Read::read(&mut stdout, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        banner.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    for name in [
        "smtp",
        "submission",
        "submissions",
        "pop3",
        "pop3s",
        "imap",
        "imaps",
    ] {
        let line = banner
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in banner:\n{banner}"));
        let addr: std::net::SocketAddr = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(
            std::net::TcpStream::connect(addr).is_ok(),
            "{name} accepts connections at {addr}"
        );
    }
    assert!(
        dir.path().join("data/pillarbox.db").exists(),
        "SQLite under ./data"
    );
    assert!(
        dir.path().join("data/tls/cert.pem").exists(),
        "self-signed certificate made"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "clean exit on SIGTERM: {status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "server stops after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dkim_keys_and_the_queue_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for algorithm in ["ed25519", "rsa"] {
        let out = pillarbox(
            d,
            &[
                "dkim",
                "generate",
                "Example.test",
                "--algorithm",
                algorithm,
                "--selector",
                algorithm,
            ],
            None,
            &[],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let k = if algorithm == "rsa" { "rsa" } else { "ed25519" };
        assert!(
            text.contains(&format!(
                "{algorithm}._domainkey.example.test. 3600 IN TXT \"v=DKIM1;"
            )),
            "{text}"
        );
        assert!(text.contains(&format!("v=DKIM1; k={k}; p=")), "{text}");
        // An RSA key is longer than one 255-octet string: it is split, and
        // the parts join up again.
        let key = dkim_key_in(&parse_zone(&text));
        assert!(key.starts_with(&format!("v=DKIM1; k={k}; p=")), "{key}");
    }
    let shown = pillarbox(d, &["dkim", "show", "example.test"], None, &[]);
    assert!(
        stdout(&shown).contains("._domainkey.example.test."),
        "{}",
        stderr(&shown)
    );
    let missing = pillarbox(d, &["dkim", "show", "other.test"], None, &[]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("pillarbox dkim generate other.test"),
        "{}",
        stderr(&missing)
    );
    let bad = pillarbox(
        d,
        &["dkim", "generate", "example.test", "--algorithm", "dsa"],
        None,
        &[],
    );
    assert!(
        !bad.status.success() && stderr(&bad).contains("use ed25519 or rsa"),
        "{}",
        stderr(&bad)
    );

    let dns = pillarbox(
        d,
        &["dns", "example.test"],
        None,
        &[("PILLARBOX_HOSTNAME", "mail.example.test")],
    );
    assert!(dns.status.success(), "{}", stderr(&dns));
    let zone = stdout(&dns);
    for record in [
        "example.test. 3600 IN MX 10 mail.example.test.",
        "example.test. 3600 IN TXT \"v=spf1 mx -all\"",
        "._domainkey.example.test. 3600 IN TXT \"v=DKIM1;",
        "_dmarc.example.test. 3600 IN TXT \"v=DMARC1; p=quarantine",
        "_mta-sts.example.test. 3600 IN TXT \"v=STSv1; id=",
        "_smtp._tls.example.test. 3600 IN TXT \"v=TLSRPTv1;",
        "autoconfig.example.test. 3600 IN CNAME mail.example.test.",
        "autodiscover.example.test. 3600 IN CNAME mail.example.test.",
        "_imaps._tcp.example.test. 3600 IN SRV 0 1 1993 mail.example.test.",
        "_submission._tcp.example.test. 3600 IN SRV 0 1 2587 mail.example.test.",
    ] {
        assert!(zone.contains(record), "missing {record}:\n{zone}");
    }
    assert!(
        zone.lines().filter(|l| l.starts_with("; ")).count() >= 9,
        "every record has a reason:\n{zone}"
    );
    zone_parses_back(&zone);
    let unhealthy = pillarbox(
        d,
        &["health"],
        None,
        &[("PILLARBOX_LISTENER__HTTP__ADDR", "127.0.0.1:1")],
    );
    assert!(!unhealthy.status.success());
    assert!(
        stderr(&unhealthy).contains("cannot reach http://127.0.0.1:1/healthz"),
        "{}",
        stderr(&unhealthy)
    );

    let list = pillarbox(d, &["queue", "list"], None, &[]);
    assert!(
        list.status.success() && stdout(&list).contains("the queue is empty"),
        "{}",
        stderr(&list)
    );
    let retry = pillarbox(d, &["queue", "retry", "42"], None, &[]);
    assert!(!retry.status.success());
    assert!(
        stderr(&retry).contains("pillarbox queue list"),
        "{}",
        stderr(&retry)
    );
}

type RecordSets =
    std::collections::BTreeMap<hickory_proto::rr::RrKey, hickory_proto::rr::RecordSet>;

/// Zone-file text read by a real zone-file parser, as if pasted into the
/// zone of example.test.
fn parse_zone(zone: &str) -> RecordSets {
    let origin = hickory_proto::rr::Name::from_ascii("example.test.").unwrap();
    hickory_proto::serialize::txt::Parser::new(zone, None, Some(origin))
        .parse()
        .unwrap_or_else(|e| panic!("not a valid zone file ({e}):\n{zone}"))
        .1
}

fn records(
    sets: &RecordSets,
    name: &str,
    kind: hickory_proto::rr::RecordType,
) -> Vec<hickory_proto::rr::RData> {
    sets.iter()
        .filter(|(key, _)| key.record_type == kind && key.name().to_ascii() == name)
        .flat_map(|(_, set)| set.records_without_rrsigs().map(|r| r.data.clone()))
        .collect()
}

/// The character-strings of each TXT record at `name`, joined.
fn txt(sets: &RecordSets, name: &str) -> Vec<String> {
    records(sets, name, hickory_proto::rr::RecordType::TXT)
        .into_iter()
        .filter_map(|d| match d {
            hickory_proto::rr::RData::TXT(t) => Some(
                t.txt_data
                    .iter()
                    .map(|part| String::from_utf8_lossy(part).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The one DKIM key record in the zone, checked: `v=DKIM1; k=…; p=<base64>`.
fn dkim_key_in(sets: &RecordSets) -> String {
    let names: Vec<String> = sets
        .keys()
        .filter(|k| {
            k.record_type == hickory_proto::rr::RecordType::TXT
                && k.name().to_ascii().contains("._domainkey.")
        })
        .map(|k| k.name().to_ascii())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let key = txt(sets, &names[0]).concat();
    let p = key
        .split("; ")
        .find_map(|tag| tag.strip_prefix("p="))
        .unwrap_or_else(|| panic!("a p= tag: {key}"));
    assert!(key.starts_with("v=DKIM1; k="), "{key}");
    assert!(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, p).is_ok(),
        "the public key is base64: {p}"
    );
    key
}

/// `pillarbox dns` output read back: every record is valid, and the values
/// are what a receiver or a client looks up.
fn zone_parses_back(zone: &str) {
    use hickory_proto::rr::{RData, RecordType};
    let sets = parse_zone(zone);
    match records(&sets, "example.test.", RecordType::MX).as_slice() {
        [RData::MX(mx)] => {
            assert_eq!(mx.exchange.to_ascii(), "mail.example.test.");
            assert_eq!(mx.preference, 10);
        }
        other => panic!("one MX record: {other:?}"),
    }
    assert_eq!(txt(&sets, "example.test."), ["v=spf1 mx -all"]);
    dkim_key_in(&sets);
    assert!(txt(&sets, "_dmarc.example.test.")[0].starts_with("v=DMARC1; p=quarantine"));
    assert!(txt(&sets, "_mta-sts.example.test.")[0].starts_with("v=STSv1; id="));
    assert!(txt(&sets, "_smtp._tls.example.test.")[0].starts_with("v=TLSRPTv1; rua=mailto:"));
    for name in ["autoconfig.example.test.", "autodiscover.example.test."] {
        match records(&sets, name, RecordType::CNAME).as_slice() {
            [RData::CNAME(target)] => assert_eq!(target.0.to_ascii(), "mail.example.test."),
            other => panic!("{name}: {other:?}"),
        }
    }
    // RFC 6186: the ports the listeners really use (development defaults here).
    for (service, port) in [
        ("_imaps._tcp.example.test.", 1993),
        ("_imap._tcp.example.test.", 1143),
        ("_pop3s._tcp.example.test.", 1995),
        ("_pop3._tcp.example.test.", 1110),
        ("_submissions._tcp.example.test.", 2465),
        ("_submission._tcp.example.test.", 2587),
    ] {
        match records(&sets, service, RecordType::SRV).as_slice() {
            [RData::SRV(srv)] => {
                assert_eq!(srv.port, port, "{service}");
                assert_eq!(srv.target.to_ascii(), "mail.example.test.");
            }
            other => panic!("{service}: {other:?}"),
        }
    }
}

#[test]
fn root_is_refused_on_a_data_directory_of_another_user() {
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        eprintln!("not root: nothing to refuse (CI runs this as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let out = pillarbox(dir.path(), &["domain", "add", "example.test"], None, &[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("belongs to uid 65534") && stderr(&out).contains("runuser -u"),
        "{}",
        stderr(&out)
    );
    assert!(
        std::fs::read_dir(&data).unwrap().next().is_none(),
        "nothing was made in it"
    );
}
