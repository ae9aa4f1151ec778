//! Stateless operators: projection and filter.

mod eval;
mod filter;
mod projection;
mod unnest;

pub use filter::Filter;
pub use projection::Projection;
pub use unnest::Unnest;
