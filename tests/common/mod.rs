//! Test fixtures: a real `berth daemon` in a temporary state dir, reached over its real
//! socket through the real client and the real CLI binary.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth::client::Client;

pub mod tmux;

/// Prefix of every temporary directory the tests make (the CI leak check looks for it).
pub const TMP_PREFIX: &str = "berth-test-";

pub fn berth_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berth")
}

/// A daemon under test. Stopped (SIGTERM, then SIGKILL) and its directory removed on drop.
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub config: String,
    /// This daemon's own pod network (tests run in parallel, each with its own bridge,
    /// pod CIDR and nftables table).
    pub net: TestNet,
}

/// Prefix of the bridges of test daemons (the leak check looks for it).
pub const TEST_BRIDGE_PREFIX: &str = "bt";
/// Prefix of the nftables tables of test daemons.
pub const TEST_NFT_PREFIX: &str = "berth_t";
/// First host port of the claims' blocks (1024 claims × 16 ports: 10000–26383, below the
/// kernel's ephemeral ports).
const NODE_PORT_BASE: u16 = 10000;
/// Where test daemons claim their pod /24 (one empty file per claimed /24).
const NET_CLAIMS: &str = "/tmp/berth-netclaims";

/// A test daemon's network: a bridge `bt` + 6 characters, a /24 of 10.200.0.0/14 claimed
/// exclusively (an `O_EXCL` file) while the daemon lives, and its nftables table. The same
/// claim gives it the /24 at the same offset in 10.204.0.0/14 as its serviceCIDR and a
/// block of 16 host ports: the first 8 its serviceNodePortRange, the other 8
/// ([`TestNet::host_port`]) for the tests' LoadBalancer ports (served on every local
/// address of the host), so parallel daemons never install rules for the same address or
/// port.
/// Dropped after its daemon stopped (it is the last field of `TestDaemon`), it removes the
/// bridge and the table and gives up the claim.
pub struct TestNet {
    pub bridge: String,
    pub pod_cidr: String,
    pub service_cidr: String,
    /// First port of this daemon's block of 16.
    pub port_base: u16,
    pub table: String,
    claim: PathBuf,
}

impl Drop for TestNet {
    fn drop(&mut self) {
        self.remove();
    }
}

