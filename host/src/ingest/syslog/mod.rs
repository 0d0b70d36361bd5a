//! The syslog receiver: UDP (RFC 5426, one message per datagram) and TCP (RFC 6587)
//! listeners configured in `[[syslog.listeners]]` ([`config`]), RFC 5424 / RFC 3164
//! parsing ([`message`]), TCP framing ([`framing`]), routing by source to a connector,
//! and batching into the connector's `normalize` through [`PushIngest`].
//!
//! Flow and bounds: every listener parses and routes each message, then queues its text
//! (the whole message: the plugin maps the header itself) on the target connector's
//! bounded queue. One worker per connector drains its queue in batches of up to
//! `batch_max` messages into [`PushIngest::push`]. When a queue is full, TCP readers
//! wait — they stop reading, so the sender sees TCP backpressure — and UDP datagrams
//! are dropped and counted. A malformed message (bad PRI or RFC 5424 header, oversize
//! frame, broken octet count) is counted, reported to the connector's health when its
//! source routes to one, and never stops the listener; a broken octet count closes only
//! that connection.

pub mod config;
pub mod framing;
pub mod message;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::BytesMut;
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::push::PushIngest;
use config::{Protocol, Router, SyslogConfig, Target};
use framing::{Decoded, FrameDecoder};

/// Default messages queued per connector.
pub const DEFAULT_QUEUE: usize = 4096;
/// Default messages per `normalize` batch.
pub const DEFAULT_BATCH: usize = 256;

/// Receiver counters (all listeners).
#[derive(Debug, Default)]
pub struct SyslogStats {
    /// Messages received (frames and datagrams), malformed ones included.
    pub received: AtomicU64,
    /// Messages whose header does not parse, oversize frames, broken octet counts.
    pub malformed: AtomicU64,
    /// UDP datagrams dropped because the connector's queue was full.
    pub udp_dropped: AtomicU64,
    /// Messages no route matched.
    pub unrouted: AtomicU64,
    /// Messages queued for a connector.
    pub queued: AtomicU64,
    /// Messages of batches the connector refused (disabled, no push, delivery failed).
    pub refused: AtomicU64,
    /// TCP connections accepted so far.
    pub connections: AtomicU64,
    /// TCP connections refused at `max_connections`.
    pub connections_refused: AtomicU64,
}

/// A snapshot of [`SyslogStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyslogCounts {
    /// See [`SyslogStats::received`].
    pub received: u64,
    /// See [`SyslogStats::malformed`].
    pub malformed: u64,
    /// See [`SyslogStats::udp_dropped`].
    pub udp_dropped: u64,
    /// See [`SyslogStats::unrouted`].
    pub unrouted: u64,
    /// See [`SyslogStats::queued`].
    pub queued: u64,
    /// See [`SyslogStats::refused`].
    pub refused: u64,
    /// See [`SyslogStats::connections`].
    pub connections: u64,
    /// See [`SyslogStats::connections_refused`].
    pub connections_refused: u64,
}

impl SyslogStats {
    /// Current values.
    pub fn snapshot(&self) -> SyslogCounts {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SyslogCounts {
            received: l(&self.received),
            malformed: l(&self.malformed),
            udp_dropped: l(&self.udp_dropped),
            unrouted: l(&self.unrouted),
            queued: l(&self.queued),
            refused: l(&self.refused),
            connections: l(&self.connections),
            connections_refused: l(&self.connections_refused),
        }
    }
}

/// A bound listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundListener {
    /// Transport.
    pub protocol: Protocol,
    /// The address it listens on (the real port when `:0` was configured).
    pub addr: SocketAddr,
}

