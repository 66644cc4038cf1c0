//! What the AS's tests share: keys, a seller, channels, and a fake contract reader that
//! counts its calls.
#![allow(dead_code)]

/// PostgreSQL servers the tests start themselves (shared with the whole-system tests).
#[path = "../../../tests/src/services.rs"]
#[allow(unreachable_pub)]
pub(crate) mod services;
use api::{PurchaseBody, RequestSecret};
use chain::{BlockHash, ChainError};
use offchain_as::{
    router_with, ClosePlan, ContractReader, DeviceTerms, Ledger, Limits, Metrics, NodeView, Rules,
    Seller, Service, SharedPlan, Store,
};
use protocol::hotp::{DeviceKey, Digits};
use protocol::keys::{self, SecretKey};
use protocol::{
    Authority, Balance, Channel, ChannelId, Domain, MembershipProof, Receipt, SignedReceipt, Tariff,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) const AS: [u8; 32] = [0xA5; 32];
pub(crate) const PAYER: [u8; 32] = [0x11; 32];
pub(crate) const PRICE: Balance = 10;
pub(crate) const DOMAIN: Domain = Domain {
    genesis_hash: [1; 32],
    contract: [2; 32],
};
pub(crate) const DEVICE_KEY: [u8; 32] = [0x42; 32];

pub(crate) fn secret(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).expect("valid scalar")
}

pub(crate) fn tariff(max_slots: u64) -> Tariff {
    // Margin 5 blocks, rotation notice at least 10.
    Tariff::new(PRICE, 5, max_slots, 10).expect("tariff")
}

pub(crate) fn seller(max_slots: u64) -> Seller {
    let mut devices = BTreeMap::new();
    for name in ["lock", "pump"] {
        devices.insert(
            name.to_owned(),
            DeviceTerms {
                key: DeviceKey(DEVICE_KEY),
                digits: Digits::EIGHT,
                slot_seconds: 30,
                replay_window: 1024,
            },
        );
    }
    Seller {
        our_account: AS,
        domain: DOMAIN.into(),
        identity: DOMAIN,
        tariff: tariff(max_slots),
        devices,
    }
}

/// The request secret a test client sends with its purchases: its own, made from its key
/// (anyone else's is another).
pub(crate) fn buyer_secret(signer: &SecretKey) -> RequestSecret {
    let mut bytes = signer.secret_bytes();
    bytes[0] ^= 0x5A;
    RequestSecret(bytes)
}

/// `signer`'s purchase of `device` slots with a receipt of `channel`'s `epoch` for
/// `amount`, with its own request secret.
pub(crate) fn body(
    device: &str,
    channel: ChannelId,
    epoch: u32,
    amount: Balance,
    signer: &SecretKey,
    proof: Option<MembershipProof>,
) -> PurchaseBody {
    let receipt = Receipt {
        channel,
        epoch,
        amount,
    };
    PurchaseBody {
        device: device.into(),
        signed: SignedReceipt::sign(receipt, &DOMAIN, signer, proof),
        request_secret: buyer_secret(signer),
    }
}

/// An empty close plan (a thousand closes a block, a lead of 5 blocks).
pub(crate) fn plan() -> SharedPlan {
    Arc::new(Mutex::new(ClosePlan::new(1000, 5)))
}

/// A channel paying the AS, opened at block 0, expiring at block 1000, notice 20.
pub(crate) fn channel(authority: Authority, deposit: Balance) -> Channel {
    Channel::open(PAYER, AS, authority, deposit, 1000, 20, 0).expect("open")
}

pub(crate) fn delegate(client: &SecretKey) -> Authority {
    Authority::Delegate(keys::public_key(client))
}

pub(crate) fn hash(block: u32) -> BlockHash {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&block.to_le_bytes());
    BlockHash::from(bytes)
}

/// The contract as a map, read at any block the same way; counts its calls. Each read
/// takes `latency` (a node's round trip), so concurrent readers overlap as on a node.
#[derive(Clone, Default)]
pub(crate) struct FakeReader {
    pub channels: Arc<Mutex<BTreeMap<ChannelId, Channel>>>,
    pub next_id: Arc<Mutex<u64>>,
    pub calls: Arc<AtomicUsize>,
    pub latency: Arc<Mutex<std::time::Duration>>,
}

impl FakeReader {
    pub(crate) fn open(&self, channel: Channel) -> ChannelId {
        let mut next = self.next_id.lock().expect("lock");
        let id = ChannelId(*next);
        *next += 1;
        self.channels.lock().expect("lock").insert(id, channel);
        id
    }

    pub(crate) fn remove(&self, id: ChannelId) {
        self.channels.lock().expect("lock").remove(&id);
    }

    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn wait(&self) {
        let latency = *self.latency.lock().expect("lock");
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
}

impl ContractReader for FakeReader {
    async fn next_channel_id(&self, _at: BlockHash) -> Result<u64, ChainError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.wait().await;
        Ok(*self.next_id.lock().expect("lock"))
    }

