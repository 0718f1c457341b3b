//! `berth backup FILE` (through the daemon, which takes the store's hot copy) and
//! `berth restore FILE` (with the daemon stopped).

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::client::Client;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the archive (zstd-compressed tar).
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// An archive written by berth backup.
    pub file: PathBuf,
    /// The configuration to restore under (written from the backup when it does not exist).
    #[arg(long, value_name = "FILE", default_value = crate::daemon::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Restore into this state directory instead of the configuration's.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Streams the daemon's archive into a private temporary file beside FILE, checks it
/// whole, then renames it into place: FILE is either a complete, checked backup or absent.
pub async fn backup(client: &Client, args: BackupArgs) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    use tokio::io::AsyncWriteExt;
    let file = args.file;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CliError::Usage(format!("{} is not a file name", file.display())))?;
    let partial = file.with_file_name(format!(".{name}.partial"));
    let fail = |what: &str, e: std::io::Error| {
        CliError::Failed(format!("cannot {what} {}: {e}", partial.display()))
    };
    let mut stream = client.backup().await?;
    let std_file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| fail("create", e))?;
    let mut out = tokio::fs::File::from_std(std_file);
    let result = async {
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk?).await.map_err(|e| fail("write", e))?;
        }
        out.sync_all().await.map_err(|e| fail("write", e))?;
        let path = partial.clone();
        tokio::task::spawn_blocking(move || crate::backup::check(&path))
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?
            .map_err(|e| {
                CliError::Failed(format!(
                    "the daemon's archive is incomplete ({e}); see the daemon's log (journalctl -u berth)"
                ))
            })
    }
    .await;
    let checked = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &file).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        CliError::Failed(format!("cannot write {}: {e}", file.display()))
    })?;
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let volume_files = checked
        .files
        .keys()
        .filter(|n| n.starts_with(&format!("{}/", crate::backup::VOLUMES_DIR)))
        .count();
    println!(
        "Backup of node {} written to {} ({size} bytes): the store, {volume_files} volume files ({} bytes){}{}.",
        checked.manifest.node_name,
        file.display(),
        checked.volume_bytes(),
        if checked.files.contains_key(crate::backup::KEY_ENTRY) {
            ", the secrets key"
        } else {
            ""
        },
        if checked.files.contains_key(crate::backup::CONFIG_ENTRY) {
            ", the configuration"
        } else {
            ""
        },
    );
    println!(
        "It holds the secrets key: keep it as safe as the server. Images are not in it; restore brings them back by pulling (or import them)."
    );
    Ok(())
}

/// `berth restore`: exit code 1 when it refused or failed. Run without any async runtime.
pub fn restore(args: RestoreArgs) -> i32 {
    let explicit = args.config.as_os_str() != crate::daemon::DEFAULT_CONFIG;
    let mut config = match crate::daemon::Config::load(&args.config, explicit) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    config.config_file = Some(args.config.clone());
    if let Some(dir) = args.state_dir {
        config.state_dir = dir;
    }
    let key = config.state_dir.join(crate::backup::KEY_ENTRY);
    match crate::backup::restore(&config, &args.file, &key) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            println!(
                "Start berth (systemctl start berth): the workloads start once their images are here."
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