/// The running receiver. Dropping it stops every listener.
#[derive(Debug)]
pub struct Receiver {
    stats: Arc<SyslogStats>,
    listeners: Vec<BoundListener>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Receiver {
    /// Counters.
    pub fn stats(&self) -> SyslogCounts {
        self.stats.snapshot()
    }

    /// Listeners in configuration order.
    pub fn listeners(&self) -> &[BoundListener] {
        &self.listeners
    }
}

/// Why the receiver did not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// A configuration value is wrong (names the key).
    #[error("{0}")]
    Config(String),
    /// A socket could not be bound.
    #[error("syslog listener {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

struct Dispatch {
    push: Weak<PushIngest>,
    queues: parking_lot::Mutex<HashMap<Target, mpsc::Sender<String>>>,
    queue_cap: usize,
    batch_max: usize,
    stats: Arc<SyslogStats>,
}

impl Dispatch {
    fn queue(self: &Arc<Self>, t: &Target) -> mpsc::Sender<String> {
        let mut q = self.queues.lock();
        if let Some(s) = q.get(t)
            && !s.is_closed()
        {
            return s.clone();
        }
        let (tx, rx) = mpsc::channel(self.queue_cap);
        q.insert(t.clone(), tx.clone());
        tokio::spawn(worker(
            self.push.clone(),
            t.clone(),
            rx,
            self.batch_max,
            self.stats.clone(),
        ));
        tx
    }

    fn malformed(&self, router: &Router, peer: IpAddr, what: &str) {
        self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, error = %what, "malformed syslog message");
        if let (Some(t), Some(push)) = (router.route(peer, None, None), self.push.upgrade()) {
            push.report_malformed(&t.org, &t.connector, what);
        }
    }

    /// Parse, route and queue one message; `wait` = TCP (block when full).
    async fn handle(self: &Arc<Self>, router: &Router, peer: IpAddr, frame: &[u8], wait: bool) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let msg = match message::parse(frame) {
            Ok(m) => m,
            Err(e) => return self.malformed(router, peer, &e.to_string()),
        };
        let Some(target) = router.route(peer, msg.hostname.as_deref(), msg.app_name.as_deref())
        else {
            self.stats.unrouted.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let text = String::from_utf8_lossy(frame).into_owned();
        let tx = self.queue(target);
        let sent = if wait {
            tx.send(text).await.is_ok()
        } else {
            match tx.try_send(text) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.stats.udp_dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        };
        if sent {
            self.stats.queued.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn worker(
    push: Weak<PushIngest>,
    target: Target,
    mut rx: mpsc::Receiver<String>,
    batch_max: usize,
    stats: Arc<SyslogStats>,
) {
    let mut batch: Vec<String> = Vec::with_capacity(batch_max);
    let mut refusals = 0u64;
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.push(first);
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let Some(push) = push.upgrade() else { return };
        let outcome = match push
            .service()
            .connector_record(&target.org, &target.connector)
        {
            Ok(rec) => push.push(&rec, &batch).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = outcome {
            stats
                .refused
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            refusals += 1;
            if refusals.is_power_of_two() {
                tracing::warn!(org = %target.org, connector = %target.connector, messages = batch.len(), refusals, error = %e, "syslog messages refused");
            }
        }
    }
}

/// Bind every listener and start serving.
pub async fn start(cfg: &SyslogConfig, push: &Arc<PushIngest>) -> Result<Receiver, ReceiverError> {
    let stats = Arc::new(SyslogStats::default());
    let dispatch = Arc::new(Dispatch {
        push: Arc::downgrade(push),
        queues: parking_lot::Mutex::new(HashMap::new()),
        queue_cap: cfg.queue_per_connector.unwrap_or(DEFAULT_QUEUE).max(1),
        batch_max: cfg.batch_max.unwrap_or(DEFAULT_BATCH).clamp(1, 10_000),
        stats: stats.clone(),
    });
    let mut listeners = Vec::new();
    let mut tasks = Vec::new();
    for (i, l) in cfg.listeners.iter().enumerate() {
        let path = format!("syslog.listeners[{i}]");
        let router = Arc::new(Router::new(l, &path).map_err(ReceiverError::Config)?);
        if !(64..=16 * 1024 * 1024).contains(&l.max_message_bytes) {
            return Err(ReceiverError::Config(format!(
                "{path}.max_message_bytes: must be 64 .. 16777216"
            )));
        }
        let bind_err = |source| ReceiverError::Bind {
            addr: l.bind,
            source,
        };
        match l.protocol {
            Protocol::Udp => {
                let sock = tokio::net::UdpSocket::bind(l.bind)
                    .await
                    .map_err(bind_err)?;
                let addr = sock.local_addr().map_err(bind_err)?;
                listeners.push(BoundListener {
                    protocol: Protocol::Udp,
                    addr,
                });
                tasks.push(tokio::spawn(serve_udp(
                    sock,
                    router,
                    dispatch.clone(),
                    l.max_message_bytes,
                )));
                tracing::info!(%addr, "syslog UDP listener");
            }
            Protocol::Tcp => {
                let sock = tokio::net::TcpListener::bind(l.bind)
                    .await
                    .map_err(bind_err)?;
                let addr = sock.local_addr().map_err(bind_err)?;
                listeners.push(BoundListener {
                    protocol: Protocol::Tcp,
                    addr,
                });
                tasks.push(tokio::spawn(serve_tcp(
                    sock,
                    router,
                    dispatch.clone(),
                    l.max_message_bytes,
                    l.max_connections.max(1),
                )));
                tracing::info!(%addr, "syslog TCP listener");
            }
        }
    }
    Ok(Receiver {
        stats,
        listeners,
        tasks,
    })
}

async fn serve_udp(
    sock: tokio::net::UdpSocket,
    router: Arc<Router>,
    dispatch: Arc<Dispatch>,
    max: usize,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "syslog UDP receive failed");
                continue;
            }
        };
        if n > max {
            dispatch.stats.received.fetch_add(1, Ordering::Relaxed);
            dispatch.malformed(
                &router,
                peer.ip(),
                &format!("datagram of {n} bytes exceeds {max}"),
            );
            continue;
        }
        dispatch.handle(&router, peer.ip(), &buf[..n], false).await;
    }
}

