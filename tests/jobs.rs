//! The Job and CronJob controllers with real containers: completions within parallelism,
//! the backoff limit, the active deadline; CronJobs that run every minute, keep their
//! history limit and forbid overlapping runs; bad schedules and zones refused at create.

mod common;

use common::{TestDaemon, eventually, ok, stderr, stdout};
use serde_json::Value;

const IMAGE: &str = "image: berth.local/busybox:latest, imagePullPolicy: Never";

fn get_json(d: &TestDaemon, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_slice(&d.cli(&all).stdout).unwrap_or_default()
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

/// The True condition of `kind` on a Job, if any.
fn condition(job: &Value, kind: &str) -> Option<Value> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
        .cloned()
}

fn events_for(d: &TestDaemon, target: &str) -> String {
    stdout(&d.cli(&["events", "--for", target]))
}

fn apply(d: &TestDaemon, file: &str, yaml: &str) {
    let path = d.write(file, yaml);
    ok(&d.cli(&["apply", "-f", path.to_str().expect("utf-8 path")]));
}

/// Pods of a Job that are still running (not finished, not being deleted).
fn running_pods(d: &TestDaemon, job: &str) -> usize {
    items(&get_json(d, &["pods", "-l", &format!("job-name={job}")]))
        .iter()
        .filter(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
        })
        .count()
}

#[test]
fn jobs_complete_fail_on_backoff_limit_and_deadline() {
    let d = TestDaemon::start_with_config("jobBackOffBaseMillis: 200\n");
    d.import_busybox();
    apply(
        &d,
        "jobs.yaml",
        &format!(
            "apiVersion: batch/v1
kind: Job
metadata: {{name: three}}
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - {{name: main, {IMAGE}, command: [sh, -c, 'sleep 1']}}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: doomed}}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - {{name: main, {IMAGE}, command: [sh, -c, 'exit 1']}}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: slow}}
spec:
  activeDeadlineSeconds: 3
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - {{name: main, {IMAGE}, command: [sleep, '3600']}}
"
        ),
    );

    // completions 3, parallelism 2: never more than two at once, then Complete.
    let mut most = 0;
    let three = eventually(120, "job three to complete", || {
        most = most.max(running_pods(&d, "three"));
        let job = get_json(&d, &["job", "three"]);
        most = most.max(job["status"]["active"].as_u64().unwrap_or(0) as usize);
        condition(&job, "Complete").map(|_| job)
    });
    assert!(most <= 2, "{most} pods ran at once");
    assert!(most >= 1);
    assert_eq!(three["status"]["succeeded"], 3);
    assert!(three["status"]["completionTime"].is_string());
    assert!(three["status"]["startTime"].is_string());
    assert_eq!(
        three["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        three["metadata"]["uid"]
    );
    let pods = items(&get_json(&d, &["pods", "-l", "job-name=three"]));
    assert_eq!(pods.len(), 3, "finished pods stay and are not run again");
    for p in &pods {
        assert_eq!(p["status"]["phase"], "Succeeded");
        assert!(
            p["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("three-")
        );
        assert!(
            p["metadata"]["finalizers"].is_null(),
            "counted and released"
        );
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job");
    }
    let ev = events_for(&d, "job/three");
    assert!(ev.contains("SuccessfulCreate"), "{ev}");
    assert!(ev.contains("Created pod: three-"), "{ev}");
    assert!(ev.contains("Job completed"), "{ev}");
    let table = ok(&d.cli(&["get", "jobs"]));
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        "{table}"
    );
    let row = table.lines().find(|l| l.starts_with("three ")).unwrap();
    assert!(row.contains("Complete") && row.contains("3/3"), "{table}");

    // A pod that always fails, backoffLimit 1: two failures, then Failed.
    let doomed = eventually(120, "job doomed to fail", || {
        let job = get_json(&d, &["job", "doomed"]);
        condition(&job, "Failed").map(|_| job)
    });
    let failed = condition(&doomed, "Failed").unwrap();
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(
        failed["message"],
        "Job has reached the specified backoff limit"
    );
    assert_eq!(doomed["status"]["failed"], 2);
    assert!(doomed["status"]["succeeded"].is_null());
    let ev = events_for(&d, "job/doomed");
    assert!(ev.contains("BackoffLimitExceeded"), "{ev}");

    // activeDeadlineSeconds 3: DeadlineExceeded, and the pod goes away.
    let slow = eventually(120, "job slow to pass its deadline", || {
        let job = get_json(&d, &["job", "slow"]);
        condition(&job, "Failed").map(|_| job)
    });
    assert_eq!(
        condition(&slow, "Failed").unwrap()["reason"],
        "DeadlineExceeded"
    );
    eventually(60, "the slow job's pod to go", || {
        items(&get_json(&d, &["pods", "-l", "job-name=slow"]))
            .is_empty()
            .then_some(())
    });
    let ev = events_for(&d, "job/slow");
    assert!(ev.contains("DeadlineExceeded"), "{ev}");
    assert!(ev.contains("SuccessfulDelete"), "{ev}");
    let table = ok(&d.cli(&["get", "jobs"]));
    let row = table.lines().find(|l| l.starts_with("slow ")).unwrap();
    assert!(row.contains("Failed") && row.contains("0/1"), "{table}");

    // Deleting a Job takes its pods (the garbage collector, Background).
    ok(&d.cli(&["delete", "job", "three", "doomed", "slow"]));
    eventually(60, "the jobs' pods to go", || {
        items(&get_json(&d, &["pods"])).is_empty().then_some(())
    });
}

