//! Local images for real: the busybox test image built by `tests/images/build-busybox.sh`,
//! imported in both archive formats, mounted as an overlayfs rootfs, removed again; and
//! archives that must be refused without leaving anything behind. Runs as root.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth::image::{Digest, ImageError, ImageStore, is_mounted, remove_rootfs};
use common::TMP_PREFIX;
use serde_json::{Value, json};

const REFERENCE: &str = "berth.local/busybox:latest";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempdir()
        .expect("tempdir")
}

/// Runs the build script; returns the archive path.
fn build(dir: &Path, file: &str, args: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build-busybox.sh");
    let out = dir.join(file);
    let status = Command::new(script)
        .args(args.iter().take_while(|a| a.starts_with("--")))
        .arg(&out)
        .args(args.iter().skip_while(|a| a.starts_with("--")))
        .status()
        .expect("run build-busybox.sh");
    assert!(status.success(), "build-busybox.sh failed");
    out
}

fn import(
    store: &ImageStore,
    archive: &Path,
    name: Option<&str>,
) -> Result<Vec<berth::image::ImageInfo>, ImageError> {
    store.import(fs::File::open(archive).expect("open archive"), name)
}

/// Names in a store subdirectory.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn assert_store_empty(root: &Path) {
    assert_eq!(
        entries(&root.join("blobs/sha256")),
        Vec::<String>::new(),
        "blobs left"
    );
    assert_eq!(
        entries(&root.join("layers/sha256")),
        Vec::<String>::new(),
        "layers left"
    );
    assert_eq!(entries(&root.join("tmp")), Vec::<String>::new(), "tmp left");
}

/// Nothing under `dir` is mounted any more.
fn assert_nothing_mounted(dir: &Path) {
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let dir = dir.to_string_lossy();
    assert!(
        !info.contains(dir.as_ref()),
        "a mount under {dir} is left:\n{info}"
    );
}

/// Unmounts a container's rootfs when dropped, so a failing assertion leaks no mount.
struct MountGuard(PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = berth::image::unmount_rootfs(&self.0);
    }
}

/// Reads a tar archive into (path, data) pairs, in order.
fn read_tar(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut ar = tar::Archive::new(fs::File::open(path).expect("open"));
    let mut out = Vec::new();
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        if !e.header().entry_type().is_file() {
            continue;
        }
        let name = e.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("read");
        out.push((name, data));
    }
    out
}

fn write_tar(path: &Path, files: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(fs::File::create(path).expect("create"));
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_704_067_200);
        b.append_data(&mut h, name, &data[..]).expect("append");
    }
    b.finish().expect("finish");
}

fn sha(data: &[u8]) -> String {
    Digest::of(data).to_string()
}

