//! Resource metrics for `berth top` / `kubectl top`: `metrics.k8s.io/v1beta1` PodMetrics
//! from the containers' cgroup statistics and NodeMetrics from `/proc/stat` and
//! `/proc/meminfo`, in metrics-server's units (CPU in nanocores, `12345n`; memory working
//! set in `Ki`).
//!
//! CPU is a rate: the previous sample of each cgroup is kept with its time. A request with
//! a usable previous sample (at least half a second and at most a minute old) gets the rate
//! since then; otherwise it samples twice, about a second apart (once for all the cgroups
//! of the request).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::runtime::Runtime;
use crate::server::node::{BoxFuture, CONTAINER_ID_SCHEME, MetricsService};

/// A previous sample is used for a rate when at least this old …
const MIN_WINDOW: Duration = Duration::from_millis(500);
/// … and at most this old.
const MAX_WINDOW: Duration = Duration::from_secs(60);
/// The pause between two samples when there is no usable previous one.
const FRESH_WINDOW: Duration = Duration::from_secs(1);
/// Samples of cgroups not asked about for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(300);

/// The key of the node's own sample.
const NODE_KEY: &str = "/proc/stat";

/// One reading of a cumulative CPU counter.
#[derive(Debug, Clone, Copy)]
struct Sample {
    cpu_ns: u64,
    at: Instant,
    /// The last rate computed from this key (nanocores, window), reused when asked again
    /// too soon for a new one.
    last_rate: Option<(u64, Duration)>,
}

/// CPU usage rates from cumulative counters, one per key.
#[derive(Debug, Default)]
pub struct RateTracker {
    samples: HashMap<String, Sample>,
}

/// A CPU rate: nanocores over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub nanocores: u64,
    pub window: Duration,
}

fn rate_between(old_ns: u64, old_at: Instant, new_ns: u64, new_at: Instant) -> Option<Rate> {
    let window = new_at.checked_duration_since(old_at)?;
    if window.is_zero() {
        return None;
    }
    let used = new_ns.saturating_sub(old_ns) as f64;
    let nanocores = (used / window.as_secs_f64()).round() as u64;
    Some(Rate { nanocores, window })
}

impl RateTracker {
    /// The rate of `key` from its previous sample, if one is usable; records `cpu_ns` as
    /// the new sample when it was.
    pub fn rate(&mut self, key: &str, cpu_ns: u64, at: Instant) -> Option<Rate> {
        let prev = self.samples.get(key).copied()?;
        let age = at.checked_duration_since(prev.at)?;
        if age > MAX_WINDOW || cpu_ns < prev.cpu_ns {
            return None;
        }
        if age < MIN_WINDOW {
            return prev
                .last_rate
                .map(|(nanocores, window)| Rate { nanocores, window });
        }
        let r = rate_between(prev.cpu_ns, prev.at, cpu_ns, at)?;
        self.samples.insert(
            key.to_string(),
            Sample {
                cpu_ns,
                at,
                last_rate: Some((r.nanocores, r.window)),
            },
        );
        Some(r)
    }

    /// Records a sample with the rate it gave (after two fresh samples).
    pub fn record(&mut self, key: &str, cpu_ns: u64, at: Instant, rate: Option<Rate>) {
        self.samples.insert(
            key.to_string(),
            Sample {
                cpu_ns,
                at,
                last_rate: rate.map(|r| (r.nanocores, r.window)),
            },
        );
    }

    fn forget_old(&mut self, now: Instant) {
        self.samples
            .retain(|_, s| now.saturating_duration_since(s.at) < FORGET_AFTER);
    }
}

/// Formats nanocores as metrics-server does (`12345n`).
pub fn cpu_quantity(nanocores: u64) -> String {
    format!("{nanocores}n")
}

/// Formats bytes of memory in `Ki` (rounded down), as `kubectl top` reads them.
pub fn memory_quantity(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

/// A window as a Go duration string (`1.002s`).
pub fn window_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", s.trim_end_matches('0'))
    }
}

