//! The "pull" section of the harness: pulling a multi-layer image from a registry on
//! loopback (Debian's `docker-registry`, plain HTTP) with `berth image pull`, against
//! `skopeo copy` of the same image from the same registry into an OCI directory, in the
//! same run. The image: [`LAYERS`] layers of [`LAYER_MIB`] MiB of random data each (random
//! so that compression plays no part), pushed with skopeo from an OCI layout made here.
//!
//! What each does: berth fetches, checks every digest, unpacks every layer into its store
//! and records the image; skopeo fetches and writes the blobs (no unpacking). [`RUNS`] runs
//! each into an empty store or directory; median with min–max.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::common::{TMP_PREFIX, TestDaemon};
use crate::containers::run;

const LAYERS: usize = 4;
const LAYER_MIB: usize = 16;
const RUNS: usize = 3;

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// Writes an OCI layout with `LAYERS` random layers into `dir`, tagged `bench`.
fn make_image(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..LAYERS {
        let mut data = vec![0u8; LAYER_MIB << 20];
        for chunk in data.chunks_mut(8) {
            // xorshift: fast, and incompressible enough.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let b = seed.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        // As image builders make them: GNU tar of a directory tree.
        let src = dir.join(format!("src-{i}"));
        std::fs::create_dir_all(src.join("data")).expect("mkdir");
        std::fs::write(src.join(format!("data/layer-{i}.bin")), &data).expect("write");
        let tar_path = dir.join(format!("layer-{i}.tar"));
        run(Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("-cf")
            .arg(&tar_path)
            .arg("data"))
        .expect("tar");
        let layer = std::fs::read(&tar_path).expect("layer");
        let _ = std::fs::remove_dir_all(&src);
        let _ = std::fs::remove_file(&tar_path);
        let digest = sha(&layer);
        std::fs::write(blobs.join(&digest[7..]), &layer).expect("write");
        diff_ids.push(digest.clone());
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest, "size": layer.len(),
        }));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("json");
    std::fs::write(blobs.join(&sha(&config)[7..]), &config).expect("write");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(&config), "size": config.len()},
        "layers": layers,
    }))
    .expect("json");
    std::fs::write(blobs.join(&sha(&manifest)[7..]), &manifest).expect("write");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "bench"}}],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("write");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write");
}

struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

pub fn run_section() -> String {
    let dir = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempdir()
        .expect("tempdir");
    let d = TestDaemon::start();
    let port = d.net.host_port(0);
    let data = dir.path().join("registry");
    let config = dir.path().join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            data.display()
        ),
    )
    .expect("config");
    let _registry = Registry(
        Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (apt install docker-registry)"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the registry did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let layout = dir.path().join("layout");
    make_image(&layout);
    let image = format!("127.0.0.1:{port}/bench/layers:1");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:bench", layout.display()))
        .arg(format!("docker://{image}")))
    .expect("push the image");

    let mut berth = Vec::new();
    let mut skopeo = Vec::new();
    for i in 0..RUNS {
        let _ = d.cli(&["image", "rm", &image]);
        let t = Instant::now();
        let out = d.cli(&["image", "pull", &image]);
        assert!(
            out.status.success(),
            "berth image pull: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        berth.push(t.elapsed().as_secs_f64());
        let target = dir.path().join(format!("skopeo-{i}"));
        let t = Instant::now();
        run(Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{image}"))
            .arg(format!("oci:{}:bench", target.display())))
        .expect("skopeo copy");
        skopeo.push(t.elapsed().as_secs_f64());
        let _ = std::fs::remove_dir_all(&target);
    }
    let _ = d.cli(&["image", "rm", &image]);
    let mib = (LAYERS * LAYER_MIB) as f64;
    let (b, bmin, bmax) = median(berth);
    let (s, smin, smax) = median(skopeo);
    let skopeo_version = run(Command::new("skopeo").arg("--version"))
        .unwrap_or_default()
        .trim()
        .to_string();
    format!(
        "Image: {LAYERS} layers of {LAYER_MIB} MiB (random, uncompressed tar), {mib:.0} MiB, \
         from `docker-registry` on 127.0.0.1 (plain HTTP). {RUNS} runs each into an empty \
         store / directory; median (min–max). {skopeo_version}.\n\n\
         | tool | what it does | time (s) | MiB/s |\n|---|---|---|---|\n\
         | `berth image pull` | fetch, check digests, unpack layers, record | {b:.2} ({bmin:.2}–{bmax:.2}) | {:.0} |\n\
         | `skopeo copy docker:// oci:` | fetch, check digests, write blobs | {s:.2} ({smin:.2}–{smax:.2}) | {:.0} |\n\n\
         berth takes {:.2}× skopeo's time.\n",
        mib / b,
        mib / s,
        b / s
    )
}
