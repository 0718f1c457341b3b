//! What the TUI knows: per-kind object caches fed by watches, the current view, selection,
//! filter, sort, dialogs, and the connection. Views borrow this and draw; actions change it.
//!
//! Invariant: `table` is the current view's rows as shown (namespace, filter and sort
//! applied); every change that can alter it ends with [`State::refresh_table`], so drawing
//! never computes rows.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::filter::Filter;
use super::logs::LogViewer;
use crate::api::meta;
use crate::api::registry::{self, ResourceType};
use crate::api::table;
use crate::api::validation::parse_quantity;

/// Warning events younger than this mark their object's row.
pub const WARNING_WINDOW: SignedDuration = SignedDuration::from_secs(10 * 60);

/// What a view lists: a kind of the API, or the node's images.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    Kind(&'static ResourceType),
    Images,
}

impl Source {
    /// The cache key: `deployments.apps`, `pods`, `images`.
    pub fn key(&self) -> String {
        match self {
            Source::Kind(rt) => rt.group_resource(),
            Source::Images => "images".to_string(),
        }
    }

    /// The title of the view: `Pods`, `Deployments`, `Images`.
    pub fn title(&self) -> String {
        match self {
            // The plural in the kind's casing: `PersistentVolumeClaims`, `NetworkPolicies`.
            Source::Kind(rt) => {
                let common = rt
                    .plural
                    .bytes()
                    .zip(rt.kind.bytes())
                    .take_while(|(p, k)| *p == k.to_ascii_lowercase())
                    .count();
                format!("{}{}", &rt.kind[..common], &rt.plural[common..])
            }
            Source::Images => "Images".to_string(),
        }
    }

    pub fn namespaced(&self) -> bool {
        match self {
            Source::Kind(rt) => rt.namespaced,
            Source::Images => false,
        }
    }

    pub fn kind(&self) -> Option<&'static ResourceType> {
        match self {
            Source::Kind(rt) => Some(rt),
            Source::Images => None,
        }
    }

    /// Resolves a view name as typed after `:` (`po`, `deploy`, `svc`, `images`, `img`).
    pub fn resolve(name: &str) -> Option<Source> {
        let lower = name.trim().to_ascii_lowercase();
        if matches!(lower.as_str(), "images" | "image" | "img" | "im") {
            return Some(Source::Images);
        }
        registry::resolve(&lower).map(Source::Kind)
    }

    /// Whether `F` port-forwards to objects of this view (pods, services).
    pub fn forwardable(&self) -> bool {
        self.is("", "Pod") || self.is("", "Service")
    }

    /// Whether `S` scales objects of this view.
    pub fn scalable(&self) -> bool {
        matches!(self, Source::Kind(rt) if rt.scale_subresource)
    }

    pub fn is(&self, group: &str, kind: &str) -> bool {
        matches!(self, Source::Kind(rt) if rt.group == group && rt.kind == kind)
    }
}

/// How a cache is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheStatus {
    /// The first list has not answered yet.
    Loading,
    /// Listed, and (for kinds) watching.
    Live,
    /// The last list or watch failed; retrying. The cache keeps its last contents.
    Retrying(String),
}

/// Objects of one kind by (namespace, name).
#[derive(Debug, Clone)]
pub struct Cache {
    pub objects: BTreeMap<(String, String), Value>,
    pub status: CacheStatus,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            objects: BTreeMap::new(),
            status: CacheStatus::Loading,
        }
    }
}

/// The key of an object in a cache.
pub fn object_key(obj: &Value) -> (String, String) {
    (
        meta::namespace(obj).to_string(),
        meta::name(obj).to_string(),
    )
}

/// The colour class of a row, from its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Normal,
    Healthy,
    Pending,
    Failed,
    Completed,
    Terminating,
}

/// One row as shown.
#[derive(Debug, Clone)]
pub struct Row {
    pub key: (String, String),
    pub cells: Vec<String>,
    pub tone: Tone,
    /// A Warning event about this object happened recently.
    pub warning: bool,
}

/// The rows of the current view.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub headers: Vec<String>,
    /// Columns `kubectl get -o wide` adds: shown only when every column fits.
    pub wide: Vec<bool>,
    pub rows: Vec<Row>,
    /// Width of each column: the widest of its header and cells.
    pub widths: Vec<usize>,
    /// Objects in the namespace before filtering.
    pub total: usize,
}

/// A sort order: a column of the table (by index) and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sort {
    pub column: usize,
    pub descending: bool,
}

/// Modal state: what keys go to.
#[derive(Debug, Clone)]
pub enum Mode {
    Normal,
    /// Typing after `:`.
    Command(String),
    /// Typing after `/`.
    Filter(String),
    Dialog(Dialog),
}

