//! `sluice gen nexmark`: writes Nexmark events for peers, tests and benchmarks.

use anyhow::anyhow;

use crate::Failure;
use crate::args::GenArgs;

/// `sluice gen`.
pub(crate) fn generate(args: GenArgs) -> Result<(), Failure> {
    if args.generator != "nexmark" {
        return Err(Failure::user(anyhow!("unknown generator '{}'; the only one is 'nexmark'", args.generator)));
    }
    Err(Failure::runtime(anyhow!("not wired yet")))
}
