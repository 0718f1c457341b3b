//! The StatefulSet controller with real pods (root): ordered start behind readiness, stable
//! names, ordered scale-down, RollingUpdate with a partition, OnDelete, a deleted pod
//! recreated under its name, and stable DNS names through the headless Service.

mod common;

use common::{TestDaemon, eventually, ok, stdout};
use serde_json::Value;

/// A StatefulSet `web` of `replicas` busybox pods that become Ready only once
/// `/tmp/ready` exists in them; `version` is an env var, so changing it is a new revision.
fn web(replicas: u32, version: &str, strategy: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: web}}
spec:
  serviceName: nginx
  replicas: {replicas}
  selector: {{matchLabels: {{app: sts-test}}}}
  updateStrategy: {strategy}
  template:
    metadata: {{labels: {{app: sts-test}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: berth.local/busybox:latest
        imagePullPolicy: Never
        command: [sleep, '3600']
        env: [{{name: VERSION, value: '{version}'}}]
        readinessProbe:
          exec: {{command: [test, -e, /tmp/ready]}}
          periodSeconds: 1
"
    )
}

fn pods(d: &TestDaemon) -> Vec<Value> {
    d.get_json(&["pods", "-l", "app=sts-test"])
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
}

fn pod<'a>(pods: &'a [Value], name: &str) -> Option<&'a Value> {
    pods.iter().find(|p| p["metadata"]["name"] == name)
}

fn is_ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn running(p: &Value) -> bool {
    p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
}

/// Makes every running pod of the set Ready.
fn make_ready(d: &TestDaemon) {
    for p in pods(d).iter().filter(|p| running(p) && !is_ready(p)) {
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        let _ = d.cli(&["exec", name, "--", "touch", "/tmp/ready"]);
    }
}

