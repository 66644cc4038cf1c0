//! Several `slotpay-as` instances on one PostgreSQL ledger, on a real node: their
//! configurations and processes (killed, stopped and continued by pid), which of them
//! holds the closer lease, what each counts, and what the chain says of the closes and
//! settles that followed.
use crate::services::Postgres;
use crate::{as_client, start_as_with, write_as_config_as, AsOptions, Proc};
use chain::{balances, Contract, Finality, SlotpayEvent};
use protocol::{Balance, ChannelId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One AS instance: `dir/{name}.toml`, logging to `dir/{name}.log`.
pub struct Instance {
    /// Its name (its configuration's and log's).
    pub name: String,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its log (JSON lines).
    pub log: PathBuf,
    /// The process, while it runs.
    pub proc: Option<Proc>,
}

impl Instance {
    /// Writes the instance's configuration (`o.database_url` names the shared ledger) and
    /// starts it; returns once it answers and follows the chain.
    pub fn start(dir: &Path, name: &str, node_url: &str, devices: &[&str], o: &AsOptions) -> Self {
        let port = crate::free_tcp_port();
        let file = format!("{name}.toml");
        write_as_config_as(dir, &file, node_url, port, devices, o);
        let mut instance = Self {
            name: name.into(),
            port,
            config: dir.join(file),
            log: dir.join(format!("{name}.log")),
            proc: None,
        };
        instance.restart();
        instance
    }

    /// Starts it again (after a kill).
    pub fn restart(&mut self) {
        self.proc = Some(start_as_with(&self.config, &self.log, &self.url()));
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.child.id())
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.kill9();
        }
    }

    fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
        }
    }

    /// SIGSTOP: the process stands still, as a paused VM or a long GC pause would.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// A counter from its `/metrics` (`None` if it does not answer).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let text = ureq::get(&format!("{}/metrics", self.url()))
            .timeout(Duration::from_secs(5))
            .call()
            .ok()?
            .into_string()
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many of its log lines contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // A stopped process cannot die of SIGKILL until it runs again.
        self.resume();
        self.kill9();
    }
}

/// The pid in the closer lease's holder name (`host:pid:nonce`) and whether its lease is
/// unexpired, as the ledger `db` on `pg` has it.
pub fn lease_holder(pg: &Postgres, db: &str) -> Option<(u32, bool)> {
    let row = pg
        .sql(
            db,
            "SELECT holder, expires_at > clock_timestamp() FROM lease WHERE name = 'closer'",
        )
        .ok()?;
    let (holder, live) = row.split_once('|')?;
    let pid = holder.split(':').nth(1)?.parse().ok()?;
    Some((pid, live == "t"))
}

/// Waits until an instance other than `not` (a pid) holds an unexpired lease; its pid.
pub fn wait_for_new_leader(pg: &Postgres, db: &str, not: Option<u32>, timeout: Duration) -> u32 {
    let start = Instant::now();
    loop {
        if let Some((pid, true)) = lease_holder(pg, db) {
            if Some(pid) != not {
                return pid;
            }
        }
        assert!(
            start.elapsed() < timeout,
            "no new closer took the lease within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Makes a block (the dev chain seals one per transaction), from //Dave, at best.
pub async fn make_block(contract: &Contract) {
    let charlie = subxt_signer::sr25519::dev::charlie().public_key().0;
    balances::transfer(
        contract.node(),
        &subxt_signer::sr25519::dev::dave(),
        &charlie,
        1_000_000_000,
        true,
        Finality::Best,
    )
    .await
    .expect("a block");
}

/// The contract's `Closed` (block, paid, refunded) and `Settled` (block, paid) events in
/// blocks `from..=to` of the best chain, by channel.
pub type Events = (
    BTreeMap<ChannelId, Vec<(u32, Balance, Balance)>>,
    BTreeMap<ChannelId, Vec<(u32, Balance)>>,
);

/// The closes and settles in blocks `from..=to`: see [`Events`].
pub async fn close_and_settle_events(contract: &Contract, from: u32, to: u32) -> Events {
    let api = contract.node().api();
    let rpc = contract.node().rpc();
    let mut closed: BTreeMap<ChannelId, Vec<(u32, Balance, Balance)>> = BTreeMap::new();
    let mut settled: BTreeMap<ChannelId, Vec<(u32, Balance)>> = BTreeMap::new();
    for n in from..=to {
        let Some(hash) = rpc
            .chain_get_block_hash(Some(n.into()))
            .await
            .expect("hash")
        else {
            continue;
        };
        let events = api
            .blocks()
            .at(hash)
            .await
            .expect("block")
            .events()
            .await
            .expect("events");
        for e in events.iter().filter_map(Result::ok) {
            match SlotpayEvent::from_details(&e, &contract.address()) {
                Some(Ok(SlotpayEvent::Closed(c))) => closed
                    .entry(c.channel)
                    .or_default()
                    .push((n, c.paid, c.refunded)),
                Some(Ok(SlotpayEvent::Settled(s))) => {
                    settled.entry(s.channel).or_default().push((n, s.paid))
                }
                _ => {}
            }
        }
    }
    (closed, settled)
}

/// The running total the AS at `as_url` reports for `channel` (0 if none).
pub fn total(as_url: &str, channel: ChannelId) -> Balance {
    as_client(as_url)
        .channel(channel)
        .map(|c| c.total.parse().unwrap_or(0))
        .unwrap_or(0)
}

/// Every sale in the ledger `db` on `pg`: (channel, new total, device, first counter,
/// slots), in order.
pub fn ledger_sales(pg: &Postgres, db: &str) -> Vec<(u64, Balance, String, u64, u64)> {
    pg.sql_ok(
        db,
        "SELECT channel, encode(new_total, 'hex'), device, first_counter, slots FROM sales
         ORDER BY channel, new_total",
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(|l| {
        let f: Vec<&str> = l.split('|').collect();
        (
            f[0].parse::<i64>().expect("channel") as u64,
            Balance::from_str_radix(f[1], 16).expect("total"),
            f[2].to_owned(),
            f[3].parse::<i64>().expect("counter") as u64,
            f[4].parse().expect("slots"),
        )
    })
    .collect()
}
