//! DSN parameters of RFC 3461: `RET` and `ENVID` on MAIL, `NOTIFY` and
//! `ORCPT` on RCPT. Validated here and kept with the envelope; the outbound
//! queue uses them when it reports delivery status.

/// RET: how much of the message a failure report carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ret {
    Full,
    Headers,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MailDsn {
    pub ret: Option<Ret>,
    /// ENVID, xtext-decoded.
    pub envid: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RcptDsn {
    /// NOTIFY: `None` = not given; `Some(empty)` = NEVER; else SUCCESS/FAILURE/DELAY.
    pub notify: Option<Vec<String>>,
    /// ORCPT: (address type, xtext-decoded address).
    pub orcpt: Option<(String, String)>,
}

/// Decodes xtext (RFC 3461 §4): printable ASCII except `+` and `=`, and `+XX` hex.
fn xtext(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hex = value.get(i + 1..i + 3)?;
                if !hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
                {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'=' => return None,
            b @ 33..=126 => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

type Params = [(String, Option<String>)];

pub(crate) fn mail_params(params: &Params) -> Result<MailDsn, String> {
    let mut dsn = MailDsn::default();
    for (key, value) in params {
        match key.as_str() {
            "RET" => {
                if dsn.ret.is_some() {
                    return Err("RET given twice".into());
                }
                dsn.ret = Some(
                    match value.as_deref().map(str::to_ascii_uppercase).as_deref() {
                        Some("FULL") => Ret::Full,
                        Some("HDRS") => Ret::Headers,
                        _ => return Err("RET takes FULL or HDRS".into()),
                    },
                );
            }
            "ENVID" => {
                let decoded = value
                    .as_deref()
                    .filter(|v| !v.is_empty() && v.len() <= 100)
                    .and_then(xtext)
                    .ok_or("ENVID takes an xtext value of at most 100 characters")?;
                if dsn.envid.replace(decoded).is_some() {
                    return Err("ENVID given twice".into());
                }
            }
            _ => {}
        }
    }
    Ok(dsn)
}

pub(crate) fn rcpt_params(params: &Params) -> Result<RcptDsn, String> {
    let mut dsn = RcptDsn::default();
    for (key, value) in params {
        match key.as_str() {
            "NOTIFY" => {
                let value = value.as_deref().unwrap_or_default().to_ascii_uppercase();
                let items: Vec<&str> = value.split(',').collect();
                let valid = if items == ["NEVER"] {
                    true
                } else {
                    !items.is_empty()
                        && items
                            .iter()
                            .all(|i| matches!(*i, "SUCCESS" | "FAILURE" | "DELAY"))
                };
                if !valid {
                    return Err(
                        "NOTIFY takes NEVER, or one or more of SUCCESS,FAILURE,DELAY".into(),
                    );
                }
                let list = if items == ["NEVER"] {
                    Vec::new()
                } else {
                    items.into_iter().map(str::to_string).collect()
                };
                if dsn.notify.replace(list).is_some() {
                    return Err("NOTIFY given twice".into());
                }
            }
            "ORCPT" => {
                let parsed = value
                    .as_deref()
                    .and_then(|v| v.split_once(';'))
                    .filter(|(kind, _)| {
                        !kind.is_empty()
                            && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    })
                    .and_then(|(kind, addr)| Some((kind.to_ascii_lowercase(), xtext(addr)?)))
                    .filter(|(_, addr)| !addr.is_empty())
                    .ok_or("ORCPT takes addr-type;xtext, e.g. rfc822;user@example.org")?;
                if dsn.orcpt.replace(parsed).is_some() {
                    return Err("ORCPT given twice".into());
                }
            }
            _ => {}
        }
    }
    Ok(dsn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(list: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    }

    #[test]
    fn rfc_3461_examples() {
        // RFC 3461 §4.3 / §4.4 example values.
        let mail = mail_params(&p(&[("RET", "HDRS"), ("ENVID", "QQ314159")])).unwrap();
        assert_eq!(mail.ret, Some(Ret::Headers));
        assert_eq!(mail.envid.as_deref(), Some("QQ314159"));
        let rcpt = rcpt_params(&p(&[
            ("NOTIFY", "SUCCESS,FAILURE"),
            ("ORCPT", "rfc822;Bob@Big-Bucks.example"),
        ]))
        .unwrap();
        assert_eq!(rcpt.notify, Some(vec!["SUCCESS".into(), "FAILURE".into()]));
        assert_eq!(
            rcpt.orcpt,
            Some(("rfc822".into(), "Bob@Big-Bucks.example".into()))
        );
        assert_eq!(
            rcpt_params(&p(&[("NOTIFY", "NEVER")])).unwrap().notify,
            Some(vec![])
        );
        assert_eq!(xtext("a+2Bb").as_deref(), Some("a+b"));
    }

    #[test]
    fn bad_values() {
        assert!(mail_params(&p(&[("RET", "ALL")])).is_err());
        assert!(mail_params(&p(&[("ENVID", "a=b")])).is_err());
        assert!(rcpt_params(&p(&[("NOTIFY", "NEVER,SUCCESS")])).is_err());
        assert!(rcpt_params(&p(&[("NOTIFY", "SOMETIMES")])).is_err());
        assert!(rcpt_params(&p(&[("ORCPT", "user@example.org")])).is_err());
        assert!(rcpt_params(&p(&[("ORCPT", "rfc822;a+ZZ")])).is_err());
    }
}
