//! The `webhook` sink: rows as HTTP requests (JSON, a format, or a body template) with
//! retries, exponential backoff with jitter, a circuit breaker, and dead letters for
//! what fails after the last retry: the alerting path.

mod config;
mod connector;
mod sink;

pub use config::WebhookConfig;
pub use connector::WebhookConnector;
pub use sink::WebhookSinkFactory;
