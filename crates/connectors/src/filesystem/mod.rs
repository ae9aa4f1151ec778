//! `'connector' = 'filesystem'`: reads a file or a directory of files, writes a
//! directory of part files. Formats: json (newline-delimited), csv.

mod config;
mod connector;
mod sink;
mod source;
mod splits;

pub use config::{FilesystemSinkConfig, FilesystemSourceConfig};
pub use connector::FilesystemConnector;
pub use sink::FilesystemSinkFactory;
pub use source::FilesystemSourceFactory;
