//! Image references, normalised the way Docker (and so Kubernetes) does it.
//!
//! `busybox` means `docker.io/library/busybox:latest`, `myreg:5000/app` means
//! `myreg:5000/app:latest`, and `app@sha256:…` pins a manifest digest. The store keys every
//! image by the normalised form, so any spelling a user types finds the same image.
//!
//! Grammar (Docker's `reference` package, re-stated):
//! `[domain/]path[:tag][@digest]`, where the first `/`-separated component is a domain only
//! if it contains `.` or `:`, is `localhost`, or has an uppercase letter; path components are
//! lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`; a tag is `[\w][\w.-]{0,127}`.

use std::fmt;

use super::digest::Digest;
use super::error::ImageError;

/// The registry images without a domain come from.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag images without tag or digest get.
pub const DEFAULT_TAG: &str = "latest";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const MAX_NAME_LEN: usize = 255;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises what a user or a manifest wrote. A reference with neither tag
    /// nor digest gets `:latest`, as `docker pull` and the kubelet do.
    pub fn parse(input: &str) -> Result<Reference, ImageError> {
        let mut r = Self::parse_name_only(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Like [`Reference::parse`] but without adding the default tag: `busybox` stays
    /// untagged. Used where a repository name is wanted (`import --name`).
    pub fn parse_name_only(input: &str) -> Result<Reference, ImageError> {
        let invalid = |why: &str| ImageError::InvalidReference {
            reference: input.to_string(),
            why: why.to_string(),
        };
        if input.is_empty() {
            return Err(invalid("it is empty"));
        }
        if input.len() == 64 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                "a 64-character hexadecimal string is an image id, not a repository name",
            ));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let d = Digest::parse(digest).map_err(|_| {
                    invalid("the digest must be sha256: followed by 64 lowercase hex digits")
                })?;
                (rest, Some(d))
            }
            None => (input, None),
        };
        // A ':' after the last '/' starts the tag; one before it belongs to a domain port.
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(invalid(
                "a tag must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
            ));
        }
        let (domain, path) = split_domain(name);
        if domain.is_empty() || path.is_empty() {
            return Err(invalid("the repository name is empty"));
        }
        if !valid_domain(&domain) {
            return Err(invalid("the registry host is not a valid host[:port]"));
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(invalid("the repository name must be lowercase"));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(invalid(
                "repository path components are lowercase letters and digits joined by '.', '_', '__' or '-'",
            ));
        }
        if domain.len() + 1 + path.len() > MAX_NAME_LEN {
            return Err(invalid("the repository name is longer than 255 characters"));
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The registry host, e.g. `docker.io` or `myreg:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`, e.g. `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ImageError> {
        if !valid_tag(tag) {
            return Err(ImageError::InvalidReference {
                reference: format!("{}:{tag}", self.repository()),
                why: "a tag must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'".to_string(),
            });
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The short form people type: `busybox:latest` for `docker.io/library/busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut s = if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.repository()
        };
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d.as_str());
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Normalises a reference to its full form: `busybox` → `docker.io/library/busybox:latest`.
pub fn normalize(input: &str) -> Result<String, ImageError> {
    Reference::parse(input).map(|r| r.to_string())
}

/// Splits `name` into domain and path, applying Docker's defaults.
fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == LEGACY_DOMAIN {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') && !path.is_empty() {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path
    };
    (domain, path)
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes[1..]
            .iter()
            .all(|&b| word(b) || b == b'.' || b == b'-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__' or any number of '-'.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]`, where host is DNS labels joined by '.' or a bracketed IPv6 address.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, after)) => {
                if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                match after {
                    "" => return true,
                    p => match p.strip_prefix(':') {
                        Some(port) => ("x", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match domain.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    host.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("user/app", "docker.io/user/app:latest"),
            ("myreg:5000/app", "myreg:5000/app:latest"),
            ("myreg:5000/app:v1", "myreg:5000/app:v1"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t"),
            ("berth.local/busybox", "berth.local/busybox:latest"),
            ("Registry/app", "Registry/app:latest"),
            ("[::1]:5000/app", "[::1]:5000/app:latest"),
            ("a-b__c--d/f_g.h", "docker.io/a-b__c--d/f_g.h:latest"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn digests_are_kept_and_suppress_the_default_tag() {
        assert_eq!(
            normalize(&format!("busybox@{D}")).unwrap(),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(
            normalize(&format!("myreg:5000/app:v1@{D}")).unwrap(),
            format!("myreg:5000/app:v1@{D}")
        );
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().as_str(), D);
    }

    #[test]
    fn rejects_what_docker_rejects() {
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "bu sy",
            "busybox@sha256:abc",
            "busybox@md5:0123",
            "a//b",
            "a/b/",
            "/a",
            "-a/b",
            "a_-b",
            "a___b",
            "myreg:port/app",
            "a-b__c.d/app",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(Reference::parse(bad).is_err(), "accepted {bad:?}");
        }
        let long = format!("a/{}", "b".repeat(260));
        assert!(Reference::parse(&long).is_err());
        let err = Reference::parse("Busybox").unwrap_err().to_string();
        assert!(err.contains("must be lowercase"), "{err}");
    }

    #[test]
    fn familiar_form_is_what_people_type() {
        let f = |s: &str| Reference::parse(s).unwrap().familiar();
        assert_eq!(f("busybox"), "busybox:latest");
        assert_eq!(f("docker.io/user/app:v2"), "user/app:v2");
        assert_eq!(f("myreg:5000/app"), "myreg:5000/app:latest");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b:latest");
    }

    #[test]
    fn name_only_keeps_no_tag() {
        let r = Reference::parse_name_only("berth.local/busybox").unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.repository(), "berth.local/busybox");
        assert_eq!(
            r.with_tag("v1").unwrap().to_string(),
            "berth.local/busybox:v1"
        );
        assert!(r.with_tag("-bad").is_err());
    }
}