#[test]
fn imports_both_formats_mounts_a_rootfs_and_removes_everything() {
    let tmp = tempdir();
    let oci = build(tmp.path(), "oci.tar", &[]);
    let docker = build(
        tmp.path(),
        "docker.tar",
        &["--docker", "berth.local/busybox:docker"],
    );
    let root = tmp.path().join("images");
    let store = ImageStore::open(&root).expect("open store");

    // OCI layout.
    let infos = import(&store, &oci, None).expect("import oci");
    assert_eq!(infos.len(), 1);
    let img = &infos[0];
    assert_eq!(img.reference, REFERENCE);
    assert_eq!(img.familiar_reference(), REFERENCE);
    assert_eq!(img.config.cmd, ["sh"]);
    assert!(img.config.entrypoint.is_empty());
    assert_eq!(img.config.env, [PATH_ENV]);
    assert_eq!(img.config.working_dir, "/");
    assert_eq!(
        img.config
            .labels
            .get("org.opencontainers.image.title")
            .map(String::as_str),
        Some("berth busybox test image")
    );
    assert_eq!(img.os, "linux");
    assert_eq!(img.layers.len(), 2);
    assert!(img.layers.iter().all(|l| l.media_type.ends_with("+gzip")));
    assert!(
        img.size > 1_000_000,
        "busybox alone is bigger: {}",
        img.size
    );
    assert_eq!(
        berth::image::command_for(&[], &[], &img.config).unwrap(),
        ["sh"]
    );

    // docker save: same config (so the same image id), uncompressed layers.
    let dinfos = import(&store, &docker, None).expect("import docker save");
    assert_eq!(dinfos.len(), 1);
    let dimg = &dinfos[0];
    assert_eq!(dimg.reference, "berth.local/busybox:docker");
    assert_eq!(dimg.id, img.id);
    assert_ne!(dimg.manifest_digest, img.manifest_digest);
    assert_eq!(dimg.config, img.config);
    let diff_ids = |i: &berth::image::ImageInfo| {
        i.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(diff_ids(dimg), diff_ids(img));
    assert!(dimg.layers.iter().all(|l| l.digest == l.diff_id));

    // Listing and lookup by the forms people type.
    let list = store.list();
    let refs: Vec<&str> = list.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(refs, ["berth.local/busybox:docker", REFERENCE]);
    assert_eq!(
        store.inspect("berth.local/busybox").unwrap().reference,
        REFERENCE
    );
    assert_eq!(
        store
            .inspect(&format!("berth.local/busybox@{}", img.manifest_digest))
            .unwrap()
            .reference,
        REFERENCE
    );
    assert_eq!(store.inspect(img.id.short()).unwrap().id, img.id);
    assert_eq!(store.inspect(img.id.as_str()).unwrap().id, img.id);
    assert!(store.resolve("busybox").is_none());
    let err = store.inspect("busybox:1.36").unwrap_err().to_string();
    assert_eq!(
        err,
        "image \"busybox:1.36\" not found locally; import it with berth image import FILE"
    );
    assert!(matches!(
        store.inspect("Bad Name"),
        Err(ImageError::InvalidReference { .. })
    ));
    let anon = berth::image::PullAuth::default();
    assert_eq!(store.ensure(REFERENCE, "Never", &anon).unwrap().id, img.id);
    assert_eq!(
        store.ensure(REFERENCE, "IfNotPresent", &anon).unwrap().id,
        img.id
    );
    let never = store.ensure("busybox:1.36", "Never", &anon).unwrap_err();
    assert_eq!(never.waiting_reason(), "ErrImageNeverPull");
    // Nothing listens on port 9 of the loopback: the pull fails without leaving the host.
    let pull = store
        .ensure("127.0.0.1:9/busybox:1.36", "IfNotPresent", &anon)
        .unwrap_err();
    assert_eq!(pull.waiting_reason(), "ErrImagePull");

    // The store survives a reopen.
    drop(store);
    let store = ImageStore::open(&root).expect("reopen store");
    assert_eq!(store.list().len(), 2);

    // Rootfs: the merged view of both layers.
    let ctr = tmp.path().join("containers/c1");
    fs::create_dir_all(&ctr).unwrap();
    let _guard = MountGuard(ctr.clone());
    let rootfs = store.mount_rootfs(img, &ctr).expect("mount rootfs");
    let r = rootfs.path();
    assert!(is_mounted(&r).unwrap());
    assert_eq!(
        fs::read_link(r.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert!(fs::metadata(r.join("bin/busybox")).unwrap().len() > 1_000_000);
    for applet in [
        "sh", "httpd", "nc", "wget", "nslookup", "hostname", "ps", "sleep",
    ] {
        let found = ["bin", "sbin", "usr/bin", "usr/sbin"]
            .iter()
            .any(|d| fs::symlink_metadata(r.join(d).join(applet)).is_ok());
        assert!(found, "applet {applet} missing");
    }
    assert!(
        fs::read_to_string(r.join("etc/passwd"))
            .unwrap()
            .contains("app:x:1000:1000")
    );
    assert!(r.join("var/www/index.html").is_file());
    // Whiteout: the second layer deletes /etc/berth-removed; opaque /opt hides /opt/old.
    assert!(fs::symlink_metadata(r.join("etc/berth-removed")).is_err());
    assert!(fs::symlink_metadata(r.join("opt/old")).is_err());
    assert!(r.join("opt/new").is_file());
    assert!(r.join("etc/berth-release").is_file());
    // Writes land in the container's upper directory, not in the shared layers.
    fs::write(r.join("tmp/hello"), b"hi").unwrap();
    assert_eq!(
        fs::read(rootfs.upper_dir().join("tmp/hello")).unwrap(),
        b"hi"
    );
    for l in &img.layers {
        assert!(!store.layer_dir(&l.diff_id).join("tmp/hello").exists());
    }
    // Mounting again reuses the mount instead of stacking another.
    let again = store.mount_rootfs(img, &ctr).expect("mount again");
    assert_eq!(again, rootfs);
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let target = fs::canonicalize(&r).unwrap();
    assert_eq!(info.matches(&format!(" {} ", target.display())).count(), 1);

    // Untagging one name keeps the shared layers; removing the last is refused while
    // the rootfs is mounted.
    let report = store.remove(REFERENCE).expect("remove one tag");
    assert_eq!(report.untagged, [REFERENCE]);
    // Its manifest and gzip layer blobs go; the unpacked layers stay for the other tag.
    let mut gone: Vec<Digest> = img.layers.iter().map(|l| l.digest.clone()).collect();
    gone.push(img.manifest_digest.clone());
    gone.sort();
    let mut deleted = report.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, gone);
    assert_eq!(entries(&root.join("layers/sha256")).len(), 2);
    let busy = store.remove("berth.local/busybox:docker").unwrap_err();
    assert!(matches!(busy, ImageError::InUse { .. }), "{busy}");
    assert_eq!(store.list().len(), 1);

    rootfs.unmount().expect("unmount");
    assert!(!is_mounted(&r).unwrap());
    assert!(
        !berth::image::unmount_rootfs(&ctr).unwrap(),
        "second unmount finds nothing"
    );

    let report = store.remove(dimg.id.short()).expect("remove by id");
    assert_eq!(report.untagged, ["berth.local/busybox:docker"]);
    assert!(store.list().is_empty());
    assert_store_empty(&root);
    let index: Value =
        serde_json::from_slice(&fs::read(root.join("images.json")).unwrap()).unwrap();
    assert_eq!(index["images"], json!([]));
    remove_rootfs(&ctr).unwrap();
    assert_eq!(entries(&ctr), Vec::<String>::new());
    assert_nothing_mounted(tmp.path());
}

#[test]
fn a_tampered_archive_is_refused_and_leaves_nothing() {
    let tmp = tempdir();
    let root = tmp.path().join("images");
    let store = ImageStore::open(&root).expect("open store");

    // OCI: flip one byte in the middle of the big layer blob.
    let oci = build(tmp.path(), "oci.tar", &[]);
    let mut files = read_tar(&oci);
    let (_, big) = files
        .iter_mut()
        .max_by_key(|(_, d)| d.len())
        .expect("a blob");
    let mid = big.len() / 2;
    big[mid] ^= 0x55;
    let bad = tmp.path().join("bad-oci.tar");
    write_tar(&bad, &files);
    let err = import(&store, &bad, None).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("tampered"), "{err}");
    assert!(store.list().is_empty());
    assert_store_empty(&root);

    // docker save: the layer no longer matches the diff id in the config.
    let docker = build(tmp.path(), "docker.tar", &["--docker"]);
    let mut files = read_tar(&docker);
    let (_, layer) = files
        .iter_mut()
        .filter(|(n, _)| n.ends_with("layer.tar"))
        .max_by_key(|(_, d)| d.len())
        .expect("a layer");
    let mid = layer.len() / 2;
    layer[mid] ^= 0x55;
    let bad = tmp.path().join("bad-docker.tar");
    write_tar(&bad, &files);
    let err = import(&store, &bad, None).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert_store_empty(&root);

    // Not an image archive at all.
    let junk = tmp.path().join("junk.tar");
    write_tar(&junk, &[("hello.txt".to_string(), b"hi".to_vec())]);
    assert!(matches!(
        import(&store, &junk, None),
        Err(ImageError::NotAnImageArchive)
    ));
    assert!(matches!(
        store.import(&b"definitely not a tar file, just text"[..], None),
        Err(ImageError::ArchiveRead { .. } | ImageError::NotAnImageArchive)
    ));
    assert_store_empty(&root);
    assert!(store.list().is_empty());
}

#[test]
fn zstd_layers_and_tag_only_names_import() {
    let tmp = tempdir();
    let root = tmp.path().join("images");
    let store = ImageStore::open(&root).expect("open store");

    // An OCI layout that names the image by tag only needs a repository name.
    let tagged = build(
        tmp.path(),
        "tag-only.tar",
        &["--tag-only", "berth.local/busybox:v1"],
    );
    let err = import(&store, &tagged, None).unwrap_err();
    assert!(matches!(err, ImageError::BareTag { .. }), "{err}");
    assert!(err.to_string().contains("--name"), "{err}");
    assert_store_empty(&root);
    let infos = import(&store, &tagged, Some("berth.local/busybox")).expect("import with name");
    assert_eq!(infos[0].reference, "berth.local/busybox:v1");
    let gzip_diff_ids: Vec<Digest> = infos[0].layers.iter().map(|l| l.diff_id.clone()).collect();

    // Re-pack the layers with zstd, rewriting manifest and index to match.
    let files: BTreeMap<String, Vec<u8>> = read_tar(&tagged).into_iter().collect();
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = |d: &str| files[&format!("blobs/sha256/{}", &d["sha256:".len()..])].clone();
    let mut manifest: Value = serde_json::from_slice(&blob(&mdigest)).unwrap();
    let mut out: Vec<(String, Vec<u8>)> =
        vec![("oci-layout".to_string(), files["oci-layout"].clone())];
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    out.push((
        format!("blobs/sha256/{}", &config_digest[7..]),
        blob(&config_digest),
    ));
    for layer in manifest["layers"].as_array_mut().unwrap() {
        let gz = blob(layer["digest"].as_str().unwrap());
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut tar)
            .unwrap();
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        let d = sha(&zst);
        layer["digest"] = json!(d);
        layer["size"] = json!(zst.len());
        layer["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar+zstd");
        out.push((format!("blobs/sha256/{}", &d[7..]), zst));
    }
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    let md = sha(&mbytes);
    out.push((format!("blobs/sha256/{}", &md[7..]), mbytes.clone()));
    let new_index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": mbytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": "berth.local/busybox:zstd"}}]});
    out.push((
        "index.json".to_string(),
        serde_json::to_vec(&new_index).unwrap(),
    ));
    let zarchive = tmp.path().join("zstd.tar");
    write_tar(&zarchive, &out);

    let z = import(&store, &zarchive, None).expect("import zstd");
    assert_eq!(z[0].reference, "berth.local/busybox:zstd");
    assert!(z[0].layers.iter().all(|l| l.media_type.ends_with("+zstd")));
    let z_diff_ids: Vec<Digest> = z[0].layers.iter().map(|l| l.diff_id.clone()).collect();
    assert_eq!(z_diff_ids, gzip_diff_ids, "same content, same diff ids");
    // The layer snapshots are shared; both images' blobs are kept.
    assert_eq!(entries(&root.join("layers/sha256")).len(), 2);
    assert_eq!(entries(&root.join("blobs/sha256")).len(), 1 + 2 * 3);
    let ctr = tmp.path().join("ctr");
    let _guard = MountGuard(ctr.clone());
    let rootfs = store.mount_rootfs(&z[0], &ctr).expect("mount");
    assert!(rootfs.path().join("bin/busybox").is_file());
    assert!(fs::symlink_metadata(rootfs.path().join("etc/berth-removed")).is_err());
    rootfs.unmount().unwrap();

    // Importing the same archive again changes nothing but the import time.
    let again = import(&store, &zarchive, None).expect("reimport");
    assert_eq!(again[0].id, z[0].id);
    assert_eq!(store.list().len(), 2);

    for r in ["berth.local/busybox:v1", "berth.local/busybox:zstd"] {
        store.remove(r).expect("remove");
    }
    assert_store_empty(&root);
    remove_rootfs(&ctr).unwrap();
    assert_nothing_mounted(tmp.path());
}

