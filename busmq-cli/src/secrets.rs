//! The passwords the command line carries (in URLs), kept so that nothing `busmq` prints can
//! show them (SPEC S3). busmq redacts URLs in its own errors already; this is the second line,
//! for text that comes from elsewhere (a driver's error, a server's reply).

/// Passwords shorter than this are not scrubbed: replacing every `ab` in a message would make
/// it unreadable, and the library's own redaction still applies to them.
const MIN_SCRUBBED: usize = 4;

/// The secrets found in the connection URLs.
#[derive(Debug, Default, Clone)]
pub(crate) struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// The password of each URL's user info (`scheme://user:password@host`) and of its query
    /// parameters (`password=`, `pass=`, `sentinel_password=`), as written and percent-decoded.
    pub(crate) fn of_urls(urls: &[String]) -> Secrets {
        let mut values = Vec::new();
        for url in urls {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
            // Where the user info ends is ambiguous: a password may hold unescaped `/` and
            // `@` (`redis://u:p@s/s@h`: up to the last `@` before the query), and a Sentinel
            // master name may hold an `@` (`redis+sentinel://u:pw@h1,h2/m@x`: up to the first
            // `/`). Both readings are kept: scrubbing too much is harmless.
            let head = rest.split(['?', '#']).next().unwrap_or("");
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            for part in [head, authority] {
                if let Some((userinfo, _)) = part.rsplit_once('@') {
                    if let Some((_, password)) = userinfo.split_once(':') {
                        values.push(password.to_string());
                    }
                }
            }
            if let Some((_, query)) = url.split_once('?') {
                for pair in query.split('&') {
                    if let Some((key, value)) = pair.split_once('=') {
                        if matches!(key, "password" | "pass" | "sentinel_password") {
                            values.push(value.to_string());
                        }
                    }
                }
            }
        }
        let decoded: Vec<String> = values.iter().map(|v| percent_decode(v)).collect();
        values.extend(decoded);
        values.retain(|v| v.len() >= MIN_SCRUBBED);
        // Longest first, so that a password containing another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Secrets { values }
    }

    /// `text` with every secret replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.values {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_of_every_url_form_are_scrubbed() {
        let urls = [
            "redis://app:hunter2@h:1/0".to_string(),
            "redis+sentinel://:data%40pw@h1,h2/m?sentinel_password=s3cret".to_string(),
            "redis+unix:///tmp/r.sock?db=1&pass=sockpass".to_string(),
            "redis://:ab@h".to_string(),
        ];
        let s = Secrets::of_urls(&urls);
        let text = "hunter2 data@pw data%40pw s3cret sockpass ab";
        assert_eq!(s.scrub(text), "*** *** *** *** *** ab");
    }

    /// Found by review: a password with a `/` was not scrubbed (the user info ended at the `/`);
    /// and the fix must not lose a Sentinel password whose master name holds an `@`.
    #[test]
    fn a_password_with_a_slash_or_an_at_is_scrubbed() {
        let urls = [
            "redis://u:pa/ss-word@h:1/0".to_string(),
            "redis://u:p@s/s-x@h".to_string(),
            "redis+sentinel://u:hunter22@s1,s2/mast@er".to_string(),
        ];
        let s = Secrets::of_urls(&urls);
        assert_eq!(s.scrub("pa/ss-word p@s/s-x hunter22"), "*** *** ***");
    }
}
