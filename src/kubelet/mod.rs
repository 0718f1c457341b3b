//! The kubelet: runs this node's pods. It registers the Node ([`node`]), owns the container
//! runtime ([`crate::runtime`]) and the local images ([`crate::image`]), runs one worker per
//! bound pod, and serves the node side of the API (logs, exec, images, metrics) through
//! [`crate::server::node`]'s traits.

pub mod exec;
pub mod images;
pub mod logs;
pub mod metrics;
pub mod node;
pub mod prober;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::image::{ImageError, ImageStore};
use crate::runtime::{Runtime, RuntimeError, RuntimeOptions};
use crate::server::node::NodeServices;

/// What the kubelet needs to know from the daemon's configuration.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// `<stateDir>`: containers go to `containers/`, images to `images/`.
    pub state_dir: PathBuf,
    pub log_dir: PathBuf,
    pub run_dir: PathBuf,
    pub cgroup_parent: String,
    /// The first CrashLoopBackOff delay (Kubernetes: 10 s, doubling up to 5 min).
    pub crash_loop_base: Duration,
    /// The `berth` binary run as `berth shim` (default: this executable).
    pub shim_binary: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("cannot start the container runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("cannot open the image store: {0}")]
    Images(#[from] ImageError),
}

/// The node agent. Shared (`Arc`) by its workers and the services it gives the server.
#[derive(Debug)]
pub struct Kubelet {
    pub config: KubeletConfig,
    pub runtime: Arc<Runtime>,
    pub images: Arc<ImageStore>,
}

impl Kubelet {
    /// Opens the runtime (creating berth's cgroup parent) and the image store.
    pub fn new(config: KubeletConfig) -> Result<Arc<Kubelet>, KubeletError> {
        let options = RuntimeOptions {
            shim_binary: config.shim_binary.clone(),
            cgroup_parent: config.cgroup_parent.clone(),
            ..Default::default()
        };
        let runtime = Runtime::with_options(
            config.state_dir.join("containers"),
            &config.run_dir,
            &config.log_dir,
            options,
        )?;
        let images = ImageStore::open(&config.state_dir.join("images"))?;
        Ok(Arc::new(Kubelet {
            config,
            runtime: Arc::new(runtime),
            images: Arc::new(images),
        }))
    }

    /// The services the API server offers on this node's behalf.
    pub fn services(self: &Arc<Self>) -> NodeServices {
        NodeServices {
            images: Some(Arc::new(images::Images(self.images.clone()))),
            logs: Some(Arc::new(logs::Logs::new(self.runtime.clone()))),
            metrics: Some(Arc::new(Arc::new(metrics::Metrics::new(
                self.runtime.clone(),
            )))),
            exec: Some(Arc::new(exec::Exec(self.runtime.clone()))),
        }
    }
}
