//! Stateless operators: projection and filter.

mod eval;
pub(crate) use eval::{eval_isolating, eval_to_array};
mod filter;
mod projection;
mod unnest;

pub use filter::Filter;
pub use projection::Projection;
pub use unnest::Unnest;
