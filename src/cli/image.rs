//! `berth image import | ls | inspect | rm`: the node's local images, through the image
//! API (`/apis/images.berth.dev/v1/images`).

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{CliError, Output};
use crate::client::Client;

const IMAGES_PATH: &str = "/apis/images.berth.dev/v1/images";

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import a `docker save` or OCI image-layout archive (FILE, or - for stdin).
    Import {
        /// The archive; `-` reads standard input.
        file: String,
        /// Name (repo[:tag]) for images the archive does not name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List local images.
    #[command(alias = "list")]
    Ls {
        /// Output format.
        #[arg(short = 'o', long, value_enum)]
        output: Option<Output>,
        /// Show full image ids.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Show an image's details (config, layers) as YAML or JSON.
    Inspect {
        /// Reference or (a prefix of) the image id.
        reference: String,
        #[arg(short = 'o', long, value_enum)]
        output: Option<Output>,
    },
    /// Remove images; their layers go when no other image uses them.
    #[command(alias = "remove")]
    Rm {
        /// References or image ids.
        #[arg(required = true)]
        references: Vec<String>,
    },
}

/// A reference as one path segment.
fn segment(reference: &str) -> String {
    form_urlencoded::byte_serialize(reference.as_bytes()).collect()
}

pub async fn image(client: &Client, args: ImageArgs) -> Result<(), CliError> {
    match args.command {
        ImageCommand::Import { file, name } => import(client, &file, name.as_deref()).await,
        ImageCommand::Ls { output, no_trunc } => ls(client, output, no_trunc).await,
        ImageCommand::Inspect { reference, output } => {
            let v = client
                .request(
                    hyper::Method::GET,
                    &format!("{IMAGES_PATH}/{}", segment(&reference)),
                    None,
                    None,
                )
                .await?;
            print_value(&v, output)
        }
        ImageCommand::Rm { references } => {
            let mut failed = Vec::new();
            for r in references {
                match client
                    .request(
                        hyper::Method::DELETE,
                        &format!("{IMAGES_PATH}/{}", segment(&r)),
                        None,
                        None,
                    )
                    .await
                {
                    Ok(v) => {
                        for u in v["details"]["untagged"].as_array().into_iter().flatten() {
                            println!("Untagged: {}", u.as_str().unwrap_or_default());
                        }
                        for d in v["details"]["deleted"].as_array().into_iter().flatten() {
                            println!("Deleted: {}", d.as_str().unwrap_or_default());
                        }
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        failed.push(r);
                    }
                }
            }
            if failed.is_empty() {
                Ok(())
            } else {
                Err(CliError::Failed(format!(
                    "{} image(s) not removed: {}",
                    failed.len(),
                    failed.join(", ")
                )))
            }
        }
    }
}

async fn import(client: &Client, file: &str, name: Option<&str>) -> Result<(), CliError> {
    let path = match name {
        Some(n) => format!("{IMAGES_PATH}?name={}", segment(n)),
        None => IMAGES_PATH.to_string(),
    };
    let content_type = "application/x-tar";
    let result = if file == "-" {
        client
            .upload(&path, content_type, tokio::io::stdin())
            .await?
    } else {
        let f = tokio::fs::File::open(file)
            .await
            .map_err(|e| CliError::Failed(format!("cannot open {file}: {e}")))?;
        client.upload(&path, content_type, f).await?
    };
    for img in result["items"].as_array().into_iter().flatten() {
        println!(
            "Imported {} ({})",
            img["metadata"]["name"].as_str().unwrap_or_default(),
            short_id(img["spec"]["id"].as_str().unwrap_or_default(), false)
        );
    }
    Ok(())
}

fn short_id(id: &str, full: bool) -> String {
    if full {
        return id.to_string();
    }
    id.strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .take(12)
        .collect()
}

/// Splits a familiar reference into repository and tag (or digest).
fn repo_tag(familiar: &str) -> (String, String) {
    if let Some((repo, digest)) = familiar.split_once('@') {
        return (repo.to_string(), digest.to_string());
    }
    match familiar.rfind(':') {
        Some(i) if !familiar[i..].contains('/') => {
            (familiar[..i].to_string(), familiar[i + 1..].to_string())
        }
        _ => (familiar.to_string(), "<none>".to_string()),
    }
}

/// Bytes as docker prints them: decimal units, four significant digits (`%.4g`).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    let decimals = match v {
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let text = format!("{v:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{}", UNITS[unit])
}

async fn ls(client: &Client, output: Option<Output>, no_trunc: bool) -> Result<(), CliError> {
    let list = client
        .request(hyper::Method::GET, IMAGES_PATH, None, None)
        .await?;
    let items: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    match output {
        Some(Output::Json | Output::Yaml) => return print_value(&list, output),
        Some(Output::Name) => {
            for i in &items {
                println!(
                    "image/{}",
                    i["metadata"]["name"].as_str().unwrap_or_default()
                );
            }
            return Ok(());
        }
        _ => {}
    }
    let now = jiff::Timestamp::now();
    let mut lines = vec![vec![
        "IMAGE".to_string(),
        "TAG".into(),
        "IMAGE ID".into(),
        "CREATED".into(),
        "SIZE".into(),
    ]];
    for i in &items {
        let (repo, tag) = repo_tag(i["spec"]["familiarName"].as_str().unwrap_or_default());
        let created = i["metadata"]["creationTimestamp"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| crate::api::table::human_duration(now.duration_since(t)) + " ago")
            .unwrap_or_default();
        lines.push(vec![
            repo,
            tag,
            short_id(i["spec"]["id"].as_str().unwrap_or_default(), no_trunc),
            created,
            human_size(i["spec"]["size"].as_u64().unwrap_or_default()),
        ]);
    }
    if items.is_empty() {
        eprintln!("No images found; import one with: berth image import FILE");
        return Ok(());
    }
    print!("{}", crate::api::table::tabwrite(&lines, 0, 3));
    Ok(())
}

fn print_value(v: &Value, output: Option<Output>) -> Result<(), CliError> {
    let text = match output {
        Some(Output::Json) => {
            serde_json::to_string_pretty(v).map_err(|e| CliError::Failed(e.to_string()))? + "\n"
        }
        _ => serde_yaml::to_string(v).map_err(|e| CliError::Failed(e.to_string()))?,
    };
    print!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_and_tag_split_like_docker_images() {
        assert_eq!(
            repo_tag("busybox:latest"),
            ("busybox".into(), "latest".into())
        );
        assert_eq!(
            repo_tag("localhost:5000/app"),
            ("localhost:5000/app".into(), "<none>".into())
        );
        assert_eq!(
            repo_tag("localhost:5000/app:1.2"),
            ("localhost:5000/app".into(), "1.2".into())
        );
        assert_eq!(
            repo_tag("app@sha256:abc"),
            ("app".into(), "sha256:abc".into())
        );
    }

    #[test]
    fn sizes_print_in_decimal_units() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(4_300_000), "4.3MB");
        assert_eq!(human_size(12_000), "12kB");
    }

    #[test]
    fn references_become_one_path_segment() {
        assert_eq!(
            segment("berth.local/busybox:latest"),
            "berth.local%2Fbusybox%3Alatest"
        );
    }
}
