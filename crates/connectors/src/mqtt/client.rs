//! One MQTT connection (3.1.1 or 5, through rumqttc) driven by a task of its own: it
//! reconnects with backoff, subscribes again when the broker lost the session, hands
//! received messages to the source over a channel, and counts the broker's
//! acknowledgements of what the sink published.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5 as p5;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::config::{MqttTarget, Version};

/// Requests (publications, acknowledgements) queued for the connection task at most:
/// room for an acknowledgement of every packet id, so acknowledging never waits.
const REQUESTS: usize = 1 << 16;

/// A message the broker delivered.
#[derive(Debug)]
pub(crate) struct Delivered {
    pub(crate) topic: String,
    pub(crate) payload: Bytes,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    /// The packet id (0 for QoS 0): what acknowledging it needs.
    pub(crate) pkid: u16,
    /// Delivered again (after a reconnect; the DUP flag).
    pub(crate) dup: bool,
    /// MQTT 5 user properties.
    pub(crate) properties: Vec<(String, String)>,
}

/// What the connection task tells its owner.
#[derive(Debug)]
pub(crate) enum Event {
    /// A message arrived.
    Message(Delivered),
    /// The connection failed (it is retried); the text says why.
    Down(String),
    /// Connected (again); whether the broker still had the session.
    Up(bool),
    /// The broker refused the subscription (retrying will not help).
    Refused(String),
}

/// Counters of the sink's publications, kept by the connection task.
#[derive(Debug, Default)]
pub(crate) struct Acks {
    /// QoS 1/2 publications the broker acknowledged (PUBACK / PUBCOMP).
    pub(crate) confirmed: AtomicU64,
}

#[derive(Clone)]
enum Inner {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// The handle to one connection.
#[derive(Clone)]
pub(crate) struct MqttClient {
    inner: Inner,
}

fn qos4(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos5(q: u8) -> rumqttc::v5::mqttbytes::QoS {
    match q {
        0 => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
        1 => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        _ => rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
    }
}

impl MqttClient {
    /// Starts a connection as `client_id` that subscribes to `topics` at `qos` (none for
    /// a sink); events go to the returned receiver, and acknowledgements of
    /// publications are counted in `acks`. The task stops when the receiver is dropped.
    pub(crate) fn start(
        target: &MqttTarget,
        client_id: &str,
        clean_session: bool,
        manual_acks: bool,
        topics: Vec<String>,
        qos: u8,
        acks: Arc<Acks>,
    ) -> std::result::Result<(MqttClient, mpsc::Receiver<Event>), String> {
        let (tx, rx) = mpsc::channel(1024);
        let keep_alive = target.keep_alive;
        let client = match target.version {
            Version::V311 => {
                let mut o = rumqttc::MqttOptions::new(client_id, &target.host, target.port);
                o.set_keep_alive(keep_alive)
                    .set_clean_session(clean_session)
                    .set_manual_acks(manual_acks)
                    .set_max_packet_size(target.max_message_size, target.max_message_size)
                    .set_inflight(target.inflight);
                if let Some((u, p)) = &target.credentials {
                    o.set_credentials(u.clone(), p.clone());
                }
                if let Some(tls) = &target.tls {
                    o.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
                        tls.clone(),
                    )));
                }
                let (client, eventloop) = rumqttc::AsyncClient::new(o, REQUESTS);
                tokio::spawn(run_v4(eventloop, client.clone(), topics, qos, tx, acks));
                Inner::V4(client)
            }
            Version::V5 => {
                let mut o = rumqttc::v5::MqttOptions::new(client_id, &target.host, target.port);
                o.set_keep_alive(keep_alive)
                    .set_clean_start(clean_session)
                    .set_manual_acks(manual_acks)
                    .set_max_packet_size(Some(target.max_message_size as u32))
                    .set_receive_maximum(Some(u16::MAX))
                    .set_outgoing_inflight_upper_limit(target.inflight);
                if !clean_session {
                    // Keep the session (and its undelivered messages) for a day.
                    o.set_session_expiry_interval(Some(86_400));
                }
                if let Some((u, p)) = &target.credentials {
                    o.set_credentials(u.clone(), p.clone());
                }
                if let Some(tls) = &target.tls {
                    o.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
                        tls.clone(),
                    )));
                }
                let (client, eventloop) = rumqttc::v5::AsyncClient::new(o, REQUESTS);
                tokio::spawn(run_v5(eventloop, client.clone(), topics, qos, tx, acks));
                Inner::V5(client)
            }
        };
        Ok((MqttClient { inner: client }, rx))
    }

    /// Queues the acknowledgement of the delivered message `pkid` (PUBACK for QoS 1,
    /// PUBREC for QoS 2) without waiting: false when the queue is full (try again
    /// later; the connection task may be reconnecting).
    pub(crate) fn try_ack(&self, pkid: u16, qos: u8) -> bool {
        if qos == 0 {
            return true;
        }
        match &self.inner {
            Inner::V4(c) => {
                let mut p = rumqttc::Publish::new("", qos4(qos), Vec::<u8>::new());
                p.pkid = pkid;
                c.try_ack(&p).is_ok()
            }
            Inner::V5(c) => {
                let mut p = p5::Publish::new("", qos5(qos), Vec::<u8>::new(), None);
                p.pkid = pkid;
                c.try_ack(&p).is_ok()
            }
        }
    }

    /// Publishes one message (queued; the connection task sends it).
    pub(crate) async fn publish(
        &self,
        topic: String,
        qos: u8,
        retain: bool,
        payload: Vec<u8>,
    ) -> std::result::Result<(), String> {
        match &self.inner {
            Inner::V4(c) => c
                .publish(topic, qos4(qos), retain, payload)
                .await
                .map_err(|e| e.to_string()),
            Inner::V5(c) => c
                .publish(topic, qos5(qos), retain, payload)
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Says goodbye to the broker (the task then ends).
    pub(crate) async fn disconnect(&self) {
        let _ = match &self.inner {
            Inner::V4(c) => c.disconnect().await.map_err(|e| e.to_string()),
            Inner::V5(c) => c.disconnect().await.map_err(|e| e.to_string()),
        };
    }
}

/// Backoff after a failed connection: 0.5 s doubling up to 10 s.
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << failures.min(5))).min(Duration::from_secs(10))
}