/// A write waiting for the user's yes.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub source: Source,
    pub namespace: String,
    pub name: String,
}

impl Target {
    pub fn namespace(&self) -> Option<&str> {
        (!self.namespace.is_empty()).then_some(self.namespace.as_str())
    }

    /// `pod/web-1` or `deployment.apps/web`.
    pub fn display(&self) -> String {
        match self.source {
            Source::Kind(rt) => format!("{}/{}", rt.singular_group(), self.name),
            Source::Images => format!("image/{}", self.name),
        }
    }
}

/// Dialogs over the table.
#[derive(Debug, Clone)]
pub enum Dialog {
    Help,
    /// Read-only text: describe, YAML, events.
    Text(TextView),
    ConfirmDelete(Target),
    /// Roll a Deployment back to `revision` (its images shown)?
    ConfirmUndo {
        target: Target,
        revision: i64,
        images: String,
    },
    Scale {
        target: Target,
        input: String,
    },
    /// `LOCAL:REMOTE` for a port-forward to a pod or service.
    PortForward {
        target: Target,
        input: String,
    },
    /// A failure the user must acknowledge.
    Error {
        title: String,
        message: String,
    },
    Logs(Box<LogViewer>),
}

/// Scrollable text.
#[derive(Debug, Clone)]
pub struct TextView {
    pub title: String,
    pub lines: Vec<String>,
    pub scroll: usize,
    /// The object of a Secret's YAML, kept so `x` can reveal its values.
    pub secret: Option<Value>,
}

/// Node CPU and memory: allocatable, requested by pods, and in use when metrics answer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacity {
    pub cpu_allocatable_milli: i128,
    pub mem_allocatable: i128,
    pub cpu_requested_milli: i128,
    pub mem_requested: i128,
}

/// The pod view's usage columns.
const POD_USAGE_COLUMNS: [&str; 2] = ["CPU", "MEM"];

/// A pod's usage cells: CPU and memory in use (`n/a` when the metrics API has no figure,
/// as for a pod that does not run).
/// A waiting pod's STATUS while an image of its is being pulled: `Pulling 42%`.
fn pulling(pod: &Value, status: &str, pulls: &HashMap<String, u8>) -> Option<String> {
    if pulls.is_empty() || !matches!(status, "ContainerCreating" | "Pending") {
        return None;
    }
    let spec = pod.get("spec")?;
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| spec.get(*k).and_then(Value::as_array).into_iter().flatten())
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .filter_map(|i| crate::image::normalize(i).ok())
        .find_map(|r| pulls.get(&r))
        .map(|p| format!("Pulling {p}%"))
}

fn pod_usage_cells(usage: Option<&Usage>) -> Vec<String> {
    match usage {
        Some(u) => vec![format!("{}m", u.cpu_milli), super::views::human_mem(u.mem)],
        None => vec!["n/a".to_string(); POD_USAGE_COLUMNS.len()],
    }
}

/// Usage from the metrics API, summed over nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub cpu_milli: i128,
    pub mem: i128,
}

/// A port-forward running for as long as the TUI does.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveForward {
    /// Where it listens: `127.0.0.1:8080`.
    pub local: String,
    /// The pod it forwards to: `pod/web-1`.
    pub pod: String,
    pub remote: u16,
}

impl ActiveForward {
    /// `127.0.0.1:8080 → pod/web-1:80`.
    pub fn display(&self) -> String {
        format!("{} → {}:{}", self.local, self.pod, self.remote)
    }
}

/// A short message on the status line.
#[derive(Debug, Clone, PartialEq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
}

/// Everything the TUI shows.
#[derive(Debug, Clone)]
pub struct State {
    /// The clock of the current frame (fixed in tests so ages do not drift). Set it with
    /// [`State::set_now`] so ages are rendered again.
    pub now: Timestamp,
    pub server_version: Option<String>,
    pub caches: HashMap<String, Cache>,
    pub source: Source,
    /// `None`: every namespace.
    pub namespace: Option<String>,
    pub filter: Filter,
    pub sort: Sort,
    /// Index into `table.rows`.
    pub selected: usize,
    /// The selected object, kept so the selection follows it when rows move.
    pub selected_key: Option<(String, String)>,
    /// First row shown (scrolling).
    pub offset: usize,
    pub mode: Mode,
    /// The last connection error while the daemon cannot be reached.
    pub disconnected: Option<String>,
    /// Why writes are refused (the server's 403 message), once one was.
    pub read_only: Option<String>,
    pub flash: Option<Flash>,
    /// Port-forwards started from the TUI, oldest first.
    pub forwards: Vec<ActiveForward>,
    pub usage: Option<Usage>,
    /// Each pod's usage from the metrics API, by (namespace, name).
    pub pod_usage: HashMap<(String, String), Usage>,
    /// The pulls under way: percent done by normalised image reference.
    pub pulls: HashMap<String, u8>,
    pub color: bool,
    pub table: Table,
    /// Header figures, computed with the table (not while drawing).
    pub summary: Summary,
    /// Objects or the clock changed since the rows were rendered.
    pub dirty: bool,
    rendered: Rendered,
    pub quit: bool,
}