/// The Jobs a CronJob owns.
fn jobs_of(d: &TestDaemon, cron_job: &str) -> Vec<Value> {
    items(&get_json(d, &["jobs"]))
        .into_iter()
        .filter(|j| {
            j["metadata"]["ownerReferences"][0]["name"] == cron_job
                && j["metadata"]["deletionTimestamp"].is_null()
        })
        .collect()
}

#[test]
fn cron_jobs_run_every_minute_keep_history_and_forbid_overlap() {
    let d = TestDaemon::start();
    d.import_busybox();

    // Bad input is refused at create, naming the field.
    for (field, value, says) in [
        ("schedule", "'61 * * * *'", "spec.schedule"),
        (
            "timeZone",
            "Mars/Olympus_Mons",
            "unknown time zone Mars/Olympus_Mons",
        ),
    ] {
        let bad = d.write(
            "bad.yaml",
            &format!(
                "apiVersion: batch/v1
kind: CronJob
metadata: {{name: bad}}
spec:
  schedule: '* * * * *'
  {field}: {value}
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - {{name: main, {IMAGE}, command: ['true']}}
"
            ),
        );
        let o = d.cli(&["apply", "-f", bad.to_str().unwrap()]);
        assert!(!o.status.success(), "{field} {value} accepted");
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }

    apply(
        &d,
        "cron.yaml",
        &format!(
            "apiVersion: batch/v1
kind: CronJob
metadata: {{name: tick}}
spec:
  schedule: '*/1 * * * *'
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - {{name: main, {IMAGE}, command: [echo, tick]}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: hog}}
spec:
  schedule: '* * * * *'
  timeZone: Europe/Berlin
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: 1
          containers:
          - {{name: main, {IMAGE}, command: [sleep, '3600']}}
"
        ),
    );
    let table = ok(&d.cli(&["get", "cronjobs"]));
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"
        ],
        "{table}"
    );

    // The first minute boundary: tick runs and completes.
    let complete = |j: &Value| condition(j, "Complete").is_some();
    let first = eventually(150, "tick's first job to complete", || {
        jobs_of(&d, "tick").into_iter().find(complete)
    });
    let first_name = first["metadata"]["name"].as_str().unwrap().to_string();
    let minutes: i64 = first_name
        .strip_prefix("tick-")
        .and_then(|m| m.parse().ok())
        .expect("named after the scheduled minute");
    let scheduled =
        first["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap();
    assert_eq!(scheduled.as_second(), minutes * 60);
    assert_eq!(first["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    let hog_jobs = eventually(60, "hog's first job", || {
        let j = jobs_of(&d, "hog");
        (!j.is_empty()).then_some(j)
    });
    let hog_first = hog_jobs[0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let hog_scheduled =
        hog_jobs[0]["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(
        hog_scheduled.ends_with("+01:00") || hog_scheduled.ends_with("+02:00"),
        "in the CronJob's zone: {hog_scheduled}"
    );

    // The second boundary: tick runs again and keeps one completed job; hog does not
    // start a second run while its first one runs.
    let second = eventually(150, "tick's second job and the history limit", || {
        let jobs = jobs_of(&d, "tick");
        let done: Vec<&Value> = jobs.iter().filter(|j| complete(j)).collect();
        (done.len() == 1 && done[0]["metadata"]["name"] != first_name.as_str())
            .then(|| done[0].clone())
    });
    assert!(second["metadata"]["name"].as_str().unwrap() > first_name.as_str());
    let ev = events_for(&d, "cronjob/tick");
    assert!(ev.contains(&format!("Created job {first_name}")), "{ev}");
    assert!(ev.contains("SawCompletedJob"), "{ev}");
    assert!(ev.contains(&format!("Deleted job {first_name}")), "{ev}");
    let tick = get_json(&d, &["cronjob", "tick"]);
    assert!(tick["status"]["lastScheduleTime"].is_string(), "{tick}");
    assert!(tick["status"]["lastSuccessfulTime"].is_string(), "{tick}");

    eventually(60, "hog's JobAlreadyActive", || {
        events_for(&d, "cronjob/hog")
            .contains("JobAlreadyActive")
            .then_some(())
    });
    let hog_jobs = jobs_of(&d, "hog");
    assert_eq!(hog_jobs.len(), 1, "Forbid: one run at a time");
    assert_eq!(hog_jobs[0]["metadata"]["name"], hog_first.as_str());
    let hog = get_json(&d, &["cronjob", "hog"]);
    assert_eq!(hog["status"]["active"][0]["name"], hog_first.as_str());
    let table = ok(&d.cli(&["get", "cronjobs"]));
    let row = table.lines().find(|l| l.starts_with("hog ")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[1..9],
        ["*", "*", "*", "*", "*", "Europe/Berlin", "False", "1"],
        "{table}"
    );

    // Deleting the CronJobs takes their Jobs and pods.
    ok(&d.cli(&["delete", "cronjob", "tick", "hog"]));
    eventually(60, "the cron jobs' jobs and pods to go", || {
        (items(&get_json(&d, &["jobs"])).is_empty() && items(&get_json(&d, &["pods"])).is_empty())
            .then_some(())
    });
}