#[test]
fn open_clears_what_a_crash_left_behind() {
    let tmp = tempdir();
    let root = tmp.path().join("images");
    drop(ImageStore::open(&root).expect("create store"));
    // What an import killed half-way leaves: staging, a blob and a layer nobody names.
    fs::create_dir_all(root.join("tmp/import-dead/layer-0/etc")).unwrap();
    fs::write(root.join("tmp/import-dead/f0"), b"partial").unwrap();
    let orphan = Digest::of(b"orphan");
    fs::write(root.join("blobs/sha256").join(orphan.hex()), b"orphan").unwrap();
    fs::create_dir_all(root.join("layers/sha256").join(orphan.hex()).join("bin")).unwrap();
    fs::write(root.join("images.json.tmp"), b"{").unwrap();
    let store = ImageStore::open(&root).expect("reopen");
    assert!(store.list().is_empty());
    assert_store_empty(&root);
    // A corrupt index is an error, not an empty store.
    fs::write(root.join("images.json"), b"{ not json").unwrap();
    let err = ImageStore::open(&root).unwrap_err();
    assert!(matches!(err, ImageError::BadJson { .. }), "{err}");
}

#[test]
fn a_multi_platform_index_yields_the_image_for_this_machine() {
    let tmp = tempdir();
    let root = tmp.path().join("images");
    let store = ImageStore::open(&root).expect("open store");
    let oci = build(tmp.path(), "oci.tar", &[]);
    let mut files = read_tar(&oci);
    let index_at = files.iter().position(|(n, _)| n == "index.json").unwrap();
    let index: Value = serde_json::from_slice(&files[index_at].1).unwrap();
    let mut this = index["manifests"][0].clone();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    this["platform"] = json!({"os": "linux", "architecture": arch});
    this.as_object_mut().unwrap().remove("annotations");
    // Another platform whose blobs the archive does not carry (as docker save writes it).
    let other = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": Digest::of(b"elsewhere").to_string(), "size": 9,
        "platform": {"os": "linux", "architecture": "s390x"}});
    let nested = serde_json::to_vec(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [other, this]}))
    .unwrap();
    let nd = sha(&nested);
    files.push((format!("blobs/sha256/{}", &nd[7..]), nested.clone()));
    files[index_at].1 = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": nd, "size": nested.len(),
        "annotations": {"io.containerd.image.name": "docker.io/library/busybox:multi"}}]}))
    .unwrap();
    let multi = tmp.path().join("multi.tar");
    write_tar(&multi, &files);
    let infos = import(&store, &multi, None).expect("import multi-platform");
    assert_eq!(infos[0].reference, "docker.io/library/busybox:multi");
    assert_eq!(infos[0].familiar_reference(), "busybox:multi");
    assert_eq!(store.inspect("busybox:multi").unwrap().layers.len(), 2);
    store.remove("busybox:multi").unwrap();
    assert_store_empty(&root);
}

