//! Stateless operators: projection and filter.

mod eval;
mod filter;
mod projection;

pub use filter::Filter;
pub use projection::Projection;