/// Every object of the view rendered (all namespaces, no filter, no namespace column),
/// with the time its AGE or LAST SEEN counts from.
#[derive(Debug, Clone, Default)]
struct Rendered {
    /// The key of the source these rows are of.
    source: String,
    headers: Vec<String>,
    wide: Vec<bool>,
    rows: Vec<(Option<Timestamp>, Row)>,
}

/// What the header shows, from the node and pod caches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub capacity: Capacity,
    /// Pods: (total, running, pending, failed).
    pub pods: (usize, usize, usize, usize),
    pub namespaces: Vec<String>,
}

impl State {
    pub fn new(now: Timestamp, color: bool) -> State {
        let pods = registry::resolve("pods").map(Source::Kind);
        let mut s = State {
            now,
            server_version: None,
            caches: HashMap::new(),
            source: pods.unwrap_or(Source::Images),
            namespace: None,
            filter: Filter::default(),
            sort: Sort::default(),
            selected: 0,
            selected_key: None,
            offset: 0,
            mode: Mode::Normal,
            disconnected: None,
            read_only: None,
            flash: None,
            forwards: Vec::new(),
            usage: None,
            pod_usage: HashMap::new(),
            pulls: HashMap::new(),
            color,
            table: Table::default(),
            summary: Summary::default(),
            dirty: true,
            rendered: Rendered::default(),
            quit: false,
        };
        s.refresh_table();
        s
    }

    /// Moves the clock (ages change): the rows are rendered again on the next refresh.
    pub fn set_now(&mut self, now: Timestamp) {
        self.now = now;
        self.dirty = true;
    }

    pub fn cache(&self, source: &Source) -> Option<&Cache> {
        self.caches.get(&source.key())
    }

    pub fn cache_mut(&mut self, source: &Source) -> &mut Cache {
        self.caches.entry(source.key()).or_default()
    }

    /// A list answered: the cache becomes exactly these objects.
    pub fn replace_all(&mut self, source: &Source, items: Vec<Value>) {
        let cache = self.cache_mut(source);
        cache.objects = items.into_iter().map(|o| (object_key(&o), o)).collect();
        cache.status = CacheStatus::Live;
        self.disconnected = None;
        self.dirty = true;
    }

    /// A watch event arrived.
    pub fn apply_event(&mut self, source: &Source, kind: crate::api::watch::EventType, obj: Value) {
        use crate::api::watch::EventType;
        let cache = self.cache_mut(source);
        match kind {
            EventType::Added | EventType::Modified => {
                cache.objects.insert(object_key(&obj), obj);
            }
            EventType::Deleted => {
                cache.objects.remove(&object_key(&obj));
            }
            EventType::Bookmark | EventType::Error => {}
        }
        cache.status = CacheStatus::Live;
        self.disconnected = None;
        self.dirty = true;
    }

    /// A list or watch failed; `connection` when the daemon could not be reached at all.
    pub fn source_failed(&mut self, source: &Source, error: String, connection: bool) {
        self.cache_mut(source).status = CacheStatus::Retrying(error.clone());
        if connection {
            self.disconnected = Some(error);
        }
    }

    /// Namespaces for the number keys: `1` is the first by name, up to `9`.
    pub fn namespace_shortcuts(&self) -> Vec<String> {
        let mut names: Vec<String> = registry::resolve("namespaces")
            .and_then(|rt| self.cache(&Source::Kind(rt)))
            .map(|c| c.objects.keys().map(|(_, n)| n.clone()).collect())
            .unwrap_or_default();
        names.sort();
        names.truncate(9);
        names
    }

    /// The selected row's object.
    pub fn selected_object(&self) -> Option<&Value> {
        let row = self.table.rows.get(self.selected)?;
        self.cache(&self.source)?.objects.get(&row.key)
    }

    /// The selected row as a write target.
    pub fn selected_target(&self) -> Option<Target> {
        let row = self.table.rows.get(self.selected)?;
        Some(Target {
            source: self.source,
            namespace: row.key.0.clone(),
            name: row.key.1.clone(),
        })
    }

    /// Switches the view; the filter and sort start afresh.
    pub fn switch_to(&mut self, source: Source) {
        if self.source != source {
            self.source = source;
            self.sort = Sort::default();
            self.selected = 0;
            self.selected_key = None;
            self.offset = 0;
        }
        self.filter = Filter::default();
        self.refresh_table();
    }

