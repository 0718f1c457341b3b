//! `berth rollout status|history|undo|restart|pause|resume`, `berth scale` and
//! `berth set image`, with kubectl's flags, messages and exit codes. The work itself is in
//! [`crate::client::rollout`], which the TUI shares; this file parses arguments and prints.

use clap::{ArgAction, Args, Subcommand};

use super::{CliError, namespace_or_default, resolve_kind};
use crate::api::ResourceType;
use crate::client::Client;
use crate::client::rollout::{self, ImageUpdate, RolloutError, StatusOptions, UndoOutcome};

#[derive(Debug, Args)]
pub struct RolloutArgs {
    #[command(subcommand)]
    pub command: RolloutCommand,
}

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Watch a Deployment's or StatefulSet's rollout until it finishes; fails when a
    /// Deployment exceeds its progress deadline.
    Status(StatusArgs),
    /// List a Deployment's or StatefulSet's revisions, or show one revision's pod template.
    History(HistoryArgs),
    /// Go back to the previous revision (or the one given).
    Undo(UndoArgs),
    /// Replace every pod of a Deployment through a new rollout.
    Restart(Targets),
    /// Hold back template changes until the Deployment is resumed.
    Pause(Targets),
    /// Let a paused Deployment roll out again.
    Resume(Targets),
}

#[derive(Debug, Args)]
pub struct Targets {
    /// deployment/NAME …, or deployment NAME …
    #[arg(required = true, value_name = "RESOURCE")]
    pub resources: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Keep watching until the rollout finishes (--watch=false: print the status once).
    #[arg(short, long, action = ArgAction::Set, default_value_t = true, num_args = 0..=1,
        default_missing_value = "true", require_equals = true, value_name = "BOOL")]
    pub watch: bool,
    /// Give up after this long, e.g. 30s or 5m (0s: wait as long as it takes).
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub timeout: String,
    /// Fail unless the Deployment is at this revision (0: any).
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// Show this revision's pod template.
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

#[derive(Debug, Args)]
pub struct UndoArgs {
    #[command(flatten)]
    pub targets: Targets,
    /// The revision to go back to (0: the previous one).
    #[arg(long, default_value_t = 0)]
    pub to_revision: i64,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// deployment/NAME … (also replicaset, statefulset), or TYPE NAME …
    #[arg(required = true, value_name = "RESOURCE")]
    pub resources: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// The new number of replicas.
    #[arg(
        long,
        required = true,
        allow_negative_numbers = true,
        value_name = "COUNT"
    )]
    pub replicas: i64,
    /// Only scale when the object has this many replicas now (-1: whatever it has).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_name = "COUNT")]
    pub current_replicas: i64,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(subcommand)]
    pub command: SetCommand,
}

#[derive(Debug, Subcommand)]
pub enum SetCommand {
    /// Set container images in a pod template: berth set image deployment/web web=nginx:1.27
    Image(SetImageArgs),
}

#[derive(Debug, Args)]
pub struct SetImageArgs {
    /// deployment/NAME (also replicaset, statefulset) or TYPE NAME, then CONTAINER=IMAGE …
    /// (`*=IMAGE` for every container).
    #[arg(required = true, value_name = "RESOURCE|CONTAINER=IMAGE")]
    pub args: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
}

/// The objects named by `deployment/web deployment/api` or `deployment web api`.
pub fn targets(args: &[String]) -> Result<Vec<(&'static ResourceType, String)>, CliError> {
    let Some(first) = args.first() else {
        return Err(CliError::Usage(
            "name at least one object, e.g. deployment/web".into(),
        ));
    };
    if first.contains('/') {
        return args
            .iter()
            .map(|a| {
                let (kind, name) = a.split_once('/').ok_or_else(|| {
                    CliError::Usage(format!(
                        "\"{a}\" is not in TYPE/NAME form; write every object as TYPE/NAME, e.g. deployment/{a}"
                    ))
                })?;
                if name.is_empty() || name.contains('/') {
                    return Err(CliError::Usage(format!(
                        "\"{a}\" is not in TYPE/NAME form, e.g. deployment/web"
                    )));
                }
                Ok((resolve_kind(kind)?, name.to_string()))
            })
            .collect();
    }
    let rt = resolve_kind(first)?;
    let names = &args[1..];
    if names.is_empty() {
        return Err(CliError::Usage(format!(
            "name the {} to act on, e.g. {}/NAME or {} NAME",
            rt.plural, rt.singular, rt.singular
        )));
    }
    if let Some(bad) = names.iter().find(|n| n.contains('/')) {
        return Err(CliError::Usage(format!(
            "there is no need to give a type as a separate argument with TYPE/NAME (\"{bad}\"); write {bad} alone"
        )));
    }
    Ok(names.iter().map(|n| (rt, n.clone())).collect())
}

