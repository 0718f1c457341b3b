//! Snapshots of every view and dialog, drawn into ratatui's `TestBackend` at 80×24 and
//! 160×48 from fixture objects (the same fixtures as the table renderers' tests), with
//! the clock fixed so ages do not drift.

use k8s_openapi::jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::{Value, json};

use super::actions::{self, Action};
use super::logs::{LogChunk, LogTarget, LogViewer};
use super::state::{Dialog, Mode, Source, State, Usage};
use super::views;
use crate::api::table::tests::fixture;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn now() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().expect("time")
}

fn source(name: &str) -> Source {
    Source::resolve(name).expect("a view")
}

fn pod(name: &str, ns: &str, status: Value) -> Value {
    let mut p = fixture("Pod");
    p["metadata"]["name"] = json!(name);
    p["metadata"]["namespace"] = json!(ns);
    p["metadata"]["uid"] = json!(format!("uid-{name}"));
    p["status"] = status;
    p
}

/// A small node's worth of objects of every kind.
pub fn fixture_state() -> State {
    let mut s = State::new(now(), false);
    let kinds = [
        ("deploy", "Deployment"),
        ("rs", "ReplicaSet"),
        ("sts", "StatefulSet"),
        ("job", "Job"),
        ("cj", "CronJob"),
        ("svc", "Service"),
        ("ing", "Ingress"),
        ("cm", "ConfigMap"),
        ("secret", "Secret"),
        ("pvc", "PersistentVolumeClaim"),
        ("pv", "PersistentVolume"),
        ("nodes", "Node"),
        ("ep", "Endpoints"),
    ];
    for (view, kind) in kinds {
        s.replace_all(&source(view), vec![fixture(kind)]);
    }
    let ns = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "creationTimestamp": "2026-11-01T10:00:00Z"},
            "status": {"phase": "Active"}})
    };
    s.replace_all(
        &source("ns"),
        vec![ns("default"), ns("kube-system"), ns("monitoring")],
    );
    let running = fixture("Pod");
    let waiting = |reason: &str| {
        json!({"phase": "Running", "containerStatuses": [{"name": "web", "ready": false, "restartCount": 7,
            "image": "nginx:1.25", "imageID": "", "state": {"waiting": {"reason": reason}}}]})
    };
    s.replace_all(
        &source("po"),
        vec![
            running,
            pod("web-7d4b9c-q9z7m", "default", waiting("CrashLoopBackOff")),
            pod("db-0", "default", json!({"phase": "Pending"})),
            pod(
                "migrate-x7k2p",
                "default",
                json!({"phase": "Succeeded", "containerStatuses": [{"name": "web", "ready": false,
                    "restartCount": 0, "image": "nginx:1.25", "imageID": "",
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
            ),
            pod(
                "coredns-5d78c9869d-abcde",
                "kube-system",
                fixture("Pod")["status"].clone(),
            ),
        ],
    );
    let mut warning = fixture("Event");
    warning["involvedObject"] = json!({"kind": "Pod", "namespace": "default",
        "name": "web-7d4b9c-q9z7m", "uid": "uid-web-7d4b9c-q9z7m", "apiVersion": "v1"});
    warning["metadata"]["name"] = json!("web-7d4b9c-q9z7m.1");
    warning["type"] = json!("Warning");
    warning["reason"] = json!("BackOff");
    warning["message"] = json!("Back-off restarting failed container web in pod web-7d4b9c-q9z7m");
    warning["lastTimestamp"] = json!("2026-11-23T09:59:00Z");
    s.replace_all(&source("events"), vec![fixture("Event"), warning]);
    s.replace_all(
        &Source::Images,
        vec![json!({"apiVersion": "images.berth.dev/v1", "kind": "Image",
            "metadata": {"name": "berth.local/busybox:latest", "creationTimestamp": "2026-11-20T10:00:00Z"},
            "spec": {"familiarName": "berth.local/busybox:latest",
                "id": "sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741",
                "size": 2_187_264}})],
    );
    s.server_version = Some("v1.34.0-berth".into());
    s.usage = Some(Usage {
        cpu_milli: 130,
        mem: 300 << 20,
    });
    let running_key = {
        let p = fixture("Pod");
        (
            p["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    s.set_pod_usage(
        [
            (
                running_key,
                Usage {
                    cpu_milli: 12,
                    mem: 25 << 20,
                },
            ),
            (
                ("kube-system".into(), "coredns-5d78c9869d-abcde".into()),
                Usage {
                    cpu_milli: 3,
                    mem: 11 << 20,
                },
            ),
        ]
        .into(),
    );
    s.refresh_table();
    s
}

fn draw(state: &State, (w, h): (u16, u16)) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    t.draw(|f| views::draw(f, state)).expect("draw");
    t
}

fn snap(name: &str, state: &State) {
    for size in SIZES {
        let t = draw(state, size);
        insta::assert_snapshot!(format!("{name}_{}x{}", size.0, size.1), t.backend());
    }
}

fn view(name: &str) -> State {
    let mut s = fixture_state();
    actions::run_command(&mut s, name);
    s
}

#[test]
fn every_view() {
    for name in [
        "pods",
        "deployments",
        "replicasets",
        "statefulsets",
        "jobs",
        "cronjobs",
        "services",
        "ingresses",
        "configmaps",
        "secrets",
        "pvc",
        "pv",
        "nodes",
        "namespaces",
        "events",
        "images",
    ] {
        snap(&format!("view_{name}"), &view(name));
    }
}

#[test]
fn pods_in_one_namespace_filtered_and_sorted() {
    let mut s = view("pods");
    actions::apply(&mut s, Action::Namespace(1), 10);
    s.filter = super::filter::Filter::parse("web");
    s.sort.column = 2;
    s.refresh_table();
    snap("pods_default_filtered_sorted", &s);
}

#[test]
fn empty_and_loading_views() {
    let mut s = State::new(now(), false);
    snap("loading", &s);
    s.replace_all(&source("po"), Vec::new());
    s.refresh_table();
    snap("empty", &s);
    let mut s = State::new(now(), false);
    s.source_failed(
        &source("po"),
        "cannot reach the berth daemon at /run/berth/berth.sock: is the daemon running? start it with: systemctl start berth (or berth daemon)".into(),
        true,
    );
    s.refresh_table();
    snap("disconnected_at_start", &s);
}

fn with_key(mut s: State, action: Action) -> State {
    s.select(0);
    actions::apply(&mut s, action, 10);
    s
}

/// The Deployment `web` with two revisions: ReplicaSets of nginx:1.24 (1) and the
/// fixture's template (2, current).
pub fn with_revisions(mut s: State) -> State {
    let rs = |name: &str, revision: &str, image: Option<&str>| {
        let mut r = fixture("ReplicaSet");
        r["metadata"]["name"] = json!(name);
        r["metadata"]["uid"] = json!(format!("uid-{name}"));
        r["metadata"]["annotations"] = json!({"deployment.kubernetes.io/revision": revision});
        r["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment",
            "name": "web", "uid": "d-1", "controller": true}]);
        if let Some(image) = image {
            r["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
            r["metadata"]["annotations"]["kubernetes.io/change-cause"] =
                json!("berth set image deployment/web web=nginx:1.24");
        }
        r
    };
    s.replace_all(
        &source("rs"),
        vec![
            rs("web-5f6d8c", "1", Some("nginx:1.24")),
            rs("web-7d4b9c", "2", None),
        ],
    );
    s.refresh_table();
    s
}

#[test]
fn dialogs() {
    snap("dialog_help_pods", &with_key(view("pods"), Action::Help));
    snap(
        "dialog_help_deployments",
        &with_key(view("deploy"), Action::Help),
    );
    snap("dialog_describe", &with_key(view("pods"), Action::Describe));
    snap("dialog_yaml", &with_key(view("deploy"), Action::Yaml));
    snap(
        "dialog_describe_service",
        &with_key(view("svc"), Action::Describe),
    );
    snap(
        "dialog_describe_deployment",
        &with_key(view("deploy"), Action::Describe),
    );
    snap(
        "dialog_yaml_secret",
        &with_key(view("secrets"), Action::Yaml),
    );
    snap("dialog_delete", &with_key(view("pods"), Action::Delete));
    snap("dialog_scale", &with_key(view("deploy"), Action::Scale));
    let mut s = with_revisions(view("deploy"));
    snap(
        "dialog_rollout_history",
        &with_key(s.clone(), Action::History),
    );
    s = with_key(s, Action::Undo);
    snap("dialog_rollout_undo", &s);
    snap(
        "dialog_port_forward",
        &with_key(view("pods"), Action::PortForward),
    );
    let mut s = with_key(view("pods"), Action::Help);
    s.forwards = vec![
        super::state::ActiveForward {
            local: "127.0.0.1:8080".into(),
            pod: "pod/web-7d4b9c-x2k8p".into(),
            remote: 80,
        },
        super::state::ActiveForward {
            local: "127.0.0.1:41234".into(),
            pod: "pod/db-0".into(),
            remote: 5432,
        },
    ];
    snap("dialog_help_pods_forwarding", &s);
    s.mode = Mode::Normal;
    snap("pods_forwarding_status", &s);
    s.forwards.truncate(1);
    snap("pods_one_forward_status", &s);

    let mut s = view("pods");
    s.select(1);
    actions::apply(&mut s, Action::Events, 10);
    snap("dialog_events", &s);

    let mut s = view("pods");
    s.mode = Mode::Dialog(Dialog::Error {
        title: "edit pod/web-7d4b9c-x2k8p failed".into(),
        message: "Pod \"web-7d4b9c-x2k8p\" is invalid: spec.containers[0].image: Required value"
            .into(),
    });
    snap("dialog_error", &s);

    let mut s = view("pods");
    s.mode = Mode::Command("dep".into());
    snap("command_line", &s);

    let mut s = view("pods");
    s.mode = Mode::Filter("-l app=web".into());
    snap("filter_line", &s);
}

#[test]
fn banners() {
    let mut s = view("pods");
    s.disconnected = Some(
        "cannot reach the berth daemon at /run/berth/berth.sock: is the daemon running?".into(),
    );
    snap("banner_disconnected", &s);
    let mut s = view("pods");
    s.read_only = Some("pods is forbidden: User \"alice\" cannot delete resource \"pods\"".into());
    snap("banner_read_only", &s);
}

#[test]
fn log_viewer() {
    let mut s = view("pods");
    let mut v = LogViewer::new(LogTarget {
        namespace: "default".into(),
        pod: "web-7d4b9c-x2k8p".into(),
        container: Some("web".into()),
        previous: false,
    });
    for i in 0..60 {
        v.push(LogChunk::Line(format!(
            "2026-11-23T09:{:02}:00.000000000Z 10.88.0.1 - - \"GET /item/{i} HTTP/1.1\" 200 {}",
            i % 60,
            100 + i
        )));
    }
    v.search = Some("item/5".into());
    s.mode = Mode::Dialog(Dialog::Logs(Box::new(v.clone())));
    snap("logs_follow_search", &s);
    v.timestamps = true;
    v.wrap = true;
    v.follow = false;
    v.scroll = 3;
    v.search = None;
    s.mode = Mode::Dialog(Dialog::Logs(Box::new(v)));
    snap("logs_timestamps_wrap", &s);
    let mut failed = LogViewer::new(LogTarget {
        namespace: "default".into(),
        pod: "db-0".into(),
        container: None,
        previous: true,
    });
    failed.push(LogChunk::Failed(
        "previous terminated container \"db\" in pod \"db-0\" not found".into(),
    ));
    s.mode = Mode::Dialog(Dialog::Logs(Box::new(failed)));
    snap("logs_failed", &s);
}

/// Every cell's colours, to check `NO_COLOR`.
fn colours(state: &State) -> Vec<ratatui::style::Color> {
    let t = draw(state, (160, 48));
    t.backend()
        .buffer()
        .content()
        .iter()
        .flat_map(|c| [c.fg, c.bg])
        .filter(|c| *c != ratatui::style::Color::Reset)
        .collect()
}

#[test]
fn no_color_draws_without_colours_and_still_marks_the_selection() {
    let mut s = view("pods");
    s.disconnected = Some("cannot reach the berth daemon".into());
    s.color = true;
    assert!(!colours(&s).is_empty(), "colours are drawn by default");
    s.color = false;
    assert_eq!(colours(&s), Vec::new());
    let t = draw(&s, (80, 24));
    let reversed = t
        .backend()
        .buffer()
        .content()
        .iter()
        .any(|c| c.modifier.contains(ratatui::style::Modifier::REVERSED));
    assert!(
        reversed,
        "the selected row is still shown, by reverse video"
    );
}
