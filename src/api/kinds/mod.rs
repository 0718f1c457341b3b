//! Kind-specific defaulting and validation ([`Admit`] impls), following Kubernetes'
//! `pkg/apis/*/v1/defaults.go` and `pkg/apis/*/validation`.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PersistentVolume,
    PersistentVolumeClaim, Pod, ResourceQuota, Secret, Service,
};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::storage::v1::StorageClass;

use super::registry::Admit;

impl Admit for Pod {}
impl Admit for Service {}
impl Admit for Deployment {}
impl Admit for ReplicaSet {}
impl Admit for StatefulSet {}
impl Admit for Job {}
impl Admit for CronJob {}
impl Admit for Namespace {}
impl Admit for Node {}
impl Admit for Endpoints {}
impl Admit for ConfigMap {}
impl Admit for Secret {}
impl Admit for PersistentVolume {}
impl Admit for PersistentVolumeClaim {}
impl Admit for StorageClass {}
impl Admit for Ingress {}
impl Admit for IngressClass {}
impl Admit for NetworkPolicy {}
impl Admit for ResourceQuota {}
impl Admit for LimitRange {}
impl Admit for Event {}