/// Only Deployments have rollouts here.
fn deployment_targets(args: &[String], verb: &str) -> Result<Vec<String>, CliError> {
    targets(args)?
        .into_iter()
        .map(|(rt, name)| {
            if rt.kind == "Deployment" {
                Ok(name)
            } else {
                Err(CliError::Usage(format!(
                    "rollout {verb} supports deployments only, not {}",
                    rt.plural
                )))
            }
        })
        .collect()
}

/// Deployments and StatefulSets have rollouts: `status`, `history` and `undo`.
fn workload_targets(
    args: &[String],
    verb: &str,
) -> Result<Vec<(&'static ResourceType, String)>, CliError> {
    let targets = targets(args)?;
    if let Some((rt, _)) = targets
        .iter()
        .find(|(rt, _)| !matches!(rt.kind, "Deployment" | "StatefulSet"))
    {
        return Err(CliError::Usage(format!(
            "rollout {verb} supports deployments and statefulsets, not {}",
            rt.plural
        )));
    }
    Ok(targets)
}

const STATEFULSET: &str = "statefulset.apps";

fn failed(e: RolloutError) -> CliError {
    match e {
        RolloutError::Client(c) => CliError::Client(c),
        other => CliError::Failed(other.to_string()),
    }
}

/// Runs `each` for every target, printing as it goes; every failure is reported, and any
/// makes the command fail.
async fn for_each<F, Fut>(names: Vec<String>, mut each: F) -> Result<(), CliError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), CliError>>,
{
    let mut errors = Vec::new();
    for name in names {
        if let Err(e) = each(name).await {
            errors.push(e);
        }
    }
    all_or_errors(errors)
}

const DEPLOYMENT: &str = "deployment.apps";

pub async fn rollout(client: &Client, args: RolloutArgs) -> Result<(), CliError> {
    match args.command {
        RolloutCommand::Status(a) => status(client, a).await,
        RolloutCommand::History(a) => history(client, a).await,
        RolloutCommand::Undo(a) => {
            let ns = namespace_or_default(&a.targets.namespace);
            let targets = workload_targets(&a.targets.resources, "undo")?;
            let to_revision = a.to_revision;
            let mut errors = Vec::new();
            for (rt, name) in targets {
                let (outcome, shown) = if rt.kind == "StatefulSet" {
                    (
                        rollout::undo_statefulset(client, &ns, &name, to_revision).await,
                        STATEFULSET,
                    )
                } else {
                    (
                        rollout::undo(client, &ns, &name, to_revision).await,
                        DEPLOYMENT,
                    )
                };
                match outcome {
                    Ok(UndoOutcome::RolledBack { .. }) => println!("{shown}/{name} rolled back"),
                    Ok(UndoOutcome::Skipped { revision }) => println!(
                        "{shown}/{name} skipped rollback (current template already matches revision {revision})"
                    ),
                    Err(e) => errors.push(failed(e)),
                }
            }
            all_or_errors(errors)
        }
        RolloutCommand::Restart(a) => {
            let ns = namespace_or_default(&a.namespace);
            let names = deployment_targets(&a.resources, "restart")?;
            for_each(names, |name| {
                let ns = ns.clone();
                async move {
                    rollout::restart(client, &ns, &name).await.map_err(failed)?;
                    println!("{DEPLOYMENT}/{name} restarted");
                    Ok(())
                }
            })
            .await
        }
        RolloutCommand::Pause(a) => pause_or_resume(client, a, true).await,
        RolloutCommand::Resume(a) => pause_or_resume(client, a, false).await,
    }
}

