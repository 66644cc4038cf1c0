//! AS load benchmark: the real `slotpay-as` (release build, SQLite with durable commits)
//! on loopback, against a real node, driven by valid receipts over many channels and
//! devices; beside it, the machine's bare secp256k1 recovery rate measured in the same run.
//!
//! Open loop: each request has a scheduled send time fixed in advance (constant arrival
//! rate), and its latency runs from that time, not from when it was actually sent, so a
//! slow AS cannot hide queueing by slowing the generator (coordinated omission). Receipts
//! on one channel are cumulative, so a channel's requests go one after another (a real
//! client does the same); concurrency comes from the number of channels.
//!
//! Then, end to end: `slotpay pay` as a process, from its start to the device's grant.
//!
//! Then the same load on PostgreSQL ledgers (a cluster the benchmark starts, durable
//! commits): one instance, then two and three instances on one database behind HAProxy,
//! with where the time goes (CPU of the instances, of PostgreSQL and of HAProxy per
//! receipt; batches, commits and WAL flushes per receipt).
//!
//! Needs SLOTPAY_NODE_URL and the release binaries: `scripts/bench.sh` provides both.
//! Writes `bench/as-load.md`. Knobs: SLOTPAY_LOAD_CHANNELS (256), SLOTPAY_LOAD_SECONDS (10),
//! SLOTPAY_LOAD_POSTGRES=0 (SQLite only).
use api::to_hex;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use protocol::keys::{self, SecretKey};
use protocol::{AnyDomain, ChannelId};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tests::services::{Haproxy, Postgres};
use tests::several::Instance;
use tests::*;

const PRICE: u128 = 1_000_000;
/// The channels' notice: long enough for the AS to hold every one of them (it holds only
/// as many as it could settle together if the payer rotated them all at once).
const LOAD_NOTICE: u32 = 400;
const DEVICES: usize = 16;
/// Opens per transaction: a block's proof-size limit allows about a hundred.
const OPENS_PER_BATCH: usize = 64;

type Http = Client<HttpConnector, Full<Bytes>>;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn device_name(i: usize) -> String {
    format!("dev-{i:02}")
}

/// Bare libsecp256k1 public-key recovery on one core: recoveries per second.
fn bare_recovery_rate() -> f64 {
    use secp256k1::{ecdsa::RecoverableSignature, Message, Secp256k1, SecretKey as Sk};
    let secp = Secp256k1::new();
    let sk = Sk::from_slice(&[7; 32]).expect("key");
    let cases: Vec<(Message, RecoverableSignature)> = (0..256u32)
        .map(|i| {
            let mut digest = [0u8; 32];
            digest[..4].copy_from_slice(&i.to_le_bytes());
            let msg = Message::from_digest_slice(&digest).expect("32 bytes");
            (msg, secp.sign_ecdsa_recoverable(&msg, &sk))
        })
        .collect();
    let mut best = 0f64;
    // Best of 5 one-second rounds: the rate the core can sustain when nothing interferes.
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_secs(1) {
            for (msg, sig) in &cases {
                std::hint::black_box(secp.recover_ecdsa(msg, sig).expect("recovers"));
            }
            n += cases.len() as u64;
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}

/// CPU seconds (user + system) of processes `roots` and all their descendants so far.
fn tree_cpu_seconds(roots: &[u32]) -> f64 {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0);
        parents.push((pid, ppid));
    }
    let mut tree: Vec<u32> = roots.to_vec();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree.iter().map(|p| cpu_seconds(&p.to_string())).sum()
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" closing the command name: utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0 // USER_HZ is 100 on Linux
}

struct Channel {
    id: ChannelId,
    secret: SecretKey,
    /// Slots bought so far (the running total is `sold * PRICE`).
    sold: u64,
}

/// Pre-signed request bodies for the next `n` purchases of one slot on `channel`.
fn sign_ahead(channel: &Channel, domain: &AnyDomain, index: usize, n: u64) -> Vec<Bytes> {
    (1..=n)
        .map(|k| {
            let device = device_name((index + (channel.sold + k) as usize) % DEVICES);
            let body = purchase_body(
                domain,
                &device,
                channel.id,
                0,
                u128::from(channel.sold + k) * PRICE,
                &channel.secret,
                None,
            );
            Bytes::from(serde_json::to_vec(&body).expect("json"))
        })
        .collect()
}

