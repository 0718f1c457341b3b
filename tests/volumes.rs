//! Pod volumes for real (root): configMap, secret (on tmpfs), downwardAPI, hostPath,
//! subPath and readOnly with busybox pods, read through `berth exec`.

mod common;

use std::time::Duration;

use common::{TestDaemon, eventually, ok, stdout};

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

fn exec(d: &TestDaemon, pod: &str, cmd: &str) -> std::process::Output {
    d.cli(&["exec", pod, "--", "sh", "-c", cmd])
}

fn running(d: &TestDaemon, name: &str) -> String {
    let p = eventually(90, &format!("pod {name} running"), || {
        d.get_json(&["pod", name]).filter(|p| {
            std::thread::sleep(Duration::from_millis(200));
            p["status"]["phase"] == "Running"
        })
    });
    p["metadata"]["uid"].as_str().expect("uid").to_string()
}

/// Mount points below `dir` in the host's mount table.
fn mounts_below(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(dir.to_str().expect("utf-8")))
        .map(str::to_string)
        .collect()
}

#[test]
fn config_map_secret_downward_host_path_and_sub_path_volumes() {
    let d = daemon();
    let host_dir = d.dir.path().join("host/made");
    d.apply_yaml(
        "objects",
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  a: alpha
  b: beta
---
apiVersion: v1
kind: Secret
metadata:
  name: sec
data:
  password: aHVudGVyMg==
",
    );
    d.apply_yaml(
        "pod",
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: vol
  labels:
    app: vol
    tier: test
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
    volumeMounts:
    - {{name: cfg, mountPath: /etc/cfg}}
    - {{name: sec, mountPath: /var/secret, readOnly: true}}
    - {{name: info, mountPath: /etc/info}}
    - {{name: opt, mountPath: /etc/opt}}
    - {{name: scratch, mountPath: /data, subPath: sub/dir}}
    - {{name: host, mountPath: /host}}
    - {{name: cfg, mountPath: /etc/b-only, subPath: b}}
  volumes:
  - name: cfg
    configMap:
      name: cfg
      defaultMode: 416  # 0640 (berth's YAML reads 0640 as a string)
      items:
      - {{key: a, path: dir/a.txt, mode: 384}}
      - {{key: b, path: b}}
  - name: sec
    secret:
      secretName: sec
  - name: info
    downwardAPI:
      items:
      - path: labels
        fieldRef: {{fieldPath: metadata.labels}}
      - path: name
        fieldRef: {{fieldPath: metadata.name}}
  - name: opt
    configMap:
      name: absent
      optional: true
  - name: scratch
    emptyDir: {{}}
  - name: host
    hostPath:
      path: {}
      type: DirectoryOrCreate
",
            host_dir.display()
        ),
    );
    let uid = running(&d, "vol");
    let pod_dir = d.state_dir().join("pods").join(&uid);

    // configMap: items, per-item mode and defaultMode, atomic layout.
    assert_eq!(ok(&exec(&d, "vol", "cat /etc/cfg/dir/a.txt")), "alpha");
    assert_eq!(
        ok(&exec(&d, "vol", "stat -L -c %a /etc/cfg/dir/a.txt")).trim(),
        "600"
    );
    assert_eq!(
        ok(&exec(&d, "vol", "stat -L -c %a /etc/cfg/b")).trim(),
        "640"
    );
    assert_eq!(
        ok(&exec(&d, "vol", "readlink /etc/cfg/b")).trim(),
        "..data/b"
    );
    // subPath of a configMap key: a file mount.
    assert_eq!(ok(&exec(&d, "vol", "cat /etc/b-only")), "beta");

    // secret: content, read-only, on tmpfs.
    assert_eq!(ok(&exec(&d, "vol", "cat /var/secret/password")), "hunter2");
    let line = ok(&exec(&d, "vol", "grep ' /var/secret ' /proc/mounts"));
    assert!(line.contains("tmpfs") && line.contains(" ro"), "{line}");
    assert!(!exec(&d, "vol", "touch /var/secret/x").status.success());

    // downwardAPI labels and name.
    let labels = ok(&exec(&d, "vol", "cat /etc/info/labels"));
    assert_eq!(labels, "app=\"vol\"\ntier=\"test\"");
    assert_eq!(ok(&exec(&d, "vol", "cat /etc/info/name")), "vol");

    // optional missing configMap: an empty volume.
    assert_eq!(
        ok(&exec(
            &d,
            "vol",
            "ls -A /etc/opt | grep -v '^\\.\\.' | wc -l"
        ))
        .trim(),
        "0"
    );

    // subPath of an emptyDir: made when missing, the container sees only it.
    ok(&exec(&d, "vol", "echo x > /data/f"));
    assert!(pod_dir.join("volumes/scratch/sub/dir/f").is_file());

    // hostPath DirectoryOrCreate: made on the host, shared with the container.
    assert!(host_dir.is_dir());
    ok(&exec(&d, "vol", "echo from-pod > /host/out"));
    assert_eq!(
        std::fs::read_to_string(host_dir.join("out")).expect("host file"),
        "from-pod\n"
    );

    // An edited ConfigMap reaches the running pod.
    d.apply_yaml(
        "cfg2",
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  a: changed
  b: beta
",
    );
    eventually(90, "the edited ConfigMap in the pod", || {
        std::thread::sleep(Duration::from_millis(500));
        (stdout(&exec(&d, "vol", "cat /etc/cfg/dir/a.txt")) == "changed").then_some(())
    });

    // Deleting the pod leaves no files and no mounts.
    ok(&d.cli(&["delete", "pod", "vol"]));
    eventually(90, "the pod gone", || {
        std::thread::sleep(Duration::from_millis(200));
        d.get_json(&["pod", "vol"]).is_none().then_some(())
    });
    eventually(30, "the pod directory removed", || {
        std::thread::sleep(Duration::from_millis(200));
        (!pod_dir.exists()).then_some(())
    });
    assert_eq!(mounts_below(&pod_dir), Vec::<String>::new());
}