    /// Moves the selection by `delta` rows, clamped.
    pub fn move_selection(&mut self, delta: isize) {
        let len = self.table.rows.len();
        if len == 0 {
            self.selected = 0;
            self.selected_key = None;
            return;
        }
        let next = (self.selected as isize + delta).clamp(0, len as isize - 1) as usize;
        self.select(next);
    }

    pub fn select(&mut self, index: usize) {
        self.selected = index.min(self.table.rows.len().saturating_sub(1));
        self.selected_key = self.table.rows.get(self.selected).map(|r| r.key.clone());
    }

    /// Keeps the selection visible in a table body of `height` rows.
    pub fn scroll_into_view(&mut self, height: usize) {
        let height = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        let max_offset = self.table.rows.len().saturating_sub(height);
        self.offset = self.offset.min(max_offset);
    }

    /// Whether the namespace column is shown (every namespace, a namespaced kind).
    pub fn shows_namespace(&self) -> bool {
        self.namespace.is_none() && self.source.namespaced()
    }

    /// Brings `table` up to date: renders the rows again when objects or the clock changed
    /// (`dirty`) or the view did, then applies namespace, filter and sort. A keystroke in
    /// the filter therefore costs the arranging, not the rendering.
    pub fn refresh_table(&mut self) {
        if self.dirty || self.rendered.source != self.source.key() {
            self.render();
            self.dirty = false;
        }
        self.arrange();
    }

    /// Renders every object of the view (all namespaces) and the header figures.
    fn render(&mut self) {
        self.summary = Summary {
            capacity: self.capacity(),
            pods: self.pod_counts(),
            namespaces: self.namespace_shortcuts(),
        };
        let warnings = self.recent_warnings();
        let mut out = Rendered {
            source: self.source.key(),
            ..Rendered::default()
        };
        let (headers, render): (Vec<String>, RowFn) = match self.source {
            Source::Kind(rt) => {
                let cols = table::columns(rt);
                out.wide = cols.iter().map(|c| c.priority > 0).collect();
                let headers = cols.iter().map(|c| c.header()).collect();
                let n = cols.len();
                let now = self.now;
                (
                    headers,
                    Box::new(move |obj: &Value| {
                        let cells = table::row(rt, obj, now);
                        (0..n)
                            .map(|i| cells.get(i).map(table::cell_text).unwrap_or_default())
                            .collect()
                    }),
                )
            }
            Source::Images => (
                crate::api::table::IMAGE_HEADERS
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                Box::new({
                    let now = self.now;
                    move |obj: &Value| crate::api::table::image_row(obj, now, false)
                }),
            ),
        };
        out.headers = headers;
        out.wide.resize(out.headers.len(), false);
        // Pods: usage from the metrics API after AGE (before the wide columns), so an
        // 80-column terminal keeps kubectl's columns first.
        let usage_at = if self.source.is("", "Pod") {
            out.headers.iter().position(|h| h == "AGE").map(|i| i + 1)
        } else {
            None
        };
        if let Some(at) = usage_at {
            for (i, h) in POD_USAGE_COLUMNS.iter().enumerate() {
                out.headers.insert(at + i, h.to_string());
                out.wide.insert(at + i, false);
            }
        }
        let status_col = out
            .headers
            .iter()
            .position(|h| matches!(h.as_str(), "STATUS" | "PHASE" | "TYPE"));
        let ready_col = out.headers.iter().position(|h| h == "READY");
        let is_event = self.source.is("", "Event");
        if let Some(cache) = self.caches.get(&self.source.key()) {
            out.rows.reserve(cache.objects.len());
            for (key, obj) in &cache.objects {
                let mut cells = render(obj);
                if let Some(at) = usage_at {
                    cells.splice(at..at, pod_usage_cells(self.pod_usage.get(key)));
                }
                let tone = tone_of(
                    status_col.and_then(|i| cells.get(i)).map(String::as_str),
                    ready_col.and_then(|i| cells.get(i)).map(String::as_str),
                    obj,
                );
                if usage_at.is_some()
                    && let Some(cell) = status_col.and_then(|i| cells.get_mut(i))
                    && let Some(p) = pulling(obj, cell, &self.pulls)
                {
                    *cell = p;
                }
                let uid = meta::uid(obj);
                let warning = (!uid.is_empty() && warnings.contains_key(uid))
                    || warnings.contains_key(&warning_key(self.source, key));
                let time = if is_event {
                    event_time(obj)
                } else {
                    meta::parse_time(meta::str_at(obj, "/metadata/creationTimestamp"))
                };
                out.rows.push((
                    time,
                    Row {
                        key: key.clone(),
                        cells,
                        tone,
                        warning,
                    },
                ));
            }
        }
        self.rendered = out;
    }