async fn pause_or_resume(client: &Client, a: Targets, pause: bool) -> Result<(), CliError> {
    let ns = namespace_or_default(&a.namespace);
    let names = deployment_targets(&a.resources, if pause { "pause" } else { "resume" })?;
    for_each(names, |name| {
        let ns = ns.clone();
        async move {
            if pause {
                rollout::pause(client, &ns, &name).await.map_err(failed)?;
                println!("{DEPLOYMENT}/{name} paused");
            } else {
                rollout::resume(client, &ns, &name).await.map_err(failed)?;
                println!("{DEPLOYMENT}/{name} resumed");
            }
            Ok(())
        }
    })
    .await
}

/// A Go-style duration for `--timeout`; `0` and `0s` mean no limit.
fn parse_timeout(s: &str) -> Result<Option<std::time::Duration>, CliError> {
    if s.trim() == "0" {
        return Ok(None);
    }
    let secs = super::logs::parse_duration_secs(s)?;
    Ok((secs > 0).then(|| std::time::Duration::from_secs(secs)))
}

async fn status(client: &Client, a: StatusArgs) -> Result<(), CliError> {
    let ns = namespace_or_default(&a.targets.namespace);
    let targets = workload_targets(&a.targets.resources, "status")?;
    let [(rt, name)] = targets.as_slice() else {
        return Err(CliError::Usage(
            "rollout status follows one deployment or statefulset at a time".into(),
        ));
    };
    let options = StatusOptions {
        revision: (a.revision > 0).then_some(a.revision),
        watch: a.watch,
        timeout: parse_timeout(&a.timeout)?,
    };
    rollout::wait_rollout(client, rt, &ns, name, &options, |s| {
        println!("{}", s.message)
    })
    .await
    .map_err(failed)?;
    Ok(())
}

async fn history(client: &Client, a: HistoryArgs) -> Result<(), CliError> {
    let ns = namespace_or_default(&a.targets.namespace);
    let targets = workload_targets(&a.targets.resources, "history")?;
    let wanted = a.revision;
    let mut errors = Vec::new();
    for (rt, name) in targets {
        let (revisions, shown) = if rt.kind == "StatefulSet" {
            (
                rollout::list_statefulset_history(client, &ns, &name)
                    .await
                    .map(|(_, h)| h),
                STATEFULSET,
            )
        } else {
            (rollout::list_history(client, &ns, &name).await, DEPLOYMENT)
        };
        let revisions = match revisions {
            Ok(r) => r,
            Err(e) => {
                errors.push(failed(e));
                continue;
            }
        };
        if wanted > 0 {
            match rollout::find_revision(&revisions, wanted) {
                Some(rev) => {
                    println!("{shown}/{name} with revision #{wanted}");
                    println!("{}", rollout::revision_details(rev));
                }
                None => errors.push(failed(RolloutError::RevisionNotFound { revision: wanted })),
            }
        } else if revisions.is_empty() {
            println!("{shown}/{name}");
            println!("No rollout history found.");
        } else {
            println!("{shown}/{name}");
            println!("{}", rollout::history_table(&revisions));
        }
    }
    all_or_errors(errors)
}

pub async fn scale(client: &Client, a: ScaleArgs) -> Result<(), CliError> {
    if a.replicas < 0 {
        return Err(failed(RolloutError::NegativeReplicas));
    }
    let ns = namespace_or_default(&a.namespace);
    let targets = targets(&a.resources)?;
    if let Some((rt, _)) = targets.iter().find(|(rt, _)| !rt.scale_subresource) {
        return Err(failed(RolloutError::NotScalable {
            resource: rt.group_resource(),
        }));
    }
    let current = (a.current_replicas >= 0).then_some(a.current_replicas);
    let mut errors = Vec::new();
    for (rt, name) in targets {
        match rollout::scale(client, rt, &ns, &name, a.replicas, current).await {
            Ok(_) => println!("{}/{name} scaled", rt.singular_group()),
            Err(e) => errors.push(failed(e)),
        }
    }
    all_or_errors(errors)
}

