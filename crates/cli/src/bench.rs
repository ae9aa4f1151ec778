//! `sluice bench nexmark`: runs a Nexmark query over the built-in generator (or a JSON
//! file of bids) into a blackhole sink and reports events/s and batch latency.

use anyhow::anyhow;

use crate::Failure;
use crate::args::BenchArgs;

/// `sluice bench`.
pub(crate) fn bench(args: BenchArgs) -> Result<(), Failure> {
    if args.suite != "nexmark" {
        return Err(Failure::user(anyhow!("unknown benchmark suite '{}'; the only one is 'nexmark'", args.suite)));
    }
    Err(Failure::runtime(anyhow!("not wired yet")))
}
