//! Sentinel URLs:
//! `redis+sentinel://[user:password@]host1[:port1],host2[:port2]/<master name>[/db]`
//! `[?sentinel_username=...&sentinel_password=...]`, and `rediss+sentinel://...` where the
//! sentinels and the data nodes are all reached over TLS.
//!
//! The credentials before `@` are the data nodes' (as in `redis://`); the sentinels' own
//! credentials are query parameters, because the two are often different. Sentinel ports
//! default to 26379. Percent-encoding is decoded in credentials and in the master name.

use super::hosts::{
    credentials, decode, host_list, info_at, invalid, split_authority, tls_compiled,
};
use crate::config::endpoint::{DEFAULT_SENTINEL_PORT, Endpoint, SentinelSpec};
use busmq_core::Error;
use redis::RedisConnectionInfo;

const SCHEME: &str = "redis+sentinel://";
const TLS_SCHEME: &str = "rediss+sentinel://";

/// Whether `url` uses a Sentinel scheme.
pub(crate) fn is_sentinel(url: &str) -> bool {
    url.starts_with(SCHEME) || url.starts_with(TLS_SCHEME)
}

/// Builds the URL of a group given as parts (the builder's `sentinel` method).
pub(crate) fn compose(sentinels: &[String], master: &str) -> String {
    format!("{SCHEME}{}/{}", sentinels.join(","), encode(master))
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses and checks a Sentinel URL.
pub(crate) fn parse(url: &str) -> Result<Endpoint, Error> {
    let (rest, tls) = match url.strip_prefix(TLS_SCHEME) {
        Some(rest) => (rest, true),
        None => (url.strip_prefix(SCHEME).unwrap_or(url), false),
    };
    tls_compiled(url, tls)?;
    if rest.contains('#') {
        return Err(invalid(url, "a fragment (#...) means nothing here"));
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, hosts) = split_authority(authority);
    let sentinels = host_list(url, hosts, "sentinel", DEFAULT_SENTINEL_PORT)?;
    let mut segments = path.trim_start_matches('/').split('/');
    let master = decode(url, segments.next().unwrap_or(""), false)?;
    if master.is_empty() {
        return Err(invalid(url, "it names no master (redis+sentinel://hosts/<master name>)"));
    }
    let db = match segments.next() {
        None | Some("") => 0,
        Some(db) => db
            .parse::<u32>()
            .map_err(|_| invalid(url, format!("the database {db:?} is not a number")))?,
    };
    if segments.next().is_some_and(|s| !s.is_empty()) {
        return Err(invalid(url, "the path has more than a master name and a database"));
    }
    let data = credentials(url, userinfo, RedisConnectionInfo::default().set_db(i64::from(db)))?;
    let mut spec = SentinelSpec { master, sentinels, username: None, password: None };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = decode(url, value, key.contains("password"))?;
        match key {
            "sentinel_username" => spec.username = Some(value),
            "sentinel_password" => spec.password = Some(value),
            other => {
                return Err(invalid(
                    url,
                    format!(
                        "unknown parameter {other:?} (known: sentinel_username, \
                         sentinel_password)"
                    ),
                ));
            }
        }
    }
    // The address is a placeholder: each connection asks the sentinels first.
    let info = info_at(url, spec.sentinels[0].clone(), tls, data)?;
    let identity = format!("sentinel:{}/{db}", spec.master);
    Ok(Endpoint { info, identity, sentinel: Some(spec), cluster: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match parse(url) {
            Err(Error::InvalidUrl { url: u, reason }) => format!("{u}: {reason}"),
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }

    #[test]
    fn groups_have_a_stable_identity_and_separate_credentials() {
        let e = parse(
            "redis+sentinel://app:da%40ta@S1:26380,s2,[::1]:26381/my%2Fmaster/3\
             ?sentinel_password=sp&sentinel_username=su",
        )
        .unwrap();
        assert_eq!(e.identity, "sentinel:my/master/3");
        let spec = e.sentinel.unwrap();
        assert_eq!(spec.master, "my/master");
        assert_eq!(
            spec.sentinels,
            vec![("s1".into(), 26380), ("s2".into(), 26379), ("::1".into(), 26381)]
        );
        assert_eq!(spec.username.as_deref(), Some("su"));
        assert_eq!(spec.password.as_deref(), Some("sp"));
        assert_eq!(e.info.redis_settings().username(), Some("app"));
        assert_eq!(e.info.redis_settings().password(), Some("da@ta"));
        assert_eq!(e.info.redis_settings().db(), 3);
        let plain = parse("redis+sentinel://h/m").unwrap();
        assert_eq!(plain.identity, "sentinel:m/0");
        assert_eq!(plain.info.redis_settings().password(), None);
        assert_eq!(plain.sentinel.unwrap().password, None);
    }

    #[test]
    fn composed_urls_parse_back() {
        let url = compose(&["127.0.0.1:1".into(), "127.0.0.1:2".into()], "a b/c");
        let e = parse(&url).unwrap();
        assert_eq!(e.sentinel.unwrap().master, "a b/c");
    }

    #[test]
    fn bad_sentinel_urls_say_why() {
        assert!(reason("redis+sentinel:///m").contains("no sentinel"));
        assert!(reason("redis+sentinel://h").contains("no master"));
        assert!(reason("redis+sentinel://h:0/m").ends_with("sentinel port 0 is not a valid port"));
        assert!(reason("redis+sentinel://h:x/m").ends_with("sentinel port \"x\" is not a number"));
        let e = reason("redis+sentinel://[::1]:70000/m");
        assert!(e.ends_with("the sentinel port 70000 is out of range (1-65535)"), "{e}");
        assert!(reason("redis+sentinel://[::1]26379/m").contains("\"[::1]26379\""));
        assert!(reason("redis+sentinel://h,:1/m").contains("no host"));
        assert!(reason("redis+sentinel://h/m/x").contains("not a number"));
        assert!(reason("redis+sentinel://h/m/1/2").contains("more than"));
        assert!(reason("redis+sentinel://h/m?foo=1").contains("unknown parameter"));
        if cfg!(feature = "tls") {
            let e = parse("rediss+sentinel://h:1,h:2/m").unwrap();
            assert!(e.uses_tls() && e.identity == "sentinel:m/0");
        } else {
            assert!(reason("rediss+sentinel://h/m").contains("TLS"));
        }
        let e = reason("redis+sentinel://u:secret@h/m?sentinel_password=hidden&foo=1");
        assert!(!e.contains("secret") && !e.contains("hidden"), "{e}");
    }
}
