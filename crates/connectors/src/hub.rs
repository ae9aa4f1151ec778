//! A registry of per-table objects that the HTTP server reaches by table name: the
//! ingest endpoints of `http` tables, the event streams of `sse` tables, the rows of
//! `view` tables. Planning a table registers (or replaces) its object.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Objects of type `T` by table name.
#[derive(Debug)]
pub struct Hub<T> {
    map: Mutex<BTreeMap<String, Arc<T>>>,
}

impl<T> Hub<T> {
    /// An empty registry (for a `static`).
    pub const fn new() -> Self {
        Hub {
            map: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Arc<T>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers (or replaces) table `name`'s object.
    pub fn insert(&self, name: &str, value: Arc<T>) {
        self.lock().insert(name.to_string(), value);
    }

    /// Table `name`'s object.
    pub fn get(&self, name: &str) -> Option<Arc<T>> {
        self.lock().get(name).cloned()
    }

    /// Removes table `name`'s object.
    pub fn remove(&self, name: &str) {
        self.lock().remove(name);
    }

    /// The registered table names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Every registered object, by table name.
    pub fn all(&self) -> BTreeMap<String, Arc<T>> {
        self.lock().clone()
    }
}

impl<T> Default for Hub<T> {
    fn default() -> Self {
        Hub::new()
    }
}
