//! One probe task per (pod, container run, probe type): it waits `initialDelaySeconds`
//! from the container's start, then checks every `periodSeconds`, records a Warning
//! `Unhealthy` event for each failed check (as the kubelet does; the recorder folds repeats
//! into a count), and tells the pod worker when the result after thresholds changes, and
//! only then.
//!
//! A liveness or startup task ends once it has reported a failure (the pod worker kills the
//! container; its next run gets new tasks that count from scratch), and a startup task ends
//! once it has succeeded (startup probes run only until the container has started). The pod
//! worker aborts every task of a run when the run ends.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Probe;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{ProbeKind, ProbeResult, ProbeState, Target, check};

/// A probe's result after thresholds changed, for one run of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeUpdate {
    /// The runtime id of the run the probe checked.
    pub run_id: String,
    pub kind: ProbeKind,
    pub result: ProbeResult,
    /// The last check's message (the failure text for a failure).
    pub message: String,
}

/// Records one Warning `Unhealthy` event with this message. Blocking (it writes to the
/// store); the task calls it on the blocking pool.
pub type EventSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Everything one probe task needs.
pub struct ProbeTask {
    pub kind: ProbeKind,
    pub probe: Probe,
    /// Where checks go; its `pod_ip` is replaced by the latest of `pod_ip` before each check.
    pub target: Target,
    /// The pod's IP as the pod worker last saw it in the pod's status.
    pub pod_ip: watch::Receiver<Option<IpAddr>>,
    /// When the container's run started (`initialDelaySeconds` counts from there).
    pub container_started: Instant,
    pub initial_delay: Duration,
    pub period: Duration,
    /// The result to start from instead of the kind's initial one (a run adopted after a
    /// daemon restart keeps the readiness it had).
    pub initial: Option<ProbeResult>,
    pub run_id: String,
    pub events: EventSink,
}

