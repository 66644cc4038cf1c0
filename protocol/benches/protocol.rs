//! Every protocol operation beside its bare limit on the same machine, same run:
//! receipt verification vs bare libsecp256k1 recovery, HOTP vs bare HMAC.
//!
//!     cargo bench -p protocol          (ratios printed at the end, and written to
//!                                       bench/protocol.md)
use criterion::{black_box, BatchSize, Criterion};
use hmac::Mac;
use protocol::crypto::backend::{Libsecp256k1, SoftHasher, K256};
use protocol::hotp::{hotp, DeviceKey, Digits, HmacSha1, HmacSha256, ReplayWindow, Token};
use protocol::keys::{self, SecretKey};
use protocol::MerkleTree;
use protocol::{authorize, Authority, ChannelId, Domain, Member, PublicKey, Receipt};
use std::fmt::Write as _;

const DOMAIN: Domain = Domain {
    genesis_hash: [0x11; 32],
    contract: [0x22; 32],
};
const KEY20: &[u8] = b"12345678901234567890";
const KEY32: &[u8] = b"12345678901234567890123456789012";

fn receipts(c: &mut Criterion) {
    let sk = SecretKey::from_slice(&[7; 32]).unwrap();
    let key = keys::public_key(&sk);
    let receipt = Receipt {
        channel: ChannelId(42),
        epoch: 1,
        amount: 1_234_567,
    };
    let sig = receipt.sign(&DOMAIN, &sk);
    let hash = receipt.signing_hash::<SoftHasher>(&DOMAIN);
    let authority = Authority::Delegate(key);

    let mut g = c.benchmark_group("receipt");
    g.bench_function("sign", |b| {
        b.iter(|| black_box(&receipt).sign(&DOMAIN, &sk))
    });
    g.bench_function("verify_full_libsecp256k1", |b| {
        b.iter(|| {
            authorize::<SoftHasher, Libsecp256k1>(
                &authority,
                &DOMAIN,
                protocol::SignedReceipt {
                    receipt: *(black_box(&receipt)),
                    signature: *(black_box(&sig)),
                    proof: None,
                },
            )
            .unwrap()
        })
    });
    g.bench_function("verify_full_k256", |b| {
        b.iter(|| {
            authorize::<SoftHasher, K256>(
                &authority,
                &DOMAIN,
                protocol::SignedReceipt {
                    receipt: *(black_box(&receipt)),
                    signature: *(black_box(&sig)),
                    proof: None,
                },
            )
            .unwrap()
        })
    });
    // The bare limit: libsecp256k1's recovery of the same message, nothing else.
    let secp = secp256k1::Secp256k1::verification_only();
    let id = secp256k1::ecdsa::RecoveryId::from_i32(i32::from(sig.0[64])).unwrap();
    let rsig = secp256k1::ecdsa::RecoverableSignature::from_compact(&sig.0[..64], id).unwrap();
    let msg = secp256k1::Message::from_digest(hash);
    g.bench_function("bare_libsecp256k1_recover", |b| {
        b.iter(|| {
            secp.recover_ecdsa(black_box(&msg), black_box(&rsig))
                .unwrap()
        })
    });
    g.finish();
}

