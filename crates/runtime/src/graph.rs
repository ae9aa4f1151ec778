//! The dataflow graph a job runs: nodes (sources, operators, sinks) with a parallelism
//! each, and edges with a partitioning kind.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::traits::{OperatorFactory, SinkFactory, SourceFactory};
use crate::{Error, Result};

/// Index of a node in its [`StreamGraph`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// What a node does.
#[derive(Clone)]
pub enum NodeKind {
    /// Reads a table.
    Source(Arc<dyn SourceFactory>),
    /// Transforms batches.
    Operator(Arc<dyn OperatorFactory>),
    /// Writes a table.
    Sink(Arc<dyn SinkFactory>),
}

/// One node of the graph.
#[derive(Clone)]
pub struct StreamNode {
    /// Its id (index).
    pub id: NodeId,
    /// What it does.
    pub kind: NodeKind,
    /// How many subtasks run it.
    pub parallelism: usize,
}

impl StreamNode {
    /// The schema of the batches it emits (a sink emits none: its input's).
    pub fn schema(&self) -> Option<datafusion::arrow::datatypes::SchemaRef> {
        match &self.kind {
            NodeKind::Source(s) => Some(s.schema()),
            NodeKind::Operator(o) => Some(o.schema()),
            NodeKind::Sink(_) => None,
        }
    }

    /// Display name.
    pub fn name(&self) -> String {
        match &self.kind {
            NodeKind::Source(s) => s.name(),
            NodeKind::Operator(o) => o.name(),
            NodeKind::Sink(s) => s.name(),
        }
    }
}

/// How rows move from the subtasks of one node to those of the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeKind {
    /// Subtask i sends to subtask i (equal parallelism); allows chaining.
    Forward,
    /// Rows go to the subtask owning the key group of the hash of these columns
    /// (indices into the upstream node's output schema).
    Hash(Vec<usize>),
    /// Whole batches go round-robin to all downstream subtasks.
    Rebalance,
    /// Every batch goes to every downstream subtask.
    Broadcast,
}

impl std::fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EdgeKind::Forward => write!(f, "FORWARD"),
            EdgeKind::Hash(k) => {
                let k: Vec<String> = k.iter().map(|i| format!("#{i}")).collect();
                write!(f, "HASH[{}]", k.join(", "))
            }
            EdgeKind::Rebalance => write!(f, "REBALANCE"),
            EdgeKind::Broadcast => write!(f, "BROADCAST"),
        }
    }
}

/// A directed edge.
#[derive(Debug, Clone)]
pub struct StreamEdge {
    /// Upstream node.
    pub from: NodeId,
    /// Downstream node.
    pub to: NodeId,
    /// Partitioning.
    pub kind: EdgeKind,
    /// Which input of `to` this edge feeds (0 for single-input operators; joins have 2).
    pub input: usize,
}

/// A DAG of sources, operators and sinks.
#[derive(Clone, Default)]
pub struct StreamGraph {
    /// Nodes, indexed by [`NodeId`].
    pub nodes: Vec<StreamNode>,
    /// Edges.
    pub edges: Vec<StreamEdge>,
    /// Per sink node, the column of its input that holds event time (a `TIMESTAMP`),
    /// for the event time → emit latency (`sluice_event_time_latency_seconds`).
    pub event_time: std::collections::BTreeMap<NodeId, usize>,
}

