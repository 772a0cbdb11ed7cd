//! Pieces every URL scheme shares: the error that names a URL (with its password redacted),
//! the `host:port` check, and for the multi-host schemes (`redis+sentinel://`,
//! `redis+cluster://`) the comma-separated host list, the credentials before `@`, and
//! percent-decoding.

use busmq_core::Error;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

/// The error for a URL that cannot be used.
pub(crate) fn invalid(url: &str, reason: impl Into<String>) -> Error {
    let reason = if misplaced_credentials(url) {
        // The parsers split such a URL inside its password, and their reasons quote the
        // pieces (as a host or a port): say what is wrong instead.
        "the text before its last '@' is no user:password (percent-encode '/', '?', '#' and \
         '@' in a password)"
            .to_string()
    } else {
        reason.into()
    };
    Error::InvalidUrl { url: redact(url), reason }
}

/// Whether credentials end after the authority does: a password with an unescaped `/`, `?`
/// or `#`.
fn misplaced_credentials(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    !authority.contains('@')
        && rest.rsplit_once('@').is_some_and(|(before, _)| before.contains(':'))
}

/// The URL with its password replaced by `***`, for error messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The authority ends at the last `@` before the query when there is one (a password may
    // hold unescaped `@` and `/`: `redis://u:p@s/s@host`), else at the first `/`.
    let head = &rest[..rest.find('?').unwrap_or(rest.len())];
    let (authority, tail) = match (head.rfind('@'), rest.find('/')) {
        (Some(at), _) => match rest[at..].find('/') {
            Some(i) => rest.split_at(at + i),
            None => (rest, ""),
        },
        (None, Some(i)) => rest.split_at(i),
        (None, None) => (rest, ""),
    };
    let mut out = match authority.rsplit_once('@') {
        Some((creds, host)) => match creds.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => format!("{scheme}://{creds}@{host}{tail}"),
        },
        // A password with an unescaped `/` (`redis://u:pa/ss@host`) ends the authority early,
        // and the URL is refused for it: hide everything from the first `:` to the last `@`.
        // A query value with an `@` is hidden too: too much hidden is harmless.
        None => match (rest.split_once(':'), rest.rsplit_once('@')) {
            (Some((user, _)), Some((creds, host))) if user.len() < creds.len() => {
                format!("{scheme}://{user}:***@{host}")
            }
            _ => url.to_string(),
        },
    };
    // unix URLs carry the password as a query parameter, Sentinel URLs the sentinels' one.
    for key in ["pass=", "password="] {
        let mut from = 0;
        while let Some(found) = out[from..].find(key) {
            let start = from + found + key.len();
            let end = out[start..].find('&').map(|e| start + e).unwrap_or(out.len());
            out.replace_range(start..end, "***");
            from = start + 3;
        }
    }
    out
}

/// `text` with its `%XX` escapes decoded (URL credentials and Sentinel master names). The
/// errors quote `text` unless it is a `secret` (a password: SPEC S3).
pub(crate) fn decode(url: &str, text: &str, secret: bool) -> Result<String, Error> {
    let quoted = if secret { "the password".to_string() } else { format!("{text:?}") };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(b) = hex else {
                return Err(invalid(url, format!("bad percent-encoding in {quoted}")));
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(url, format!("{quoted} is not UTF-8")))
}

/// Splits `[userinfo@]hosts` (the last `@` ends the credentials: passwords may contain one
/// percent-encoded, but hosts never do).
pub(crate) fn split_authority(authority: &str) -> (Option<&str>, &str) {
    match authority.rsplit_once('@') {
        Some((creds, hosts)) => (Some(creds), hosts),
        None => (None, authority),
    }
}

/// Splits `host[:port]` or `[v6 address][:port]` and checks the port, so that every URL form
/// says what is wrong with one (the redis crate only says that the URL did not parse, and
/// takes port 0). `port` names it in messages: "port" for a `redis://` URL, "the sentinel
/// port" in a list.
pub(crate) fn split_host_port<'a>(
    url: &str,
    text: &'a str,
    port: &str,
) -> Result<(&'a str, Option<u16>), Error> {
    let bad = || invalid(url, format!("bad address {text:?}"));
    let (host, digits) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            after => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(invalid(
                    url,
                    format!("the IPv6 address in {text:?} must be in brackets: [::1]:6379"),
                ));
            }
            Some((host, digits)) => (host, Some(digits)),
            None => (text, None),
        }
    };
    let Some(digits) = digits else {
        return Ok((host, None));
    };
    if digits.is_empty() {
        let the = if port.starts_with("the ") { String::new() } else { "the ".to_string() };
        return Err(invalid(url, format!("{the}{port} after ':' is empty")));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(url, format!("{port} {digits:?} is not a number")));
    }
    match digits.parse::<u64>() {
        Ok(0) => Err(invalid(url, format!("{port} 0 is not a valid port"))),
        Ok(n) => match u16::try_from(n) {
            Ok(n) => Ok((host, Some(n))),
            Err(_) => Err(invalid(url, format!("{port} {n} is out of range (1-65535)"))),
        },
        // Only digits, so too many of them.
        Err(_) => Err(invalid(url, format!("{port} {digits} is out of range (1-65535)"))),
    }
}