impl TestNet {
    pub fn claim() -> TestNet {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tag = &id[..6];
        std::fs::create_dir_all(NET_CLAIMS).expect("claims dir");
        let mut seed = u32::from_str_radix(&id[6..14], 16).unwrap_or(0);
        for _ in 0..1024 {
            let n = seed % 1024;
            seed = seed.wrapping_add(1);
            let claim = Path::new(NET_CLAIMS).join(n.to_string());
            if std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&claim)
                .is_ok()
            {
                return TestNet {
                    bridge: format!("{TEST_BRIDGE_PREFIX}{tag}"),
                    pod_cidr: format!("10.{}.{}.0/24", 200 + n / 256, n % 256),
                    service_cidr: format!("10.{}.{}.0/24", 204 + n / 256, n % 256),
                    port_base: NODE_PORT_BASE + (n as u16) * 16,
                    table: format!("{TEST_NFT_PREFIX}{tag}"),
                    claim,
                };
            }
        }
        panic!("no free test pod CIDR in 10.200.0.0/14 (stale claims in {NET_CLAIMS}?)");
    }

    /// The configuration keys (YAML lines) of this network.
    pub fn config(&self) -> String {
        format!(
            "bridgeName: {}\npodCIDR: {}\nserviceCIDR: {}\nserviceNodePortRange: {}-{}\nnftablesTable: {}\n",
            self.bridge,
            self.pod_cidr,
            self.service_cidr,
            self.port_base,
            self.port_base + 7,
            self.table
        )
    }

    /// The `i`-th (0..8) host port of this daemon's own block, outside its node port range:
    /// for a LoadBalancer Service's port in a test.
    pub fn host_port(&self, i: u16) -> u16 {
        assert!(i < 8, "a test daemon has 8 host ports");
        self.port_base + 8 + i
    }

    /// Removes the bridge and the table (the daemon leaves them, as a node agent does).
    fn remove(&self) {
        let config = berth::network::NetworkConfig {
            bridge: self.bridge.clone(),
            pod_cidr: self.pod_cidr.parse().expect("cidr"),
            service_cidr: self.service_cidr.parse().expect("cidr"),
            nft_table: self.table.clone(),
            state_dir: PathBuf::new(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        if let Err(e) = rt.block_on(berth::network::Network::remove_node_network(&config)) {
            eprintln!("test daemon's network not removed: {e}");
        }
        let _ = std::fs::remove_file(&self.claim);
    }
}

impl TestDaemon {
    /// Starts a daemon with the default test configuration.
    pub fn start() -> TestDaemon {
        Self::start_with_config("")
    }

    /// Starts a daemon with extra configuration YAML (keys of /etc/berth/config.yaml).
    pub fn start_with_config(extra: &str) -> TestDaemon {
        let mut d = Self::unstarted(extra);
        d.spawn();
        d
    }

    /// A daemon's directory and network, not started yet (`spawn` starts it).
    pub fn unstarted(extra: &str) -> TestDaemon {
        let dir = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempdir()
            .expect("tempdir");
        // Other users (the access-control test) must reach the socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        TestDaemon {
            dir,
            child: None,
            config: extra.to_string(),
            net: TestNet::claim(),
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("berth.sock")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// This daemon's cgroup parent (without the leading '/'): unique per test daemon, so
    /// tests do not see each other's pods and the leak check finds leftovers by prefix.
    pub fn cgroup_parent(&self) -> String {
        let base = self
            .dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        base.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    /// Writes the daemon's configuration file (`spawn` does it too).
    pub fn write_config(&self) {
        let config = format!(
            "stateDir: {}\nsocket: {}\nlogDir: {}\nrunDir: {}\ncgroupParent: /{}\npullRegistries: [127.0.0.1]\n{}{}",
            self.state_dir().display(),
            self.socket().display(),
            self.dir.path().join("logs").display(),
            self.dir.path().join("run").display(),
            self.cgroup_parent(),
            self.net.config(),
            self.config
        );
        // Test daemons run in parallel: no Ingress listeners unless a test asks for ports.
        let config = if self.config.contains("ingressHttpPort") {
            config
        } else {
            format!("{config}ingressHttpPort: 0\ningressHttpsPort: 0\n")
        };
        // Nor image GC (the CI disk may be fuller than 85 %), unless a test asks for it.
        let config = if self.config.contains("imageGCHighThresholdPercent") {
            config
        } else {
            format!("{config}imageGCHighThresholdPercent: 100\nimageGCLowThresholdPercent: 99\n")
        };
        std::fs::write(self.config_path(), config).expect("write config");
    }

    /// Spawns the daemon process and waits until it answers.
    pub fn spawn(&mut self) {
        self.write_config();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("log file");
        let child = Command::new(berth_bin())
            .arg("daemon")
            .arg("--config")
            .arg(self.config_path())
            .env("BERTH_LOG", "debug")
            .env_remove("BERTH_SOCKET")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Polls the socket (bounded) until the daemon answers `/version`.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("daemon exited early with {status}; log:\n{}", self.log());
            }
            let out = self.cli(&["version"]);
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "daemon not ready in 20s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, as a power cut would.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait (bounded); returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Deletes every pod (grace 1 s) and waits until the kubelet has stopped and removed
    /// their containers, so the test leaves no container, mount or cgroup behind.
    pub fn remove_all_pods(&self) {
        if self.child.is_none() {
            return;
        }
        let containers = self.state_dir().join("containers");
        let has_pods = || {
            let o = self.cli(&["get", "pods", "-A", "-o", "name"]);
            !o.status.success() || !String::from_utf8_lossy(&o.stdout).trim().is_empty()
        };
        // Sandboxes too: the kubelet frees a deleted pod's sandbox and network after the
        // pod has left the store when it was already finished.
        let sandboxes = self.dir.path().join("run/sandboxes");
        let has_containers = || {
            [&containers, &sandboxes].iter().any(|dir| {
                std::fs::read_dir(dir)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            })
        };
        if !has_pods() && !has_containers() {
            return;
        }
        // Controllers first, or they replace the pods deleted below (CronJobs before the
        // Jobs they would start).
        for kind in [
            "cronjobs",
            "deployments",
            "replicasets",
            "statefulsets",
            "jobs",
        ] {
            let o = self.cli(&["get", kind, "-A", "-o", "json"]);
            let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            for obj in list["items"].as_array().into_iter().flatten() {
                let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
                let name = obj["metadata"]["name"].as_str().unwrap_or_default();
                self.cli(&[
                    "delete",
                    kind,
                    name,
                    "-n",
                    ns,
                    "--cascade",
                    "orphan",
                    "--ignore-not-found",
                ]);
            }
        }
        let o = self.cli(&["get", "pods", "-A", "-o", "json"]);
        let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        for p in list["items"].as_array().into_iter().flatten() {
            let ns = p["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = p["metadata"]["name"].as_str().unwrap_or_default();
            self.cli(&[
                "delete",
                "pod",
                name,
                "-n",
                ns,
                "--grace-period",
                "1",
                "--ignore-not-found",
            ]);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while (has_pods() || has_containers()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Imports the busybox test image (`tests/images/build-busybox.sh`) into this daemon.
    pub fn import_busybox(&self) {
        let archive = self.dir.path().join("busybox.tar");
        if !archive.exists() {
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/images/build-busybox.sh");
            // Its "wrote …" line would land in the middle of the test harness's output.
            let status = Command::new(script)
                .arg(&archive)
                .stdout(Stdio::null())
                .status()
                .expect("build-busybox.sh runs");
            assert!(status.success(), "build-busybox.sh failed");
        }
        let o = self.cli(&["image", "import", archive.to_str().expect("utf-8 path")]);
        assert!(
            o.status.success(),
            "image import: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    pub fn client(&self) -> Client {
        Client::new(self.socket())
    }

    /// Runs the real CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, None, None)
    }

    /// Runs the CLI with standard input and/or as another user.
    pub fn cli_with(&self, args: &[&str], stdin: Option<&str>, uid: Option<u32>) -> Output {
        use std::io::Write;
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(berth_bin());
        cmd.args(args).env("BERTH_SOCKET", self.socket());
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn cli");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        child.wait_with_output().expect("cli output")
    }

    /// Writes a file in the test directory and returns its path.
    /// `berth apply -f` of `yaml` (written to `<name>.yaml`); panics when it fails.
    pub fn apply_yaml(&self, name: &str, yaml: &str) {
        let path = self.write(&format!("{name}.yaml"), yaml);
        ok(&self.cli(&["apply", "-f", path.to_str().expect("utf-8 path")]));
    }

    /// `berth get ARGS -o json`, parsed; `None` when the command fails.
    pub fn get_json(&self, args: &[&str]) -> Option<serde_json::Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let o = self.cli(&all);
        o.status
            .success()
            .then(|| serde_json::from_slice(&o.stdout).expect("json from get -o json"))
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for TestDaemon {
    /// Stops the daemon, then removes its cgroup parent (the daemon creates it at start and,
    /// like any node agent, leaves it in place when it stops).
    fn drop(&mut self) {
        self.remove_all_pods();
        self.stop();
        match berth::runtime::Cgroups::detect(&format!("/{}", self.cgroup_parent())) {
            Ok(cg) => {
                if let Err(e) = cg.remove_parent() {
                    eprintln!("test daemon's cgroup parent not removed: {e}");
                }
            }
            Err(e) => eprintln!("cannot find the cgroup hierarchies to clean up: {e}"),
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a CLI run succeeded, showing its output when not.
pub fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "command failed: {}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// A current-thread runtime for async client calls in sync tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Polls `f` until it returns Some, or panics after `secs`.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}

/// A GET with exactly the given Accept header (as kubectl sends), answered as JSON.
pub fn raw_get(d: &TestDaemon, path: &str, accept: &str) -> (u16, String, serde_json::Value) {
    let r = runtime();
    r.block_on(async {
        let stream = tokio::net::UnixStream::connect(d.socket())
            .await
            .expect("connect");
        let (mut s, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(conn);
        let req = hyper::Request::get(path)
            .header("host", "berth")
            .header("accept", accept)
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .expect("request");
        let resp = s.send_request(req).await.expect("send");
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        use http_body_util::BodyExt;
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            ct,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    })
}

/// The nginx Deployment from the Kubernetes documentation.
pub const NGINX_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
";

/// A random suffix for names the tests make.
pub fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A rootfs with Debian's static busybox and its applets in /bin (for tests that start
/// containers with the runtime directly, without an image).
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    use std::os::unix::fs::symlink;
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(root.join(d)).expect("rootfs dir");
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .expect("chmod tmp");
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("copy /bin/busybox (install busybox-static)");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() && !applet.contains('/') {
            let _ = symlink("busybox", root.join("bin").join(applet));
        }
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    std::fs::write(root.join("etc/group"), "root:x:0:\n").expect("group");
    root
}

/// `dir` and every directory below it (a cgroup tree, say); empty when `dir` is missing.
pub fn dirs_below(dir: &Path) -> Vec<PathBuf> {
    if !dir.is_dir() {
        return Vec::new();
    }
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(dirs_below(&e.path()));
        }
    }
    out
}

/// The `berth shim` processes of test daemon `d` (their command lines name its directory).
pub fn shim_pids(d: &TestDaemon) -> Vec<u32> {
    let dir = d.dir.path().display().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.get(1).map(String::as_str) == Some("shim") && args.iter().any(|a| a.contains(&dir))
        {
            out.push(pid);
        }
    }
    out
}