async fn run_v4(
    mut eventloop: rumqttc::EventLoop,
    client: rumqttc::AsyncClient,
    topics: Vec<String>,
    qos: u8,
    tx: mpsc::Sender<Event>,
    acks: Arc<Acks>,
) {
    use rumqttc::{Event as E, Packet};
    let mut failures = 0u32;
    loop {
        match eventloop.poll().await {
            Ok(E::Incoming(Packet::ConnAck(c))) => {
                failures = 0;
                if !c.session_present && !topics.is_empty() {
                    let filters = topics
                        .iter()
                        .map(|t| rumqttc::SubscribeFilter::new(t.clone(), qos4(qos)));
                    if let Err(e) = client.subscribe_many(filters).await {
                        warn!(error = %e, "MQTT subscribe failed.");
                    }
                }
                if tx.send(Event::Up(c.session_present)).await.is_err() {
                    return;
                }
            }
            Ok(E::Incoming(Packet::Publish(p))) => {
                let m = Delivered {
                    topic: p.topic,
                    payload: p.payload,
                    qos: p.qos as u8,
                    retain: p.retain,
                    pkid: p.pkid,
                    dup: p.dup,
                    properties: Vec::new(),
                };
                if tx.send(Event::Message(m)).await.is_err() {
                    return;
                }
            }
            Ok(E::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => {
                acks.confirmed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(E::Incoming(Packet::SubAck(s))) => {
                if s.return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    let _ = tx
                        .send(Event::Refused(format!(
                            "the broker refused the subscription to {topics:?} (not allowed to \
                             read them?)"
                        )))
                        .await;
                }
            }
            Ok(E::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                if tx.is_closed() {
                    return;
                }
                let _ = tx.send(Event::Down(e.to_string())).await;
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}

async fn run_v5(
    mut eventloop: rumqttc::v5::EventLoop,
    client: rumqttc::v5::AsyncClient,
    topics: Vec<String>,
    qos: u8,
    tx: mpsc::Sender<Event>,
    acks: Arc<Acks>,
) {
    use p5::Packet;
    use rumqttc::v5::Event as E;
    let mut failures = 0u32;
    loop {
        match eventloop.poll().await {
            Ok(E::Incoming(Packet::ConnAck(c))) => {
                failures = 0;
                if !c.session_present && !topics.is_empty() {
                    let filters = topics.iter().map(|t| p5::Filter::new(t.clone(), qos5(qos)));
                    if let Err(e) = client.subscribe_many(filters).await {
                        warn!(error = %e, "MQTT subscribe failed.");
                    }
                }
                info!(session = c.session_present, "MQTT 5 connected.");
                if tx.send(Event::Up(c.session_present)).await.is_err() {
                    return;
                }
            }
            Ok(E::Incoming(Packet::Publish(p))) => {
                let m = Delivered {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    payload: p.payload,
                    qos: p.qos as u8,
                    retain: p.retain,
                    pkid: p.pkid,
                    dup: p.dup,
                    properties: p.properties.map(|x| x.user_properties).unwrap_or_default(),
                };
                if tx.send(Event::Message(m)).await.is_err() {
                    return;
                }
            }
            Ok(E::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => {
                acks.confirmed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(E::Incoming(Packet::SubAck(s))) => {
                if s.return_codes
                    .iter()
                    .any(|c| !matches!(c, p5::SubscribeReasonCode::Success(_)))
                {
                    let _ = tx
                        .send(Event::Refused(format!(
                            "the broker refused the subscription to {topics:?}: {:?}",
                            s.return_codes
                        )))
                        .await;
                }
            }
            Ok(E::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                if tx.is_closed() {
                    return;
                }
                let _ = tx.send(Event::Down(e.to_string())).await;
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}
