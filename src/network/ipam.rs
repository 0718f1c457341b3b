//! IP address management: one IPv4 address per pod uid out of the pod CIDR.
//!
//! The allocations live in a small JSON file under the state directory
//! (`<stateDir>/network/ipam.json`), written atomically (temporary file, fsync, rename)
//! *before* the address is configured anywhere. A file rather than the object store: the
//! allocations are node-local kubelet state (like the container records under
//! `<stateDir>/containers`), not API objects, and the kubelet never writes non-API data into
//! the store. Because the file is written first, a restart (or a crash at any point) can
//! never hand out an address a pod still holds; an allocation whose pod is gone is released
//! by the kubelet's orphan cleanup at the next start.
//!
//! Addresses are handed out round-robin after the last one given, so a freed address is not
//! reused at once (a peer that cached it gets a refusal rather than a stranger).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Ipv4Net, NetworkError};

/// What the file holds.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Allocations {
    /// The CIDR the allocations were made from (a changed CIDR invalidates none of them
    /// silently: out-of-range entries are reported and kept until their pod goes).
    cidr: String,
    /// The last address handed out (the search for the next one starts after it).
    last: Option<Ipv4Addr>,
    /// Pod uid → address.
    pods: BTreeMap<String, Ipv4Addr>,
}

/// The allocator. Not thread-safe by itself: the caller serialises (a mutex).
#[derive(Debug)]
pub struct Ipam {
    path: PathBuf,
    cidr: Ipv4Net,
    state: Allocations,
}

impl Ipam {
    /// Opens (or starts) the allocation file.
    pub fn open(path: &Path, cidr: Ipv4Net) -> Result<Ipam, NetworkError> {
        let state = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| NetworkError::IpamCorrupt {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Allocations::default(),
            Err(source) => {
                return Err(NetworkError::IpamIo {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(Ipam {
            path: path.to_path_buf(),
            cidr,
            state,
        })
    }

    /// The address of `uid`, allocating (and persisting) one when it has none.
    pub fn allocate(&mut self, uid: &str) -> Result<Ipv4Addr, NetworkError> {
        if let Some(ip) = self.state.pods.get(uid) {
            return Ok(*ip);
        }
        let first = u32::from(self.cidr.gateway()) + 1;
        let last = u32::from(self.cidr.broadcast()).saturating_sub(1);
        if first > last {
            return Err(NetworkError::Exhausted {
                cidr: self.cidr.to_string(),
            });
        }
        let used: std::collections::HashSet<Ipv4Addr> = self.state.pods.values().copied().collect();
        let start = self
            .state
            .last
            .map(u32::from)
            .filter(|l| (first..=last).contains(l))
            .map_or(first, |l| if l >= last { first } else { l + 1 });
        let size = last - first + 1;
        let found = (0..size)
            .map(|i| first + (start - first + i) % size)
            .map(Ipv4Addr::from)
            .find(|ip| !used.contains(ip))
            .ok_or_else(|| NetworkError::Exhausted {
                cidr: self.cidr.to_string(),
            })?;
        let mut next = self.state.clone();
        next.cidr = self.cidr.to_string();
        next.last = Some(found);
        next.pods.insert(uid.to_string(), found);
        self.save(&next)?;
        self.state = next;
        Ok(found)
    }

    /// The address `uid` holds, if any.
    pub fn get(&self, uid: &str) -> Option<Ipv4Addr> {
        self.state.pods.get(uid).copied()
    }

    /// Frees `uid`'s address (nothing to do when it has none).
    pub fn release(&mut self, uid: &str) -> Result<(), NetworkError> {
        if !self.state.pods.contains_key(uid) {
            return Ok(());
        }
        let mut next = self.state.clone();
        next.pods.remove(uid);
        self.save(&next)?;
        self.state = next;
        Ok(())
    }

    /// Every pod uid holding an address.
    pub fn uids(&self) -> Vec<String> {
        self.state.pods.keys().cloned().collect()
    }

    fn save(&self, state: &Allocations) -> Result<(), NetworkError> {
        let io = |source| NetworkError::IpamIo {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| NetworkError::IpamCorrupt {
            path: self.path.clone(),
            message: e.to_string(),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_after_the_gateway_and_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ipam.json");
        let mut ipam = Ipam::open(&path, net("10.1.0.0/24")).unwrap();
        assert_eq!(ipam.allocate("a").unwrap(), Ipv4Addr::new(10, 1, 0, 2));
        assert_eq!(ipam.allocate("b").unwrap(), Ipv4Addr::new(10, 1, 0, 3));
        assert_eq!(ipam.allocate("a").unwrap(), Ipv4Addr::new(10, 1, 0, 2));
        let mut again = Ipam::open(&path, net("10.1.0.0/24")).unwrap();
        assert_eq!(again.get("b"), Some(Ipv4Addr::new(10, 1, 0, 3)));
        // A restart never hands out a held address, and does not reuse a freed one at once.
        again.release("a").unwrap();
        assert_eq!(again.allocate("c").unwrap(), Ipv4Addr::new(10, 1, 0, 4));
        assert_eq!(again.uids(), vec!["b".to_string(), "c".to_string()]);
    }

    #[test]
    fn wraps_around_and_reports_exhaustion() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ipam.json");
        // /29: .0 network, .1 gateway, .2–.6 pods, .7 broadcast.
        let mut ipam = Ipam::open(&path, net("10.1.0.0/29")).unwrap();
        for i in 0..5 {
            assert_eq!(
                ipam.allocate(&format!("p{i}")).unwrap(),
                Ipv4Addr::new(10, 1, 0, 2 + i as u8)
            );
        }
        assert!(matches!(
            ipam.allocate("x"),
            Err(NetworkError::Exhausted { .. })
        ));
        ipam.release("p1").unwrap();
        assert_eq!(ipam.allocate("x").unwrap(), Ipv4Addr::new(10, 1, 0, 3));
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ipam.json");
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            Ipam::open(&path, net("10.1.0.0/24")),
            Err(NetworkError::IpamCorrupt { .. })
        ));
    }
}