#[derive(Default)]
struct Outcome {
    latencies_us: Vec<u64>,
    failures: Vec<String>,
}

/// Sends `bodies` in order; each waits for its scheduled time (if given) and for the
/// previous answer. Latency counts from the scheduled time. Without a schedule, sends
/// until `deadline`; a request under way then is finished, never abandoned.
async fn drive(
    http: Http,
    url: hyper::Uri,
    bodies: Vec<Bytes>,
    schedule: Option<Vec<Instant>>,
    deadline: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    for (k, body) in bodies.into_iter().enumerate() {
        let due = match &schedule {
            Some(times) => {
                tokio::time::sleep_until(times[k].into()).await;
                times[k]
            }
            None if Instant::now() >= deadline => break,
            None => Instant::now(),
        };
        let request = hyper::Request::post(url.clone())
            .header("content-type", "application/json")
            .body(Full::new(body))
            .expect("request");
        let answer = match http.request(request).await {
            Ok(response) => {
                let status = response.status();
                let body = response.into_body().collect().await.map(|b| b.to_bytes());
                match body {
                    Ok(b) if status == 200 && b.windows(12).any(|w| w == b"\"fresh\":true") => {
                        Ok(())
                    }
                    Ok(b) => Err(format!("{status}: {}", String::from_utf8_lossy(&b))),
                    Err(e) => Err(format!("{status}: body: {e}")),
                }
            }
            Err(e) => Err(format!("request: {e}")),
        };
        match answer {
            Ok(()) => out.latencies_us.push(due.elapsed().as_micros() as u64),
            Err(e) => {
                out.failures.push(e);
                // The channel's total is now uncertain: stop this channel.
                break;
            }
        }
    }
    out
}

/// The AS under load: where requests go, the AS processes, and what serves them.
struct Target {
    http: Http,
    as_url: String,
    as_pids: Vec<u32>,
    /// Each instance's URL (for its counters).
    instance_urls: Vec<String>,
    /// The PostgreSQL postmaster (its backends are its children), and the database.
    postgres: Option<(u32, String, u16)>,
    /// HAProxy's process tree.
    balancer: Option<u32>,
    domain: AnyDomain,
}

/// Counters summed over the instances, and PostgreSQL's, at one moment.
#[derive(Default, Clone, Copy)]
struct Counters {
    batches: f64,
    batched: f64,
    batch_us: f64,
    retries: f64,
    commits: f64,
    wal_syncs: f64,
}

impl Counters {
    fn read(target: &Target) -> Self {
        let mut c = Counters::default();
        for url in &target.instance_urls {
            let text = ureq::get(&format!("{url}/metrics"))
                .call()
                .ok()
                .and_then(|r| r.into_string().ok())
                .unwrap_or_default();
            let get = |name: &str| -> f64 {
                text.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
                    .unwrap_or(0.0)
            };
            c.batches += get("slotpay_ledger_batches_total");
            c.batched += get("slotpay_ledger_batched_sales_total");
            c.batch_us += get("slotpay_ledger_batch_microseconds_total");
            c.retries += get("slotpay_ledger_batch_retries_total");
        }
        if let Some((_, db, port)) = &target.postgres {
            let psql = |sql: &str| -> f64 {
                Command::new(services::pg_bin("psql"))
                    .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
                    .args(["-d", db, "-X", "-A", "-t", "-c", sql])
                    .output()
                    .ok()
                    .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
                    .unwrap_or(0.0)
            };
            c.commits = psql(&format!(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'"
            ));
            c.wal_syncs = psql("SELECT wal_sync FROM pg_stat_wal");
        }
        c
    }

    fn minus(self, o: Self) -> Self {
        Self {
            batches: self.batches - o.batches,
            batched: self.batched - o.batched,
            batch_us: self.batch_us - o.batch_us,
            retries: self.retries - o.retries,
            commits: self.commits - o.commits,
            wal_syncs: self.wal_syncs - o.wal_syncs,
        }
    }
}

