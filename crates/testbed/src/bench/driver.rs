//! Drives load: closed loop (a fixed number of clients, each waiting for its order to finish
//! before placing the next), open loop (a fixed arrival rate, whatever the latency) or a burst
//! (many requests released at once), against OrderFlow over HTTP or against the baseline
//! workflow directly.
//!
//! Every unit's times are counted from its *scheduled* send time, not from when its request
//! went out: in open loop the tick at which it was due, in a burst the moment of release, in
//! closed loop the moment its client was ready (then the two are the same). Otherwise a stalled
//! client or runtime would send late and time only what follows, hiding exactly the waits a
//! user would see (coordinated omission).
//!
//! An order's latency is `orders.completed_at` (written by the step that completes it) minus
//! its scheduled send time; the clocks are the same machine's. A poller reads completions for
//! the orders in flight from PostgreSQL every few milliseconds, so the service itself is not
//! asked anything extra. A `503` whose problem `code` is `overloaded` is admission control
//! refusing the order before anything is written: it is counted as *shed*, not as an error,
//! and has no latency.

use super::baseline::BaselineHost;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

/// How units are sent. A burst spawns `count` units first, then releases them together; it
/// ignores the duration.
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    Closed { concurrency: usize },
    Open { rate: f64 },
    Burst { count: usize },
}

/// How long an accepted order may take to reach a terminal state before it counts as
/// unfinished. Generous: under overload, accepted orders queue behind each other.
pub const SETTLE: Duration = Duration::from_secs(120);

/// One unit of work: the API's response time, and create → terminal.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub response: Duration,
    pub latency: Duration,
}

/// How one unit ended, unless it failed.
#[derive(Debug, Clone, Copy)]
pub enum Ran {
    Done(Sample),
    /// Refused by admission control (503 `overloaded`); nothing was created.
    Shed,
    /// Accepted, but not terminal within [`SETTLE`].
    Unfinished,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub samples: Vec<Sample>,
    pub errors: usize,
    pub shed: usize,
    pub unfinished: usize,
    pub sent: usize,
}

/// Something that can run one order (or one baseline workflow) to its end.
pub trait Target: Send + Sync + 'static {
    /// Runs one unit due at `scheduled` (now, or earlier if the driver is late); its times are
    /// counted from `scheduled`.
    fn run_one(&self, scheduled: Instant) -> impl Future<Output = anyhow::Result<Ran>> + Send;
}

/// Runs `target` in `mode` for `duration`, printing a progress line every second.
pub async fn drive<T: Target>(
    target: Arc<T>,
    mode: Mode,
    duration: Duration,
    label: &str,
) -> Outcome {
    let started = Instant::now();
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let one = {
        let (outcome, in_flight, done) = (outcome.clone(), in_flight.clone(), done.clone());
        move |target: Arc<T>, scheduled: Instant| {
            let (outcome, in_flight, done) = (outcome.clone(), in_flight.clone(), done.clone());
            async move {
                in_flight.fetch_add(1, Ordering::Relaxed);
                let result = target.run_one(scheduled).await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                let mut outcome = outcome.lock().expect("lock");
                outcome.sent += 1;
                match result {
                    Ok(Ran::Done(sample)) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        outcome.samples.push(sample)
                    }
                    Ok(Ran::Shed) => outcome.shed += 1,
                    Ok(Ran::Unfinished) => outcome.unfinished += 1,
                    Err(_) => outcome.errors += 1,
                }
            }
        }
    };
    let progress = {
        let (in_flight, done, outcome, label) =
            (in_flight.clone(), done.clone(), outcome.clone(), label.to_owned());
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = done.load(Ordering::Relaxed);
                let (errors, shed) = {
                    let outcome = outcome.lock().expect("lock");
                    (outcome.errors, outcome.shed)
                };
                eprint!(
                    "\r  {label}: {:>4.0}s  {:>6.1}/s  in flight {:>4}  errors {errors}  shed {shed}   ",
                    started.elapsed().as_secs_f64(),
                    (now - last) as f64,
                    in_flight.load(Ordering::Relaxed)
                );
                last = now;
            }
        })
    };

    let mut tasks = tokio::task::JoinSet::new();
    match mode {
        Mode::Closed { concurrency } => {
            for _ in 0..concurrency {
                let (target, one) = (target.clone(), one.clone());
                tasks.spawn(async move {
                    while started.elapsed() < duration {
                        one(target.clone(), Instant::now()).await;
                    }
                });
            }
        }
        Mode::Open { rate } => {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            // A late tick fires at once and says when it was due: that is the scheduled time.
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while started.elapsed() < duration {
                let due = ticker.tick().await.into_std();
                tasks.spawn(one(target.clone(), due));
            }
        }
        Mode::Burst { count } => {
            // Every request is spawned and waits at the gate; then they all go at once.
            let (gate, release) = watch::channel(None::<Instant>);
            for _ in 0..count {
                let (target, one, mut release) = (target.clone(), one.clone(), release.clone());
                tasks.spawn(async move {
                    let released = *release.wait_for(Option::is_some).await.expect("the gate");
                    one(target, released.expect("released")).await;
                });
            }
            gate.send_replace(Some(Instant::now()));
        }
    }
    tasks.join_all().await;
    progress.abort();
    eprintln!();
    std::mem::take(&mut *outcome.lock().expect("lock"))
}