fn revision(p: &Value) -> String {
    p["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn sts(d: &TestDaemon) -> Value {
    d.get_json(&["sts", "web"]).unwrap_or_default()
}

/// Waits until `want` pods run Ready, making new ones ready as they come.
fn all_ready(d: &TestDaemon, want: usize) -> Vec<Value> {
    eventually(120, &format!("{want} ready pods"), || {
        make_ready(d);
        let p = pods(d);
        (p.len() == want && p.iter().all(|p| running(p) && is_ready(p))).then_some(p)
    })
}

#[test]
fn a_statefulset_starts_in_order_scales_down_in_reverse_and_rolls_by_partition() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.apply_yaml("web", &web(3, "1", "{type: RollingUpdate}"));

    // Ordered start: web-0 comes up alone; web-1 is not created while web-0 is not Ready.
    let p = eventually(60, "web-0 running", || {
        let p = pods(&d);
        pod(&p, "web-0").filter(|p| running(p)).cloned()
    });
    assert_eq!(p["spec"]["hostname"], "web-0");
    assert_eq!(p["spec"]["subdomain"], "nginx");
    assert_eq!(
        p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
        "web-0"
    );
    assert_eq!(p["metadata"]["labels"]["apps.kubernetes.io/pod-index"], "0");
    assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
    assert!(!revision(&p).is_empty());
    for _ in 0..3 {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let p = pods(&d);
        assert_eq!(p.len(), 1, "web-1 created before web-0 was Ready: {p:?}");
        assert!(!is_ready(&p[0]));
    }
    // Each pod is made Ready in turn; the next is created only after it.
    for (ready, next) in [("web-0", "web-1"), ("web-1", "web-2")] {
        ok(&d.cli(&["exec", ready, "--", "touch", "/tmp/ready"]));
        let p = eventually(60, &format!("{next} running"), || {
            let p = pods(&d);
            pod(&p, next).filter(|p| running(p)).map(|_| p.clone())
        });
        let ready_pod = pod(&p, ready).expect("the ready pod");
        assert!(
            is_ready(ready_pod),
            "{next} created before {ready} was Ready"
        );
    }
    let all = all_ready(&d, 3);
    let rev1 = revision(&all[0]);
    assert!(all.iter().all(|p| revision(p) == rev1));
    let s = eventually(60, "status counts", || {
        let s = sts(&d);
        (s["status"]["readyReplicas"] == 3 && s["status"]["currentRevision"] == rev1.as_str())
            .then_some(s)
    });
    assert_eq!(s["status"]["updateRevision"], rev1.as_str());
    assert_eq!(s["status"]["replicas"], 3);
    assert_eq!(s["status"]["currentReplicas"], 3);
    assert_eq!(s["status"]["updatedReplicas"], 3);
    let events = stdout(&d.cli(&["events", "--for", "statefulset/web"]));
    assert!(
        events.contains("create Pod web-1 in StatefulSet web successful"),
        "{events}"
    );
    let revs = d.get_json(&["controllerrevisions"]).expect("revisions");
    assert_eq!(revs["items"].as_array().map(Vec::len), Some(1), "{revs}");
    assert_eq!(revs["items"][0]["metadata"]["name"], rev1.as_str());

    // A deleted pod is recreated under its own name.
    let uid1 = pod(&all, "web-1").expect("web-1")["metadata"]["uid"].clone();
    ok(&d.cli(&["delete", "pod", "web-1"]));
    eventually(60, "web-1 recreated", || {
        make_ready(&d);
        let p = pods(&d);
        pod(&p, "web-1")
            .filter(|p| running(p) && p["metadata"]["uid"] != uid1)
            .map(|_| ())
    });
    all_ready(&d, 3);

    // Rolling update with partition 2: only web-2 moves to the new revision.
    d.apply_yaml(
        "web",
        &web(
            3,
            "2",
            "{type: RollingUpdate, rollingUpdate: {partition: 2}}",
        ),
    );
    let rev2 = eventually(60, "a new update revision", || {
        let s = sts(&d);
        let u = s["status"]["updateRevision"].as_str()?.to_string();
        (u != rev1).then_some(u)
    });
    eventually(120, "web-2 on the new revision", || {
        make_ready(&d);
        let p = pods(&d);
        let ok = p.len() == 3
            && p.iter().all(|p| running(p) && is_ready(p))
            && revision(pod(&p, "web-2")?) == rev2;
        ok.then_some(())
    });
    let p = pods(&d);
    assert_eq!(revision(pod(&p, "web-0").expect("web-0")), rev1);
    assert_eq!(revision(pod(&p, "web-1").expect("web-1")), rev1);
    let s = eventually(60, "status of the partitioned rollout", || {
        let s = sts(&d);
        (s["status"]["updatedReplicas"] == 1).then_some(s)
    });
    assert_eq!(s["status"]["currentRevision"], rev1.as_str());
    assert_eq!(s["status"]["currentReplicas"], 2);
    let o = ok(&d.cli(&["rollout", "status", "sts/web"]));
    assert!(
        o.contains("partitioned roll out complete: 1 new pods have been updated..."),
        "{o}"
    );
    // A deleted pod below the partition comes back on the old revision.
    ok(&d.cli(&["delete", "pod", "web-0"]));
    let p = all_ready(&d, 3);
    assert_eq!(revision(pod(&p, "web-0").expect("web-0")), rev1);

    // Partition 0: the rest roll, from the highest ordinal down, and the rollout completes.
    d.apply_yaml(
        "web",
        &web(
            3,
            "2",
            "{type: RollingUpdate, rollingUpdate: {partition: 0}}",
        ),
    );
    eventually(180, "every pod on the new revision", || {
        make_ready(&d);
        let p = pods(&d);
        // web-0 never moves before web-1 has.
        if let (Some(p0), Some(p1)) = (pod(&p, "web-0"), pod(&p, "web-1")) {
            assert!(
                !(revision(p0) == rev2 && revision(p1) == rev1),
                "web-0 updated before web-1"
            );
        }
        (p.len() == 3
            && p.iter()
                .all(|p| running(p) && is_ready(p) && revision(p) == rev2))
        .then_some(())
    });
    eventually(60, "the rollout recorded as complete", || {
        let s = sts(&d);
        (s["status"]["currentRevision"] == rev2.as_str() && s["status"]["currentReplicas"] == 3)
            .then_some(())
    });
    let o = ok(&d.cli(&["rollout", "status", "statefulset", "web"]));
    assert!(
        o.contains("partitioned roll out complete: 3 new pods have been updated..."),
        "{o}"
    );

    let o = ok(&d.cli(&["rollout", "history", "sts/web"]));
    assert!(o.starts_with("statefulset.apps/web\nREVISION"), "{o}");
    assert!(o.contains("\n1 ") && o.contains("\n2 "), "{o}");
    let o = ok(&d.cli(&["rollout", "history", "sts/web", "--revision=1"]));
    assert!(o.contains("VERSION:") && o.contains("1"), "{o}");

    // Undo: the previous template again, rolled out; its revision becomes the newest.
    let o = ok(&d.cli(&["rollout", "undo", "sts/web"]));
    assert!(o.contains("statefulset.apps/web rolled back"), "{o}");
    eventually(180, "every pod back on the first revision", || {
        make_ready(&d);
        let p = pods(&d);
        (p.len() == 3
            && p.iter()
                .all(|p| running(p) && is_ready(p) && revision(p) == rev1))
        .then_some(())
    });
    let revs = d.get_json(&["controllerrevisions"]).expect("revisions");
    let first = revs["items"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["metadata"]["name"] == rev1.as_str())
                .cloned()
        })
        .expect("the first revision");
    assert_eq!(first["revision"], 3);

    // Scale down: the highest ordinal goes first, each only once the one above is gone.
    ok(&d.cli(&["scale", "sts", "web", "--replicas=1"]));
    eventually(120, "one pod left", || {
        let p = pods(&d);
        if let (Some(p1), Some(_)) = (pod(&p, "web-1"), pod(&p, "web-2")) {
            assert!(
                p1["metadata"]["deletionTimestamp"].is_null(),
                "web-1 deleted while web-2 was still there"
            );
        }
        (p.len() == 1 && pod(&p, "web-0").is_some()).then_some(())
    });
    let events = stdout(&d.cli(&["events", "--for", "statefulset/web"]));
    let (i2, i1) = (
        events.find("delete Pod web-2 in StatefulSet web successful"),
        events.rfind("delete Pod web-1 in StatefulSet web successful"),
    );
    assert!(i2.is_some() && i1.is_some(), "{events}");

    // Deleting the set deletes its pods and revisions.
    ok(&d.cli(&["delete", "sts", "web"]));
    eventually(60, "pods and revisions gone", || {
        let revs = d.get_json(&["controllerrevisions"])?;
        (pods(&d).is_empty() && revs["items"].as_array().is_some_and(Vec::is_empty)).then_some(())
    });
}

