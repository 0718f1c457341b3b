//! Controllers: reconcilers that run inside the daemon and change objects only through the
//! store's write gate, like any API client.

mod deployment;
mod gc;
mod namespace;
mod replicaset;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;

use crate::store::{Change, Store};

/// Starts every controller; each stops when `shutdown` flips. `node` is this node's name
/// (it names the scheduler's events).
pub fn start(
    store: Arc<Store>,
    node: &str,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let events =
        crate::events::Recorder::new(store.clone(), crate::scheduler::DEFAULT_SCHEDULER, node);
    let scheduler = Arc::new(crate::scheduler::Scheduler::default());
    let rs_events = crate::events::Recorder::new(store.clone(), "replicaset-controller", node);
    let replicasets = move |s: &Store| replicaset::reconcile_all(s, &rs_events);
    let d_events = crate::events::Recorder::new(store.clone(), "deployment-controller", node);
    let deployments = move |s: &Store| deployment::reconcile_all(s, &d_events);
    let schedule = move |s: &Store| scheduler.schedule_all(s, &events);
    vec![
        tokio::spawn(run_loop(
            store.clone(),
            shutdown.clone(),
            namespace::relevant,
            namespace::reconcile_all,
        )),
        tokio::spawn(run_loop(
            store.clone(),
            shutdown.clone(),
            gc::relevant,
            gc::collect,
        )),
        tokio::spawn(run_loop(
            store.clone(),
            shutdown.clone(),
            replicaset::relevant,
            replicasets,
        )),
        tokio::spawn(run_loop(
            store.clone(),
            shutdown.clone(),
            deployment::relevant,
            deployments,
        )),
        tokio::spawn(run_loop(
            store,
            shutdown,
            crate::scheduler::relevant,
            schedule,
        )),
    ]
}

/// The loop every controller here shares: reconcile (on the blocking pool), then wait for a
/// change it cares about, a retry (each second while work is pending) or the periodic
/// resync (five minutes). Runs at start, so a restart resumes unfinished work.
async fn run_loop(
    store: Arc<Store>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    relevant: fn(&Change) -> bool,
    reconcile: impl Fn(&Store) -> bool + Clone + Send + Sync + 'static,
) {
    let mut changes = store.subscribe();
    loop {
        let (s, pass) = (store.clone(), reconcile.clone());
        let pending = tokio::task::spawn_blocking(move || pass(&s))
            .await
            .unwrap_or(true);
        let retry = if pending {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(300)
        };
        let deadline = tokio::time::sleep(retry);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = &mut deadline => break,
                got = changes.recv() => match got {
                    Ok(c) if relevant(&c) => break,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}

/// Lists two kinds for one pass of a controller; `None` (logged) when either cannot be read.
fn list_two(
    store: &Store,
    (a_group_version, a_kind): (&str, &str),
    (b_group_version, b_kind): (&str, &str),
    controller: &str,
) -> Option<(Vec<serde_json::Value>, Vec<serde_json::Value>)> {
    let a = crate::api::registry::by_kind(a_group_version, a_kind)?;
    let b = crate::api::registry::by_kind(b_group_version, b_kind)?;
    match (store.list(a, None), store.list(b, None)) {
        (Ok((a, _)), Ok((b, _))) => Some((a, b)),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, controller, "cannot list");
            None
        }
    }
}
