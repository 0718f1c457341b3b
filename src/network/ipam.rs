//! IP address management: one IPv4 address per pod uid out of the pod CIDR.
//!
//! The allocations are persisted in the store (its `local` database, key `ipam`; see
//! `store/schema.rs`), in a synced LMDB commit *before* the address is configured anywhere.
//! They are node-local kubelet state, not API objects: no revision, no watch. Because the
//! record is written first, a restart (or a crash at any point) can never hand out an
//! address a pod still holds; an allocation whose pod is gone is released by the kubelet's
//! orphan cleanup at the next start.
//!
//! Addresses are handed out round-robin after the last one given, so a freed address is not
//! reused at once (a peer that cached it gets a refusal rather than a stranger).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Ipv4Net, NetworkError};
use crate::store::Store;

/// The key of the allocations in the store's `local` database.
const KEY: &str = "ipam";

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
    store: Arc<Store>,
    cidr: Ipv4Net,
    state: Allocations,
}

/// Forgets every allocation (a restore onto another node: the pods get new addresses).
pub fn forget_all(store: &Store) -> Result<(), NetworkError> {
    let bytes = serde_json::to_vec(&Allocations::default()).unwrap_or_default();
    store.local_put(KEY, &bytes).map_err(NetworkError::Ipam)
}

impl Ipam {
    /// Loads (or starts) the allocations.
    pub fn open(store: Arc<Store>, cidr: Ipv4Net) -> Result<Ipam, NetworkError> {
        let state = match store.local_get(KEY).map_err(NetworkError::Ipam)? {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| NetworkError::IpamCorrupt {
                    message: e.to_string(),
                })?
            }
            None => Allocations::default(),
        };
        Ok(Ipam { store, cidr, state })
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
        let bytes = serde_json::to_vec(state).map_err(|e| NetworkError::IpamCorrupt {
            message: e.to_string(),
        })?;
        self.store
            .local_put(KEY, &bytes)
            .map_err(NetworkError::Ipam)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn store(dir: &std::path::Path) -> Arc<Store> {
        Arc::new(Store::open(dir, Default::default()).unwrap())
    }

    #[test]
    fn allocates_after_the_gateway_and_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = Ipam::open(store(dir.path()), net("10.1.0.0/24")).unwrap();
        assert_eq!(ipam.allocate("a").unwrap(), Ipv4Addr::new(10, 1, 0, 2));
        assert_eq!(ipam.allocate("b").unwrap(), Ipv4Addr::new(10, 1, 0, 3));
        assert_eq!(ipam.allocate("a").unwrap(), Ipv4Addr::new(10, 1, 0, 2));
        drop(ipam);
        let mut again = Ipam::open(store(dir.path()), net("10.1.0.0/24")).unwrap();
        assert_eq!(again.get("b"), Some(Ipv4Addr::new(10, 1, 0, 3)));
        // A restart never hands out a held address, and does not reuse a freed one at once.
        again.release("a").unwrap();
        assert_eq!(again.allocate("c").unwrap(), Ipv4Addr::new(10, 1, 0, 4));
        assert_eq!(again.uids(), vec!["b".to_string(), "c".to_string()]);
    }

    #[test]
    fn wraps_around_and_reports_exhaustion() {
        let dir = tempfile::tempdir().unwrap();
        // /29: .0 network, .1 gateway, .2–.6 pods, .7 broadcast.
        let mut ipam = Ipam::open(store(dir.path()), net("10.1.0.0/29")).unwrap();
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
    fn a_corrupt_record_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.local_put(KEY, b"{not json").unwrap();
        assert!(matches!(
            Ipam::open(s, net("10.1.0.0/24")),
            Err(NetworkError::IpamCorrupt { .. })
        ));
    }
}
