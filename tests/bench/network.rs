//! The "network" section of the harness: requests per second to one busybox `httpd` pod,
//! reached three ways from the host in the same run:
//!
//! - directly, at the pod's IP (the baseline: bridge and veth only);
//! - through its Service's ClusterIP (nftables DNAT in berth's Service table);
//! - through berth's built-in Ingress (HTTP on the host, proxied to the pod).
//!
//! The load: [`CONCURRENCY`] clients, each sending `GET /` over a new TCP connection
//! (busybox httpd closes after each answer) for [`SECONDS`] s; [`RUNS`] runs of each, median
//! with min–max. Every answer must be a 200; errors are counted and reported.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{TMP_PREFIX, TestDaemon};
use crate::containers::run;

const CONCURRENCY: usize = 16;
const SECONDS: u64 = 5;
const RUNS: usize = 3;
const HOST: &str = "web.bench.test";

fn manifest() -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www']
    readinessProbe:
      tcpSocket: {{port: 8080}}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: web}}
spec:
  rules:
  - host: {HOST}
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {{service: {{name: web, port: {{number: 80}}}}}}
"
    )
}

/// One request; true for a 200.
async fn one(addr: std::net::SocketAddr, host: &str) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let req = format!("GET /index.html HTTP/1.0\r\nHost: {host}\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = Vec::with_capacity(512);
    if s.read_to_end(&mut buf).await.is_err() {
        return false;
    }
    buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.1 200")
}

/// Requests per second (and errors) for [`SECONDS`] s of load on `addr`.
fn load(r: &tokio::runtime::Runtime, addr: std::net::SocketAddr, host: &str) -> (f64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs(SECONDS);
    r.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..CONCURRENCY {
            let (ok, failed, host) = (ok.clone(), failed.clone(), host.to_string());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < end {
                    if one(addr, &host).await {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let secs = start.elapsed().as_secs_f64();
    (
        ok.load(Ordering::Relaxed) as f64 / secs,
        failed.load(Ordering::Relaxed),
    )
}

/// Waits (bounded) until `f` holds; false when it never did.
fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18080)
}

pub fn run_section() -> String {
    let dir = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempdir()
        .expect("tempdir");
    let archive = dir.path().join("busybox.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build-busybox.sh");
    run(Command::new(&script).arg(&archive)).expect("build the busybox image");
    let port = free_port();
    let d = TestDaemon::start_with_config(&format!("ingressHttpPort: {port}\n"));
    d.import_busybox();
    let file = d.write("web.yaml", &manifest());
    let o = d.cli(&["apply", "-f", file.to_str().unwrap_or_default()]);
    assert!(
        o.status.success(),
        "apply: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let ready = wait_for(120, || {
        d.get_json(&["pod", "web"]).is_some_and(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    });
    assert!(ready, "the web pod never became ready");
    let pod_ip = d
        .get_json(&["pod", "web"])
        .and_then(|p| p["status"]["podIP"].as_str().map(str::to_string))
        .expect("pod IP");
    let cluster_ip = d
        .get_json(&["service", "web"])
        .and_then(|s| s["spec"]["clusterIP"].as_str().map(str::to_string))
        .expect("cluster IP");
    let r = crate::common::runtime();
    let targets: Vec<(&str, std::net::SocketAddr, String)> = vec![
        (
            "pod IP directly (baseline)",
            format!("{pod_ip}:8080").parse().expect("addr"),
            pod_ip.clone(),
        ),
        (
            "Service ClusterIP (nftables DNAT)",
            format!("{cluster_ip}:80").parse().expect("addr"),
            cluster_ip.clone(),
        ),
        (
            "Ingress (berth's HTTP proxy on the host)",
            format!("127.0.0.1:{port}").parse().expect("addr"),
            HOST.to_string(),
        ),
    ];
    // Every path answers before it is measured (the proxy rules and routes are in place).
    for (what, addr, host) in &targets {
        let answered = wait_for(60, || r.block_on(one(*addr, host)));
        assert!(answered, "{what} at {addr} never answered 200");
    }
    let mut rows = Vec::new();
    let mut baseline = None;
    for (what, addr, host) in &targets {
        let mut rates = Vec::new();
        let mut errors = 0;
        for _ in 0..RUNS {
            let (rate, failed) = load(&r, *addr, host);
            rates.push(rate);
            errors += failed;
        }
        rates.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let median = rates[rates.len() / 2];
        let base = *baseline.get_or_insert(median);
        rows.push(format!(
            "| {what} | {median:.0} | {:.0}–{:.0} | {:.0} % | {errors} |",
            rates[0],
            rates[rates.len() - 1],
            100.0 * median / base
        ));
    }
    d.remove_all_pods();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!(
        "## Network: requests per second to one busybox httpd pod\n\n\
         `cargo bench --bench harness -- network` (release build, {cpus} CPUs; the load \
         generator shares them with the daemon and the pod). {CONCURRENCY} concurrent \
         clients, a new TCP connection per `GET` (busybox httpd closes after each \
         answer), {SECONDS} s per run, median of {RUNS} runs.\n\n\
         | path | requests/s | min–max | of direct | errors |\n\
         |---|---|---|---|---|\n{}\n",
        rows.join("\n")
    )
}
