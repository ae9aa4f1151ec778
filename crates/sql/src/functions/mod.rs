//! Flink's scalar functions, under Flink's names and with Flink's semantics,
//! as DataFusion UDFs; plus Sluice's own anomaly-detection aggregates
//! (`anomaly.rs`).
//!
//! [`register`] installs them in a `SessionContext`, replacing DataFusion
//! built-ins of the same name whose behaviour differs (`to_timestamp`,
//! `concat`, `substring`, `log`, `date_format`, ...). Functions whose
//! DataFusion built-in already matches Flink are left native; the split is
//! listed by [`sluice_function_names`] and [`native_function_names`] and
//! documented in `docs/functions.md`. [`java_udf`] maps known Java UDF
//! classes (`CREATE FUNCTION ... AS 'class'`) to native implementations.
//!
//! Common rules: NULL in gives NULL out unless a function says otherwise;
//! no input makes a function panic or fail the query (an invalid regex,
//! pattern or index gives NULL); times are UTC. Every function is one
//! `udf::FlinkUdf` value built by a constructor in its family's file:
//!
//! | file | functions |
//! | --- | --- |
//! | `string.rs` | `SPLIT_INDEX`, `CONCAT`, `SUBSTRING`, `LEFT`, `RIGHT`, `LOCATE` |
//! | `text.rs` | `LPAD`, `RPAD`, `CHR`, `IS_ALPHA`, `IS_DIGIT`, `IS_DECIMAL` |
//! | `encoding.rs` | `TO_BASE64`, `FROM_BASE64`, `SHA224`..`SHA512`, `SHA2` |
//! | `regexp.rs` | `REGEXP_EXTRACT`, `REGEXP_REPLACE`, `REGEXP` |
//! | `datetime.rs` | `YEAR`..`SECOND`, `DATE_FORMAT`, `FROM_UNIXTIME` |
//! | `convert.rs` | `TO_TIMESTAMP`, `TO_TIMESTAMP_LTZ`, `TO_DATE`, `UNIX_TIMESTAMP` |
//! | `math.rs` | `MOD`, `TRUNCATE`, `LOG`, `SQRT`, `E` |
//! | `random.rs` | `RAND`, `RAND_INTEGER` |
//! | `cond.rs` | `IF` |
//! | `java_udfs.rs` | Java UDF classes |
//! | `anomaly.rs` | aggregates `ZSCORE`, `EWMA`, `MAD_SCORE` (not Flink's; Sluice's own) |
//!
//! Support code: `args.rs` (argument access, coercion, pattern cache),
//! `udf.rs` (the UDF struct), `format.rs`/`parse.rs` (Java date patterns),
//! `rewrite.rs` (redirects `SUBSTRING(s FROM p FOR n)` syntax).

mod anomaly;
mod args;
mod cond;
mod convert;
mod datetime;
mod encoding;
mod format;
mod java_udfs;
mod math;
mod parse;
mod random;
mod regexp;
mod rewrite;
mod string;
mod text;
mod udf;
mod window;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};
use datafusion::prelude::SessionContext;

pub use java_udfs::{KNOWN_JAVA_UDFS, java_udf};

/// Every function implemented in this module.
fn udfs() -> Vec<ScalarUDF> {
    let mut list = vec![
        string::split_index(),
        string::concat(),
        string::substring(),
        string::left(),
        string::right(),
        string::locate(),
        text::lpad(),
        text::rpad(),
        text::chr(),
        text::is_alpha(),
        text::is_digit(),
        text::is_decimal(),
        encoding::to_base64(),
        encoding::from_base64(),
        encoding::sha(224),
        encoding::sha(256),
        encoding::sha(384),
        encoding::sha(512),
        encoding::sha2(),
        regexp::regexp_extract(),
        regexp::regexp_replace(),
        regexp::regexp(),
        datetime::date_format(),
        datetime::from_unixtime(),
        convert::to_timestamp(),
        convert::to_timestamp_ltz(),
        convert::to_date(),
        convert::unix_timestamp(),
        math::modulo(),
        math::truncate(),
        math::log(),
        math::sqrt(),
        math::e(),
        random::rand(),
        random::rand_integer(),
        cond::if_fn(),
        window::window_start(),
        window::hop_starts(),
        window::cumulate_ends(),
        window::window_time(),
        window::session_start(),
        window::session_end(),
        window::proctime(),
        window::add_ms(),
        window::as_of(),
        window::lookup_marker(),
    ];
    list.extend(datetime::EXTRACTORS.iter().map(|n| datetime::extract(n)));
    list.into_iter().map(udf::FlinkUdf::into_udf).collect()
}

