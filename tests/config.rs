//! Configuration through ConfigMaps and Secrets with the manifests users write (issue 7's
//! own examples, image swapped for the test image): env from secretKeyRef, envFrom with
//! configMapRef and secretRef, a Secret mounted read-only, resource requests and limits,
//! and edits reaching the mounted files.

mod common;

use std::time::Duration;

use common::{TestDaemon, eventually, ok, stdout};

/// Imports the test image under `reference`, as the image the manifest names.
fn import_as(d: &TestDaemon, reference: &str) {
    let archive = d
        .dir
        .path()
        .join(format!("{}.tar", reference.replace(['/', ':'], "_")));
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build-busybox.sh");
    let status = std::process::Command::new(script)
        .arg(&archive)
        .arg(reference)
        .status()
        .expect("build-busybox.sh runs");
    assert!(status.success(), "build-busybox.sh failed");
    ok(&d.cli(&["image", "import", archive.to_str().expect("utf-8 path")]));
}

fn exec(d: &TestDaemon, pod: &str, cmd: &str) -> std::process::Output {
    d.cli(&["exec", pod, "--", "sh", "-c", cmd])
}

/// The names of the Running pods labelled `selector`.
fn running_pods(d: &TestDaemon, selector: &str, n: usize) -> Vec<String> {
    eventually(120, &format!("{n} running pods {selector}"), || {
        std::thread::sleep(Duration::from_millis(300));
        let list = d.get_json(&["pods", "-l", selector])?;
        let names: Vec<String> = list["items"]
            .as_array()?
            .iter()
            .filter(|p| {
                p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
            })
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .collect();
        (names.len() == n).then_some(names)
    })
}

const OBJECTS: &str = "apiVersion: v1
kind: Secret
metadata:
  name: hubot-slack-token
type: Opaque
stringData:
  HUBOT_SLACK_TOKEN: xoxb-hey-cookie-0001
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: fintech-prod
data:
  LOG_LEVEL: info
  CURRENCY: EUR
---
apiVersion: v1
kind: Secret
metadata:
  name: fintech-prod
type: Opaque
data:
  DB_PASSWORD: czNjcjN0LXBhc3M=
  API_KEY: YWJjMTIz
";

/// The issue's manifests, as written but for the images (the test image, tagged so that
/// the default pull policy is IfNotPresent: nothing is pulled in tests) and a long-running
/// command.
const MANIFESTS: &str = "apiVersion: v1
kind: Pod
metadata:
  name: hubot-hey-cookie
