//! Controllers: reconcilers that run inside the daemon and change objects only through the
//! store's write gate, like any API client.

mod gc;
mod namespace;

use std::sync::Arc;

use crate::store::Store;

/// Starts every controller; each stops when `shutdown` flips.
pub fn start(
    store: Arc<Store>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(namespace::run(store.clone(), shutdown.clone())),
        tokio::spawn(gc::run(store, shutdown)),
    ]
}
