//! The `mqtt` connector (MQTT 3.1.1 and 5, through rumqttc): a source subscribing to
//! topic filters whose QoS 1/2 messages are acknowledged after the checkpoint that
//! covers them, and a sink publishing each row to a topic built from it.

mod client;
mod config;
mod connector;
mod sink;
mod source;

pub use config::{Guarantee, MqttSinkConfig, MqttSourceConfig, MqttTarget, Version};
pub use connector::MqttConnector;
pub use sink::MqttSinkFactory;
pub use source::MqttSourceFactory;
