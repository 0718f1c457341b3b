//! berth: a single-node, Kubernetes-style container orchestrator appliance.
//!
//! Modules in reading order, and the rules for what may depend on what:
//!
//! - [`api`]: object kinds (k8s-openapi types), the resource registry, admission (strict
//!   decoding, defaulting, validation), `metav1.Status` errors, selectors, patches, tables,
//!   watch events. Depends on nothing internal.
//! - [`store`]: the only code that opens LMDB. One write gate, a global revision used as
//!   every object's `resourceVersion`, a bounded change history for watches. Depends on `api`.
//! - [`server`]: the Kubernetes-shaped REST API over HTTP/1.1 on a Unix socket; peer
//!   credentials decide who may write. Maps errors to Status exactly once. Depends on `api`
//!   and `store`.
//! - [`events`]: recording Events (deduplicated, expired) through the store. Depends on
//!   `api` and `store`.
//! - [`controllers`]: reconcilers over the store (in-process, through the same gate as the
//!   API). Depend only on `api` and `store`.
//! - [`scheduler`]: binds pending pods to a node they fit (resources, selectors,
//!   affinity, taints, host ports). Depends only on `api`, `store` and `events`.
//! - [`kubelet`]: runs this node's pods: Node registration, one worker per pod (sandbox,
//!   init and app containers, restarts with back-off, status, graceful termination,
//!   re-adoption after a restart), and the node
//!   side of the API (logs, exec, port-forward, images, metrics) behind the traits of
//!   `server::node`.
//!   The only module that touches the runtime, images, volumes and the network. Depends
//!   on `api`, `store`, `events`, `server::node` (a contract, not the HTTP server), and
//!   `runtime`/`image`.
//! - [`image`]: local images: content-addressed blobs, unpacked layers, overlayfs rootfs,
//!   Kubernetes' command/env/pull-policy rules. Depends on nothing internal; used only by
//!   the kubelet.
//! - [`network`]: the pod network: a bridge, a veth pair per pod, persisted IPAM, IP
//!   forwarding and egress masquerade (rtnetlink, nftables), NetworkPolicy rules. Depends
//!   only on `api` (label selectors, object fields); used only by the kubelet.
//! - [`runtime`]: containers for the kubelet: pod sandboxes, cgroups (v1 and v2), and one
//!   `berth shim` process per container, the only code that calls libcontainer. Depends on
//!   nothing internal; only the kubelet may use it.
//! - [`ingress`]: the built-in Ingress controller: IngressClass `berth`, the HTTP and HTTPS
//!   listeners on the host and the reverse proxy to the pods (hyper, rustls). Reads the
//!   store like a controller; depends on `api` and `store`.
//! - [`backup`]: `berth backup`/`berth restore` archives: the store's hot copy, volume
//!   data, the secrets key and the configuration, checked before anything is restored.
//!   Depends on `store`.
//! - [`storage`]: node-local storage shared by the PersistentVolume controller and the
//!   kubelet: the `local-path` class, its volume directories, usage measurement. Depends on
//!   `api` and `store`.
//! - [`quota`]: volume capacities enforced by ext4/xfs project quotas where the file
//!   system has them, else the reason and how to enable them. Depends on nothing internal.
//! - [`daemon`]: the composition root: config → store → server/controllers → shutdown.
//! - [`client`]: the typed API client over the socket. Depends on `api`.
//! - [`cli`]: the `berth` commands. Sees only `client` and `api`, never the store.
//! - [`tui`]: the terminal UI (`berth` on a terminal, `berth tui`): state fed by watches,
//!   actions, views. Sees only `client` and `api`.

pub mod api;
pub mod backup;
pub mod cli;
pub mod client;
pub mod controllers;
pub mod daemon;
pub mod events;
pub mod image;
pub mod ingress;
pub mod kubelet;
pub mod network;
pub mod quota;
pub mod reset;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod storage;
pub mod store;
pub mod tui;
