//! Pieces shared by the multi-host URL schemes (`redis+sentinel://`, `redis+cluster://`): the
//! comma-separated host list, the credentials before `@`, and percent-decoding.

use crate::url::invalid;
use busmq_core::Error;
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

pub(crate) fn decode(url: &str, text: &str) -> Result<String, Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(b) = hex else {
                return Err(invalid(url, format!("bad percent-encoding in {text:?}")));
            };
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(url, format!("{text:?} is not UTF-8")))
}

/// Splits `[userinfo@]hosts` (the last `@` ends the credentials: passwords may contain one
/// percent-encoded, but hosts never do).
pub(crate) fn split_authority(authority: &str) -> (Option<&str>, &str) {
    match authority.rsplit_once('@') {
        Some((creds, hosts)) => (Some(creds), hosts),
        None => (None, authority),
    }
}

/// One `host[:port]` or `[v6]:port` of the list; `what` names it in errors ("sentinel",
/// "seed").
fn host_port(url: &str, text: &str, what: &str, default_port: u16) -> Result<(String, u16), Error> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) =
            rest.split_once(']').ok_or_else(|| invalid(url, format!("bad address {text:?}")))?;
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(invalid(url, format!("the {what} address {text:?} has no host")));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid(url, format!("the {what} port {p:?} is not a port")))?,
    };
    Ok((host.to_ascii_lowercase(), port))
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
            data = data.set_username(decode(url, user)?);
        }
        if let Some(password) = password {
            data = data.set_password(decode(url, password)?);
        }
    }
    Ok(data)
}

/// Connection info for `addr` with the data nodes' settings; for these schemes the address
/// is only a starting point (the sentinels or the cluster name the real nodes).
pub(crate) fn info_at(
    url: &str,
    (host, port): (String, u16),
    data: RedisConnectionInfo,
) -> Result<ConnectionInfo, Error> {
    Ok(ConnectionAddr::Tcp(host, port)
        .into_connection_info()
        .map_err(|e| invalid(url, e.to_string()))?
        .set_redis_settings(data))
}
