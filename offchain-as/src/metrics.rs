//! The AS's counters, exposed at `/metrics` in Prometheus' text format.
use crate::ledger::Sold;
use api::ErrorCode;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// What the AS counts.
#[derive(Default)]
pub struct Metrics {
    purchases: AtomicU64,
    retries: AtomicU64,
    slots: AtomicU64,
    refusals: Mutex<BTreeMap<ErrorCode, u64>>,
    batches: AtomicU64,
    batched_sales: AtomicU64,
    batch_micros: AtomicU64,
    batch_retries: AtomicU64,
    fenced: AtomicU64,
}

impl Metrics {
    /// A committed outcome: a new sale, or a retry answered with an earlier one.
    pub fn sold(&self, sold: &Sold) {
        if sold.fresh {
            self.purchases.fetch_add(1, Ordering::Relaxed);
            self.slots.fetch_add(sold.sale.slots, Ordering::Relaxed);
        } else {
            self.retries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A batch of `sales` decided and committed in `took`, after `retries` retries
    /// (serialization failures, deadlocks, a lost connection before the commit).
    pub fn batch(&self, sales: usize, took: std::time::Duration, retries: u32) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched_sales
            .fetch_add(u64::try_from(sales).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.batch_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.batch_retries
            .fetch_add(u64::from(retries), Ordering::Relaxed);
    }

    /// A closer's write refused because its lease was no longer the current one.
    pub fn fenced(&self) {
        self.fenced.fetch_add(1, Ordering::Relaxed);
    }

    /// A refused request.
    pub fn refused(&self, code: ErrorCode) {
        if let Ok(mut map) = self.refusals.lock() {
            *map.entry(code).or_default() += 1;
        }
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        };
        counter(
            "slotpay_purchases_total",
            "Receipts accepted for new slots.",
            self.purchases.load(Ordering::Relaxed),
        );
        counter(
            "slotpay_purchase_retries_total",
            "Repeated purchases answered with the earlier OTPs.",
            self.retries.load(Ordering::Relaxed),
        );
        counter(
            "slotpay_slots_sold_total",
            "Slots sold (one OTP each).",
            self.slots.load(Ordering::Relaxed),
        );
        counter(
            "slotpay_ledger_batches_total",
            "Sale batches committed (group commit).",
            self.batches.load(Ordering::Relaxed),
        );
        counter(
            "slotpay_ledger_batched_sales_total",
            "Offers decided in those batches.",
            self.batched_sales.load(Ordering::Relaxed),
        );
        counter(
            "slotpay_ledger_batch_microseconds_total",
            "Time spent deciding and committing those batches.",
            self.batch_micros.load(Ordering::Relaxed),
        );
        counter(
            "slotpay_ledger_batch_retries_total",
            "Batches run again after a serialization failure, deadlock or lost connection.",
            self.batch_retries.load(Ordering::Relaxed),
        );
        counter(
            "slotpay_closer_fenced_writes_total",
            "Closer writes refused because another closer holds the lease.",
            self.fenced.load(Ordering::Relaxed),
        );
        out.push_str("# HELP slotpay_refusals_total Refused requests by code.\n");
        out.push_str("# TYPE slotpay_refusals_total counter\n");
        if let Ok(map) = self.refusals.lock() {
            for (code, n) in map.iter() {
                out.push_str(&format!(
                    "slotpay_refusals_total{{code=\"{}\"}} {n}\n",
                    code.as_str()
                ));
            }
        }
        out
    }
}
