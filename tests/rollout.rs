//! `berth rollout`, `berth scale` and `berth set image` against a real daemon with real
//! pods: a rollout that stalls fails `rollout status` at its progress deadline and `rollout
//! undo` brings the old template back (as revision 3); scale, set image, restart and
//! pause/resume do what kubectl's do; bad input fails clearly and changes nothing.

mod common;

use common::{TestDaemon, eventually, ok, stderr, stdout};
use serde_json::Value;

fn manifest(image: &str, replicas: u32, extra_spec: &str, annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations: {{{annotations}}}
spec:
  replicas: {replicas}
{extra_spec}  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {{name: main, image: '{image}', imagePullPolicy: Never, command: [sh, -c, 'sleep 3600']}}
"
    )
}

fn apply(d: &TestDaemon, name: &str, text: &str) {
    let f = d.write(name, text);
    ok(&d.cli(&["apply", "-f", f.to_str().expect("utf-8 path")]));
}

fn json(d: &TestDaemon, args: &[&str]) -> Value {
    let o = d.cli(args);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

fn deployment(d: &TestDaemon) -> Value {
    json(d, &["get", "deploy", "web", "-o", "json"])
}

fn replica_sets(d: &TestDaemon) -> Vec<Value> {
    json(d, &["get", "rs", "-o", "json"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Live (not terminating) pods of the Deployment.
fn live_pods(d: &TestDaemon) -> Vec<Value> {
    json(d, &["get", "pods", "-l", "app=web", "-o", "json"])["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn running_pods(d: &TestDaemon) -> Vec<Value> {
    live_pods(d)
        .into_iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .collect()
}

fn image_of(obj: &Value) -> String {
    obj["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn progressing(deploy: &Value) -> Value {
    deploy["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Progressing").cloned())
        .unwrap_or_default()
}

/// `rollout status` until done (bounded, so a broken controller fails the test instead of
/// hanging it).
fn rolled_out(d: &TestDaemon) -> String {
    let out = ok(&d.cli(&["rollout", "status", "deployment/web", "--timeout=240s"]));
    assert!(
        out.ends_with("deployment \"web\" successfully rolled out\n"),
        "{out}"
    );
    out
}

#[test]
fn a_stalled_rollout_fails_its_deadline_and_undo_brings_revision_one_back() {
    let d = TestDaemon::start();
    d.import_busybox();
    apply(
        &d,
        "v1.yaml",
        &manifest("berth.local/busybox:latest", 3, "", ""),
    );
    rolled_out(&d);
    let first = deployment(&d);

    // Revision 2 can never start: the image is not there and may not be pulled.
    apply(
        &d,
        "v2.yaml",
        &manifest(
            "berth.local/busybox:nope",
            3,
            "  progressDeadlineSeconds: 10\n",
            "kubernetes.io/change-cause: bad image",
        ),
    );
    let o = d.cli(&["rollout", "status", "deployment/web", "--timeout=240s"]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("error: deployment \"web\" exceeded its progress deadline"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("Waiting for deployment \"web\" rollout to finish: "),
        "{}",
        stdout(&o)
    );
    let stalled = deployment(&d);
    let cond = progressing(&stalled);
    assert_eq!(cond["status"], "False", "{stalled}");
    assert_eq!(cond["reason"], "ProgressDeadlineExceeded", "{stalled}");
    // The old pods kept serving: maxUnavailable rounds down to 0 for 3 replicas.
    assert_eq!(stalled["status"]["availableReplicas"], 3, "{stalled}");

    assert_eq!(
        ok(&d.cli(&["rollout", "history", "deployment/web"])),
        "deployment.apps/web\nREVISION  CHANGE-CAUSE\n1         <none>\n2         bad image\n\n"
    );
    let two = ok(&d.cli(&["rollout", "history", "deployment", "web", "--revision=2"]));
    assert!(
        two.starts_with("deployment.apps/web with revision #2\nPod Template:\n"),
        "{two}"
    );
    assert!(two.contains("berth.local/busybox:nope"), "{two}");
    assert!(
        two.contains("kubernetes.io/change-cause: bad image"),
        "{two}"
    );
    let o = d.cli(&["rollout", "history", "deployment/web", "--revision=9"]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o),
        "error: unable to find specified revision 9 in history\n"
    );

    // A revision that does not exist changes nothing.
    let o = d.cli(&["rollout", "undo", "deployment/web", "--to-revision=7"]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o),
        "error: unable to find specified revision 7 in history\n"
    );
    assert_eq!(
        deployment(&d)["metadata"]["generation"],
        stalled["metadata"]["generation"]
    );

    assert_eq!(
        ok(&d.cli(&["rollout", "undo", "deployment/web"])),
        "deployment.apps/web rolled back\n"
    );
    rolled_out(&d);
    let back = eventually(120, "revision 3 on the deployment", || {
        let v = deployment(&d);
        (v["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3").then_some(v)
    });
    assert_eq!(image_of(&back), "berth.local/busybox:latest");
    assert_eq!(back["spec"]["template"], first["spec"]["template"]);
    assert!(
        back["metadata"]["annotations"]
            .get("kubernetes.io/change-cause")
            .is_none(),
        "revision 1 had no change cause: {back}"
    );
    assert_eq!(progressing(&back)["reason"], "NewReplicaSetAvailable");
    // Kubernetes renumbers the restored ReplicaSet: revision 1 is now 3, no new one appeared.
    assert_eq!(replica_sets(&d).len(), 2);
    assert_eq!(
        ok(&d.cli(&["rollout", "history", "deployment/web"])),
        "deployment.apps/web\nREVISION  CHANGE-CAUSE\n2         bad image\n3         <none>\n\n"
    );
    let pods = eventually(120, "three pods of revision 3", || {
        let pods = live_pods(&d);
        (pods.len() == 3
            && pods.iter().all(|p| {
                p["spec"]["containers"][0]["image"] == "berth.local/busybox:latest"
                    && p["status"]["phase"] == "Running"
            }))
        .then_some(pods)
    });
    assert_eq!(pods.len(), 3);
    // Undoing to the template the Deployment already has is skipped, not an error.
    assert_eq!(
        ok(&d.cli(&["rollout", "undo", "deployment/web", "--to-revision=3"])),
        "deployment.apps/web skipped rollback (current template already matches revision 3)\n"
    );
}

#[test]
fn scale_set_image_restart_and_pause_resume() {
    let d = TestDaemon::start();
    d.import_busybox();
    // A second tag of the test image, so that set image has somewhere real to go.
    let archive = d.dir.path().join("busybox-v2.tar");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build-busybox.sh");
    let status = std::process::Command::new(script)
        .arg(&archive)
        .arg("berth.local/busybox:v2")
        .status()
        .expect("build-busybox.sh runs");
    assert!(status.success());
    ok(&d.cli(&["image", "import", archive.to_str().expect("utf-8 path")]));
    apply(
        &d,
        "web.yaml",
        &manifest("berth.local/busybox:latest", 3, "", ""),
    );
    rolled_out(&d);

    // Scale 3 → 10 → 0 → 3, through the scale subresource.
    assert_eq!(
        ok(&d.cli(&["scale", "deployment/web", "--replicas=10"])),
        "deployment.apps/web scaled\n"
    );
    eventually(240, "ten running pods", || {
        (running_pods(&d).len() == 10).then_some(())
    });
    rolled_out(&d);
    assert_eq!(
        ok(&d.cli(&["scale", "deployment", "web", "--replicas", "0"])),
        "deployment.apps/web scaled\n"
    );
    eventually(240, "no pods", || {
        json(&d, &["get", "pods", "-l", "app=web", "-o", "json"])["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
    let o = d.cli(&[
        "scale",
        "deploy/web",
        "--replicas=3",
        "--current-replicas=5",
    ]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o), "error: Expected replicas to be 5, was 0\n");
    assert_eq!(deployment(&d)["spec"]["replicas"], 0);
    ok(&d.cli(&[
        "scale",
        "deploy/web",
        "--replicas=3",
        "--current-replicas=0",
    ]));
    rolled_out(&d);
    assert_eq!(running_pods(&d).len(), 3);
    assert_eq!(replica_sets(&d).len(), 1, "scaling is not a new revision");

    // set image: a new revision whose pods run the new image.
    assert_eq!(
        ok(&d.cli(&[
            "set",
            "image",
            "deployment/web",
            "main=berth.local/busybox:v2"
        ])),
        "deployment.apps/web image updated\n"
    );
    rolled_out(&d);
    let v = deployment(&d);
    assert_eq!(image_of(&v), "berth.local/busybox:v2");
    assert_eq!(
        v["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    eventually(120, "three pods on the new image", || {
        let pods = running_pods(&d);
        (pods.len() == 3
            && live_pods(&d).len() == 3
            && pods
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "berth.local/busybox:v2"))
        .then_some(())
    });
    // The same image again changes nothing and, like kubectl, says nothing.
    assert_eq!(
        ok(&d.cli(&[
            "set",
            "image",
            "deployment/web",
            "main=berth.local/busybox:v2"
        ])),
        ""
    );

    // restart: a new ReplicaSet with the restartedAt annotation on its template.
    let before: Vec<String> = live_pods(&d)
        .iter()
        .map(|p| {
            p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        ok(&d.cli(&["rollout", "restart", "deployment/web"])),
        "deployment.apps/web restarted\n"
    );
    let v = deployment(&d);
    let at = v["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        at.parse::<jiff::Timestamp>().is_ok(),
        "restartedAt {at:?} is not RFC 3339: {v}"
    );
    rolled_out(&d);
    assert_eq!(replica_sets(&d).len(), 3);
    eventually(120, "every pod replaced", || {
        let pods = live_pods(&d);
        (pods.len() == 3
            && pods
                .iter()
                .all(|p| !before.iter().any(|b| p["metadata"]["name"] == b.as_str())))
        .then_some(())
    });

    // pause: a template change waits; resume lets it roll out.
    assert_eq!(
        ok(&d.cli(&["rollout", "pause", "deployment/web"])),
        "deployment.apps/web paused\n"
    );
    let o = d.cli(&["rollout", "pause", "deployment/web"]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o),
        "error: deployments.apps \"web\" is already paused\n"
    );
    ok(&d.cli(&[
        "set",
        "image",
        "deployment/web",
        "main=berth.local/busybox:latest",
    ]));
    let generation = deployment(&d)["metadata"]["generation"].clone();
    eventually(60, "the paused change observed", || {
        let v = deployment(&d);
        (v["status"]["observedGeneration"] == generation
            && progressing(&v)["reason"] == "DeploymentPaused")
            .then_some(())
    });
    assert_eq!(replica_sets(&d).len(), 3, "no new ReplicaSet while paused");
    assert!(
        live_pods(&d)
            .iter()
            .all(|p| p["spec"]["containers"][0]["image"] == "berth.local/busybox:v2")
    );
    assert_eq!(
        ok(&d.cli(&["rollout", "status", "deployment/web", "--watch=false"])),
        "Waiting for deployment \"web\" rollout to finish: 0 out of 3 new replicas have been updated...\n"
    );
    for (args, message) in [
        (
            &["rollout", "restart", "deployment/web"][..],
            "error: deployments.apps \"web\" can't restart paused deployment (run rollout resume first)\n",
        ),
        (
            &["rollout", "undo", "deployment/web"][..],
            "error: you cannot rollback a paused deployment; resume it first with 'berth rollout resume deployment/web' and try again\n",
        ),
    ] {
        let o = d.cli(args);
        assert!(!o.status.success(), "{args:?}");
        assert_eq!(stderr(&o), message);
    }
    assert_eq!(
        ok(&d.cli(&["rollout", "resume", "deployment/web"])),
        "deployment.apps/web resumed\n"
    );
    let o = d.cli(&["rollout", "resume", "deployment/web"]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o),
        "error: deployments.apps \"web\" is not paused\n"
    );
    rolled_out(&d);
    let v = deployment(&d);
    assert_eq!(
        v["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "4"
    );
    assert_eq!(replica_sets(&d).len(), 4);
    let history = ok(&d.cli(&["rollout", "history", "deployment/web"]));
    assert_eq!(
        history,
        "deployment.apps/web\nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n3         <none>\n4         <none>\n\n"
    );
    eventually(120, "three pods back on the first image", || {
        let pods = live_pods(&d);
        (pods.len() == 3
            && pods
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "berth.local/busybox:latest"))
        .then_some(())
    });
}

#[test]
fn bad_input_fails_clearly_and_changes_nothing() {
    let d = TestDaemon::start();
    // No replicas: nothing here needs a container.
    apply(
        &d,
        "web.yaml",
        &manifest("berth.local/busybox:latest", 0, "", ""),
    );
    let before = eventually(30, "the deployment observed", || {
        let v = deployment(&d);
        (v["status"]["observedGeneration"] == v["metadata"]["generation"]).then_some(v)
    });
    let fails = |args: &[&str], wanted: &str| {
        let o = d.cli(args);
        assert!(!o.status.success(), "{args:?} succeeded: {}", stdout(&o));
        assert!(
            stderr(&o).contains(wanted),
            "{args:?}: {:?} does not contain {wanted:?}",
            stderr(&o)
        );
        assert_eq!(stdout(&o), "", "{args:?}");
    };
    fails(
        &["scale", "deployment/nope", "--replicas=2"],
        "error: deployments.apps \"nope\" not found",
    );
    fails(
        &["scale", "deployment/web", "--replicas=-1"],
        "error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0",
    );
    fails(&["scale", "deployment/web", "--replicas=abc"], "--replicas");
    fails(&["scale", "deployment/web"], "--replicas");
    fails(
        &["scale", "pod/web", "--replicas=1"],
        "error: cannot scale pods",
    );
    fails(
        &["scale", "gizmo/web", "--replicas=1"],
        "the server doesn't have a resource type \"gizmo\"",
    );
    fails(
        &["set", "image", "deployment/web", "nope=busybox"],
        "error: unable to find container named \"nope\"",
    );
    fails(
        &[
            "set",
            "image",
            "deployment/web",
            "main=other",
            "nope=busybox",
        ],
        "error: unable to find container named \"nope\"",
    );
    fails(
        &["set", "image", "deployment/web"],
        "image update is required",
    );
    fails(
        &["set", "image", "deployment/nope", "main=busybox"],
        "error: deployments.apps \"nope\" not found",
    );
    for verb in ["status", "history", "undo", "restart", "pause", "resume"] {
        fails(
            &["rollout", verb, "deployment/nope"],
            "error: deployments.apps \"nope\" not found",
        );
        fails(
            &["rollout", verb, "pod/web"],
            &if matches!(verb, "status" | "history" | "undo") {
                format!("error: rollout {verb} supports deployments and statefulsets, not pods")
            } else {
                format!("error: rollout {verb} supports deployments only, not pods")
            },
        );
    }
    fails(
        &["rollout", "status", "deployment/web", "--timeout=soon"],
        "invalid duration \"soon\"",
    );
    fails(
        &["rollout", "undo", "deployment/web"],
        "error: no rollout history found for deployment \"web\"",
    );
    fails(
        &["rollout", "status", "deployment/web", "--revision=5"],
        "error: desired revision (5) is different from the running revision (1)",
    );
    let after = deployment(&d);
    assert_eq!(after["spec"], before["spec"]);
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    assert_eq!(
        ok(&d.cli(&["rollout", "status", "deployment/web"])),
        "deployment \"web\" successfully rolled out\n"
    );
}

#[test]
fn completions_and_man_pages_know_the_new_commands() {
    let dir = tempfile::Builder::new()
        .prefix(common::TMP_PREFIX)
        .tempdir()
        .expect("tempdir");
    let o = std::process::Command::new(common::berth_bin())
        .args(["completion", "bash"])
        .output()
        .expect("completion");
    let script = stdout(&o);
    for word in [
        "rollout",
        "scale",
        "set",
        "undo",
        "--to-revision",
        "--current-replicas",
    ] {
        assert!(
            script.contains(word),
            "{word} missing from the bash completion"
        );
    }
    let o = std::process::Command::new(common::berth_bin())
        .arg("generate-man")
        .arg(dir.path())
        .output()
        .expect("generate-man");
    assert!(o.status.success(), "{}", stderr(&o));
    for page in [
        "berth-scale.1",
        "berth-rollout.1",
        "berth-rollout-status.1",
        "berth-rollout-undo.1",
        "berth-set-image.1",
    ] {
        assert!(dir.path().join(page).exists(), "{page} not written");
    }
}
