//! Controllers: reconcilers that run inside the daemon and change objects only through the
//! store's write gate, like any API client.

mod cronjob;
mod deployment;
pub mod endpoints;
mod gc;
mod job;
mod namespace;
mod persistentvolume;
mod replicaset;
mod resourcequota;
mod statefulset;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::api::ApiError;
use crate::store::{Change, Store, StoreError, Subresource};

/// Tunables of the controllers, from the daemon's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The first delay before the Job controller replaces a failed pod (Kubernetes: 10 s);
    /// it doubles with each further failure, up to six minutes.
    pub job_back_off_base: Duration,
    /// Where local-path volumes are made (`<stateDir>/volumes`).
    pub volumes_dir: std::path::PathBuf,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            job_back_off_base: Duration::from_secs(10),
            volumes_dir: std::path::PathBuf::from("/var/lib/berth/volumes"),
        }
    }
}

/// Starts every controller; each stops when `shutdown` flips. `node` is this node's name
/// (it names the scheduler's events).
pub fn start(
    store: Arc<Store>,
    node: &str,
    settings: Settings,
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
    let job_events = crate::events::Recorder::new(store.clone(), "job-controller", node);
    let backoff = Arc::new(job::Backoff::new(settings.job_back_off_base));
    let jobs = move |s: &Store| job::reconcile_all(s, &job_events, &backoff);
    let cj_events = crate::events::Recorder::new(store.clone(), "cronjob-controller", node);
    let cronjobs = move |s: &Store| cronjob::reconcile_all(s, &cj_events);
    let sts_events = crate::events::Recorder::new(store.clone(), "statefulset-controller", node);
    let statefulsets = move |s: &Store| statefulset::reconcile_all(s, &sts_events);
    let pv = Arc::new(persistentvolume::PvController::new(
        crate::events::Recorder::new(store.clone(), "persistentvolume-controller", node),
        settings.volumes_dir.clone(),
    ));
    let volumes = move |s: &Store| persistentvolume::reconcile_all(s, &pv);
    vec![
        tokio::spawn(run_loop(
            store.clone(),
            shutdown.clone(),
            persistentvolume::relevant,
            volumes,
        )),
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
            store.clone(),
            shutdown.clone(),
            job::relevant,
            jobs,
        )),
        tokio::spawn(run_loop(
            store.clone(),
            shutdown.clone(),
            cronjob::relevant,
            cronjobs,
        )),
        tokio::spawn(run_loop(
            store.clone(),
            shutdown.clone(),
            statefulset::relevant,
            statefulsets,
        )),
        tokio::spawn(run_loop(
            store.clone(),
            shutdown.clone(),
            endpoints::relevant,
            endpoints::reconcile_all,
        )),
        tokio::spawn(run_loop(
            store.clone(),
            shutdown.clone(),
            resourcequota::relevant,
            resourcequota::reconcile_all,
        )),
        tokio::spawn(run_loop(
            store,
            shutdown,
            crate::scheduler::relevant,
            schedule,
        )),
    ]
}

/// When a controller's loop runs its next pass, besides on a change it cares about: soon
/// (work is pending), at a time it knows of (a deadline, a schedule), or at the periodic
/// resync. A pass that returns `bool` means soon (`true`) or the resync (`false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Wake(Duration);

impl Wake {
    /// The retry of pending work.
    pub const SOON: Wake = Wake(Duration::from_secs(1));
    /// The periodic resync.
    pub const RESYNC: Wake = Wake(Duration::from_secs(300));
    /// The shortest wait: a wake-up for "now" still lets changes batch.
    const MIN: Duration = Duration::from_millis(10);

    /// After `d` (at most the resync period).
    pub fn after(d: Duration) -> Wake {
        Wake(d.clamp(Self::MIN, Self::RESYNC.0))
    }

    /// At wall-clock time `t` (now when it has passed).
    pub fn at(t: jiff::Timestamp, now: jiff::Timestamp) -> Wake {
        let d = now.duration_until(t);
        Self::after(Duration::try_from(d).unwrap_or(Duration::ZERO))
    }

    /// The sooner of two.
    pub fn sooner(self, other: Wake) -> Wake {
        self.min(other)
    }
}

impl From<bool> for Wake {
    fn from(pending: bool) -> Wake {
        if pending { Wake::SOON } else { Wake::RESYNC }
    }
}

/// The loop every controller here shares: reconcile (on the blocking pool), then wait for a
/// change it cares about or the [`Wake`] the pass asked for (a retry each second while work
/// is pending, a time it knows of, or the periodic resync of five minutes). Runs at start,
/// so a restart resumes unfinished work.
async fn run_loop<W: Into<Wake> + Send + 'static>(
    store: Arc<Store>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    relevant: fn(&Change) -> bool,
    reconcile: impl Fn(&Store) -> W + Clone + Send + Sync + 'static,
) {
    let mut changes = store.subscribe();
    loop {
        let (s, pass) = (store.clone(), reconcile.clone());
        let wake = tokio::task::spawn_blocking(move || pass(&s).into())
            .await
            .unwrap_or(Wake::SOON);
        let go_on = crate::store::wait_for_change(
            &mut changes,
            &mut shutdown,
            relevant,
            wake.0,
            Duration::ZERO,
        )
        .await;
        if !go_on {
            return;
        }
    }
}

/// Whether a change can matter to a controller that looks at pods only for their
/// presence, phase and deletion mark: any change but a pod's status write that changed
/// neither (the kubelet's frequent ones). A replayed change (no `previous`) counts.
fn pod_change_matters(c: &Change) -> bool {
    if c.resource.kind != "Pod" || c.kind != crate::api::watch::EventType::Modified {
        return true;
    }
    let Some(prev) = &c.previous else {
        return true;
    };
    ["/status/phase", "/metadata/deletionTimestamp", "/spec"]
        .iter()
        .any(|p| prev.pointer(p) != c.object.pointer(p))
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

/// Writes an object's `status` when it differs from `obj`'s, through the status subresource
/// and only to the object with `obj`'s uid; `obj` then holds what was stored. An object
/// that is gone or was replaced meanwhile is left alone.
fn write_status(
    store: &Store,
    rt: &'static crate::api::ResourceType,
    obj: &mut Value,
    status: &Value,
) -> Result<(), StoreError> {
    if obj.get("status") == Some(status) {
        return Ok(());
    }
    let new_status = status.clone();
    let result = store.update_same(rt, obj, Subresource::Status, move |cur| {
        let mut new = cur.clone();
        new["status"] = new_status;
        Ok(new)
    });
    match result {
        Ok(stored) => {
            *obj = stored;
            Ok(())
        }
        Err(StoreError::Api(ApiError::NotFound(_) | ApiError::BadRequest { .. })) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_are_bounded_and_combine_to_the_sooner() {
        assert_eq!(Wake::from(true), Wake::SOON);
        assert_eq!(Wake::from(false), Wake::RESYNC);
        assert_eq!(Wake::after(Duration::from_secs(3600)), Wake::RESYNC);
        assert_eq!(Wake::after(Duration::ZERO), Wake(Wake::MIN));
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let soon: jiff::Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        assert_eq!(Wake::at(soon, now), Wake(Duration::from_secs(30)));
        assert_eq!(Wake::at(now, soon), Wake(Wake::MIN), "a time passed is now");
        assert_eq!(Wake::RESYNC.sooner(Wake::SOON), Wake::SOON);
    }
}