struct Phase {
    name: String,
    /// The ledger's configuration ("SQLite", "PostgreSQL, 2 instances").
    setup: String,
    db_cpu: f64,
    lb_cpu: f64,
    counters: Counters,
    offered: Option<f64>,
    completed: usize,
    failures: Vec<String>,
    seconds: f64,
    as_cpu: f64,
    gen_cpu: f64,
    latencies_us: Vec<u64>,
}

impl Phase {
    fn throughput(&self) -> f64 {
        self.completed as f64 / self.seconds
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 * p).ceil() as usize)
            .clamp(1, self.latencies_us.len());
        self.latencies_us[i - 1] as f64 / 1000.0
    }
}

/// One load phase over every channel: closed loop (`rate` None: each channel sends as soon
/// as its previous answer arrives) or open loop at `rate` requests per second in total.
async fn phase(
    target: &Target,
    name: &str,
    channels: &[Channel],
    rate: Option<f64>,
    seconds: f64,
    closed_loop_budget: u64,
) -> Phase {
    let Target {
        http,
        as_url,
        as_pids,
        domain,
        ..
    } = target;
    let url: hyper::Uri = format!("{as_url}{}", api::routes::PURCHASE)
        .parse()
        .expect("uri");
    let n = channels.len();
    let per_channel = match rate {
        Some(r) => (r * seconds / n as f64).ceil() as u64,
        None => closed_loop_budget,
    };
    eprintln!("{name}: signing {} receipts ahead", per_channel * n as u64);
    let bodies: Vec<Vec<Bytes>> = channels
        .iter()
        .enumerate()
        .map(|(i, c)| sign_ahead(c, domain, i, per_channel))
        .collect();
    eprintln!("{name}: running");
    let db_root: Vec<u32> = target.postgres.iter().map(|p| p.0).collect();
    let lb_root: Vec<u32> = target.balancer.iter().copied().collect();
    let counters0 = Counters::read(target);
    let (as_cpu0, gen_cpu0) = (tree_cpu_seconds(as_pids), cpu_seconds("self"));
    let (db_cpu0, lb_cpu0) = (tree_cpu_seconds(&db_root), tree_cpu_seconds(&lb_root));
    let start = Instant::now() + Duration::from_millis(50);
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(n);
    for (i, bodies) in bodies.into_iter().enumerate() {
        let schedule = rate.map(|r| {
            (0..bodies.len())
                .map(|k| start + Duration::from_secs_f64((i + k * n) as f64 / r))
                .collect()
        });
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            drive(http, url, bodies, schedule, deadline).await
        }));
    }
    let mut outcome = Outcome::default();
    for task in tasks {
        let o = task.await.expect("channel task");
        outcome.latencies_us.extend(o.latencies_us);
        outcome.failures.extend(o.failures);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (as_cpu, gen_cpu) = (
        tree_cpu_seconds(as_pids) - as_cpu0,
        cpu_seconds("self") - gen_cpu0,
    );
    let (db_cpu, lb_cpu) = (
        tree_cpu_seconds(&db_root) - db_cpu0,
        tree_cpu_seconds(&lb_root) - lb_cpu0,
    );
    let counters = Counters::read(target).minus(counters0);
    outcome.latencies_us.sort_unstable();
    Phase {
        name: name.into(),
        setup: String::new(),
        db_cpu: db_cpu / elapsed,
        lb_cpu: lb_cpu / elapsed,
        counters,
        offered: rate,
        completed: outcome.latencies_us.len(),
        failures: outcome.failures,
        seconds: elapsed,
        as_cpu: as_cpu / elapsed,
        gen_cpu: gen_cpu / elapsed,
        latencies_us: outcome.latencies_us,
    }
}

/// Re-reads each channel's total from the AS after a phase, so the next phase signs on top.
fn resync(as_url: &str, channels: &mut [Channel]) {
    for c in channels.iter_mut() {
        let total: u128 = as_client(as_url)
            .channel(c.id)
            .expect("channel")
            .total
            .parse()
            .expect("number");
        assert_eq!(total % PRICE, 0);
        c.sold = (total / PRICE) as u64;
    }
}