#[test]
fn missing_config_map_waits_and_host_path_type_is_checked() {
    let d = daemon();
    let missing = d.dir.path().join("no-such-file");
    // A volume with a symlink leading out of it.
    let esc = d.dir.path().join("esc");
    std::fs::create_dir_all(&esc).expect("mkdir");
    std::os::unix::fs::symlink("/etc", esc.join("out")).expect("symlink");
    // `..` in a subPath is refused by the API already.
    let bad = d.write(
        "bad.yaml",
        "apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  containers:
  - {name: main, image: berth.local/busybox:latest, volumeMounts: [{name: e, mountPath: /e, subPath: ../x}]}
  volumes: [{name: e, emptyDir: {}}]
",
    );
    let o = d.cli(&["apply", "-f", bad.to_str().expect("utf-8")]);
    assert!(!o.status.success());
    assert!(
        common::stderr(&o).contains("must not contain '..'"),
        "{}",
        common::stderr(&o)
    );
    d.apply_yaml(
        "pods",
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: late
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
    volumeMounts:
    - {{name: cfg, mountPath: /etc/cfg}}
  volumes:
  - name: cfg
    configMap:
      name: late-cfg
---
apiVersion: v1
kind: Pod
metadata:
  name: hostfile
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
    volumeMounts:
    - {{name: f, mountPath: /f, readOnly: true}}
  volumes:
  - name: f
    hostPath:
      path: {}
      type: File
---
apiVersion: v1
kind: Pod
metadata:
  name: escape
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
    volumeMounts:
    - {{name: e, mountPath: /e, subPath: out}}
  volumes:
  - {{name: e, hostPath: {{path: {}}}}}
",
            missing.display(),
            esc.display()
        ),
    );
    let events = eventually(60, "the FailedMount event of the missing ConfigMap", || {
        std::thread::sleep(Duration::from_millis(200));
        let out = ok(&d.cli(&["events", "--for", "pod/late"]));
        out.contains("FailedMount").then_some(out)
    });
    assert!(
        events.contains(
            "MountVolume.SetUp failed for volume \"cfg\" : configmap \"late-cfg\" not found"
        ),
        "{events}"
    );
    let p = d.get_json(&["pod", "late"]).expect("pod");
    assert_eq!(p["status"]["phase"], "Pending", "{p}");
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating",
        "{p}"
    );

    let events = eventually(60, "the FailedMount event of the hostPath", || {
        std::thread::sleep(Duration::from_millis(200));
        let out = ok(&d.cli(&["events", "--for", "pod/hostfile"]));
        out.contains("FailedMount").then_some(out)
    });
    let want = format!(
        "MountVolume.SetUp failed for volume \"f\" : hostPath type check failed: {} is not a file",
        missing.display()
    );
    assert!(events.contains(&want), "{events}");
    assert!(!missing.exists());

    // A subPath leaving its volume through a symlink is refused.
    let p = eventually(60, "the subPath escape refused", || {
        std::thread::sleep(Duration::from_millis(200));
        d.get_json(&["pod", "escape"]).filter(|p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                == "CreateContainerConfigError"
        })
    });
    let msg = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"].to_string();
    assert!(msg.contains("invalid subPath"), "{p}");

    // The ConfigMap appears: the pod starts with it.
    d.apply_yaml(
        "cm",
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: late-cfg
data:
  k: here
",
    );
    running(&d, "late");
    assert_eq!(ok(&exec(&d, "late", "cat /etc/cfg/k")), "here");

    // A file now: the hostPath pod starts, and its readOnly mount refuses writes.
    std::fs::write(&missing, "host file").expect("write");
    running(&d, "hostfile");
    assert_eq!(ok(&exec(&d, "hostfile", "cat /f")), "host file");
    assert!(!exec(&d, "hostfile", "echo x > /f").status.success());
    assert_eq!(
        std::fs::read_to_string(&missing).expect("read"),
        "host file"
    );
}