fn merkle(c: &mut Criterion) {
    let mut g = c.benchmark_group("merkle");
    g.sample_size(10);
    for log2 in [10u32, 20] {
        // Each member with its own cap, as a payer's group of client keys.
        let members: Vec<Member> = (0..1u64 << log2)
            .map(|i| {
                let mut k = [0x02u8; 33];
                k[1..9].copy_from_slice(&i.to_le_bytes());
                Member {
                    key: PublicKey(k),
                    cap: u128::from(i) * 1_000,
                }
            })
            .collect();
        g.bench_function(format!("build_2^{log2}"), |b| {
            b.iter(|| {
                MerkleTree::build::<SoftHasher>(protocol::Substrate, black_box(&members)).unwrap()
            })
        });
        let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).unwrap();
        let root = tree.root();
        let index = members.len() / 3;
        g.bench_function(format!("proof_2^{log2}"), |b| {
            b.iter(|| tree.proof(black_box(index)).unwrap())
        });
        let proof = tree.proof(index).unwrap();
        g.bench_function(format!("verify_2^{log2}"), |b| {
            b.iter(|| {
                proof
                    .verify::<SoftHasher>(
                        protocol::Substrate,
                        black_box(&members[index].key),
                        &root,
                    )
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn hotps(c: &mut Criterion) {
    let mut g = c.benchmark_group("hotp");
    g.bench_function("generate_sha1", |b| {
        b.iter(|| hotp::<HmacSha1>(KEY20, black_box(7), Digits::SIX))
    });
    g.bench_function("generate_sha256", |b| {
        b.iter(|| hotp::<HmacSha256>(KEY32, black_box(7), Digits::SIX))
    });
    // Bare limit: one HMAC of the same 8 counter bytes, nothing else.
    g.bench_function("bare_hmac_sha1", |b| {
        b.iter(|| {
            let mut m = <HmacSha1 as hmac::digest::KeyInit>::new_from_slice(KEY20).unwrap();
            m.update(&black_box(7u64).to_be_bytes());
            m.finalize().into_bytes()
        })
    });
    g.bench_function("bare_hmac_sha256", |b| {
        b.iter(|| {
            let mut m = <HmacSha256 as hmac::digest::KeyInit>::new_from_slice(KEY32).unwrap();
            m.update(&black_box(7u64).to_be_bytes());
            m.finalize().into_bytes()
        })
    });
    // A device's check of a token: parse its text, one HMAC for the named counter, and
    // the replay window's bookkeeping (RFC 4303 style, 1024 counters).
    let key = DeviceKey::from_slice(KEY32).unwrap();
    let text = Token::issue(&key, 1_000, Digits::EIGHT).to_string();
    let mut window = ReplayWindow::new(1_024).unwrap();
    window.accept(999).unwrap();
    g.bench_function("verify_token_sha256", |b| {
        b.iter_batched(
            || window,
            |mut w| {
                let token = Token::parse(black_box(&text)).unwrap();
                w.check(token.counter()).unwrap();
                assert!(token.matches(&key));
                w.accept(token.counter()).unwrap();
                w
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Criterion's point estimate of the mean, in nanoseconds, from its JSON output.
fn mean_ns(group: &str, name: &str) -> Option<f64> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    // Criterion writes '^' in a benchmark name as '_' in its directory name.
    let path = format!(
        "{target}/criterion/{group}/{}/new/estimates.json",
        name.replace('^', "_")
    );
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn report() {
    let rows = [
        ("receipt", "sign", None),
        (
            "receipt",
            "verify_full_libsecp256k1",
            Some(("receipt", "bare_libsecp256k1_recover", 1.2)),
        ),
        (
            "receipt",
            "verify_full_k256",
            Some(("receipt", "bare_libsecp256k1_recover", 1.2)),
        ),
        ("receipt", "bare_libsecp256k1_recover", None),
        (
            "hotp",
            "generate_sha1",
            Some(("hotp", "bare_hmac_sha1", 1.5)),
        ),
        (
            "hotp",
            "generate_sha256",
            Some(("hotp", "bare_hmac_sha256", 1.5)),
        ),
        (
            "hotp",
            "verify_token_sha256",
            Some(("hotp", "bare_hmac_sha256", 1.5)),
        ),
        ("hotp", "bare_hmac_sha1", None),
        ("hotp", "bare_hmac_sha256", None),
        ("merkle", "build_2^10", None),
        ("merkle", "proof_2^10", None),
        ("merkle", "verify_2^10", None),
        ("merkle", "build_2^20", None),
        ("merkle", "proof_2^20", None),
        ("merkle", "verify_2^20", None),
    ];
    let mut out = String::new();
    let _ = writeln!(out, "| benchmark | mean | bare limit | ratio | goal |");
    let _ = writeln!(out, "| --- | ---: | --- | ---: | ---: |");
    for (group, name, bare) in rows {
        let Some(mean) = mean_ns(group, name) else {
            continue;
        };
        let shown = if mean >= 1e6 {
            format!("{:.2} ms", mean / 1e6)
        } else {
            format!("{:.2} us", mean / 1e3)
        };
        match bare.and_then(|(g, n, goal)| mean_ns(g, n).map(|b| (n, b, goal))) {
            Some((n, b, goal)) => {
                let _ = writeln!(
                    out,
                    "| {group}/{name} | {shown} | {n} ({:.2} us) | {:.2}x | <= {goal}x |",
                    b / 1e3,
                    mean / b
                );
            }
            None => {
                let _ = writeln!(out, "| {group}/{name} | {shown} | | | |");
            }
        }
    }
    println!("\n{out}");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/protocol.md");
    let header = format!(
        "# Protocol micro-benchmarks\n\n`cargo bench -p protocol` (criterion, release), {} on this machine \
         ({} cores). Ratios are against the bare operation measured in the same run.{}\n\n",
        std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        std::env::var("SLOTPAY_BENCH_NOTE").map(|n| format!(" {n}")).unwrap_or_default()
    );
    let _ = std::fs::write(path, header + &out);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    receipts(&mut c);
    hotps(&mut c);
    merkle(&mut c);
    c.final_summary();
    report();
}