/// The image API and CLI against a real daemon: import from a file and from stdin, ls,
/// inspect, rm; a broken archive and an unknown reference get clear errors and change
/// nothing.
#[test]
fn the_cli_imports_lists_inspects_and_removes_through_the_daemon() {
    let d = common::TestDaemon::start();
    let oci = build(d.dir.path(), "busybox-oci.tar", &[]);
    let docker = build(
        d.dir.path(),
        "busybox-docker.tar",
        &["--docker", "berth.local/other:1.0"],
    );
    let ok = |o: &std::process::Output| {
        assert!(
            o.status.success(),
            "stdout: {}\nstderr: {}",
            common::stdout(o),
            String::from_utf8_lossy(&o.stderr)
        );
        common::stdout(o)
    };

    let out = ok(&d.cli(&["image", "import", oci.to_str().unwrap()]));
    assert!(
        out.contains("Imported berth.local/busybox:latest ("),
        "{out}"
    );

    // From standard input, as `docker save … | berth image import -`.
    let mut cmd = Command::new(common::berth_bin());
    cmd.args(["image", "import", "-"])
        .env("BERTH_SOCKET", d.socket())
        .stdin(fs::File::open(&docker).unwrap());
    let out = ok(&cmd.output().unwrap());
    assert!(out.contains("Imported berth.local/other:1.0 ("), "{out}");

    let out = ok(&d.cli(&["image", "ls"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("IMAGE"), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("berth.local/busybox ") && l.contains(" latest ")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("berth.local/other ") && l.contains(" 1.0 ")),
        "{out}"
    );

    let out = ok(&d.cli(&[
        "image",
        "inspect",
        "berth.local/busybox:latest",
        "-o",
        "json",
    ]));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "Image");
    assert_eq!(v["metadata"]["name"], "berth.local/busybox:latest");
    assert!(v["spec"]["id"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(v["spec"]["layers"].as_array().unwrap().len(), 2);
    assert!(v["spec"]["config"].is_object(), "{v}");

    // A broken archive: a clear error, nothing changes.
    let junk = d.write("junk.tar", "this is not a tar archive at all");
    let o = d.cli(&["image", "import", junk.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        !String::from_utf8_lossy(&o.stderr).trim().is_empty(),
        "an error is printed"
    );
    assert_eq!(
        ok(&d.cli(&["image", "ls", "-o", "name"])).lines().count(),
        2
    );

    let out = ok(&d.cli(&["image", "rm", "berth.local/other:1.0"]));
    assert!(out.contains("Untagged: berth.local/other:1.0"), "{out}");
    let o = d.cli(&["image", "rm", "berth.local/other:1.0"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not found locally"), "{err}");
    let out = ok(&d.cli(&["image", "ls", "-o", "name"]));
    assert_eq!(out.trim(), "image/berth.local/busybox:latest");
}