fn main() {
    let Ok(url) = std::env::var("SLOTPAY_NODE_URL") else {
        eprintln!("as_load: SLOTPAY_NODE_URL is not set; run scripts/bench.sh");
        std::process::exit(2);
    };
    let n_channels = env_or("SLOTPAY_LOAD_CHANNELS", 256) as usize;
    let seconds = env_or("SLOTPAY_LOAD_SECONDS", 10) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    eprintln!("bare secp256k1 recovery, one core …");
    let bare = bare_recovery_rate();
    eprintln!("  {bare:.0}/s per core");

    let dir = std::env::temp_dir().join(format!("slotpay-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work dir");
    let deployment = deploy(&dir, &url);
    // One more device, never used by the load, for the end-to-end runs.
    let devices: Vec<String> = (0..=DEVICES).map(device_name).collect();
    let device_refs: Vec<&str> = devices.iter().map(String::as_str).collect();
    let as_port = free_tcp_port();
    write_as_config(
        &dir,
        &url,
        as_port,
        &device_refs,
        &AsOptions {
            price: PRICE,
            min_notice_blocks: LOAD_NOTICE,
            ..AsOptions::default()
        },
    );
    let as_url = format!("http://127.0.0.1:{as_port}");
    let as_proc = start_as(&dir, &as_url);
    let as_pid = as_proc.child.id();
    let terms = as_terms(&as_url);
    let domain = terms.domain().expect("domain");
    let payee = terms.payee_account().expect("payee");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // One extra channel, untouched by the load, for the end-to-end `slotpay pay` runs.
    let mut channels =
        runtime.block_on(open_load_channels(&url, &deployment, payee, n_channels + 1));
    let pay_channel = channels.pop().expect("pay channel");

    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(n_channels)
        .build_http();
    let target = Target {
        http: http.clone(),
        as_url: as_url.clone(),
        as_pids: vec![as_pid],
        instance_urls: vec![as_url.clone()],
        postgres: None,
        balancer: None,
        domain,
    };
    let mut phases = Vec::new();
    // Warm-up: one purchase per channel (connections, the AS's channel views, SQLite pages).
    let p = runtime.block_on(phase(&target, "warm-up", &channels, None, 30.0, 1));
    assert!(
        p.failures.is_empty(),
        "warm-up failed: {:?}",
        &p.failures[..p.failures.len().min(3)]
    );
    resync(&as_url, &mut channels);
    let capacity_budget = ((bare * cores as f64 * seconds) / n_channels as f64).ceil() as u64;
    let capacity = runtime.block_on(phase(
        &target,
        "capacity (closed loop)",
        &channels,
        None,
        seconds,
        capacity_budget,
    ));
    resync(&as_url, &mut channels);
    let max = capacity.throughput();
    phases.push(capacity);
    // The goal's latency load: half of its throughput goal, i.e. 25% of cores x bare.
    let goal_half_load = 0.25 * bare * cores as f64;
    let rates = [
        ("open loop at 25% of capacity".to_owned(), max * 0.25),
        ("open loop at 50% of capacity".to_owned(), max * 0.5),
        ("open loop at 75% of capacity".to_owned(), max * 0.75),
        (
            "open loop at the goal's half load (25% of cores × bare)".to_owned(),
            goal_half_load,
        ),
    ];
    for (name, rate) in rates {
        let p = runtime.block_on(phase(&target, &name, &channels, Some(rate), seconds, 0));
        resync(&as_url, &mut channels);
        phases.push(p);
    }
    // Every answered purchase is in the ledger, and nothing else is: the AS's count, the
    // totals in its ledger and the generator's answers agree.
    let answered: usize = phases.iter().map(|p| p.completed).sum::<usize>() + channels.len();
    let metrics = ureq::get(&format!("{as_url}/metrics"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    let sold: u64 = channels.iter().map(|c| c.sold).sum();
    assert_eq!(sold as usize, answered, "ledger totals vs answers");
    assert!(
        metrics.contains(&format!("slotpay_purchases_total {sold}\n")),
        "the AS counted other than the {sold} purchases the generator saw:\n{metrics}"
    );

    let e2e = end_to_end(&dir, &as_url, &pay_channel, 100);
    drop(as_proc);
    for p in &mut phases {
        p.setup = "SQLite".into();
    }
    // The same load on PostgreSQL: one, two and three instances on one database.
    let mut pg_phases = Vec::new();
    if std::env::var("SLOTPAY_LOAD_POSTGRES").as_deref() != Ok("0") {
        let sqlite_half = max * 0.5;
        let pg = Postgres::start();
        for n in 1..=3usize {
            pg_phases.extend(postgres_run(
                &pg,
                n,
                &dir,
                &url,
                &device_refs,
                &http,
                domain,
                &mut channels,
                seconds,
                capacity_budget,
                sqlite_half,
                &runtime,
            ));
        }
    }
    let out = repo_root().join("bench/as-load.md");
    let mut report = report(bare, cores, n_channels, &phases, &e2e);
    report.push_str(&postgres_report(&phases, &pg_phases));
    report.push_str(&previous_run(&out));
    println!("{report}");
    std::fs::write(&out, report).expect("write bench/as-load.md");
    eprintln!("wrote {}", out.display());
    for p in phases.iter().chain(&pg_phases) {
        assert!(
            p.failures.is_empty(),
            "{}: {} requests failed, first: {:?}",
            p.name,
            p.failures.len(),
            &p.failures[..p.failures.len().min(3)]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn open_load_channels(
    url: &str,
    deployment: &Path,
    payee: [u8; 32],
    n: usize,
) -> Vec<Channel> {
    let client = contract(url, deployment).await;
    let expires_at = best_block(&client).await + 1_000_000;
    let mut channels = Vec::with_capacity(n);
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(OPENS_PER_BATCH) {
        let secrets: Vec<SecretKey> = chunk.iter().map(|_| keys::generate()).collect();
        let ids = open_channels(
            &client,
            payee,
            &delegates(&secrets),
            PRICE * 1_000_000,
            expires_at,
            LOAD_NOTICE,
        )
        .await;
        for (id, secret) in ids.into_iter().zip(secrets) {
            channels.push(Channel {
                id,
                secret,
                sold: 0,
            });
        }
        eprintln!(
            "opened {} of {n} channels ({:.1} s)",
            channels.len(),
            started.elapsed().as_secs_f64()
        );
    }
    channels
}

struct EndToEnd {
    runs: usize,
    wall_ms: Vec<f64>,
    inner_ms: Vec<f64>,
}

/// `slotpay pay` as a process, one slot each time, through the AS to a device over CoAP.
fn end_to_end(dir: &Path, as_url: &str, channel: &Channel, runs: usize) -> EndToEnd {
    let addr = free_udp_addr();
    let _device = start_device(dir, &device_name(DEVICES), addr);
    let key = dir.join("pay.key");
    std::fs::write(&key, to_hex(&channel.secret.secret_bytes())).expect("key file");
    let mut wall_ms = Vec::with_capacity(runs);
    let mut inner_ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let out = run(Command::new(bin("slotpay"))
            .args([
                "--json",
                "pay",
                "--as",
                as_url,
                "--channel",
                &channel.id.0.to_string(),
                "--device",
                &device_name(DEVICES),
                "--coap",
                &addr.to_string(),
                "--max-price",
                &PRICE.to_string(),
                "--offline",
                "--key",
            ])
            .arg(&key)
            .arg("--deployment")
            .arg(dir.join("deployment.json")));
        wall_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        let v: Value = serde_json::from_str(out.trim()).expect("pay JSON");
        inner_ms.push(v["elapsed_ms"].as_f64().expect("elapsed_ms"));
    }
    wall_ms.sort_by(f64::total_cmp);
    inner_ms.sort_by(f64::total_cmp);
    EndToEnd {
        runs,
        wall_ms,
        inner_ms,
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[i - 1]
}

/// The previous report's header and load table, kept beside the new figures so that a
/// change's effect shows in the file it changed (earlier runs are in git history).
fn previous_run(path: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let text = text.split("\n## Previous run").next().unwrap_or_default();
    let measured = text
        .lines()
        .find(|l| l.starts_with("Measured"))
        .unwrap_or("");
    let table: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('|'))
        .take_while(|l| !l.starts_with("| measured"))
        .collect();
    if table.is_empty() {
        return String::new();
    }
    format!(
        "\n## Previous run, for comparison\n\n{}\n\n{}\n",
        measured.trim(),
        table.join("\n")
    )
}

fn report(bare: f64, cores: usize, channels: usize, phases: &[Phase], e2e: &EndToEnd) -> String {
    let mut r = String::new();
    let limit = bare * cores as f64;
    let date = run(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_default();
    let _ = writeln!(r, "# AS load and end-to-end latency\n");
    let _ = writeln!(
        r,
        "Measured {} on {cores} cores ({cpu}). Reproduce: `scripts/bench.sh` (or, with a node at \
         SLOTPAY_NODE_URL and release binaries, `cargo bench -p tests --bench as_load`).\n",
        date.trim()
    );
    if let Ok(note) = std::env::var("SLOTPAY_BENCH_NOTE") {
        let _ = writeln!(r, "Note: {note}\n");
    }
    let _ = writeln!(
        r,
        "The real `slotpay-as` (release) on loopback: SQLite WAL with `synchronous=FULL`, every sale \
         durable before its answer (group commit). {channels} delegate channels opened on a real \
         substrate-contracts-node, {DEVICES} devices, one slot per receipt, every receipt a fresh \
         valid signature. Generator and AS share the same {cores} cores.\n"
    );
    let _ = writeln!(
        r,
        "Bare limit, same run: libsecp256k1 recovery {bare:.0}/s per core, × {cores} cores = {limit:.0}/s.\n"
    );
    let _ = writeln!(
        r,
        "| phase | offered /s | receipts /s | vs cores × bare | p50 ms | p99 ms | p99.9 ms | AS CPU (cores) | receipts per AS core-second (vs bare) | generator CPU | failures |"
    );
    let _ = writeln!(r, "|---|---|---|---|---|---|---|---|---|---|---|");
    for p in phases {
        let _ = writeln!(
            r,
            "| {} | {} | {:.0} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} ({:.2}) | {:.2} | {} |",
            p.name,
            p.offered.map_or("max".into(), |o| format!("{o:.0}")),
            p.throughput(),
            p.throughput() / limit,
            p.percentile(0.5),
            p.percentile(0.99),
            p.percentile(0.999),
            p.as_cpu,
            p.throughput() / p.as_cpu,
            p.throughput() / p.as_cpu / bare,
            p.gen_cpu,
            p.failures.len()
        );
    }
    let _ = writeln!(
        r,
        "\nClosed loop latency is per request (no schedule); open-loop latency counts from each \
         request's scheduled time.\n"
    );
    if let (Some(capacity), Some(goal)) = (phases.first(), phases.last()) {
        let ratio = capacity.throughput() / limit;
        let _ = writeln!(
            r,
            "Goals: throughput with durable commits ≥ 50% of cores × bare: measured {:.0}/s = \
             {:.1}% ({}). p99 < 10 ms at half that load ({:.0}/s offered): measured p99 {:.2} ms \
             ({}).\n",
            capacity.throughput(),
            ratio * 100.0,
            if ratio >= 0.5 { "met" } else { "not met" },
            goal.offered.unwrap_or(0.0),
            goal.percentile(0.99),
            if goal.percentile(0.99) < 10.0 && goal.failures.is_empty() {
                "met"
            } else {
                "not met"
            }
        );
    }
    let _ = writeln!(r, "## End to end: `slotpay pay` to the device's grant\n");
    let _ = writeln!(
        r,
        "{} runs of `slotpay --json pay` (release), one slot each: the CLI reads terms and the \
         channel's total from the AS, checks it (deployment, limits, justification), records \
         what it signs, buys, presents the token to `slotpay-device` over CoAP/UDP and waits \
         for 2.04 Changed (`--offline`: no node check, as a client without chain access).\n",
        e2e.runs
    );
    let _ = writeln!(r, "| measured | median ms | p99 ms |\n|---|---|---|");
    let _ = writeln!(
        r,
        "| inside the CLI (its `elapsed_ms`: first request to grant) | {:.2} | {:.2} |",
        pct(&e2e.inner_ms, 0.5),
        pct(&e2e.inner_ms, 0.99)
    );
    let _ = writeln!(
        r,
        "| whole process (spawn to exit, as a user sees it) | {:.2} | {:.2} |",
        pct(&e2e.wall_ms, 0.5),
        pct(&e2e.wall_ms, 0.99)
    );
    let _ = writeln!(
        r,
        "\nGoal: median under 5 ms on loopback: {} inside the CLI ({:.2} ms); the whole \
         process, start-up included, {:.2} ms.",
        if pct(&e2e.inner_ms, 0.5) < 5.0 {
            "met"
        } else {
            "not met"
        },
        pct(&e2e.inner_ms, 0.5),
        pct(&e2e.wall_ms, 0.5)
    );
    r
}

/// The load on a PostgreSQL ledger served by `n` instances (behind HAProxy when more than
/// one): warm-up, capacity (closed loop), open loop at half of it, and open loop at the
/// SQLite run's half load (the same offered rate for every ledger).
#[allow(clippy::too_many_arguments)]
fn postgres_run(
    pg: &Postgres,
    n: usize,
    dir: &Path,
    node_url: &str,
    devices: &[&str],
    http: &Http,
    domain: AnyDomain,
    channels: &mut [Channel],
    seconds: f64,
    budget: u64,
    sqlite_half: f64,
    runtime: &tokio::runtime::Runtime,
) -> Vec<Phase> {
    let db = format!("load{n}");
    let database_url = pg.create_database(&db);
    let options = AsOptions {
        price: PRICE,
        blocks_before_expiry: 10,
        expiry_margin_blocks: 10,
        min_notice_blocks: LOAD_NOTICE,
        database_url: Some(database_url),
        lease_seconds: 2.0,
        ..AsOptions::default()
    };
    let instances: Vec<Instance> = (0..n)
        .map(|i| Instance::start(dir, &format!("pg{n}-{i}"), node_url, devices, &options))
        .collect();
    let proxy =
        (n > 1).then(|| Haproxy::start(&instances.iter().map(|i| i.port).collect::<Vec<_>>()));
    let as_url = proxy
        .as_ref()
        .map_or_else(|| instances[0].url(), Haproxy::url);
    let setup = match n {
        1 => "PostgreSQL, 1 instance".to_owned(),
        n => format!("PostgreSQL, {n} instances behind HAProxy"),
    };
    let target = Target {
        http: http.clone(),
        as_url: as_url.clone(),
        as_pids: instances.iter().filter_map(Instance::pid).collect(),
        instance_urls: instances.iter().map(Instance::url).collect(),
        postgres: pg.pid().map(|pid| (pid, db.clone(), pg.port)),
        balancer: proxy.as_ref().and_then(Haproxy::pid),
        domain,
    };
    for instance in &instances {
        wait_for_channel(&instance.url(), channels.last().expect("channels").id);
    }
    resync(&as_url, channels);
    let warm = runtime.block_on(phase(
        &target,
        &format!("{setup}: warm-up"),
        channels,
        None,
        30.0,
        1,
    ));
    assert!(
        warm.failures.is_empty(),
        "warm-up failed: {:?}",
        &warm.failures[..warm.failures.len().min(3)]
    );
    resync(&as_url, channels);
    let mut phases = Vec::new();
    let capacity = runtime.block_on(phase(
        &target,
        "capacity (closed loop)",
        channels,
        None,
        seconds,
        budget,
    ));
    resync(&as_url, channels);
    let max = capacity.throughput();
    phases.push(capacity);
    for (name, rate) in [
        ("open loop at 50% of its capacity".to_owned(), max * 0.5),
        ("open loop at SQLite's 50% load".to_owned(), sqlite_half),
    ] {
        let p = runtime.block_on(phase(&target, &name, channels, Some(rate), seconds, 0));
        resync(&as_url, channels);
        phases.push(p);
    }
    // Every answered purchase is in the ledger: the instances' counts and the totals.
    let answered: usize = phases.iter().map(|p| p.completed).sum::<usize>() + warm.completed;
    let counted: f64 = instances
        .iter()
        .map(|i| i.metric("slotpay_purchases_total").unwrap_or(0.0))
        .sum();
    assert_eq!(
        counted as usize, answered,
        "{setup}: the instances counted other than answered"
    );
    let sold: u64 = channels.iter().map(|c| c.sold).sum();
    assert_eq!(sold as usize, answered, "{setup}: ledger totals vs answers");
    for p in &mut phases {
        p.setup.clone_from(&setup);
    }
    drop(proxy);
    drop(instances);
    phases
}

/// The PostgreSQL runs beside the SQLite one, and where the time goes.
fn postgres_report(sqlite: &[Phase], pg: &[Phase]) -> String {
    let mut r = String::new();
    if pg.is_empty() {
        return r;
    }
    let _ = writeln!(
        r,
        "\n## PostgreSQL: one, two and three instances on one database\n"
    );
    let _ = writeln!(
        r,
        "The same channels and generator, in the same run, against ledgers on a PostgreSQL 15 \
         cluster the benchmark starts on loopback (`fsync=on`, `synchronous_commit=on`, no standby): \
         one instance, then two and three `slotpay-as` instances on one database behind HAProxy \
         (round robin). Each instance group-commits its own sales (one transaction of four \
         round trips per batch, the channels' and devices' rows locked); instances serialize on \
         the devices' rows (16 devices: nearly every batch touches every device).\n"
    );
    let _ = writeln!(
        r,
        "| ledger | phase | offered /s | receipts /s | p50 ms | p99 ms | AS CPU (cores) | PostgreSQL CPU | HAProxy CPU | generator CPU | sales per batch | ms per batch | commits per 1k receipts | WAL flushes per 1k receipts | batch retries | failures |"
    );
    let _ = writeln!(
        r,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for p in sqlite.iter().take(3).chain(pg) {
        let c = p.counters;
        let per_k = |x: f64| {
            if p.completed > 0 {
                x * 1000.0 / p.completed as f64
            } else {
                f64::NAN
            }
        };
        let _ = writeln!(
            r,
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {} | {} | {} | {} |",
            p.setup,
            p.name,
            p.offered.map_or("max".into(), |o| format!("{o:.0}")),
            p.throughput(),
            p.percentile(0.5),
            p.percentile(0.99),
            p.as_cpu,
            p.db_cpu,
            p.lb_cpu,
            p.gen_cpu,
            if c.batches > 0.0 { c.batched / c.batches } else { f64::NAN },
            if c.batches > 0.0 { c.batch_us / c.batches / 1000.0 } else { f64::NAN },
            if p.setup == "SQLite" { "-".to_owned() } else { format!("{:.0}", per_k(c.commits)) },
            if p.setup == "SQLite" { "-".to_owned() } else { format!("{:.0}", per_k(c.wal_syncs)) },
            c.retries,
            p.failures.len()
        );
    }
    let _ = writeln!(r, "\nWhere the time goes, per receipt at capacity (CPU microseconds; the cores are shared):\n");
    let _ = writeln!(r, "| ledger | AS | PostgreSQL | HAProxy | generator | total | receipts per core-second of everything |");
    let _ = writeln!(r, "|---|---|---|---|---|---|---|");
    for p in sqlite
        .iter()
        .take(1)
        .chain(pg.iter().filter(|p| p.name.starts_with("capacity")))
    {
        let per = |cores: f64| cores * 1e6 / p.throughput();
        let all = p.as_cpu + p.db_cpu + p.lb_cpu + p.gen_cpu;
        let _ = writeln!(
            r,
            "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            p.setup,
            per(p.as_cpu),
            per(p.db_cpu),
            per(p.lb_cpu),
            per(p.gen_cpu),
            per(all),
            p.throughput() / all
        );
    }
    r
}
