//! The `view` sink: keeps the latest row per primary key of a query's result in
//! memory, for the server to answer `GET /api/views/<table>?<key column>=…` and SQL
//! over the PostgreSQL wire protocol. Updating queries (`+I`, `+U`, `-D`) keep it
//! current; a `-D` removes the key.
//!
//! The rows live in the process: after a restart a view holds the rows written since
//! (it fills again as keys change); pipelines that need the whole result after a
//! restart also write it to `jdbc` or `redis`.

mod config;
mod connector;
pub mod hub;
mod sink;

pub use config::ViewConfig;
pub use connector::ViewConnector;
pub use hub::{VIEWS, View, forget, reinstate, view, views};