/// One `host[:port]` or `[v6]:port` of the list; `what` names it in errors ("sentinel",
/// "seed").
fn host_port(url: &str, text: &str, what: &str, default_port: u16) -> Result<(String, u16), Error> {
    let (host, port) = split_host_port(url, text, &format!("the {what} port"))?;
    if host.is_empty() {
        return Err(invalid(url, format!("the {what} address {text:?} has no host")));
    }
    Ok((host.to_ascii_lowercase(), port.unwrap_or(default_port)))
}

/// The comma-separated host list, lowercase, without duplicates, in the order given.
pub(crate) fn host_list(
    url: &str,
    hosts: &str,
    what: &str,
    default_port: u16,
) -> Result<Vec<(String, u16)>, Error> {
    if hosts.is_empty() {
        return Err(invalid(url, format!("it names no {what}")));
    }
    let mut out = Vec::new();
    for part in hosts.split(',') {
        let addr = host_port(url, part, what, default_port)?;
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    Ok(out)
}

/// `data` with the username and password of `user[:password]` (percent-decoded).
pub(crate) fn credentials(
    url: &str,
    userinfo: Option<&str>,
    mut data: RedisConnectionInfo,
) -> Result<RedisConnectionInfo, Error> {
    if let Some(creds) = userinfo {
        let (user, password) = match creds.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (creds, None),
        };
        if !user.is_empty() {
            data = data.set_username(decode(url, user, false)?);
        }
        if let Some(password) = password {
            data = data.set_password(decode(url, password, true)?);
        }
    }
    Ok(data)
}

/// Connection info for `addr` with the data nodes' settings; for these schemes the address
/// is only a starting point (the sentinels or the cluster name the real nodes).
pub(crate) fn info_at(
    url: &str,
    (host, port): (String, u16),
    tls: bool,
    data: RedisConnectionInfo,
) -> Result<ConnectionInfo, Error> {
    Ok(node_addr(host, port, tls)
        .into_connection_info()
        .map_err(|e| invalid(url, e.to_string()))?
        .set_redis_settings(data))
}

/// The address of a node (or sentinel) of a multi-host scheme, with or without TLS (always
/// verified: the `rediss+` schemes have no `#insecure`).
pub(crate) fn node_addr(host: String, port: u16, tls: bool) -> ConnectionAddr {
    if tls {
        ConnectionAddr::TcpTls { host, port, insecure: false, tls_params: None }
    } else {
        ConnectionAddr::Tcp(host, port)
    }
}

/// Refuses a `rediss+` scheme when TLS is not compiled in.
pub(crate) fn tls_compiled(url: &str, tls: bool) -> Result<(), Error> {
    if tls && !cfg!(feature = "tls") {
        return Err(invalid(url, "TLS support is not compiled in (enable the \"tls\" feature)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_passwords() {
        assert_eq!(redact("redis://:pw@h:1/0"), "redis://:***@h:1/0");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
        assert_eq!(redact("redis+unix:///s?db=1&pass=pw"), "redis+unix:///s?db=1&pass=***");
        assert_eq!(
            redact("redis+sentinel://u:pw@a,b/m?sentinel_password=spw&x=1"),
            "redis+sentinel://u:***@a,b/m?sentinel_password=***&x=1"
        );
    }
    /// Found by review: `redis://u:p@s/s@host` showed `s/s` (the authority ended at the first
    /// `@`'s following `/`).
    #[test]
    fn a_password_with_an_at_and_a_slash_is_hidden() {
        assert_eq!(redact("redis://u:p@s/s@host:1/0"), "redis://u:***@host:1/0");
        assert_eq!(redact("redis://u:p@s/s@host"), "redis://u:***@host");
        assert_eq!(redact("redis://h:1/0"), "redis://h:1/0");
        assert_eq!(redact("redis://u@h:1/0"), "redis://u@h:1/0");
    }

    /// A password with an unescaped `/` showed whole in the error that refused its URL (found
    /// while writing the secrets tests: the authority ended at the `/`, before the `@`).
    #[test]
    fn a_password_with_a_slash_is_hidden_too() {
        let url = "redis://user:pa/ss-S3cret@h:1/0";
        assert_eq!(redact(url), "redis://user:***@h:1/0");
        for url in [url, "redis://u:S3cret/x@h", "redis://u:S3cret#x@h:1", "redis://u:S3cret?x@h"] {
            let error = crate::config::url::parse(url).unwrap_err();
            assert!(!format!("{error} {error:?}").contains("S3cret"), "{error:?}");
        }
        assert_eq!(redact("redis://:a/b@h"), "redis://:***@h");
        // No credentials: nothing changes.
        assert_eq!(redact("redis+unix:///tmp/s.sock?db=1"), "redis+unix:///tmp/s.sock?db=1");
    }
}
