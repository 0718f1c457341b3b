//! `berth image import | pull | prune | ls | inspect | rm`: the node's local images, through the image
//! API (`/apis/images.berth.dev/v1/images`).

use clap::{Args, Subcommand};
use serde_json::Value;

use super::{CliError, Output};
use crate::api::table::human_size;
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
    /// Pull an image from its registry (mirrors and credentials: registries.yaml).
    Pull {
        /// The image (`nginx:1.27`, `ghcr.io/org/app@sha256:…`).
        reference: String,
    },
    /// Remove every image no container uses.
    Prune,
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

/// An image object's id as `docker images` shows it (12 hex digits).
fn short_id(img: &Value) -> String {
    img["spec"]["id"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

/// A reference as one path segment.
fn segment(reference: &str) -> String {
    form_urlencoded::byte_serialize(reference.as_bytes()).collect()
}

pub async fn image(client: &Client, args: ImageArgs) -> Result<(), CliError> {
    match args.command {
        ImageCommand::Import { file, name } => import(client, &file, name.as_deref()).await,
        ImageCommand::Ls { output, no_trunc } => ls(client, output, no_trunc).await,
        ImageCommand::Prune => {
            let v = client
                .request(
                    hyper::Method::POST,
                    &format!("{IMAGES_PATH}?prune=true"),
                    None,
                    None,
                )
                .await?;
            let removed: Vec<&str> = v["removed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str())
                .collect();
            for r in &removed {
                println!("Deleted: {r}");
            }
            println!("{} image(s) removed", removed.len());
            Ok(())
        }
        ImageCommand::Pull { reference } => pull(client, &reference).await,
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
            short_id(img)
        );
    }
    Ok(())
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
    let mut lines = vec![
        crate::api::table::IMAGE_HEADERS
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    ];
    for i in &items {
        lines.push(crate::api::table::image_row(i, now, no_trunc));
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

/// `berth image pull`: streams the pull's progress — a bar per blob on a terminal, a line
/// per blob as it starts and ends otherwise — then says what was pulled.
async fn pull(client: &Client, reference: &str) -> Result<(), CliError> {
    use std::io::IsTerminal;
    println!("Pulling {reference} …");
    let started = std::time::Instant::now();
    let mut stream = client
        .open_stream(
            hyper::Method::POST,
            &format!("{IMAGES_PATH}?pull={}&progress=true", segment(reference)),
        )
        .await?;
    let mut view = PullView::new(std::io::stdout().is_terminal());
    let mut buf: Vec<u8> = Vec::new();
    let mut last = Value::Null;
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if v["kind"] == "PullProgress" {
                view.show(&v["status"]);
            } else {
                last = v;
            }
        }
    }
    if last["kind"] == "Status" {
        return Err(
            crate::client::ClientError::from(crate::api::ApiError::from_status(&last)).into(),
        );
    }
    let items = last["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return Err(CliError::Failed(
            "the daemon ended the pull without saying how it went: see journalctl -u berth"
                .to_string(),
        ));
    }
    for img in &items {
        println!(
            "Pulled {} ({}, {}) in {:.1}s",
            img["metadata"]["name"].as_str().unwrap_or_default(),
            short_id(img),
            human_size(img["spec"]["size"].as_u64().unwrap_or_default()),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// What `berth image pull` has shown of a pull so far.
struct PullView {
    terminal: bool,
    /// Lines drawn last time (terminal: redrawn in place).
    drawn: usize,
    /// Each blob's last state shown (plain output: a line when it changes).
    states: std::collections::BTreeMap<String, String>,
}

impl PullView {
    fn new(terminal: bool) -> PullView {
        PullView {
            terminal,
            drawn: 0,
            states: Default::default(),
        }
    }

    fn show(&mut self, status: &Value) {
        let blobs = status["blobs"].as_array().cloned().unwrap_or_default();
        let lines: Vec<String> = blobs
            .iter()
            .filter_map(|b| {
                let digest = b["digest"].as_str()?;
                let short: String = digest
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect();
                let size = b["size"].as_u64().unwrap_or_default();
                let done = b["done"].as_u64().unwrap_or_default().min(size);
                let state = b["state"].as_str().unwrap_or_default();
                if self.terminal {
                    Some(progress_line(&short, state, done, size))
                } else if self.states.get(digest).map(String::as_str) != Some(state) {
                    self.states.insert(digest.to_string(), state.to_string());
                    Some(format!("{short}: {state} ({})", human_size(size)))
                } else {
                    None
                }
            })
            .collect();
        if self.terminal {
            // Back to the first line of the last drawing, then draw over it.
            let mut out = String::new();
            if self.drawn > 0 {
                out.push_str(&format!("\x1b[{}A", self.drawn));
            }
            for l in &lines {
                out.push_str("\x1b[2K");
                out.push_str(l);
                out.push('\n');
            }
            print!("{out}");
            self.drawn = lines.len();
        } else {
            for l in &lines {
                println!("{l}");
            }
        }
    }
}

/// One blob's bar: `3f2a9c0d1e2b: downloading [=========>          ]  4.0 MiB/8.0 MiB`.
fn progress_line(short: &str, state: &str, done: u64, size: u64) -> String {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH).checked_div(size).unwrap_or(WIDTH).min(WIDTH);
    let mut bar = "=".repeat(filled as usize);
    if filled < WIDTH {
        bar.push('>');
        bar.push_str(&" ".repeat((WIDTH - filled - 1) as usize));
    }
    format!(
        "{short}: {state:<11} [{bar}] {:>9}/{}",
        human_size(done),
        human_size(size)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_with_the_bytes_in_hand() {
        assert_eq!(
            progress_line("abc", "downloading", 500, 1000),
            format!(
                "abc: downloading [{}>{}]      500B/1kB",
                "=".repeat(15),
                " ".repeat(14)
            )
        );
        assert!(progress_line("abc", "verified", 1000, 1000).contains(&"=".repeat(30)));
    }

    #[test]
    fn plain_output_says_each_state_once() {
        let mut v = PullView::new(false);
        let status = serde_json::json!({"blobs": [{"digest": "sha256:0123456789abcdef", "size": 10, "done": 5, "state": "downloading"}]});
        v.show(&status);
        v.show(&status);
        assert_eq!(v.states.len(), 1);
        assert_eq!(v.states["sha256:0123456789abcdef"], "downloading");
    }

    #[test]
    fn rows_split_repository_and_tag_like_docker_images() {
        use crate::api::table::{human_size, image_row};
        let now: jiff::Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let img = |familiar: &str| {
            serde_json::json!({"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"},
                "spec": {"familiarName": familiar, "id": "sha256:0123456789abcdef0123", "size": 1_234_567}})
        };
        let row = image_row(&img("busybox:latest"), now, false);
        assert_eq!(
            row,
            vec!["busybox", "latest", "0123456789ab", "60m ago", "1.235MB"]
        );
        assert_eq!(
            image_row(&img("localhost:5000/app"), now, true)[..3],
            [
                "localhost:5000/app",
                "<none>",
                "sha256:0123456789abcdef0123"
            ]
        );
        assert_eq!(
            image_row(&img("localhost:5000/app:1.2"), now, false)[1],
            "1.2"
        );
        assert_eq!(
            image_row(&img("app@sha256:abc"), now, false)[1],
            "sha256:abc"
        );
        assert_eq!(human_size(999), "999B");
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