#[test]
fn on_delete_and_parallel_statefulsets() {
    let d = TestDaemon::start();
    d.import_busybox();
    let yaml = web(2, "1", "{type: OnDelete}").replace(
        "  serviceName: nginx\n",
        "  serviceName: nginx\n  podManagementPolicy: Parallel\n",
    );
    d.apply_yaml("web", &yaml);
    // Parallel: both pods are created without waiting for readiness.
    let p = eventually(60, "both pods running", || {
        let p = pods(&d);
        (p.len() == 2 && p.iter().all(running)).then_some(p)
    });
    assert!(p.iter().all(|p| !is_ready(p)));
    let rev1 = revision(&p[0]);
    all_ready(&d, 2);
    d.apply_yaml("web", &yaml.replace("value: '1'", "value: '2'"));
    let rev2 = eventually(60, "a new update revision", || {
        let s = sts(&d);
        let u = s["status"]["updateRevision"].as_str()?.to_string();
        (u != rev1).then_some(u)
    });
    // OnDelete: nothing is replaced until deleted.
    let p = all_ready(&d, 2);
    assert!(p.iter().all(|p| revision(p) == rev1), "{p:?}");
    ok(&d.cli(&["delete", "pod", "web-1"]));
    let p = eventually(60, "web-1 recreated on the new revision", || {
        make_ready(&d);
        let p = pods(&d);
        pod(&p, "web-1")
            .filter(|p| running(p) && revision(p) == rev2)
            .map(|_| p.clone())
    });
    assert_eq!(revision(pod(&p, "web-0").expect("web-0")), rev1);
    ok(&d.cli(&["delete", "sts", "web"]));
    eventually(60, "pods gone", || pods(&d).is_empty().then_some(()));
}