impl ProbeTask {
    /// Runs until the probe has nothing more to report or the worker is gone.
    pub async fn run(self, updates: mpsc::UnboundedSender<ProbeUpdate>) {
        let mut state = ProbeState::new(self.kind, &self.probe);
        if let Some(initial) = self.initial {
            state.result = initial;
        }
        tokio::time::sleep_until(self.container_started + self.initial_delay).await;
        let mut ticks = tokio::time::interval(self.period.max(Duration::from_millis(1)));
        // A check that overruns its period delays the next one instead of bunching them.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let mut target = self.target.clone();
            target.pod_ip = *self.pod_ip.borrow();
            let outcome = check(&self.probe, &target).await;
            let event = match outcome.result {
                ProbeResult::Success => None,
                ProbeResult::Failure => Some(format!(
                    "{} probe failed: {}",
                    self.kind.title(),
                    outcome.message.trim_end()
                )),
                ProbeResult::Unknown => Some(format!(
                    "{} probe errored and resulted in unknown state: {}",
                    self.kind.title(),
                    outcome.message.trim_end()
                )),
            };
            if let Some(message) = event {
                let sink = self.events.clone();
                let _ = tokio::task::spawn_blocking(move || sink(&message)).await;
            }
            let Some(result) = state.observe(outcome.result) else {
                continue;
            };
            let update = ProbeUpdate {
                run_id: self.run_id.clone(),
                kind: self.kind,
                result,
                message: outcome.message,
            };
            if updates.send(update).is_err() {
                return;
            }
            match (self.kind, result) {
                (ProbeKind::Liveness | ProbeKind::Startup, ProbeResult::Failure)
                | (ProbeKind::Startup, ProbeResult::Success) => return,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::prober::{ExecFuture, ExecRunner};
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Mutex;

    /// Answers exec checks from a script of exit codes (the last one repeats).
    struct Script(Mutex<VecDeque<i32>>);

    impl ExecRunner for Script {
        fn run(&self, _id: &str, _command: Vec<String>, _timeout: Duration) -> ExecFuture {
            let mut codes = self.0.lock().unwrap();
            let code = if codes.len() > 1 {
                codes.pop_front().unwrap()
            } else {
                codes.front().copied().unwrap_or(0)
            };
            Box::pin(async move { Ok((code, format!("exit {code}\n"))) })
        }
    }

    fn task(
        kind: ProbeKind,
        probe: serde_json::Value,
        codes: &[i32],
    ) -> (ProbeTask, Arc<Mutex<Vec<String>>>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let (_tx, pod_ip) = watch::channel(None);
        let task = ProbeTask {
            kind,
            probe: serde_json::from_value(probe).unwrap(),
            target: Target {
                netns: None,
                pod_ip: None,
                named_ports: BTreeMap::new(),
                container_id: "run".into(),
                exec: Some(Arc::new(Script(Mutex::new(
                    codes.iter().copied().collect(),
                )))),
            },
            pod_ip,
            container_started: Instant::now(),
            initial_delay: Duration::ZERO,
            period: Duration::from_millis(5),
            initial: None,
            run_id: "run".into(),
            events: Arc::new(move |m: &str| seen.lock().unwrap().push(m.to_string())),
        };
        (task, events)
    }

    async fn updates_of(task: ProbeTask, wanted: usize) -> Vec<ProbeUpdate> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(task.run(tx));
        let mut got = Vec::new();
        while got.len() < wanted {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(u)) => got.push(u),
                _ => break,
            }
        }
        handle.abort();
        got
    }

    #[tokio::test]
    async fn liveness_reports_one_failure_after_the_threshold_and_stops() {
        let (t, events) = task(
            ProbeKind::Liveness,
            serde_json::json!({"exec": {"command": ["x"]}, "failureThreshold": 2}),
            &[0, 1, 0, 1, 1],
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        // The task ends by itself after reporting the failure.
        tokio::time::timeout(Duration::from_secs(10), t.run(tx))
            .await
            .unwrap();
        let u = rx.recv().await.unwrap();
        assert_eq!(
            (u.kind, u.result, u.message.as_str()),
            (ProbeKind::Liveness, ProbeResult::Failure, "exit 1\n")
        );
        assert!(rx.recv().await.is_none(), "only the change is reported");
        assert_eq!(
            *events.lock().unwrap(),
            vec!["Liveness probe failed: exit 1"; 3],
            "every failed check is an Unhealthy event"
        );
    }

    #[tokio::test]
    async fn readiness_reports_changes_only() {
        let (t, _) = task(
            ProbeKind::Readiness,
            serde_json::json!({"exec": {"command": ["x"]}, "failureThreshold": 1}),
            &[1, 1, 0, 0, 0, 1, 1, 0],
        );
        let got: Vec<ProbeResult> = updates_of(t, 3).await.iter().map(|u| u.result).collect();
        assert_eq!(
            got,
            vec![
                ProbeResult::Success,
                ProbeResult::Failure,
                ProbeResult::Success
            ]
        );
    }

    #[tokio::test]
    async fn startup_ends_at_success_and_adopted_readiness_keeps_its_result() {
        let (t, events) = task(
            ProbeKind::Startup,
            serde_json::json!({"exec": {"command": ["x"]}, "failureThreshold": 5}),
            &[1, 1, 0],
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::time::timeout(Duration::from_secs(10), t.run(tx))
            .await
            .unwrap();
        assert_eq!(rx.recv().await.unwrap().result, ProbeResult::Success);
        assert_eq!(events.lock().unwrap().len(), 2);

        // Ready before the daemon restarted, and still passing: nothing to report.
        let (mut t, _) = task(
            ProbeKind::Readiness,
            serde_json::json!({"exec": {"command": ["x"]}, "failureThreshold": 1}),
            &[0, 0, 0, 1],
        );
        t.initial = Some(ProbeResult::Success);
        let got = updates_of(t, 1).await;
        assert_eq!(got[0].result, ProbeResult::Failure);
    }

    #[tokio::test]
    async fn a_check_that_cannot_run_counts_for_nothing() {
        let (mut t, events) = task(
            ProbeKind::Liveness,
            serde_json::json!({"exec": {"command": ["x"]}, "failureThreshold": 1}),
            &[0],
        );
        t.target.exec = None;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(t.run(tx));
        tokio::time::timeout(Duration::from_secs(10), async {
            while events.lock().unwrap().len() < 3 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        handle.abort();
        assert!(rx.try_recv().is_err(), "an unknown result changes nothing");
        let events = events.lock().unwrap();
        assert!(
            events[0].starts_with("Liveness probe errored and resulted in unknown state: "),
            "{events:?}"
        );
    }
}
