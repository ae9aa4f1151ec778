//! Moving batches from one subtask to the subtasks of the next node: forward, hash
//! (by key group), rebalance, broadcast.

use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{ArrayRef, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use sluice_state::{DEFAULT_KEY_GROUPS, key_group, subtask_for_group};
use sluice_types::Message;
use tokio::sync::mpsc::Sender;
use tokio::sync::mpsc::error::TrySendError;

use crate::graph::EdgeKind;
use crate::{Error, Result};

/// The hash of the key columns of every row (stable across runs): the state crate's,
/// so that rows meet their key group's state.
pub fn hash_rows(columns: &[ArrayRef], num_rows: usize) -> Result<Vec<u64>> {
    Ok(sluice_state::hash_keys(columns, num_rows)?)
}

/// One outgoing edge of a task: the partitioning and one sender per downstream subtask
/// (just one for a forward edge).
pub(crate) struct OutputEdge {
    pub(crate) kind: EdgeKind,
    pub(crate) senders: Vec<Sender<Message>>,
    next: usize,
}

impl OutputEdge {
    pub(crate) fn new(kind: EdgeKind, senders: Vec<Sender<Message>>, subtask: usize) -> Self {
        // Start round-robin at our own index so subtasks do not all hit target 0 first.
        let next = subtask % senders.len().max(1);
        OutputEdge {
            kind,
            senders,
            next,
        }
    }

    /// Sends a batch according to the partitioning; returns how long it waited for
    /// room downstream (backpressure). Fails when a downstream task is gone (it failed
    /// or the job is stopping).
    pub(crate) async fn send_batch(
        &mut self,
        batch: RecordBatch,
        ingested: Option<Instant>,
    ) -> Result<Duration> {
        match &self.kind {
            EdgeKind::Forward => send(&self.senders[0], Message::Batch(batch, ingested)).await,
            EdgeKind::Rebalance => {
                let i = self.next;
                self.next = (self.next + 1) % self.senders.len();
                send(&self.senders[i], Message::Batch(batch, ingested)).await
            }
            EdgeKind::Broadcast => {
                let mut waited = Duration::ZERO;
                for s in &self.senders {
                    waited += send(s, Message::Batch(batch.clone(), ingested)).await?;
                }
                Ok(waited)
            }
            EdgeKind::Hash(keys) => {
                let parts = split_by_hash(&batch, keys, self.senders.len())?;
                let mut waited = Duration::ZERO;
                for (i, part) in parts.into_iter().enumerate() {
                    if let Some(part) = part {
                        waited += send(&self.senders[i], Message::Batch(part, ingested)).await?;
                    }
                }
                Ok(waited)
            }
        }
    }

    /// Sends a control message (watermark, barrier, end) to every downstream subtask.
    pub(crate) async fn send_control(&mut self, msg: Message) -> Result<()> {
        for s in &self.senders {
            send(s, msg.clone()).await?;
        }
        Ok(())
    }
}

/// Sends `msg`; returns how long it waited for room (zero, and no clock read, when
/// the channel had some).
async fn send(sender: &Sender<Message>, msg: Message) -> Result<Duration> {
    let gone = || Error::TaskFailed {
        task: "downstream".into(),
        message: "a downstream task stopped".into(),
    };
    match sender.try_send(msg) {
        Ok(()) => Ok(Duration::ZERO),
        Err(TrySendError::Full(msg)) => {
            let started = Instant::now();
            sender.send(msg).await.map_err(|_| gone())?;
            Ok(started.elapsed())
        }
        Err(TrySendError::Closed(_)) => Err(gone()),
    }
}

/// Splits `batch` into one part per target subtask by the key group of each row's key
/// hash; `None` for targets that get no rows.
pub fn split_by_hash(
    batch: &RecordBatch,
    keys: &[usize],
    targets: usize,
) -> Result<Vec<Option<RecordBatch>>> {
    if targets == 1 {
        return Ok(vec![Some(batch.clone())]);
    }
    let columns: Vec<ArrayRef> = keys.iter().map(|k| Arc::clone(batch.column(*k))).collect();
    let hashes = hash_rows(&columns, batch.num_rows())?;
    let mut indices: Vec<Vec<u32>> = vec![Vec::new(); targets];
    for (row, h) in hashes.iter().enumerate() {
        let target = subtask_for_group(
            key_group(*h, DEFAULT_KEY_GROUPS),
            DEFAULT_KEY_GROUPS,
            targets,
        );
        indices[target].push(row as u32);
    }
    indices
        .into_iter()
        .map(|idx| {
            if idx.is_empty() {
                Ok(None)
            } else if idx.len() == batch.num_rows() {
                Ok(Some(batch.clone()))
            } else {
                Ok(Some(take_record_batch(batch, &UInt32Array::from(idx))?))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn hash_split_keeps_every_row_once_and_equal_keys_together() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let keys: Vec<i64> = (0..1000).map(|i| i % 37).collect();
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(keys))]).unwrap();
        let parts = split_by_hash(&batch, &[0], 3).unwrap();
        let mut total = 0;
        let mut owner = std::collections::HashMap::new();
        for (t, p) in parts.iter().enumerate() {
            let Some(p) = p else { continue };
            total += p.num_rows();
            let col = p.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            for v in col.values() {
                assert_eq!(
                    *owner.entry(*v).or_insert(t),
                    t,
                    "key {v} split across subtasks"
                );
            }
        }
        assert_eq!(total, 1000);
        assert_eq!(
            owner
                .values()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            3
        );
    }
}
