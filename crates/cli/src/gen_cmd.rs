//! `sluice gen nexmark`: writes Nexmark events for peers, tests and benchmarks, with the
//! same generator as the `nexmark` connector.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};

use anyhow::anyhow;
use sluice_connectors::nexmark::{GenFormat, GenTable, NexmarkConfig, write_events};

use crate::Failure;
use crate::args::{self, GenArgs};

/// `sluice gen`.
pub(crate) fn generate(args: GenArgs) -> Result<(), Failure> {
    if args.generator != "nexmark" {
        return Err(Failure::user(anyhow!(
            "unknown generator '{}'; the only one is 'nexmark'",
            args.generator
        )));
    }
    let mut options = BTreeMap::new();
    options.insert("events.num".to_string(), args.events.to_string());
    options.insert("base-time".to_string(), args.base_time.clone());
    options.insert("first-event.rate".to_string(), args.rate.to_string());
    options.insert("rate.limited".to_string(), "false".to_string());
    let config = NexmarkConfig::from_options("nexmark", &options).map_err(Failure::user)?;
    let table = match args.table {
        args::GenTable::Bid => GenTable::Bid,
        args::GenTable::Auction => GenTable::Auction,
        args::GenTable::Person => GenTable::Person,
        args::GenTable::All => GenTable::All,
    };
    let format = match args.format {
        args::GenFormat::Json => GenFormat::Json,
        args::GenFormat::Csv => GenFormat::Csv,
    };
    let written = match &args.out {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(|e| Failure::user(anyhow!("cannot create '{}': {e}", path.display())))?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let n = write_events(&config, table, format, &mut w).map_err(Failure::user)?;
            w.flush()
                .map_err(|e| Failure::runtime(anyhow!("cannot write '{}': {e}", path.display())))?;
            n
        }
        None => {
            let stdout = std::io::stdout();
            let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
            let n = write_events(&config, table, format, &mut w).map_err(Failure::user)?;
            let _ = w.flush();
            n
        }
    };
    if args.out.is_some() {
        eprintln!("Wrote {written} rows.");
    }
    Ok(())
}
