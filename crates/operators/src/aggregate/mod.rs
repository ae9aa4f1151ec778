//! Aggregations: windowed (append-only output, one result per window and key) and
//! unbounded `GROUP BY` (a changelog). Both use DataFusion's aggregate functions.

mod group;
mod session;
mod spec;
mod window;

pub use group::GroupAggregate;
pub use session::SessionAggregate;
pub use spec::AggregateSpec;
pub(crate) use spec::read_states;
pub use window::WindowAggregate;