fn time_text(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Non-idle CPU time of the node in nanoseconds, from `/proc/stat`'s first line.
pub fn node_cpu_ns(proc_stat: &str, ticks_per_second: u64) -> Option<u64> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = [0usize, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    let hz = ticks_per_second.max(1);
    Some(busy.saturating_mul(1_000_000_000) / hz)
}

/// The node's memory working set in bytes from `/proc/meminfo`: used memory (total minus
/// free) minus the inactive file cache, as the kubelet computes it for the root cgroup.
pub fn node_working_set(meminfo: &str) -> Option<u64> {
    let kib = |key: &str| -> Option<u64> {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    let total = kib("MemTotal")?;
    let free = kib("MemFree")?;
    let inactive_file = kib("Inactive(file)").unwrap_or(0);
    Some(
        total
            .saturating_sub(free)
            .saturating_sub(inactive_file)
            .saturating_mul(1024),
    )
}

fn ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the system; it has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// The metrics service of the kubelet.
#[derive(Debug)]
pub struct Metrics {
    runtime: Arc<Runtime>,
    tracker: Arc<Mutex<RateTracker>>,
}

impl Metrics {
    pub fn new(runtime: Arc<Runtime>) -> Metrics {
        Metrics {
            runtime,
            tracker: Arc::default(),
        }
    }
}

/// One cgroup (or the node) to measure.
struct Target {
    key: String,
    memory_bytes: Option<u64>,
    cpu_ns: Option<u64>,
    rate: Option<Rate>,
}

/// Measures the targets' CPU rates: from previous samples where usable, else by sampling
/// once more after [`FRESH_WINDOW`].
fn measure(
    tracker: &Mutex<RateTracker>,
    targets: &mut [Target],
    read_cpu: &dyn Fn(&str) -> Option<u64>,
) {
    let now = Instant::now();
    let mut fresh = Vec::new();
    {
        let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
        t.forget_old(now);
        for (i, target) in targets.iter_mut().enumerate() {
            let Some(cpu) = target.cpu_ns else { continue };
            match t.rate(&target.key, cpu, now) {
                Some(r) => target.rate = Some(r),
                None => fresh.push(i),
            }
        }
    }
    if fresh.is_empty() {
        return;
    }
    std::thread::sleep(FRESH_WINDOW);
    let later = Instant::now();
    let mut t = tracker.lock().unwrap_or_else(|e| e.into_inner());
    for i in fresh {
        let target = &mut targets[i];
        let (Some(before), Some(after)) = (target.cpu_ns, read_cpu(&target.key)) else {
            continue;
        };
        let rate = rate_between(before, now, after, later);
        target.rate = rate;
        t.record(&target.key, after, later, rate);
    }
}

impl Metrics {
    fn pods_blocking(&self, pods: Vec<Value>) -> Result<Value, ApiError> {
        let cgroups = self.runtime.cgroups();
        // (pod index, container name, target index)
        let mut targets = Vec::new();
        let mut owners = Vec::new();
        for (p, pod) in pods.iter().enumerate() {
            let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
            let statuses = pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .chain(pod["status"]["initContainerStatuses"].as_array())
                .flatten();
            for s in statuses {
                if !s["state"]["running"].is_object() {
                    continue;
                }
                let (Some(name), Some(id)) = (
                    s["name"].as_str(),
                    s["containerID"]
                        .as_str()
                        .and_then(|c| c.strip_prefix(CONTAINER_ID_SCHEME)),
                ) else {
                    continue;
                };
                let Ok(path) = cgroups.container_path(uid, id) else {
                    continue;
                };
                let Ok(stats) = cgroups.stats(&path) else {
                    continue;
                };
                if stats.cpu_usage_ns.is_none() && stats.memory_working_set_bytes.is_none() {
                    continue;
                }
                owners.push((p, name.to_string()));
                targets.push(Target {
                    key: path,
                    memory_bytes: stats.memory_working_set_bytes,
                    cpu_ns: stats.cpu_usage_ns,
                    rate: None,
                });
            }
        }
        let read_cpu = |path: &str| cgroups.stats(path).ok().and_then(|s| s.cpu_usage_ns);
        measure(&self.tracker, &mut targets, &read_cpu);
        let now = Timestamp::now();
        let mut items: Vec<Value> = Vec::new();
        let mut by_pod: HashMap<usize, usize> = HashMap::new();
        for ((p, name), target) in owners.into_iter().zip(&targets) {
            let pod = &pods[p];
            let idx = *by_pod.entry(p).or_insert_with(|| {
                let window = target.rate.map(|r| r.window).unwrap_or(FRESH_WINDOW);
                let mut metadata = json!({
                    "name": pod["metadata"]["name"],
                    "namespace": pod["metadata"]["namespace"],
                    "creationTimestamp": time_text(now),
                });
                if let Some(labels) = pod["metadata"]["labels"].as_object() {
                    metadata["labels"] = json!(labels);
                }
                items.push(json!({
                    "kind": "PodMetrics",
                    "apiVersion": "metrics.k8s.io/v1beta1",
                    "metadata": metadata,
                    "timestamp": time_text(now),
                    "window": window_text(window),
                    "containers": [],
                }));
                items.len() - 1
            });
            let usage = json!({
                "cpu": cpu_quantity(target.rate.map(|r| r.nanocores).unwrap_or(0)),
                "memory": memory_quantity(target.memory_bytes.unwrap_or(0)),
            });
            if let Some(c) = items[idx]["containers"].as_array_mut() {
                c.push(json!({"name": name, "usage": usage}));
            }
        }
        Ok(json!({
            "kind": "PodMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": items,
        }))
    }

    fn node_blocking(&self) -> Result<Value, ApiError> {
        let hz = ticks_per_second();
        let read_cpu = |_: &str| {
            std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|s| node_cpu_ns(&s, hz))
        };
        let meminfo = std::fs::read_to_string("/proc/meminfo")
            .map_err(|e| ApiError::internal(format!("cannot read /proc/meminfo: {e}")))?;
        let mut targets = [Target {
            key: NODE_KEY.to_string(),
            memory_bytes: node_working_set(&meminfo),
            cpu_ns: read_cpu(NODE_KEY),
            rate: None,
        }];
        measure(&self.tracker, &mut targets, &read_cpu);
        let [node] = targets;
        let now = Timestamp::now();
        let window = node.rate.map(|r| r.window).unwrap_or(FRESH_WINDOW);
        // The server names the node (the kubelet's services do not know its name).
        Ok(json!({
            "kind": "NodeMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": [{
                "kind": "NodeMetrics",
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {"name": "", "creationTimestamp": time_text(now)},
                "timestamp": time_text(now),
                "window": window_text(window),
                "usage": {
                    "cpu": cpu_quantity(node.rate.map(|r| r.nanocores).unwrap_or(0)),
                    "memory": memory_quantity(node.memory_bytes.unwrap_or(0)),
                },
            }],
        }))
    }
}

impl MetricsService for Arc<Metrics> {
    fn pod_metrics(&self, pods: Vec<Value>) -> BoxFuture<Result<Value, ApiError>> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.pods_blocking(pods))
                .await
                .map_err(|e| ApiError::internal(format!("metrics task failed: {e}")))?
        })
    }

    fn node_metrics(&self) -> BoxFuture<Result<Value, ApiError>> {
        let this = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.node_blocking())
                .await
                .map_err(|e| ApiError::internal(format!("metrics task failed: {e}")))?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_as_metrics_server_writes_them() {
        assert_eq!(cpu_quantity(12345), "12345n");
        assert_eq!(memory_quantity(4096 * 1024 + 100), "4096Ki");
        assert_eq!(window_text(Duration::from_millis(1002)), "1.002s");
        assert_eq!(window_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(window_text(Duration::from_secs(10)), "10s");
    }

    #[test]
    fn rates_from_previous_samples() {
        let mut t = RateTracker::default();
        let t0 = Instant::now();
        assert_eq!(t.rate("a", 0, t0), None, "no previous sample");
        t.record("a", 1_000_000_000, t0, None);
        // Half a core over two seconds.
        let t1 = t0 + Duration::from_secs(2);
        let r = t.rate("a", 2_000_000_000, t1).expect("rate");
        assert_eq!(r.nanocores, 500_000_000);
        assert_eq!(r.window, Duration::from_secs(2));
        // Asked again right away: the last rate.
        let r2 = t
            .rate("a", 2_000_000_100, t1 + Duration::from_millis(10))
            .expect("reuse");
        assert_eq!(r2, r);
        // Too old: no rate.
        assert_eq!(t.rate("a", 3_000_000_000, t1 + MAX_WINDOW * 2), None);
        // A counter that went back (a new cgroup under the same path): no rate.
        t.record("b", 500, t0, None);
        assert_eq!(t.rate("b", 100, t1), None);
    }

    #[test]
    fn node_numbers_from_proc() {
        let stat = "cpu  100 20 30 1000 50 5 5 10 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        // user+nice+system+irq+softirq+steal = 170 ticks at 100/s = 1.7 s.
        assert_eq!(node_cpu_ns(stat, 100), Some(1_700_000_000));
        assert_eq!(node_cpu_ns("nothing", 100), None);
        let meminfo = "MemTotal:       8000 kB\nMemFree:        3000 kB\nMemAvailable:   6000 kB\nInactive(file):  1000 kB\n";
        assert_eq!(node_working_set(meminfo), Some(4000 * 1024));
        assert_eq!(node_working_set("MemTotal: 5 kB\n"), None);
    }
}