    async fn channel(&self, id: ChannelId, _at: BlockHash) -> Result<Option<Channel>, ChainError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.wait().await;
        Ok(self.channels.lock().expect("lock").get(&id).copied())
    }
}

/// A view over `reader` with best block `best` and finalized block `finalized`.
pub(crate) fn view(reader: &FakeReader, best: u32, finalized: u32) -> NodeView<FakeReader> {
    let view = NodeView::new(reader.clone());
    view.on_finalized(finalized, hash(finalized));
    view.on_best(best, &[]);
    view
}

/// Where the test ledgers start device counters (a real ledger: the second it is made).
pub(crate) const FLOOR: u64 = 0;

/// The ledger backend a test runs on: SQLite at `dir/as.db`, or a PostgreSQL database of
/// its own. Opening the same backend again opens the same ledger (a restart).
#[derive(Clone, Debug)]
pub(crate) enum Backend {
    /// SQLite in the test's directory.
    Sqlite,
    /// A database of its own (this URL) on the test process's PostgreSQL server.
    Postgres(String),
}

/// The test process's PostgreSQL server: started on first use, stopped by its watchdog
/// when the process ends.
pub(crate) fn cluster() -> &'static services::Postgres {
    static CLUSTER: std::sync::OnceLock<services::Postgres> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(|| {
        assert!(
            services::postgres_available(),
            "PostgreSQL's server programs are not installed: run scripts/setup.sh (Debian's postgresql-15)"
        );
        services::Postgres::start()
    })
}

/// `$test(backend)` once per backend, as `sqlite::$test` and `postgres::$test`.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $test() {
                    super::$test($crate::support::Backend::Sqlite)
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $test() {
                    super::$test($crate::support::Backend::postgres(stringify!($test)))
                }
            )*
        }
    };
}

impl Backend {
    /// A new database on the test process's PostgreSQL server, for test `name`.
    pub(crate) fn postgres(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name: String = format!("t{n}_{name}").chars().take(60).collect();
        Backend::Postgres(cluster().create_database(&name))
    }

    /// The ledger with the seller's devices, running.
    pub(crate) async fn ledger(&self, dir: &std::path::Path, max_slots: u64) -> Ledger {
        self.ledger_with(dir, max_slots, Arc::new(Metrics::default()))
            .await
    }

    /// [`Self::ledger`] counting into `metrics`.
    pub(crate) async fn ledger_with(
        &self,
        dir: &std::path::Path,
        max_slots: u64,
        metrics: Arc<Metrics>,
    ) -> Ledger {
        let rules = Rules {
            our_account: AS,
            tariff: tariff(max_slots),
        };
        let ledger = match self {
            Backend::Sqlite => {
                let store = Store::open_at(&dir.join("as.db"), &DOMAIN, FLOOR).expect("ledger");
                Ledger::start(store, rules, metrics).expect("ledger thread")
            }
            Backend::Postgres(url) => Ledger::connect(url, &DOMAIN, FLOOR, rules, metrics)
                .await
                .expect("the PostgreSQL ledger"),
        };
        for d in ["lock", "pump"] {
            ledger.register_device(d).await.expect("device");
        }
        ledger
    }
}

/// Serves the AS over `view` on a loopback port in a thread of its own; returns its URL.
pub(crate) fn serve(
    backend: &Backend,
    dir: &std::path::Path,
    view: NodeView<FakeReader>,
    max_slots: u64,
    limits: Limits,
) -> String {
    serve_with_plan(backend, dir, view, max_slots, limits, plan())
}

/// [`serve`] with the closer's plan `plan`.
pub(crate) fn serve_with_plan(
    backend: &Backend,
    dir: &std::path::Path,
    view: NodeView<FakeReader>,
    max_slots: u64,
    limits: Limits,
    plan: SharedPlan,
) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_path_buf();
    let backend = backend.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let metrics = Arc::new(Metrics::default());
            let service = Arc::new(Service {
                seller: Arc::new(seller(max_slots)),
                ledger: backend.ledger_with(&dir, max_slots, metrics.clone()).await,
                view,
                metrics,
                plan,
                max_finality_lag: 50,
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            offchain_as::serve(
                listener,
                router_with(service, limits),
                limits,
                std::future::pending(),
            )
            .await
            .expect("serve");
        });
    });
    format!("http://{}", rx.recv().expect("address"))
}

/// As the operator's `slotpay-as close` does: takes the closer lease, stops the
/// channel's sales and reads what it holds, and gives the lease back.
pub(crate) async fn operator_begin_close(
    ledger: &Ledger,
    channel: ChannelId,
) -> Option<offchain_as::Watched> {
    let fence = ledger
        .take_lease("operator", std::time::Duration::from_secs(10))
        .await
        .expect("the lease");
    let held = ledger.begin_close(channel, fence).await.expect("begun");
    ledger.release_lease(fence).await.expect("released");
    held
}
