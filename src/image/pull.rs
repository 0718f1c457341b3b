//! `imagePullPolicy`: whether an image must be pulled before a container starts.
//!
//! The decision is pure and final: it already says "pull" where Kubernetes would. Pulling
//! itself ([`super::ImageStore::pull`]) is what a later issue implements; until then it
//! fails with `ErrImagePull` and a message saying how to import the image instead.

use std::fmt;
use std::str::FromStr;

use super::error::ImageError;
use super::reference::Reference;

/// Kubernetes' `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// Kubernetes' default when a manifest sets none: `Always` for `:latest` or untagged
    /// images, `IfNotPresent` otherwise (so also for a digest without a tag).
    pub fn default_for(image: &str) -> PullPolicy {
        match Reference::parse_name_only(image) {
            Ok(r) => match r.tag() {
                Some("latest") => PullPolicy::Always,
                Some(_) => PullPolicy::IfNotPresent,
                None if r.digest().is_some() => PullPolicy::IfNotPresent,
                None => PullPolicy::Always,
            },
            Err(_) => PullPolicy::Always,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

impl FromStr for PullPolicy {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Always" => Ok(PullPolicy::Always),
            "IfNotPresent" => Ok(PullPolicy::IfNotPresent),
            "Never" => Ok(PullPolicy::Never),
            other => Err(ImageError::InvalidPullPolicy {
                policy: other.to_string(),
            }),
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `image` must be pulled under `policy` (as written in the manifest; empty means
/// Kubernetes' default) given whether it is `present` locally. `Never` with no local image
/// is Kubernetes' `ErrImageNeverPull`.
pub fn pull_decision(policy: &str, image: &str, present: bool) -> Result<bool, ImageError> {
    let policy = if policy.is_empty() {
        PullPolicy::default_for(image)
    } else {
        policy.parse()?
    };
    match (policy, present) {
        (PullPolicy::Always, _) => Ok(true),
        (PullPolicy::IfNotPresent, present) => Ok(!present),
        (PullPolicy::Never, true) => Ok(false),
        (PullPolicy::Never, false) => Err(ImageError::NeverPull {
            image: image.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_kubernetes() {
        assert!(!pull_decision("Never", "busybox", true).unwrap());
        assert!(!pull_decision("IfNotPresent", "busybox", true).unwrap());
        assert!(pull_decision("IfNotPresent", "busybox", false).unwrap());
        assert!(pull_decision("Always", "busybox", true).unwrap());
        assert!(pull_decision("Always", "busybox", false).unwrap());
        let err = pull_decision("Never", "busybox:1.36", false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Container image \"busybox:1.36\" is not present with pull policy of Never"
        );
        assert_eq!(err.waiting_reason(), "ErrImageNeverPull");
        assert!(matches!(
            pull_decision("Sometimes", "busybox", true),
            Err(ImageError::InvalidPullPolicy { .. })
        ));
    }

    #[test]
    fn default_policy_depends_on_the_tag() {
        assert_eq!(PullPolicy::default_for("busybox"), PullPolicy::Always);
        assert_eq!(
            PullPolicy::default_for("busybox:latest"),
            PullPolicy::Always
        );
        assert_eq!(
            PullPolicy::default_for("busybox:1.36"),
            PullPolicy::IfNotPresent
        );
        let pinned = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(PullPolicy::default_for(&pinned), PullPolicy::IfNotPresent);
        assert!(pull_decision("", "busybox:1.36", true).is_ok_and(|pull| !pull));
        assert!(pull_decision("", "busybox", true).is_ok_and(|pull| pull));
    }
}