    /// The rendered rows of the current namespace, filtered and sorted, into `table`.
    fn arrange(&mut self) {
        let with_ns = self.shows_namespace();
        let rendered = &self.rendered;
        let mut table = Table {
            headers: rendered.headers.clone(),
            wide: rendered.wide.clone(),
            ..Table::default()
        };
        if with_ns {
            table.headers.insert(0, "NAMESPACE".to_string());
            table.wide.insert(0, false);
        }
        let is_event = self.source.is("", "Event");
        // Columns of durations since a time: sorted by that time, not by their text.
        let time_col = table
            .headers
            .iter()
            .position(|h| h == "AGE" || (is_event && h == "LAST SEEN"));
        let objects = self.caches.get(&self.source.key()).map(|c| &c.objects);
        let namespace = self
            .namespace
            .as_deref()
            .filter(|_| self.source.namespaced());
        let mut keyed: Vec<(Option<Timestamp>, Row)> = Vec::new();
        for (time, row) in &rendered.rows {
            if namespace.is_some_and(|ns| row.key.0 != ns) {
                continue;
            }
            table.total += 1;
            let mut row = row.clone();
            if with_ns {
                row.cells.insert(0, row.key.0.clone());
            }
            if !self.filter.is_empty() {
                let obj = objects.and_then(|o| o.get(&row.key));
                if !self.filter.matches(obj.unwrap_or(&Value::Null), &row.cells) {
                    continue;
                }
            }
            keyed.push((*time, row));
        }
        let Sort { column, descending } = self.sort;
        if column > 0 || descending {
            if Some(column) == time_col {
                // Ascending by the duration shown: the newest first.
                keyed.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.key.cmp(&b.1.key)));
            } else {
                keyed.sort_by(|a, b| {
                    natural_cmp(
                        a.1.cells.get(column).map(String::as_str).unwrap_or(""),
                        b.1.cells.get(column).map(String::as_str).unwrap_or(""),
                    )
                    .then_with(|| a.1.key.cmp(&b.1.key))
                });
            }
            if descending {
                keyed.reverse();
            }
        } else if is_event {
            // As `berth get events`: the newest last.
            keyed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.key.cmp(&b.1.key)));
        }
        table.rows = keyed.into_iter().map(|(_, r)| r).collect();
        table.widths = table.headers.iter().map(|h| h.chars().count()).collect();
        for row in &table.rows {
            for (w, c) in table.widths.iter_mut().zip(&row.cells) {
                *w = (*w).max(c.chars().count());
            }
        }
        self.table = table;
        // Keep the selection on the same object when it is still shown.
        let index = self
            .selected_key
            .as_ref()
            .and_then(|k| self.table.rows.iter().position(|r| &r.key == k));
        match index {
            Some(i) => self.selected = i,
            None => {
                self.selected = self.selected.min(self.table.rows.len().saturating_sub(1));
                self.selected_key = self.table.rows.get(self.selected).map(|r| r.key.clone());
            }
        }
    }

    /// Objects with a recent Warning event: by involved object UID, and by
    /// `kind/namespace/name` for events that carry no UID.
    fn recent_warnings(&self) -> HashMap<String, ()> {
        let mut out = HashMap::new();
        let Some(cache) = registry::resolve("events").and_then(|rt| self.cache(&Source::Kind(rt)))
        else {
            return out;
        };
        for ev in cache.objects.values() {
            if meta::str_at(ev, "/type") != "Warning" {
                continue;
            }
            let Some(at) = event_time(ev) else { continue };
            if self.now.duration_since(at) > WARNING_WINDOW {
                continue;
            }
            let uid = meta::str_at(ev, "/involvedObject/uid");
            if !uid.is_empty() {
                out.insert(uid.to_string(), ());
            }
            out.insert(
                format!(
                    "{}/{}/{}",
                    meta::str_at(ev, "/involvedObject/kind"),
                    meta::str_at(ev, "/involvedObject/namespace"),
                    meta::str_at(ev, "/involvedObject/name")
                ),
                (),
            );
        }
        out
    }

    /// Events about an object, oldest first.
    pub fn events_for(&self, obj: &Value) -> Vec<Value> {
        let Some(cache) = registry::resolve("events").and_then(|rt| self.cache(&Source::Kind(rt)))
        else {
            return Vec::new();
        };
        let uid = meta::uid(obj);
        let mut evs: Vec<Value> = cache
            .objects
            .values()
            .filter(|ev| {
                let ev_uid = meta::str_at(ev, "/involvedObject/uid");
                if !uid.is_empty() && !ev_uid.is_empty() {
                    return ev_uid == uid;
                }
                meta::str_at(ev, "/involvedObject/name") == meta::name(obj)
                    && meta::str_at(ev, "/involvedObject/namespace") == meta::namespace(obj)
                    && meta::str_at(ev, "/involvedObject/kind") == meta::str_at(obj, "/kind")
            })
            .cloned()
            .collect();
        evs.sort_by_key(event_time);
        evs
    }

    /// The node's pulls under way; waiting pods show theirs at the next render.
    pub fn set_pulls(&mut self, pulls: HashMap<String, u8>) {
        if pulls != self.pulls {
            self.pulls = pulls;
            self.dirty = true;
        }
    }

    /// New pod usage from the metrics API; the rows show it at the next render.
    pub fn set_pod_usage(&mut self, usage: HashMap<(String, String), Usage>) {
        if usage != self.pod_usage {
            self.pod_usage = usage;
            self.dirty = true;
        }
    }

    /// Node capacity and what pods request of it.
    pub fn capacity(&self) -> Capacity {
        let mut c = Capacity::default();
        if let Some(nodes) = registry::resolve("nodes").and_then(|rt| self.cache(&Source::Kind(rt)))
        {
            for n in nodes.objects.values() {
                c.cpu_allocatable_milli += milli(n.pointer("/status/allocatable/cpu"));
                c.mem_allocatable += milli(n.pointer("/status/allocatable/memory")) / 1000;
            }
        }
        if let Some(pods) = registry::resolve("pods").and_then(|rt| self.cache(&Source::Kind(rt))) {
            for p in pods.objects.values() {
                let phase = meta::str_at(p, "/status/phase");
                if matches!(phase, "Succeeded" | "Failed")
                    || meta::str_at(p, "/spec/nodeName").is_empty()
                {
                    continue;
                }
                for ctr in table::list(p, "/spec/containers") {
                    c.cpu_requested_milli += milli(ctr.pointer("/resources/requests/cpu"));
                    c.mem_requested += milli(ctr.pointer("/resources/requests/memory")) / 1000;
                }
            }
        }
        c
    }

    /// Pods by state for the header: (total, running, pending, failed).
    pub fn pod_counts(&self) -> (usize, usize, usize, usize) {
        let Some(pods) = registry::resolve("pods").and_then(|rt| self.cache(&Source::Kind(rt)))
        else {
            return (0, 0, 0, 0);
        };
        let (mut running, mut pending, mut failed) = (0, 0, 0);
        for p in pods.objects.values() {
            match tone_of(Some(&table::pod_summary(p).status), None, p) {
                Tone::Healthy => running += 1,
                Tone::Pending => pending += 1,
                Tone::Failed => failed += 1,
                _ => {}
            }
        }
        (pods.objects.len(), running, pending, failed)
    }

    /// How the current view's cache is doing (loading, live, retrying).
    pub fn view_status(&self) -> Option<&CacheStatus> {
        self.cache(&self.source).map(|c| &c.status)
    }
}