#[test]
fn empty_dir_on_disk_in_memory_and_evicted_over_its_size_limit() {
    let d = daemon();
    d.apply_yaml(
        "pod",
        "apiVersion: v1
kind: Pod
metadata:
  name: scratch
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
    volumeMounts:
    - {name: cache, mountPath: /cache}
    - {name: mem, mountPath: /mem}
    - {name: limited, mountPath: /limited}
  volumes:
  - {name: cache, emptyDir: {}}
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 1Mi}}
  - {name: limited, emptyDir: {sizeLimit: 1Mi}}
",
    );
    let uid = running(&d, "scratch");
    let pod_dir = d.state_dir().join("pods").join(&uid);

    // On disk, world-writable as in Kubernetes, kept on the host in the pod's directory.
    assert_eq!(ok(&exec(&d, "scratch", "stat -c %a /cache")).trim(), "777");
    ok(&exec(&d, "scratch", "echo kept > /cache/f"));
    assert_eq!(
        std::fs::read_to_string(pod_dir.join("volumes/cache/f")).expect("host file"),
        "kept\n"
    );
    // Memory: a tmpfs of sizeLimit; writing past it fails with no space left.
    let mounts = ok(&exec(&d, "scratch", "grep ' /mem ' /proc/mounts"));
    assert!(mounts.starts_with("tmpfs /mem tmpfs"), "{mounts}");
    assert!(mounts.contains("size=1024k"), "{mounts}");
    let full = exec(
        &d,
        "scratch",
        "dd if=/dev/zero of=/mem/big bs=1024 count=2048",
    );
    assert!(!full.status.success(), "2 MiB fitted into a 1 MiB tmpfs");
    assert!(
        String::from_utf8_lossy(&full.stderr).contains("No space left"),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
    assert_eq!(
        d.get_json(&["pod", "scratch"]).expect("pod")["status"]["phase"],
        "Running"
    );

    // On disk past sizeLimit: the kubelet evicts the pod, as Kubernetes does.
    ok(&exec(
        &d,
        "scratch",
        "dd if=/dev/zero of=/limited/big bs=1024 count=3072",
    ));
    let pod = eventually(90, "the pod evicted", || {
        std::thread::sleep(Duration::from_millis(500));
        d.get_json(&["pod", "scratch"])
            .filter(|p| p["status"]["phase"] == "Failed")
    });
    assert_eq!(pod["status"]["reason"], "Evicted");
    assert_eq!(
        pod["status"]["message"],
        "Usage of EmptyDir volume \"limited\" exceeds the limit \"1Mi\". "
    );
    let conditions = pod["status"]["conditions"].as_array().expect("conditions");
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "DisruptionTarget" && c["reason"] == "TerminationByKubelet"),
        "{conditions:?}"
    );
    let state = &pod["status"]["containerStatuses"][0]["state"];
    assert!(state.get("terminated").is_some(), "{state}");
    let events = stdout(&d.cli(&["get", "events"]));
    assert!(
        events.contains("Evicted") && events.contains("Usage of EmptyDir volume \"limited\""),
        "{events}"
    );
    // It stays evicted: nothing restarts it.
    std::thread::sleep(Duration::from_secs(3));
    let again = d.get_json(&["pod", "scratch"]).expect("pod");
    assert_eq!(again["status"]["phase"], "Failed");
    assert!(
        again["status"]["containerStatuses"][0]["state"]
            .get("running")
            .is_none()
    );

    ok(&d.cli(&["delete", "pod", "scratch"]));
    eventually(60, "the pod directory removed", || {
        std::thread::sleep(Duration::from_millis(200));
        (!pod_dir.exists()).then_some(())
    });
    assert_eq!(mounts_below(&pod_dir), Vec::<String>::new());
}
