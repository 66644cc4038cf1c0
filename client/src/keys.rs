//! Key files: `keygen`, `show`, `account`.
use crate::output::Output;
use anyhow::{Context, Result};
use api::{from_hex, ss58, to_hex};
use chain::AnySigner;
use protocol::account_id_of;
use protocol::crypto::backend::SoftHasher;
use protocol::keys::{self, SecretKey};
use protocol::PublicKey;
use std::path::{Path, PathBuf};

/// Who signs extrinsics: `--suri` (sr25519) or `--ecdsa-key` (a key file's ECDSA account).
#[derive(clap::Args, Clone, Debug)]
pub struct SignerArgs {
    /// Sign as this sr25519 secret URI (e.g. //Alice).
    #[arg(long, conflicts_with = "ecdsa_key")]
    pub suri: Option<String>,
    /// Sign as the ECDSA chain account of this slotpay key file.
    #[arg(long)]
    pub ecdsa_key: Option<PathBuf>,
}

impl SignerArgs {
    pub fn signer(&self) -> Result<AnySigner> {
        match (&self.suri, &self.ecdsa_key) {
            (Some(suri), None) => Ok(AnySigner::from_suri(suri)?),
            (None, Some(file)) => Ok(AnySigner::from_ecdsa_secret(
                &read_secret(file)?.secret_bytes(),
            )?),
            _ => anyhow::bail!("give --suri or --ecdsa-key"),
        }
    }
}

/// Writes a client key file: the 32-byte secp256k1 secret as hex, mode 0600, never over
/// an existing file.
pub fn write_secret(path: &Path, secret: &SecretKey) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("create {} (it must not exist yet)", path.display()))?;
    writeln!(file, "{}", to_hex(&secret.secret_bytes()))?;
    file.sync_all()?;
    Ok(())
}

pub fn read_secret(path: &Path) -> Result<SecretKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let bytes = from_hex::<32>(text.trim(), "secret key")
        .with_context(|| format!("{}: not a slotpay key file", path.display()))?;
    SecretKey::from_slice(&bytes)
        .with_context(|| format!("{}: not a valid secp256k1 secret", path.display()))
}

/// A public key given as 0x hex (33 bytes) or as a key file.
pub fn public_key_arg(text: &str) -> Result<PublicKey> {
    if text.starts_with("0x") {
        Ok(PublicKey(from_hex::<33>(text.trim(), "public key")?))
    } else {
        Ok(keys::public_key(&read_secret(Path::new(text))?))
    }
}

pub fn keygen(out: &Path, o: &Output) -> Result<()> {
    let secret = keys::generate();
    write_secret(out, &secret)?;
    describe(&keys::public_key(&secret), Some(out), o);
    Ok(())
}

pub fn show(key: &Path, o: &Output) -> Result<()> {
    describe(&keys::public_key(&read_secret(key)?), None, o);
    Ok(())
}

fn describe(public: &PublicKey, wrote: Option<&Path>, o: &Output) {
    let account = ss58(&account_id_of::<SoftHasher>(protocol::Substrate, public));
    let mut text = format!("public key {}\naccount    {account}", to_hex(&public.0));
    if let Some(path) = wrote {
        text = format!("wrote {}\n{text}", path.display());
    }
    o.print(
        serde_json::json!({"public_key": to_hex(&public.0), "account": account}),
        text,
    );
}

pub fn account(signer: &SignerArgs, o: &Output) -> Result<()> {
    let account = signer.signer()?.account();
    o.print(
        serde_json::json!({"account": ss58(&account), "hex": to_hex(&account)}),
        ss58(&account),
    );
    Ok(())
}