async fn serve_tcp(
    sock: tokio::net::TcpListener,
    router: Arc<Router>,
    dispatch: Arc<Dispatch>,
    max: usize,
    max_connections: usize,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = sock.accept() => a,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "syslog TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            dispatch
                .stats
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        dispatch.stats.connections.fetch_add(1, Ordering::Relaxed);
        let router = router.clone();
        let dispatch = dispatch.clone();
        // Connection tasks live in the JoinSet: stopping the listener stops them too.
        conns.spawn(async move {
            let _permit = permit;
            serve_connection(stream, peer.ip(), &router, &dispatch, max).await;
        });
    }
}

async fn serve_connection(
    mut stream: tokio::net::TcpStream,
    peer: IpAddr,
    router: &Router,
    dispatch: &Arc<Dispatch>,
    max: usize,
) {
    let mut decoder = FrameDecoder::new(max);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut eof = false;
    loop {
        let item = if eof {
            decoder.finish(&mut buf)
        } else {
            decoder.decode(&mut buf)
        };
        match item {
            Ok(Some(Decoded::Frame(frame))) => dispatch.handle(router, peer, &frame, true).await,
            Ok(Some(Decoded::Oversize { len })) => {
                dispatch.stats.received.fetch_add(1, Ordering::Relaxed);
                dispatch.malformed(router, peer, &format!("frame of {len} bytes exceeds {max}"));
            }
            Ok(None) if eof => return,
            Ok(None) => {
                if buf.capacity() - buf.len() < 4096 {
                    buf.reserve(16 * 1024);
                }
                match stream.read_buf(&mut buf).await {
                    Ok(0) => eof = true,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "syslog TCP read failed");
                        return;
                    }
                }
            }
            Err(e) => {
                dispatch.stats.received.fetch_add(1, Ordering::Relaxed);
                dispatch.malformed(router, peer, &e.to_string());
                return;
            }
        }
    }
}