/// The outcome of a command over several objects: each failure is printed as kubectl does,
/// one `error:` line each, after the successes.
fn all_or_errors(mut errors: Vec<CliError>) -> Result<(), CliError> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(CliError::Failed(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\nerror: "),
        )),
    }
}

/// Splits `set image` arguments into the objects and the `CONTAINER=IMAGE` pairs.
pub fn image_args(args: &[String]) -> Result<(Vec<String>, Vec<ImageUpdate>), CliError> {
    let mut resources = Vec::new();
    let mut images = Vec::new();
    for a in args {
        match a.split_once('=') {
            Some((container, image)) => {
                if container.is_empty() || image.is_empty() {
                    return Err(CliError::Usage(format!(
                        "\"{a}\" is not CONTAINER=IMAGE, e.g. web=nginx:1.27"
                    )));
                }
                images.push((container.to_string(), image.to_string()));
            }
            None if images.is_empty() => resources.push(a.clone()),
            None => {
                return Err(CliError::Usage(format!(
                    "\"{a}\" comes after the images; name the objects first, then CONTAINER=IMAGE pairs"
                )));
            }
        }
    }
    if images.is_empty() {
        return Err(CliError::Usage(
            "at least one image update is required, e.g. web=nginx:1.27".into(),
        ));
    }
    Ok((resources, images))
}

pub async fn set(client: &Client, a: SetArgs) -> Result<(), CliError> {
    let SetCommand::Image(a) = a.command;
    let ns = namespace_or_default(&a.namespace);
    let (resources, images) = image_args(&a.args)?;
    let targets = targets(&resources)?;
    if let Some((rt, _)) = targets
        .iter()
        .find(|(rt, _)| !matches!(rt.kind, "Deployment" | "ReplicaSet" | "StatefulSet"))
    {
        return Err(CliError::Usage(format!(
            "set image supports deployments, replicasets and statefulsets, not {}",
            rt.plural
        )));
    }
    let mut errors = Vec::new();
    for (rt, name) in targets {
        match rollout::set_image(client, rt, &ns, &name, &images).await {
            Ok(Some(_)) => println!("{}/{name} image updated", rt.singular_group()),
            // Nothing differed: kubectl prints nothing either.
            Ok(None) => {}
            Err(e) => errors.push(failed(e)),
        }
    }
    all_or_errors(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn targets_in_both_forms() {
        let t = targets(&strings(&["deploy/web", "rs/api"])).expect("slash form");
        let got: Vec<(&str, &str)> = t.iter().map(|(r, n)| (r.kind, n.as_str())).collect();
        assert_eq!(got, vec![("Deployment", "web"), ("ReplicaSet", "api")]);
        let t = targets(&strings(&["deployments.apps", "a", "b"])).expect("type name");
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].1, "b");
        for bad in [
            &["deployment"][..],
            &["deployment/"],
            &["deploy/web", "api"],
            &["deploy", "deploy/web"],
            &["gizmo/web"],
        ] {
            assert!(targets(&strings(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn set_image_arguments() {
        let (r, i) =
            image_args(&strings(&["deployment/web", "main=busybox:2", "*=x"])).expect("ok");
        assert_eq!(r, strings(&["deployment/web"]));
        assert_eq!(
            i,
            vec![
                ("main".to_string(), "busybox:2".to_string()),
                ("*".to_string(), "x".to_string())
            ]
        );
        assert!(image_args(&strings(&["deployment/web"])).is_err());
        assert!(image_args(&strings(&["deployment/web", "=x"])).is_err());
        assert!(image_args(&strings(&["deployment/web", "a=x", "deployment/api"])).is_err());
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("0s").expect("0s"), None);
        assert_eq!(parse_timeout("0").expect("0"), None);
        assert_eq!(
            parse_timeout("1m").expect("1m"),
            Some(std::time::Duration::from_secs(60))
        );
        assert!(parse_timeout("soon").is_err());
    }
}
