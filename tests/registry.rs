//! Pulls from a real registry on loopback (Debian's `docker-registry`, images pushed with
//! `skopeo` from the test OCI archive): plain HTTP, TLS with a self-signed CA and htpasswd
//! auth through imagePullSecrets, pull by tag and by digest, a wrong password, a tampered
//! blob, and a resumed pull.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::tmux::Tmux;
use common::{TestDaemon, berth_bin, eventually, ok, raw_get, stderr, stdout};

/// A `docker-registry` on 127.0.0.1:`port`, stopped on drop.
struct Registry {
    child: Child,
    dir: PathBuf,
    port: u16,
    tls: bool,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Starts a registry in `dir`; with `auth`, TLS (a CA made here) and htpasswd `user:pass`.
    fn start(dir: &Path, port: u16, auth: Option<(&str, &str)>) -> Registry {
        std::fs::create_dir_all(dir.join("data")).expect("mkdir");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        if let Some((user, pass)) = auth {
            make_certs(dir);
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\nauth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                dir.join("server.crt").display(),
                dir.join("server.key").display(),
                dir.join("htpasswd").display()
            ));
            let st = Command::new("htpasswd")
                .args(["-Bbc"])
                .arg(dir.join("htpasswd"))
                .args([user, pass])
                .stderr(Stdio::null())
                .status()
                .expect("htpasswd");
            assert!(st.success());
        }
        std::fs::write(dir.join("config.yml"), config).expect("config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).expect("log"))
            .spawn()
            .expect("docker-registry runs (apt install docker-registry)");
        let r = Registry {
            child,
            dir: dir.to_path_buf(),
            port,
            tls: auth.is_some(),
        };
        eventually(20, "the registry listening", || {
            std::thread::sleep(Duration::from_millis(100));
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        r
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes the test image (built by `import_busybox` into `archive`) as `repo:tag`.
    fn push(&self, archive: &Path, repo_tag: &str, creds: Option<&str>) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet"]);
        if self.tls {
            cmd.arg(format!(
                "--dest-cert-dir={}",
                self.dir.join("certs.d").display()
            ));
        } else {
            cmd.arg("--dest-tls-verify=false");
        }
        if let Some(c) = creds {
            cmd.arg(format!("--dest-creds={c}"));
        }
        let out = cmd
            .arg(format!(
                "oci-archive:{}:berth.local/busybox:latest",
                archive.display()
            ))
            .arg(format!("docker://{}/{repo_tag}", self.host()))
            .output()
            .expect("skopeo");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The registry's file of a blob.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.join(format!(
            "data/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

/// A TCP proxy on 127.0.0.1:`port` to `upstream` that sends the answers on at `rate`
/// bytes a second: a slow registry, so that a pull can be seen under way. Stops on drop.
struct SlowProxy {
    stop: Arc<AtomicBool>,
    port: u16,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SlowProxy {
    fn start(port: u16, upstream: u16, rate: usize) -> SlowProxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut workers = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = client.set_nonblocking(false);
                for (from, to, limit) in [
                    (client.try_clone(), server.try_clone(), None),
                    (server.try_clone(), client.try_clone(), Some(rate)),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let flag = flag.clone();
                    workers.push(std::thread::spawn(move || pump(from, to, limit, &flag)));
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        SlowProxy {
            stop,
            port,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Copies `from` to `to` (at most `rate` bytes a second) until either closes or `stop`.
fn pump(mut from: TcpStream, mut to: TcpStream, rate: Option<usize>, stop: &AtomicBool) {
    use std::io::{Read, Write};
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let chunk = rate.map_or(64 * 1024, |r| (r / 10).max(1));
    let mut buf = vec![0u8; chunk];
    while !stop.load(Ordering::Relaxed) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                if rate.is_some() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it (openssl).
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let st = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(st.success(), "openssl {args:?}");
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=berth test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    // skopeo's trust for the push.
    let certs = dir.join("certs.d");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::copy(dir.join("ca.crt"), certs.join("ca.crt")).expect("copy");
}

/// The test image as an OCI archive (not imported: the daemon's store starts empty).
fn archive(d: &TestDaemon) -> PathBuf {
    release_archive(d, None)
}

/// The test image with `/etc/berth-release` holding `release` (a build of its own digest).
fn release_archive(d: &TestDaemon, release: Option<&str>) -> PathBuf {
    let tar = d.dir.path().join(format!(
        "push-{}.tar",
        release.unwrap_or("default").replace(' ', "-")
    ));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build-busybox.sh");
    let mut cmd = Command::new(script);
    if let Some(r) = release {
        cmd.args(["--release", r]);
    }
    let st = cmd
        .arg(&tar)
        .stdout(Stdio::null())
        .status()
        .expect("build-busybox.sh");
    assert!(st.success());
    tar
}

/// The manifest digest the registry serves for `repo:tag` (skopeo inspect).
fn digest_of(reg: &Registry, repo_tag: &str, creds: Option<&str>) -> String {
    let mut cmd = Command::new("skopeo");
    cmd.arg("inspect");
    if reg.tls {
        cmd.arg(format!("--cert-dir={}", reg.dir.join("certs.d").display()));
    } else {
        cmd.arg("--tls-verify=false");
    }
    if let Some(c) = creds {
        cmd.arg(format!("--creds={c}"));
    }
    let out = cmd
        .arg(format!("docker://{}/{repo_tag}", reg.host()))
        .output()
        .expect("skopeo inspect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["Digest"].as_str().expect("digest").to_string()
}

fn pod_yaml(name: &str, image: &str, policy: &str, secret: Option<&str>) -> String {
    let secrets = secret
        .map(|s| format!("  imagePullSecrets:\n  - name: {s}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{secrets}  containers:\n  - name: main\n    image: {image}\n    imagePullPolicy: {policy}\n    command: [sleep, '3600']\n"
    )
}

fn waiting(d: &TestDaemon, pod: &str, reason: &str) -> serde_json::Value {
    eventually(90, &format!("pod {pod} waiting with {reason}"), || {
        std::thread::sleep(Duration::from_millis(300));
        d.get_json(&["pod", pod])
            .filter(|p| p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == reason)
    })
}

fn running(d: &TestDaemon, pod: &str) -> serde_json::Value {
    eventually(90, &format!("pod {pod} running"), || {
        std::thread::sleep(Duration::from_millis(300));
        d.get_json(&["pod", pod])
            .filter(|p| p["status"]["phase"] == "Running")
    })
}

#[test]
fn pull_from_a_plain_http_registry_by_tag_and_by_digest() {
    let d = TestDaemon::start();
    let tar = archive(&d);
    let reg = Registry::start(&d.dir.path().join("registry"), d.net.host_port(0), None);
    reg.push(&tar, "tools/busybox:1.0", None);
    let digest = digest_of(&reg, "tools/busybox:1.0", None);

    // The CLI pull (a loopback registry without TLS is spoken to in plain HTTP).
    let image = format!("{}/tools/busybox:1.0", reg.host());
    let out = ok(&d.cli(&["image", "pull", &image]));
    assert!(out.contains(&format!("Pulled {image}")), "{out}");
    // Not a terminal: a plain line per blob as its state changes, each ending verified
    // (the config and the layers).
    let verified = out.lines().filter(|l| l.contains(": verified (")).count();
    assert!(verified >= 2, "{out}");
    let ls = ok(&d.cli(&["image", "ls"]));
    assert!(
        ls.contains(&format!("{}/tools/busybox", reg.host())),
        "{ls}"
    );

    // A pod pulling by digest (policy Always: it pulls even though the blobs are here).
    let by_digest = format!("{}/tools/busybox@{digest}", reg.host());
    d.apply_yaml("pod", &pod_yaml("by-digest", &by_digest, "Always", None));
    let p = running(&d, "by-digest");
    let image_id = p["status"]["containerStatuses"][0]["imageID"]
        .as_str()
        .unwrap_or_default();
    assert!(image_id.ends_with(&digest), "{image_id}");
    let events = ok(&d.cli(&["events", "--for", "pod/by-digest"]));
    assert!(
        events.contains(&format!("Pulling image \"{by_digest}\"")),
        "{events}"
    );
    assert!(
        events.contains(&format!("Successfully pulled image \"{by_digest}\"")),
        "{events}"
    );

    // Registries outside pullRegistries are never contacted (test daemons: 127.0.0.1).
    let o = d.cli(&["image", "pull", "busybox:1.36"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("pulls may reach only 127.0.0.1 on this node"),
        "{}",
        stderr(&o)
    );

    // A tag the registry does not have: ErrImagePull, then ImagePullBackOff, with events.
    let missing = format!("{}/tools/busybox:nope", reg.host());
    d.apply_yaml("pod2", &pod_yaml("missing", &missing, "IfNotPresent", None));
    let p = waiting(&d, "missing", "ImagePullBackOff");
    let msg = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"].to_string();
    assert!(msg.contains("not found"), "{msg}");
    let events = ok(&d.cli(&["events", "--for", "pod/missing"]));
    assert!(events.contains("Failed to pull image"), "{events}");
    assert!(events.contains("Error: ErrImagePull"), "{events}");
    assert!(events.contains("Back-off pulling image"), "{events}");
}

#[test]
fn pull_over_tls_with_auth_from_image_pull_secrets_and_reject_tampering() {
    let mut d = TestDaemon::unstarted("");
    let regdir = d.dir.path().join("registry");
    let reg = Registry::start(&regdir, d.net.host_port(0), Some(("puller", "s3cret")));
    // The daemon trusts the registry's CA through registries.yaml.
    let registries = d.dir.path().join("registries.yaml");
    std::fs::write(
        &registries,
        format!(
            "configs:\n  \"{}\":\n    tls:\n      ca_file: {}\n",
            reg.host(),
            regdir.join("ca.crt").display()
        ),
    )
    .expect("registries.yaml");
    d.config = format!("registriesFile: {}\n", registries.display());
    d.spawn();
    let tar = archive(&d);
    reg.push(&tar, "private/app:2", Some("puller:s3cret"));
    let image = format!("{}/private/app:2", reg.host());

    // Anonymous: refused, with a message saying what to check.
    let o = d.cli(&["image", "pull", &image]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unauthorized"), "{}", stderr(&o));

    // A wrong password in the pod's imagePullSecret: ErrImagePull saying so.
    let docker_config = |pass: &str| {
        let auth = {
            use std::io::Write;
            let mut child = Command::new("base64")
                .arg("-w0")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("base64");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("puller:{pass}").as_bytes())
                .expect("write");
            stdout(&child.wait_with_output().expect("base64"))
        };
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}",
            reg.host()
        )
    };
    let secret = |name: &str, pass: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{}'\n",
            docker_config(pass)
        )
    };
    d.apply_yaml("bad-secret", &secret("bad-creds", "wrong"));
    d.apply_yaml(
        "bad-pod",
        &pod_yaml("denied", &image, "IfNotPresent", Some("bad-creds")),
    );
    let p = waiting(&d, "denied", "ImagePullBackOff");
    let msg = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"].to_string();
    assert!(
        msg.contains("unauthorized") && msg.contains("check the credentials"),
        "{msg}"
    );

    // A tampered layer in the registry is refused (its digest does not match).
    let manifest_digest = digest_of(&reg, "private/app:2", Some("puller:s3cret"));
    let manifest = std::fs::read(reg.blob_file(&manifest_digest)).expect("manifest blob");
    let m: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest json");
    let layer = m["layers"][0]["digest"]
        .as_str()
        .expect("layer")
        .to_string();
    let blob = reg.blob_file(&layer);
    let good = std::fs::read(&blob).expect("layer blob");
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    std::fs::write(&blob, &bad).expect("tamper");
    d.apply_yaml("good-secret", &secret("creds", "s3cret"));
    d.apply_yaml(
        "tampered",
        &pod_yaml("tampered", &image, "IfNotPresent", Some("creds")),
    );
    let p = waiting(&d, "tampered", "ImagePullBackOff");
    let msg = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"].to_string();
    assert!(msg.contains("does not match its digest"), "{msg}");
    let ls = ok(&d.cli(&["image", "ls"]));
    assert!(
        !ls.contains("private/app"),
        "a tampered image was stored: {ls}"
    );

    // The registry's blob repaired, the right password: the pod runs.
    std::fs::write(&blob, &good).expect("repair");
    d.apply_yaml(
        "good-pod",
        &pod_yaml("allowed", &image, "IfNotPresent", Some("creds")),
    );
    running(&d, "allowed");
}

#[test]
fn an_interrupted_pull_resumes_without_fetching_finished_blobs_again() {
    let d = TestDaemon::start();
    let tar = archive(&d);
    let reg = Registry::start(&d.dir.path().join("registry"), d.net.host_port(0), None);
    reg.push(&tar, "resume/busybox:1", None);
    let digest = digest_of(&reg, "resume/busybox:1", None);
    let manifest = std::fs::read(reg.blob_file(&digest)).expect("manifest");
    let m: serde_json::Value = serde_json::from_slice(&manifest).expect("json");
    let layers: Vec<String> = m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect();
    assert!(layers.len() >= 2, "the test image has two layers");
    // As a pull killed halfway leaves it: the first layer whole, the second half-written.
    let partial = d.state_dir().join("images/partial");
    std::fs::create_dir_all(&partial).expect("mkdir");
    let first = std::fs::read(reg.blob_file(&layers[0])).expect("layer 0");
    std::fs::write(
        partial.join(layers[0].trim_start_matches("sha256:")),
        &first,
    )
    .expect("w");
    let second = std::fs::read(reg.blob_file(&layers[1])).expect("layer 1");
    std::fs::write(
        partial.join(layers[1].trim_start_matches("sha256:")),
        &second[..second.len() / 2],
    )
    .expect("w");
    // The registry's copy of the first layer is gone: it cannot be fetched again.
    std::fs::remove_file(reg.blob_file(&layers[0])).expect("rm");

    let image = format!("{}/resume/busybox:1", reg.host());
    ok(&d.cli(&["image", "pull", &image]));
    let log = d.log();
    assert!(
        log.contains("resuming a blob download"),
        "no resume in the log"
    );
    assert!(
        std::fs::read_dir(&partial)
            .expect("partial")
            .next()
            .is_none(),
        "partial blobs left after the pull"
    );
    d.apply_yaml("pod", &pod_yaml("resumed", &image, "IfNotPresent", None));
    running(&d, "resumed");
}

/// Imports the test image under `reference`.
fn import_as(d: &TestDaemon, reference: &str) {
    let tar = d
        .dir
        .path()
        .join(format!("{}.tar", reference.replace(['/', ':'], "_")));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build-busybox.sh");
    let st = Command::new(script)
        .arg(&tar)
        .arg(reference)
        .stdout(Stdio::null())
        .status()
        .expect("build-busybox.sh");
    assert!(st.success());
    ok(&d.cli(&["image", "import", tar.to_str().expect("utf-8")]));
}

fn image_names(d: &TestDaemon) -> Vec<String> {
    let out = ok(&d.cli(&["image", "ls", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("image list json");
    let mut names: Vec<String> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

#[test]
fn image_gc_past_the_high_threshold_and_prune_keep_exactly_the_images_in_use() {
    // Thresholds overridden so that any use of the disk is "too full".
    let d = TestDaemon::start_with_config(
        "imageGCHighThresholdPercent: 1\nimageGCLowThresholdPercent: 0\nimageGCPeriodSeconds: 1\n",
    );
    // The pod first: an image a pod names is never collected, even before it runs.
    d.apply_yaml(
        "pod",
        &pod_yaml("user", "berth.local/keep:1", "Never", None),
    );
    for r in [
        "berth.local/keep:1",
        "berth.local/drop-a:1",
        "berth.local/drop-b:1",
    ] {
        import_as(&d, r);
    }
    running(&d, "user");
    let left = eventually(60, "the unused images collected", || {
        std::thread::sleep(Duration::from_millis(300));
        let names = image_names(&d);
        (names.len() == 1).then_some(names)
    });
    assert_eq!(left, vec!["berth.local/keep:1".to_string()]);
    assert!(d.log().contains("image garbage-collected"));
    running(&d, "user");

    // berth image prune (no GC pressure on this daemon): only the unused image goes.
    let p = TestDaemon::start();
    for r in ["berth.local/keep:1", "berth.local/drop-a:1"] {
        import_as(&p, r);
    }
    p.apply_yaml(
        "pod",
        &pod_yaml("user", "berth.local/keep:1", "Never", None),
    );
    running(&p, "user");
    let out = ok(&p.cli(&["image", "prune"]));
    assert!(out.contains("Deleted: berth.local/drop-a:1"), "{out}");
    assert!(out.contains("1 image(s) removed"), "{out}");
    assert_eq!(image_names(&p), vec!["berth.local/keep:1".to_string()]);
}

#[test]
fn mirrors_in_order_with_fallback_and_a_multi_platform_index() {
    let mut d = TestDaemon::unstarted("");
    let reg = Registry::start(&d.dir.path().join("registry"), d.net.host_port(0), None);
    // The image's own registry (port host_port(1)) is down; registries.yaml lists a dead
    // mirror (host_port(2)) first, then the live one.
    let origin = format!("127.0.0.1:{}", d.net.host_port(1));
    let registries = d.dir.path().join("registries.yaml");
    std::fs::write(
        &registries,
        format!(
            "mirrors:\n  \"{origin}\":\n    endpoint:\n    - http://127.0.0.1:{}\n    - http://{}\n",
            d.net.host_port(2),
            reg.host()
        ),
    )
    .expect("registries.yaml");
    d.config = format!("registriesFile: {}\n", registries.display());
    d.spawn();
    let tar = archive(&d);
    reg.push(&tar, "tools/busybox:1.0", None);
    let image = format!("{origin}/tools/busybox:1.0");
    let out = ok(&d.cli(&["image", "pull", &image]));
    assert!(out.contains(&format!("Pulled {image}")), "{out}");
    assert!(
        d.log()
            .contains(&format!("127.0.0.1:{}", d.net.host_port(2))),
        "the dead mirror was not tried first"
    );

    // A multi-platform index: an arm64 entry first, then this machine's (amd64). Both
    // manifests exist; the arm64 one differs by an annotation.
    let amd64 = digest_of(&reg, "tools/busybox:1.0", None);
    let manifest = std::fs::read(reg.blob_file(&amd64)).expect("manifest");
    let mut arm: serde_json::Value = serde_json::from_slice(&manifest).expect("json");
    arm["annotations"] = serde_json::json!({"test.berth/platform": "arm64"});
    let arm_bytes = serde_json::to_vec(&arm).expect("json");
    let put = |path: &str, media: &str, body: &[u8]| {
        let f = d.dir.path().join("put.json");
        std::fs::write(&f, body).expect("write");
        let o = Command::new("curl")
            .args(["-sf", "-X", "PUT", "-H"])
            .arg(format!("Content-Type: {media}"))
            .arg("--data-binary")
            .arg(format!("@{}", f.display()))
            .arg(format!("http://{}/v2/{path}", reg.host()))
            .output()
            .expect("curl");
        assert!(
            o.status.success(),
            "PUT {path}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    put(
        "tools/busybox/manifests/arm64",
        "application/vnd.oci.image.manifest.v1+json",
        &arm_bytes,
    );
    let arm_digest = digest_of(&reg, "tools/busybox:arm64", None);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_digest,
             "size": arm_bytes.len(), "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd64,
             "size": manifest.len(), "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    });
    put(
        "tools/busybox/manifests/multi",
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&index).expect("json"),
    );
    let multi = format!("{}/tools/busybox:multi", reg.host());
    ok(&d.cli(&["image", "pull", &multi]));
    let info = ok(&d.cli(&["image", "inspect", &multi, "-o", "json"]));
    let v: serde_json::Value = serde_json::from_str(&info).expect("json");
    assert_eq!(v["spec"]["architecture"], "amd64");
    assert_eq!(v["spec"]["manifestDigest"], amd64.as_str());
}

#[test]
fn pull_progress_shows_as_bars_on_a_terminal_and_on_the_pod_in_the_tui() {
    let d = TestDaemon::start();
    let tar = archive(&d);
    let reg = Registry::start(&d.dir.path().join("registry"), d.net.host_port(0), None);
    reg.push(&tar, "tools/busybox:1.0", None);
    // About 100 KiB/s: the test image's layer takes several seconds.
    let slow = SlowProxy::start(d.net.host_port(1), d.net.host_port(0), 100 * 1024);
    let image = format!("{}/tools/busybox:1.0", slow.host());
    let env = format!("env BERTH_SOCKET={}", d.socket().display());

    // berth image pull on a terminal: a bar per blob, redrawn in place.
    let t = Tmux::start(
        &d,
        &format!("{env} {} image pull {image}; sleep 600", berth_bin()),
    );
    let screen = t.wait_for(": downloading");
    assert!(screen.contains("[="), "{screen}");
    let done = eventually(120, "the pull to finish", || {
        std::thread::sleep(Duration::from_millis(300));
        let s = t.screen();
        s.contains(&format!("Pulled {image}")).then_some(s)
    });
    assert!(done.contains(": verified"), "{done}");
    // Redrawn in place, not scrolled: no bar is left at "downloading".
    assert!(!done.contains(": downloading"), "{done}");
    drop(t);
    ok(&d.cli(&["image", "rm", &image]));

    // A pod whose image is being pulled: the TUI shows how far, the API lists the pull.
    let t = Tmux::start(&d, &format!("{env} {}", berth_bin()));
    t.wait_for("NAME");
    d.apply_yaml("pod", &pod_yaml("slow", &image, "IfNotPresent", None));
    let screen = t.wait_for("Pulling ");
    let row = screen
        .lines()
        .find(|l| l.contains("slow"))
        .unwrap_or_default()
        .to_string();
    assert!(row.contains("Pulling ") && row.contains('%'), "{screen}");
    let (status, _, pulls) = raw_get(&d, "/apis/images.berth.dev/v1/pulls", "application/json");
    assert_eq!(status, 200);
    let item = pulls["items"]
        .as_array()
        .and_then(|i| i.first())
        .cloned()
        .unwrap_or_default();
    assert_eq!(item["status"]["reference"], image.as_str(), "{pulls}");
    assert!(
        item["status"]["totalBytes"].as_u64().unwrap_or(0) > 0,
        "{pulls}"
    );
    running(&d, "slow");
    t.wait_gone("Pulling ");
    let (_, _, pulls) = raw_get(&d, "/apis/images.berth.dev/v1/pulls", "application/json");
    assert_eq!(pulls["items"], serde_json::json!([]), "{pulls}");
}

#[test]
fn auto_update_rolls_to_a_new_digest_and_back_from_one_that_never_gets_ready() {
    let d = TestDaemon::start_with_config("autoUpdatePeriodSeconds: 1\n");
    let reg = Registry::start(&d.dir.path().join("registry"), d.net.host_port(0), None);
    let push = |release: &str| {
        reg.push(&release_archive(&d, Some(release)), "apps/web:stable", None);
        digest_of(&reg, "apps/web:stable", None)
    };
    let first = push("good 1");
    let image = format!("{}/apps/web:stable", reg.host());
    // Ready only while /etc/berth-release says "good"; maxUnavailable 0 keeps the old pods
    // serving while a new digest rolls out.
    d.apply_yaml(
        "deploy",
        &format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    berth.dev/auto-update: registry
spec:
  replicas: 2
  progressDeadlineSeconds: 15
  strategy:
    rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {image}
        command: [sleep, '3600']
        readinessProbe:
          exec:
            command: [grep, -q, good, /etc/berth-release]
          periodSeconds: 1
"
        ),
    );
    let template_image = |d: &TestDaemon| {
        d.get_json(&["deployment", "web"])
            .and_then(|v| {
                v["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default()
    };
    let available = |d: &TestDaemon, digest: &str| {
        eventually(120, &format!("two ready pods of {digest}"), || {
            std::thread::sleep(Duration::from_millis(500));
            let pods = d.get_json(&["pods", "-l", "app=web"])?;
            let ready: Vec<_> = pods["items"]
                .as_array()?
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .filter(|p| {
                    let c = &p["status"]["containerStatuses"][0];
                    c["ready"] == true && c["imageID"].as_str().is_some_and(|i| i.ends_with(digest))
                })
                .cloned()
                .collect();
            (ready.len() == 2).then_some(())
        })
    };
    available(&d, &first);
    // The tag has not moved: nothing changes.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(template_image(&d), image);

    // A new good build under the tag: the Deployment rolls to it, pinned by digest.
    let second = push("good 2");
    assert_ne!(first, second);
    let pinned = format!("{image}@{second}");
    eventually(60, "the template pinned to the new digest", || {
        std::thread::sleep(Duration::from_millis(300));
        (template_image(&d) == pinned).then_some(())
    });
    available(&d, &second);
    let events = eventually(60, "the AutoUpdated event", || {
        std::thread::sleep(Duration::from_millis(500));
        let e = ok(&d.cli(&["events", "--for", "deployment/web"]));
        e.contains("AutoUpdated").then_some(e)
    });
    assert!(
        events.contains(&format!("New digest {second} for {image}")),
        "{events}"
    );

    // A broken build (never ready): rolled out, then rolled back after the deadline.
    let third = push("broken 3");
    eventually(60, "the template pinned to the broken digest", || {
        std::thread::sleep(Duration::from_millis(300));
        (template_image(&d) == format!("{image}@{third}")).then_some(())
    });
    eventually(90, "the rollback to the good digest", || {
        std::thread::sleep(Duration::from_millis(500));
        (template_image(&d) == pinned).then_some(())
    });
    let events = ok(&d.cli(&["events", "--for", "deployment/web"]));
    assert!(events.contains("AutoUpdateRolledBack"), "{events}");
    assert!(
        events.contains(&format!("the pods of digest {third} did not become ready")),
        "{events}"
    );
    available(&d, &second);
    let dep = d.get_json(&["deployment", "web"]).expect("deployment");
    assert_eq!(
        dep["metadata"]["annotations"]["berth.dev/auto-update-rejected"],
        third.as_str()
    );
    // The rejected digest is never tried again, though the tag still names it.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(template_image(&d), pinned);
}