type RowFn = Box<dyn Fn(&Value) -> Vec<String>>;

fn warning_key(source: Source, key: &(String, String)) -> String {
    match source {
        Source::Kind(rt) => format!("{}/{}/{}", rt.kind, key.0, key.1),
        Source::Images => String::new(),
    }
}

/// A quantity in thousandths (0 when absent or not a quantity).
pub(super) fn milli(v: Option<&Value>) -> i128 {
    v.map(table::quantity_text)
        .and_then(|s| parse_quantity(&s).ok())
        .map(|q| q.milli())
        .unwrap_or(0)
}

/// When an event last happened.
pub fn event_time(ev: &Value) -> Option<Timestamp> {
    [
        "/series/lastObservedTime",
        "/lastTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find_map(|p| meta::parse_time(meta::str_at(ev, p)))
}

/// The colour class of a row from its status cell (or READY `a/b` when it has none).
pub fn tone_of(status: Option<&str>, ready: Option<&str>, obj: &Value) -> Tone {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return Tone::Terminating;
    }
    if let Some(s) = status {
        let tone = match s {
            "Running" => match ready.and_then(|r| r.split_once('/')) {
                Some((a, b)) if a != b => Tone::Pending,
                _ => Tone::Healthy,
            },
            "Active" | "Bound" | "Available" | "Ready" | "Normal" | "Complete" => Tone::Healthy,
            "Completed" | "Succeeded" | "Released" => Tone::Completed,
            "Terminating" => Tone::Terminating,
            "Pending"
            | "ContainerCreating"
            | "PodInitializing"
            | "Warning"
            | "Suspended"
            | "SchedulingDisabled"
            | "Ready,SchedulingDisabled" => Tone::Pending,
            s if s.starts_with("Init:") && !s.contains("Error") && !s.contains("BackOff") => {
                Tone::Pending
            }
            "CrashLoopBackOff"
            | "Error"
            | "Failed"
            | "ImagePullBackOff"
            | "ErrImagePull"
            | "OOMKilled"
            | "Evicted"
            | "NotReady"
            | "Lost"
            | "Unknown"
            | "ContainerCannotRun"
            | "CreateContainerConfigError"
            | "CreateContainerError"
            | "InvalidImageName"
            | "DeadlineExceeded"
            | "BackoffLimitExceeded" => Tone::Failed,
            s if s.starts_with("Init:")
                || s.starts_with("Signal:")
                || s.starts_with("ExitCode:") =>
            {
                Tone::Failed
            }
            _ => Tone::Normal,
        };
        if tone != Tone::Normal {
            return tone;
        }
    }
    match ready.and_then(|r| r.split_once('/')) {
        Some((a, b)) if a == b => Tone::Healthy,
        Some(_) => Tone::Pending,
        None => Tone::Normal,
    }
}

