//! The kubelet: runs this node's pods. So far it registers the Node; pod workers, the
//! status manager, probes, images, volumes and the network come with the following issues.

pub mod node;