/// Customers' HTTP clients: many shops' customers are many addresses, and the service gives
/// each address a share of its connections (`HTTP_MAX_CONNECTIONS_PER_CLIENT`). The benchmark
/// spreads its requests over [`CUSTOMER_ADDRESSES`] loopback addresses (127.0.0.10 and up), so
/// that a burst of a thousand is a crowd, not one client's thousand sockets.
#[derive(Clone)]
pub struct Customers(Arc<Vec<reqwest::Client>>);

pub const CUSTOMER_ADDRESSES: u8 = 32;

impl Customers {
    pub fn new() -> anyhow::Result<Self> {
        let clients = (0..CUSTOMER_ADDRESSES)
            .map(|i| {
                reqwest::Client::builder()
                    .local_address(std::net::IpAddr::from([127, 0, 0, 10 + i]))
                    .pool_max_idle_per_host(1024)
                    .timeout(Duration::from_secs(30))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(Arc::new(clients)))
    }

    /// The client of the `n`-th request.
    pub fn client(&self, n: usize) -> &reqwest::Client {
        &self.0[n % self.0.len()]
    }
}

/// OrderFlow over HTTP.
pub struct OrderTarget {
    http: Customers,
    url: String,
    products: Vec<(String, String)>,
    next: AtomicUsize,
    completions: Completions,
}

type Completions = Arc<Mutex<HashMap<Uuid, oneshot::Sender<SystemTime>>>>;

impl OrderTarget {
    /// `pool` is the service's database, read for completions only.
    pub fn new(url: String, products: Vec<(String, String)>, pool: sqlx::PgPool) -> Arc<Self> {
        let completions: Completions = Arc::default();
        tokio::spawn(poll_completions(pool, completions.clone()));
        let http = Customers::new().expect("the customers' HTTP clients");
        Arc::new(Self { http, url, products, next: AtomicUsize::new(0), completions })
    }
}

impl Target for OrderTarget {
    async fn run_one(&self, scheduled: Instant) -> anyhow::Result<Ran> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let (product, price) = &self.products[n % self.products.len()];
        let body = json!({
            "customer_id": format!("bench-{}", n % 1000),
            "items": [{"product_id": product, "name": product, "quantity": 1, "price": price}]
        });
        // The scheduled time on the wall clock, to compare with `completed_at`.
        let due = SystemTime::now() - scheduled.elapsed();
        let response =
            self.http.client(n).post(format!("{}/api/orders", self.url)).json(&body).send().await?;
        let response_time = scheduled.elapsed();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            let problem: serde_json::Value = response.json().await.unwrap_or_default();
            anyhow::ensure!(problem["code"] == "overloaded", "HTTP 503 {problem}");
            return Ok(Ran::Shed);
        }
        anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
        let accepted: serde_json::Value = response.json().await?;
        let order_id: Uuid = accepted["order_id"].as_str().unwrap_or_default().parse()?;
        let (done_tx, done_rx) = oneshot::channel();
        self.completions.lock().expect("lock").insert(order_id, done_tx);
        let Ok(completed_at) = tokio::time::timeout(SETTLE, done_rx).await else {
            self.completions.lock().expect("lock").remove(&order_id);
            return Ok(Ran::Unfinished);
        };
        let latency = completed_at?.duration_since(due).unwrap_or_default();
        Ok(Ran::Done(Sample { response: response_time, latency }))
    }
}

async fn poll_completions(pool: sqlx::PgPool, completions: Completions) {
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let ids: Vec<Uuid> = completions.lock().expect("lock").keys().copied().collect();
        if ids.is_empty() {
            continue;
        }
        let done: Vec<(Uuid, DateTime<Utc>)> = match sqlx::query!(
            r#"SELECT id, completed_at AS "completed_at!" FROM orders
               WHERE id = ANY($1) AND completed_at IS NOT NULL"#,
            &ids
        )
        .fetch_all(&pool)
        .await
        {
            Ok(rows) => rows.into_iter().map(|r| (r.id, r.completed_at)).collect(),
            Err(_) => continue,
        };
        let mut completions = completions.lock().expect("lock");
        for (id, completed_at) in done {
            if let Some(tx) = completions.remove(&id) {
                let _ = tx.send(SystemTime::from(completed_at));
            }
        }
    }
}

/// The baseline workflow, started directly.
pub struct BaselineTarget {
    pub host: BaselineHost,
    pub prefix: String,
    pub next: AtomicUsize,
}

impl Target for BaselineTarget {
    async fn run_one(&self, scheduled: Instant) -> anyhow::Result<Ran> {
        let id = format!("{}-{}", self.prefix, self.next.fetch_add(1, Ordering::Relaxed));
        self.host.run_one(id).await?;
        Ok(Ran::Done(Sample { response: Duration::ZERO, latency: scheduled.elapsed() }))
    }
}

/// `GET /api/orders/status` of random existing orders.
pub struct StatusTarget {
    pub http: Customers,
    pub url: String,
    pub workflow_ids: Vec<String>,
    pub next: AtomicUsize,
}

impl Target for StatusTarget {
    async fn run_one(&self, scheduled: Instant) -> anyhow::Result<Ran> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = &self.workflow_ids[n.wrapping_mul(7919) % self.workflow_ids.len()];
        let response = self
            .http
            .client(n)
            .get(format!("{}/api/orders/status?workflow_id={id}", self.url))
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
        response.bytes().await?;
        let elapsed = scheduled.elapsed();
        Ok(Ran::Done(Sample { response: elapsed, latency: elapsed }))
    }
}
