//! Ranking: `ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)` filtered to the first N
//! rows (Top-N, and deduplication for N = 1); and keeping one row per key: upsert
//! sinks, upsert sources.

mod keyed_rows;
mod normalize;
mod topn;
mod upsert;
mod window;

pub use normalize::ChangelogNormalize;
pub use topn::{SortKey, TopN};
pub use upsert::UpsertMaterializer;
pub use window::WindowTopN;