impl StreamGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node and returns its id.
    pub fn add_node(&mut self, kind: NodeKind, parallelism: usize) -> NodeId {
        let id = NodeId(self.nodes.len());
        self.nodes.push(StreamNode {
            id,
            kind,
            parallelism: parallelism.max(1),
        });
        id
    }

    /// Connects `from` to input `input` of `to`.
    pub fn connect(&mut self, from: NodeId, to: NodeId, kind: EdgeKind, input: usize) {
        self.edges.push(StreamEdge {
            from,
            to,
            kind,
            input,
        });
    }

    /// Edges leaving `id`.
    pub fn outputs(&self, id: NodeId) -> impl Iterator<Item = &StreamEdge> {
        self.edges.iter().filter(move |e| e.from == id)
    }

    /// Edges entering `id`.
    pub fn inputs(&self, id: NodeId) -> impl Iterator<Item = &StreamEdge> {
        self.edges.iter().filter(move |e| e.to == id)
    }

    /// Checks the invariants the runtime relies on: forward edges join equal
    /// parallelism, sources have no inputs, sinks no outputs, every operator has input.
    pub fn validate(&self) -> Result<()> {
        for e in &self.edges {
            let (a, b) = (&self.nodes[e.from.0], &self.nodes[e.to.0]);
            if e.kind == EdgeKind::Forward && a.parallelism != b.parallelism {
                return Err(Error::InvalidGraph(format!(
                    "forward edge {} -> {} joins parallelism {} and {}",
                    a.name(),
                    b.name(),
                    a.parallelism,
                    b.parallelism
                )));
            }
            if matches!(b.kind, NodeKind::Source(_)) || matches!(a.kind, NodeKind::Sink(_)) {
                return Err(Error::InvalidGraph(format!(
                    "edge {} -> {} enters a source or leaves a sink",
                    a.name(),
                    b.name()
                )));
            }
        }
        for n in &self.nodes {
            if !matches!(n.kind, NodeKind::Source(_)) && self.inputs(n.id).next().is_none() {
                return Err(Error::InvalidGraph(format!("{} has no input", n.name())));
            }
        }
        Ok(())
    }

    /// True when `to` runs in the same task as its only upstream node: a forward edge
    /// that is the upstream's only output and the downstream's only input.
    pub fn is_chained(&self, edge: &StreamEdge) -> bool {
        edge.kind == EdgeKind::Forward
            && self.outputs(edge.from).count() == 1
            && self.inputs(edge.to).count() == 1
    }

    /// Groups nodes into chains (each runs as one task per subtask), in topological
    /// order of their heads.
    pub fn chains(&self) -> Vec<Vec<NodeId>> {
        let mut chains = Vec::new();
        for n in &self.nodes {
            let head = self
                .inputs(n.id)
                .next()
                .is_none_or(|e| !(self.inputs(n.id).count() == 1 && self.is_chained(e)));
            if !head {
                continue;
            }
            let mut chain = vec![n.id];
            let mut cur = n.id;
            while let Some(e) = self.outputs(cur).next() {
                if self.is_chained(e) {
                    chain.push(e.to);
                    cur = e.to;
                } else {
                    break;
                }
            }
            chains.push(chain);
        }
        chains
    }

    /// The plan as text: one block per chain (task), with parallelism, operator
    /// descriptions and the edges between tasks.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        for (i, chain) in self.chains().iter().enumerate() {
            let head = &self.nodes[chain[0].0];
            let _ = writeln!(out, "Task {} (parallelism {}):", i + 1, head.parallelism);
            for (j, id) in chain.iter().enumerate() {
                let node = &self.nodes[id.0];
                let arrow = if j == 0 {
                    "  "
                } else {
                    "  -> (forward, chained) "
                };
                let desc = match &node.kind {
                    NodeKind::Operator(o) => o.describe(),
                    _ => String::new(),
                };
                if desc.is_empty() {
                    let _ = writeln!(out, "{arrow}{}", node.name());
                } else {
                    let _ = writeln!(out, "{arrow}{}: {desc}", node.name());
                }
            }
            let last = chain[chain.len() - 1];
            for e in self.outputs(last) {
                if !self.is_chained(e) {
                    let _ = writeln!(
                        out,
                        "  => {} to {} (input {})",
                        e.kind,
                        self.nodes[e.to.0].name(),
                        e.input
                    );
                }
            }
        }
        out
    }
}
