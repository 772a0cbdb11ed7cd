//! Connection URLs: `redis://[user:password@]host[:port][/db]`, `rediss://` (TLS),
//! `redis+unix:///path[?db=N&pass=...]`, the Sentinel form (see `sentinel.rs`) and the Redis
//! Cluster form (see `cluster.rs`), checked up front so a bad URL is a typed error that names it
//! (SPEC E1).

mod cluster;
mod hosts;
mod sentinel;

pub(crate) use cluster::compose as compose_cluster;
pub(crate) use hosts::{node_addr, redact};
pub(crate) use sentinel::compose as compose_sentinel;

use crate::config::endpoint::Endpoint;
use busmq_core::Error;
use hosts::{invalid, split_host_port};
use redis::{ConnectionAddr, IntoConnectionInfo};

const SCHEMES: [&str; 4] = ["redis://", "rediss://", "redis+unix://", "unix://"];

/// Parses and checks one URL.
pub(crate) fn parse(url: &str) -> Result<Endpoint, Error> {
    if url.trim().is_empty() {
        return Err(invalid(url, "it is empty"));
    }
    if sentinel::is_sentinel(url) {
        return sentinel::parse(url);
    }
    if cluster::is_cluster(url) {
        return cluster::parse(url);
    }
    let Some(scheme) = SCHEMES.iter().find(|s| url.starts_with(**s)) else {
        return Err(invalid(
            url,
            "the scheme must be redis://, rediss://, redis+unix:// (also unix://), \
             redis+sentinel:// or redis+cluster://",
        ));
    };
    if *scheme == "rediss://" && !cfg!(feature = "tls") {
        return Err(invalid(url, "TLS support is not compiled in (enable the \"tls\" feature)"));
    }
    if !scheme.contains("unix") {
        let rest = &url[scheme.len()..];
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
        if host.is_empty() || host.starts_with(':') {
            return Err(invalid(url, "it has no host"));
        }
        if host.contains(',') {
            return Err(invalid(
                url,
                "it names more than one host (give one URL per instance, or use \
                 redis+cluster:// or redis+sentinel:// for a list)",
            ));
        }
        if split_host_port(url, host, "port")?.0.is_empty() {
            return Err(invalid(url, "it has no host"));
        }
        let path = rest[authority.len()..].split(['?', '#']).next().unwrap_or("");
        let db = path.trim_start_matches('/');
        if !db.is_empty() && db.parse::<u32>().is_err() {
            return Err(invalid(url, format!("the database {db:?} is not a number")));
        }
    }
    let info = url.into_connection_info().map_err(|e| {
        let reason = match e.detail() {
            Some(detail) => format!("{}: {detail}", e.category()),
            None => e.to_string(),
        };
        invalid(url, reason)
    })?;
    let db = info.redis_settings().db();
    if db < 0 {
        return Err(invalid(url, "the database number is negative"));
    }
    let identity = match info.addr() {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            format!("{}:{port}/{db}", host.to_ascii_lowercase())
        }
        ConnectionAddr::Unix(path) => format!("unix:{}/{db}", path.display()),
        other => return Err(invalid(url, format!("unsupported address {other:?}"))),
    };
    Ok(Endpoint { info, identity, sentinel: None, cluster: None })
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
    fn identities_ignore_credentials_tls_and_default_port() {
        let a = parse("redis://127.0.0.1").unwrap();
        assert_eq!(a.identity, "127.0.0.1:6379/0");
        let b = parse("redis://user:secret@LocalHost:6380/3").unwrap();
        assert_eq!(b.identity, "localhost:6380/3");
        assert_eq!(b.info.redis_settings().password(), Some("secret"));
        let c = parse("redis+unix:///tmp/r.sock?db=2").unwrap();
        assert_eq!(c.identity, "unix:/tmp/r.sock/2");
        if cfg!(feature = "tls") {
            let d = parse("rediss://example.com:6390").unwrap();
            assert_eq!(d.identity, "example.com:6390/0");
        }
    }

    #[test]
    fn bad_urls_are_typed_errors_naming_the_url() {
        assert!(reason("").contains("empty"));
        assert!(reason("http://127.0.0.1").contains("scheme"));
        assert!(reason("127.0.0.1:6379").contains("scheme"));
        assert!(reason("redis://").contains("no host"));
        assert!(reason("redis://:pw@:6379").contains("no host"));
        assert!(reason("redis://host/abc").contains("\"abc\" is not a number"));
        let r = reason("redis://host:notaport");
        assert!(r.starts_with("redis://host:notaport: "), "{r}");
        let e = parse("redis://u:hunter2@host/x").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "passwords are not printed: {e}");
        assert!(e.starts_with("invalid url \"redis://u:***@host/x\""), "{e}");
    }

    #[test]
    fn ports_are_checked_and_the_problem_named() {
        let out_of_range = reason("redis://host:99999");
        assert!(out_of_range.ends_with("port 99999 is out of range (1-65535)"), "{out_of_range}");
        assert!(reason("redis://host:abc").ends_with("port \"abc\" is not a number"));
        assert!(reason("redis://host:+5").ends_with("port \"+5\" is not a number"));
        assert!(reason("redis://host:0").ends_with("port 0 is not a valid port"));
        assert!(reason("redis://host:").ends_with("the port after ':' is empty"));
        assert!(reason("redis://host:123456789012345678901").contains("is out of range"));
        let e = reason("redis://u:hunter2@host:0/1");
        assert!(e.starts_with("redis://u:***@host:0/1: port 0"), "{e}");
        assert!(reason("redis://[::1]:99999").ends_with("port 99999 is out of range (1-65535)"));
        assert!(reason("redis://[::1]:0").ends_with("port 0 is not a valid port"));
        assert!(reason("redis://[::1]x").contains("\"[::1]x\""));
        assert!(reason("redis://[::1").contains("\"[::1\""));
        assert!(reason("redis://h1:1,h2:2").contains("more than one host"));
        assert!(reason("redis://[]:1").ends_with("it has no host"));
        if cfg!(feature = "tls") {
            assert!(
                reason("rediss://host:65536").ends_with("port 65536 is out of range (1-65535)")
            );
        }
        assert_eq!(parse("redis://host:65535").unwrap().identity, "host:65535/0");
        assert_eq!(parse("redis://u@host:1").unwrap().identity, "host:1/0");
        assert_eq!(parse("redis://[::1]:6380").unwrap().identity, "::1:6380/0");
        assert_eq!(parse("redis://[::1]").unwrap().identity, "::1:6379/0");
    }
}