/// Every aggregate function implemented in this module.
fn udafs() -> Vec<AggregateUDF> {
    vec![anomaly::zscore(), anomaly::ewma(), anomaly::mad_score()]
}

/// Registers all Flink functions in `ctx`, overriding DataFusion built-ins of
/// the same name, and Sluice's aggregates. Call once per context, before
/// planning queries.
pub fn register(ctx: &SessionContext) {
    for udaf in udafs() {
        ctx.register_udaf(udaf);
    }
    let udfs = udfs();
    let substring = udfs
        .iter()
        .find(|u| u.name() == "substring")
        .cloned()
        .map(Arc::new);
    for udf in udfs {
        ctx.register_udf(udf);
    }
    // Flink names for DataFusion built-ins with matching semantics.
    ctx.register_udf(
        datafusion::functions::math::signum()
            .as_ref()
            .clone()
            .with_aliases(["sign"]),
    );
    ctx.register_udf(
        datafusion::functions::math::ceil()
            .as_ref()
            .clone()
            .with_aliases(["ceiling"]),
    );
    if let Some(substring) = substring {
        // Registering a rewrite cannot fail; the Result is part of the trait.
        let _ = ctx
            .state_ref()
            .write()
            .register_function_rewrite(Arc::new(rewrite::FlinkRewrite::new(substring)));
    }
}

/// Flink function names implemented by Sluice (registered by [`register`]).
pub fn sluice_function_names() -> Vec<&'static str> {
    let mut names = vec![
        "split_index",
        "concat",
        "substring",
        "substr",
        "left",
        "right",
        "locate",
        "lpad",
        "rpad",
        "chr",
        "is_alpha",
        "is_digit",
        "is_decimal",
        "to_base64",
        "from_base64",
        "sha224",
        "sha256",
        "sha384",
        "sha512",
        "sha2",
        "regexp_extract",
        "regexp_substr",
        "regexp_replace",
        "regexp",
        "date_format",
        "from_unixtime",
        "to_timestamp",
        "to_timestamp_ltz",
        "to_date",
        "unix_timestamp",
        "mod",
        "truncate",
        "log",
        "sqrt",
        "e",
        "rand",
        "rand_integer",
        "if",
        "sign",
        "ceiling",
    ];
    names.extend(datetime::EXTRACTORS);
    names
}

/// Flink function names served by DataFusion built-ins whose semantics match.
pub fn native_function_names() -> Vec<&'static str> {
    vec![
        "char_length",
        "character_length",
        "upper",
        "lower",
        "concat_ws",
        "replace",
        "trim",
        "ltrim",
        "rtrim",
        "initcap",
        "repeat",
        "reverse",
        "position",
        "instr",
        "ascii",
        "md5",
        "overlay",
        "uuid",
        "ln",
        "log10",
        "log2",
        "power",
        "exp",
        "abs",
        "round",
        "floor",
        "ceil",
        "pi",
        "degrees",
        "radians",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "cot",
        "sinh",
        "cosh",
        "tanh",
        "coalesce",
        "nullif",
        "ifnull",
        "greatest",
        "least",
    ]
}

/// Every Flink function name that resolves after [`register`]: Sluice
/// implementations first, then DataFusion built-ins.
pub fn flink_function_names() -> Vec<&'static str> {
    let mut names = sluice_function_names();
    names.extend(native_function_names());
    names
}