#[test]
fn statefulset_pods_have_stable_dns_names_through_the_headless_service() {
    let d = TestDaemon::start_with_config("dnsUpstreams: [\"127.0.0.1:9\"]\n");
    d.import_busybox();
    d.apply_yaml(
        "svc",
        "apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  selector: {app: sts-test}
  ports:
  - {name: web, port: 80}
",
    );
    d.apply_yaml("web", &web(2, "1", "{type: RollingUpdate}"));
    let p = all_ready(&d, 2);
    let ip1 = pod(&p, "web-1").expect("web-1")["status"]["podIP"]
        .as_str()
        .expect("an ip")
        .to_string();
    // The full name, asked of the cluster DNS server.
    let fqdn = "web-1.nginx.default.svc.cluster.local";
    eventually(60, &format!("{fqdn} resolves"), || {
        let o = d.cli(&["exec", "web-0", "--", "nslookup", fqdn]);
        stdout(&o).contains(&ip1).then_some(())
    });
    // The short name through the pod's resolver and its search path (busybox's nslookup
    // searches only names without dots; ping resolves as applications do).
    eventually(60, "web-1.nginx resolves", || {
        let o = d.cli(&[
            "exec",
            "web-0",
            "--",
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "web-1.nginx",
        ]);
        let out = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
        out.contains(&format!("({ip1})")).then_some(())
    });
    ok(&d.cli(&["delete", "sts", "web"]));
    eventually(60, "pods gone", || pods(&d).is_empty().then_some(()));
}