spec:
  containers:
    - name: hubot-hey-cookie
      image: berth.local/hubot-hey-cookie:1.0
      imagePullPolicy: IfNotPresent
      command: [sleep, '3600']
      env:
        - name: HUBOT_SLACK_TOKEN
          valueFrom:
            secretKeyRef:
              name: hubot-slack-token
              key: HUBOT_SLACK_TOKEN
      resources:
        limits:
          cpu: 2
          memory: 2Gi
        requests:
          cpu: 1
          memory: 1Gi
  restartPolicy: Always
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fintech-prod
spec:
  replicas: 3
  revisionHistoryLimit: 2
  selector:
    matchLabels:
      app.kubernetes.io/name: fintech-prod
  strategy:
    rollingUpdate:
      maxUnavailable: 15%
    type: RollingUpdate
  template:
    metadata:
      labels:
        app.kubernetes.io/name: fintech-prod
    spec:
      automountServiceAccountToken: false
      containers:
        - name: default
          image: berth.local/web:1.0
          command: [sh, -c, \"exec httpd -f -p 3000\"]
          envFrom:
            - configMapRef:
                name: fintech-prod
            - secretRef:
                name: fintech-prod
          ports:
            - containerPort: 3000
          resources:
            limits: {cpu: '1', memory: 2Gi}
            requests: {cpu: 100m, memory: 128Mi}
          volumeMounts:
            - mountPath: /var/secret
              name: secret
              readOnly: true
      volumes:
        - name: secret
          secret:
            secretName: fintech-prod
";

#[test]
fn the_issues_pod_and_deployment_run_as_written() {
    let d = TestDaemon::start();
    import_as(&d, "berth.local/hubot-hey-cookie:1.0");
    import_as(&d, "berth.local/web:1.0");
    d.apply_yaml("objects", OBJECTS);
    d.apply_yaml("manifests", MANIFESTS);

    // The pod: the secret's value in its env, its requests and limits in its cgroup.
    eventually(90, "hubot-hey-cookie running", || {
        std::thread::sleep(Duration::from_millis(300));
        d.get_json(&["pod", "hubot-hey-cookie"])
            .filter(|p| p["status"]["phase"] == "Running")
    });
    assert_eq!(
        ok(&exec(&d, "hubot-hey-cookie", "echo $HUBOT_SLACK_TOKEN")).trim(),
        "xoxb-hey-cookie-0001"
    );
    let pod = d.get_json(&["pod", "hubot-hey-cookie"]).expect("pod");
    assert_eq!(pod["status"]["qosClass"], "Burstable");
    // cgroup v1 memory controller as the container sees it: the 2Gi limit.
    let limit = ok(&exec(
        &d,
        "hubot-hey-cookie",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
    ));
    assert_eq!(limit.trim(), (2u64 << 30).to_string());

    // The Deployment: three pods, env from the ConfigMap and the Secret, the Secret's
    // files read-only at /var/secret, httpd answering on 3000.
    let pods = running_pods(&d, "app.kubernetes.io/name=fintech-prod", 3);
    for p in &pods {
        let env = ok(&exec(
            &d,
            p,
            "echo $LOG_LEVEL $CURRENCY $DB_PASSWORD $API_KEY",
        ));
        assert_eq!(env.trim(), "info EUR s3cr3t-pass abc123", "{p}");
        assert_eq!(
            ok(&exec(
                &d,
                p,
                "cat /var/secret/DB_PASSWORD /var/secret/API_KEY"
            )),
            "s3cr3t-passabc123"
        );
        let write = exec(&d, p, "echo x > /var/secret/new");
        assert!(!write.status.success(), "/var/secret is writable in {p}");
        let served = exec(&d, p, "wget -S -q -O /dev/null http://127.0.0.1:3000/ 2>&1");
        assert!(
            String::from_utf8_lossy(&served.stdout).contains("HTTP/1."),
            "httpd does not answer in {p}: {served:?}"
        );
    }
    let deploy = d
        .get_json(&["deployment", "fintech-prod"])
        .expect("deployment");
    assert_eq!(deploy["spec"]["revisionHistoryLimit"], 2);
    assert_eq!(deploy["status"]["readyReplicas"], 3);

    // Edits: the Secret's new value reaches the mounted file of the running pods (env
    // keeps the value the container started with, as in Kubernetes); an edited ConfigMap
    // mounted as a volume changes its file too.
    d.apply_yaml(
        "secret2",
        "apiVersion: v1
kind: Secret
metadata:
  name: fintech-prod
type: Opaque
stringData:
  DB_PASSWORD: rotated
  API_KEY: abc123
",
    );
    let first = &pods[0];
    eventually(120, "the rotated secret in the mounted file", || {
        std::thread::sleep(Duration::from_millis(500));
        (stdout(&exec(&d, first, "cat /var/secret/DB_PASSWORD")) == "rotated").then_some(())
    });
    assert_eq!(
        ok(&exec(&d, first, "echo $DB_PASSWORD")).trim(),
        "s3cr3t-pass"
    );
}

#[test]
fn env_sources_and_a_missing_key_waits_with_create_container_config_error() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.apply_yaml(
        "objects",
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  MODE: fast
  COLOR: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  user: admin
",
    );
    d.apply_yaml(
        "pod",
        "apiVersion: v1
kind: Pod
metadata:
  name: envs
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: '1', memory: 128Mi}
    envFrom:
    - prefix: CFG_
      configMapRef: {name: settings}
    - secretRef: {name: absent, optional: true}
    env:
    - {name: USER_NAME, valueFrom: {secretKeyRef: {name: creds, key: user}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: MAYBE, valueFrom: {configMapKeyRef: {name: nothing, key: k, optional: true}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: MEM_LIMIT_MI, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: CPU_REQUEST_M, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
    - {name: CPU_LIMIT, valueFrom: {resourceFieldRef: {containerName: main, resource: limits.cpu}}}
",
    );
    // The Secret has no key `password`: the container waits, saying so.
    let p = eventually(90, "CreateContainerConfigError", || {
        std::thread::sleep(Duration::from_millis(300));
        d.get_json(&["pod", "envs"]).filter(|p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                == "CreateContainerConfigError"
        })
    });
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        "couldn't find key password in Secret default/creds"
    );
    assert_eq!(p["status"]["phase"], "Pending");
    let events = eventually(30, "the Failed event", || {
        let out = ok(&d.cli(&["events", "--for", "pod/envs"]));
        out.contains("couldn't find key password").then_some(out)
    });
    assert!(events.contains("Failed"), "{events}");

    // The key appears: the pod starts with every value right.
    d.apply_yaml(
        "secret2",
        "apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  user: admin
  password: pw-42
",
    );
    let p = eventually(90, "the pod running", || {
        std::thread::sleep(Duration::from_millis(300));
        d.get_json(&["pod", "envs"])
            .filter(|p| p["status"]["phase"] == "Running")
    });
    let out = ok(&exec(
        &d,
        "envs",
        "echo \"$CFG_MODE|$CFG_COLOR|$USER_NAME|$PASSWORD|${MAYBE-unset}|$POD_IP|$MEM_LIMIT_MI|$CPU_REQUEST_M|$CPU_LIMIT\"",
    ));
    let ip = p["status"]["podIP"].as_str().expect("podIP");
    assert_eq!(
        out.trim(),
        format!("fast|blue|admin|pw-42|unset|{ip}|128|250|1")
    );
}