/// Compares cells so that numbers sort as numbers (`9` before `10`, `1/3` before `2/3`).
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let num = |s: &str| -> Option<f64> {
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        s[..end].parse().ok()
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) if x != y => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::watch::EventType;
    use serde_json::json;

    #[test]
    fn a_waiting_pod_shows_its_pull() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "image": "busybox"},
            {"name": "b", "image": "127.0.0.1:5000/app:v2"}]}});
        let pulls = HashMap::from([("127.0.0.1:5000/app:v2".to_string(), 42u8)]);
        assert_eq!(
            pulling(&pod, "ContainerCreating", &pulls).as_deref(),
            Some("Pulling 42%")
        );
        // Running pods and pods of other images keep their status.
        assert_eq!(pulling(&pod, "Running", &pulls), None);
        let other = HashMap::from([("docker.io/library/nginx:latest".to_string(), 5u8)]);
        assert_eq!(pulling(&pod, "Pending", &other), None);
        // References are compared normalised.
        let bb = HashMap::from([("docker.io/library/busybox:latest".to_string(), 7u8)]);
        assert_eq!(pulling(&pod, "Pending", &bb).as_deref(), Some("Pulling 7%"));
    }

    fn now() -> Timestamp {
        "2026-11-23T10:00:00Z".parse().expect("time")
    }

    fn pod(ns: &str, name: &str, phase: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"),
                "creationTimestamp": "2026-11-23T09:00:00Z", "labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": phase}})
    }

    fn pods() -> Source {
        Source::resolve("po").expect("pods")
    }

    #[test]
    fn resolves_views_by_name_and_short_name() {
        assert_eq!(
            Source::resolve("deploy").map(|s| s.title()),
            Some("Deployments".into())
        );
        assert_eq!(
            Source::resolve("svc").map(|s| s.title()),
            Some("Services".into())
        );
        assert_eq!(Source::resolve("img"), Some(Source::Images));
        let titles: Vec<String> = ["pvc", "netpol", "ing", "ep", "sts"]
            .iter()
            .filter_map(|n| Source::resolve(n).map(|s| s.title()))
            .collect();
        assert_eq!(
            titles,
            [
                "PersistentVolumeClaims",
                "NetworkPolicies",
                "Ingresses",
                "Endpoints",
                "StatefulSets"
            ]
        );
        assert!(Source::resolve("nonsense").is_none());
    }

    #[test]
    fn namespace_filter_and_namespace_column() {
        let mut s = State::new(now(), false);
        s.replace_all(
            &pods(),
            vec![pod("a", "p1", "Running"), pod("b", "p2", "Pending")],
        );
        s.refresh_table();
        assert_eq!(s.table.headers[0], "NAMESPACE");
        assert_eq!(s.table.rows.len(), 2);
        s.namespace = Some("b".into());
        s.refresh_table();
        assert_eq!(s.table.headers[0], "NAME");
        assert_eq!(s.table.rows.len(), 1);
        assert_eq!(s.table.rows[0].cells[0], "p2");
        assert_eq!(s.table.rows[0].tone, Tone::Pending);
    }

    #[test]
    fn watch_events_update_the_cache_and_selection_follows_its_object() {
        let mut s = State::new(now(), false);
        s.replace_all(&pods(), vec![pod("a", "p2", "Running")]);
        s.refresh_table();
        s.select(0);
        s.apply_event(&pods(), EventType::Added, pod("a", "p1", "Running"));
        s.refresh_table();
        assert_eq!(s.selected, 1, "the selection stays on p2");
        s.apply_event(&pods(), EventType::Deleted, pod("a", "p2", "Running"));
        s.refresh_table();
        assert_eq!(s.selected, 0);
        assert_eq!(s.table.rows.len(), 1);
    }

    #[test]
    fn ages_move_with_the_clock_and_filters_do_not_need_it() {
        let mut s = State::new(now(), false);
        s.replace_all(&pods(), vec![pod("a", "p", "Running")]);
        s.refresh_table();
        let age = |s: &State| {
            let i = s
                .table
                .headers
                .iter()
                .position(|h| h == "AGE")
                .expect("AGE");
            s.table.rows[0].cells[i].clone()
        };
        assert_eq!(age(&s), "60m");
        s.set_now("2026-11-23T11:00:00Z".parse().expect("time"));
        s.refresh_table();
        assert_eq!(age(&s), "120m");
        s.filter = Filter::parse("p");
        s.refresh_table();
        assert_eq!(s.table.rows.len(), 1);
        s.filter = Filter::parse("nothing-matches");
        s.refresh_table();
        assert!(s.table.rows.is_empty());
        assert_eq!(s.table.total, 1);
    }

    #[test]
    fn sorts_numbers_as_numbers_and_descending() {
        let mut s = State::new(now(), false);
        s.namespace = Some("a".into());
        let mut p9 = pod("a", "x", "Running");
        p9["status"]["containerStatuses"] = json!([{"name": "c", "restartCount": 9}]);
        let mut p10 = pod("a", "y", "Running");
        p10["status"]["containerStatuses"] = json!([{"name": "c", "restartCount": 10}]);
        s.replace_all(&pods(), vec![p10, p9]);
        s.sort = Sort {
            column: 3,
            descending: false,
        };
        s.refresh_table();
        assert_eq!(s.table.headers[3], "RESTARTS");
        assert_eq!(s.table.rows[0].key.1, "x");
        s.sort.descending = true;
        s.refresh_table();
        assert_eq!(s.table.rows[0].key.1, "y");
    }

    #[test]
    fn recent_warning_events_mark_rows() {
        let mut s = State::new(now(), false);
        s.replace_all(
            &pods(),
            vec![pod("a", "p1", "Running"), pod("a", "p2", "Running")],
        );
        let ev = |name: &str, at: &str| {
            json!({"apiVersion": "v1", "kind": "Event",
                "metadata": {"name": format!("{name}.1"), "namespace": "a"},
                "involvedObject": {"kind": "Pod", "namespace": "a", "name": name, "uid": format!("uid-{name}")},
                "type": "Warning", "reason": "BackOff", "lastTimestamp": at})
        };
        let events = Source::resolve("events").expect("events");
        s.replace_all(
            &events,
            vec![
                ev("p1", "2026-11-23T09:58:00Z"),
                ev("p2", "2026-11-23T08:00:00Z"),
            ],
        );
        s.refresh_table();
        let marks: Vec<bool> = s.table.rows.iter().map(|r| r.warning).collect();
        assert_eq!(marks, vec![true, false]);
    }

    #[test]
    fn tones_follow_kubectl_states() {
        let o = json!({});
        assert_eq!(tone_of(Some("Running"), Some("1/1"), &o), Tone::Healthy);
        assert_eq!(tone_of(Some("Running"), Some("0/1"), &o), Tone::Pending);
        assert_eq!(tone_of(Some("CrashLoopBackOff"), None, &o), Tone::Failed);
        assert_eq!(tone_of(Some("Completed"), None, &o), Tone::Completed);
        assert_eq!(tone_of(Some("Init:0/1"), None, &o), Tone::Pending);
        assert_eq!(
            tone_of(Some("Init:CrashLoopBackOff"), None, &o),
            Tone::Failed
        );
        assert_eq!(tone_of(None, Some("2/3"), &o), Tone::Pending);
        let deleting = json!({"metadata": {"deletionTimestamp": "2026-11-23T10:00:00Z"}});
        assert_eq!(tone_of(Some("Running"), None, &deleting), Tone::Terminating);
    }

    #[test]
    fn capacity_sums_requests_of_bound_pods() {
        let mut s = State::new(now(), false);
        let node = json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "2", "memory": "1Gi"}}});
        s.replace_all(&Source::resolve("nodes").expect("nodes"), vec![node]);
        let mut p = pod("a", "p", "Running");
        p["spec"]["nodeName"] = json!("n");
        p["spec"]["containers"][0]["resources"] =
            json!({"requests": {"cpu": "250m", "memory": "64Mi"}});
        s.replace_all(&pods(), vec![p, pod("a", "unbound", "Pending")]);
        let c = s.capacity();
        assert_eq!(c.cpu_allocatable_milli, 2000);
        assert_eq!(c.mem_allocatable, 1 << 30);
        assert_eq!(c.cpu_requested_milli, 250);
        assert_eq!(c.mem_requested, 64 << 20);
    }
}