#[test]
fn claims_come_from_the_templates_and_follow_the_retention_policy() {
    let d = TestDaemon::start();
    d.import_busybox();
    let yaml = web(2, "1", "{type: RollingUpdate}").replace(
        "  serviceName: nginx\n",
        "  serviceName: nginx
  podManagementPolicy: Parallel
  persistentVolumeClaimRetentionPolicy: {whenDeleted: Delete, whenScaled: Retain}
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Mi}}
",
    );
    d.apply_yaml("web", &yaml);
    let claims = |d: &TestDaemon| -> Vec<String> {
        d.get_json(&["pvc"])
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|c| c["metadata"]["deletionTimestamp"].is_null())
            .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    };
    eventually(60, "a claim and a pod per ordinal", || {
        let c = claims(&d);
        (c == ["www-web-0", "www-web-1"] && pods(&d).len() == 2).then_some(())
    });
    let c = d.get_json(&["pvc", "www-web-1"]).expect("the claim");
    assert_eq!(c["metadata"]["labels"]["app"], "sts-test");
    assert_eq!(c["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
    assert_eq!(c["spec"]["resources"]["requests"]["storage"], "1Mi");
    let p = d.get_json(&["pod", "web-1"]).expect("the pod");
    let vol = p["spec"]["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "www").cloned())
        .expect("the claim's volume");
    assert_eq!(vol["persistentVolumeClaim"]["claimName"], "www-web-1");
    let events = stdout(&d.cli(&["events", "--for", "statefulset/web"]));
    assert!(
        events.contains("create Claim www-web-1 Pod web-1 in StatefulSet web success"),
        "{events}"
    );
    // Scaled down (whenScaled: Retain): the claim stays.
    ok(&d.cli(&["scale", "sts", "web", "--replicas=1"]));
    eventually(60, "web-1 gone", || (pods(&d).len() == 1).then_some(()));
    assert_eq!(claims(&d), ["www-web-0", "www-web-1"]);
    // Deleted (whenDeleted: Delete): the claims go with the set.
    ok(&d.cli(&["delete", "sts", "web"]));
    eventually(60, "pods and claims gone", || {
        (pods(&d).is_empty() && claims(&d).is_empty()).then_some(())
    });

    // whenScaled: Delete: a scaled-down pod's claim goes with it; the set's other claims
    // stay with the set (whenDeleted: Retain).
    d.apply_yaml(
        "web",
        &yaml.replace(
            "{whenDeleted: Delete, whenScaled: Retain}",
            "{whenDeleted: Retain, whenScaled: Delete}",
        ),
    );
    eventually(60, "two claims again", || {
        (claims(&d) == ["www-web-0", "www-web-1"] && pods(&d).len() == 2).then_some(())
    });
    ok(&d.cli(&["scale", "sts", "web", "--replicas=1"]));
    eventually(60, "web-1 and its claim gone", || {
        (pods(&d).len() == 1 && claims(&d) == ["www-web-0"]).then_some(())
    });
    ok(&d.cli(&["delete", "sts", "web"]));
    eventually(60, "pods gone", || pods(&d).is_empty().then_some(()));
    assert_eq!(claims(&d), ["www-web-0"], "whenDeleted: Retain keeps it");
    ok(&d.cli(&["delete", "pvc", "www-web-0"]));
    eventually(60, "the claim gone", || claims(&d).is_empty().then_some(()));
}

#[test]
fn ordinals_start_where_asked_and_orphans_are_adopted() {
    let d = TestDaemon::start();
    d.import_busybox();
    // An orphan pod the set's selector matches, named as the set's first pod.
    d.apply_yaml(
        "orphan",
        "apiVersion: v1
kind: Pod
metadata: {name: web-5, labels: {app: sts-test}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: berth.local/busybox:latest, imagePullPolicy: Never, command: [sleep, '3600']}
",
    );
    let yaml = web(2, "1", "{type: OnDelete}").replace(
        "  serviceName: nginx\n",
        "  serviceName: nginx\n  podManagementPolicy: Parallel\n  ordinals: {start: 5}\n",
    );
    d.apply_yaml("web", &yaml);
    let p = eventually(60, "web-5 and web-6", || {
        let p = pods(&d);
        let names: Vec<&str> = p
            .iter()
            .filter_map(|p| p["metadata"]["name"].as_str())
            .collect();
        (names.len() == 2 && names.contains(&"web-5") && names.contains(&"web-6"))
            .then_some(p.clone())
    });
    let orphan = pod(&p, "web-5").expect("web-5");
    assert_eq!(
        orphan["metadata"]["ownerReferences"][0]["kind"],
        "StatefulSet"
    );
    assert_eq!(
        pod(&p, "web-6").expect("web-6")["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
        "6"
    );
    ok(&d.cli(&["delete", "sts", "web"]));
    eventually(60, "pods gone", || pods(&d).is_empty().then_some(()));
}

#[test]
fn each_pod_keeps_its_own_claim_and_data_across_deletion() {
    let d = TestDaemon::start();
    d.import_busybox();
    let yaml = web(3, "1", "{type: RollingUpdate}")
        .replace(
            "        command: [sleep, '3600']\n",
            "        command: [sh, -c, '[ -f /data/id ] || hostname > /data/id; exec sleep 3600']
        volumeMounts: [{name: data, mountPath: /data}]
",
        )
        .replace(
            "  serviceName: nginx\n",
            "  serviceName: nginx
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 16Mi}}
",
        );
    d.apply_yaml("web", &yaml);
    // Ordered start: each pod only once the one below is Ready.
    for (ready, next) in [("web-0", "web-1"), ("web-1", "web-2")] {
        let p = eventually(120, &format!("{ready} running"), || {
            let p = pods(&d);
            pod(&p, ready).filter(|p| running(p)).map(|_| p.clone())
        });
        assert!(
            pod(&p, next).is_none(),
            "{next} created before {ready} was Ready"
        );
        ok(&d.cli(&["exec", ready, "--", "touch", "/tmp/ready"]));
    }
    all_ready(&d, 3);
    let read = |name: &str, file: &str| {
        stdout(&d.cli(&["exec", name, "--", "cat", &format!("/data/{file}")]))
            .trim()
            .to_string()
    };
    for name in ["web-0", "web-1", "web-2"] {
        assert_eq!(read(name, "id"), name, "{name} sees its own claim");
        ok(&d.cli(&[
            "exec",
            name,
            "--",
            "sh",
            "-c",
            &format!("echo kept-{name} > /data/note"),
        ]));
        let c = d
            .get_json(&["pvc", &format!("data-{name}")])
            .expect("claim");
        assert_eq!(c["status"]["phase"], "Bound", "{c}");
    }
    // A deleted pod comes back under its name, with its own data.
    let uid = pod(&pods(&d), "web-1").expect("web-1")["metadata"]["uid"].clone();
    ok(&d.cli(&["delete", "pod", "web-1"]));
    eventually(120, "web-1 recreated", || {
        make_ready(&d);
        let p = pods(&d);
        pod(&p, "web-1")
            .filter(|p| running(p) && p["metadata"]["uid"] != uid)
            .map(|_| ())
    });
    assert_eq!(read("web-1", "id"), "web-1");
    assert_eq!(read("web-1", "note"), "kept-web-1");
    // The claims stay after the set is gone (whenDeleted: Retain).
    ok(&d.cli(&["delete", "sts", "web"]));
    eventually(60, "pods gone", || pods(&d).is_empty().then_some(()));
    for name in ["web-0", "web-1", "web-2"] {
        assert!(d.get_json(&["pvc", &format!("data-{name}")]).is_some());
    }
    for name in ["web-0", "web-1", "web-2"] {
        ok(&d.cli(&["delete", "pvc", &format!("data-{name}")]));
    }
}
