//! Redis Cluster URLs: `redis+cluster://[user:password@]host1[:port1],host2[:port2][/]`, and
//! `rediss+cluster://...` where every node is reached over TLS (`tls-cluster yes`: the nodes
//! then announce their TLS ports).
//!
//! The hosts are seeds: any reachable one tells the client the whole topology, so listing a
//! few is enough. Ports default to 6379. A cluster has only database 0, so the URL has no
//! database; percent-encoding is decoded in the credentials.

use super::hosts::{credentials, host_list, info_at, invalid, split_authority, tls_compiled};
use crate::config::endpoint::{ClusterSpec, Endpoint};
use busmq_core::Error;
use redis::RedisConnectionInfo;

const SCHEME: &str = "redis+cluster://";
const TLS_SCHEME: &str = "rediss+cluster://";

/// Whether `url` uses a cluster scheme.
pub(crate) fn is_cluster(url: &str) -> bool {
    url.starts_with(SCHEME) || url.starts_with(TLS_SCHEME)
}

/// Builds the URL of a cluster given as seed addresses (the builder's `cluster` method).
pub(crate) fn compose(seeds: &[String]) -> String {
    format!("{SCHEME}{}", seeds.join(","))
}

/// Parses and checks a cluster URL.
pub(crate) fn parse(url: &str) -> Result<Endpoint, Error> {
    let (rest, tls) = match url.strip_prefix(TLS_SCHEME) {
        Some(rest) => (rest, true),
        None => (url.strip_prefix(SCHEME).unwrap_or(url), false),
    };
    tls_compiled(url, tls)?;
    if rest.contains(['#', '?']) {
        return Err(invalid(url, "a cluster URL takes no parameters"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if !matches!(path, "" | "/" | "/0") {
        return Err(invalid(url, "a cluster has only database 0: the URL has no path"));
    }
    let (userinfo, hosts) = split_authority(authority);
    let mut seeds = host_list(url, hosts, "seed", 6379)?;
    seeds.sort();
    let data = credentials(url, userinfo, RedisConnectionInfo::default())?;
    let info = info_at(url, seeds[0].clone(), tls, data)?;
    // The seeds may change over the cluster's life; the identity only names the store's
    // single instance in messages.
    let listed: Vec<String> = seeds.iter().map(|(h, p)| format!("{h}:{p}")).collect();
    let identity = format!("cluster:{}", listed.join(","));
    Ok(Endpoint { info, identity, sentinel: None, cluster: Some(ClusterSpec { seeds }) })
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
    fn seeds_are_sorted_and_credentials_decoded() {
        let e = parse("redis+cluster://app:p%40ss@H2:7001,h1,h2:7001/").unwrap();
        assert_eq!(e.identity, "cluster:h1:6379,h2:7001");
        let spec = e.cluster.unwrap();
        assert_eq!(spec.seeds, vec![("h1".into(), 6379), ("h2".into(), 7001)]);
        assert_eq!(e.info.redis_settings().username(), Some("app"));
        assert_eq!(e.info.redis_settings().password(), Some("p@ss"));
        let url = compose(&["127.0.0.1:7000".into(), "127.0.0.1:7001".into()]);
        assert_eq!(parse(&url).unwrap().identity, "cluster:127.0.0.1:7000,127.0.0.1:7001");
    }

    #[test]
    fn bad_cluster_urls_say_why() {
        assert!(reason("redis+cluster://").contains("no seed"));
        assert!(reason("redis+cluster://h:0").ends_with("the seed port 0 is not a valid port"));
        let e = reason("redis+cluster://h:1,h:99999");
        assert!(e.ends_with("the seed port 99999 is out of range (1-65535)"), "{e}");
        assert!(reason("redis+cluster://[::1]:abc").ends_with("seed port \"abc\" is not a number"));
        assert!(reason("redis+cluster://[::1]x").contains("\"[::1]x\""));
        assert!(reason("redis+cluster://::1:7000").contains("brackets"));
        assert!(reason("redis+cluster://h:").contains("empty"));
        assert!(reason("redis+cluster://h,:1").contains("no host"));
        assert!(reason("redis+cluster://h/1").contains("database 0"));
        assert!(reason("redis+cluster://h?x=1").contains("no parameters"));
        if cfg!(feature = "tls") {
            assert!(parse("rediss+cluster://h:1,h:2").unwrap().uses_tls());
        } else {
            assert!(reason("rediss+cluster://h").contains("TLS"));
        }
        let e = reason("redis+cluster://u:secret@h:0");
        assert!(!e.contains("secret"), "{e}");
    }
}
