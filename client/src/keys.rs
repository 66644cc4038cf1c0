//! Key files: `keygen`, `show`, `account`.
use crate::output::Output;
use anyhow::{Context, Result};
use api::{from_hex, ss58, to_hex};
use chain::{AnySigner, LayerSigner};
use protocol::crypto::backend::SoftHasher;
use protocol::keys::{self, SecretKey};
use protocol::PublicKey;
use protocol::{account_id_of, AnyLayer};
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

/// A settlement layer on the command line (`--layer`), for commands that name no
/// deployment file (whose layer is the file's).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LayerArg {
    /// The ink! contract on a Substrate contracts chain.
    #[default]
    Substrate,
    /// The Solidity contract on an EVM chain (anvil, any Ethereum client).
    Evm,
}

impl From<LayerArg> for AnyLayer {
    fn from(layer: LayerArg) -> Self {
        match layer {
            LayerArg::Substrate => AnyLayer::Substrate,
            LayerArg::Evm => AnyLayer::Evm,
        }
    }
}

impl SignerArgs {
    /// The signer on `layer`: on an EVM `--suri` is a 0x secret or a dev name
    /// (`//Alice` .. `//Ferdie`: anvil's funded accounts 0 to 5), `--ecdsa-key` the key
    /// file's address. Exactly one of the two must be given.
    pub fn signer_on(&self, layer: AnyLayer) -> Result<LayerSigner> {
        match (&self.suri, &self.ecdsa_key) {
            (Some(suri), None) => Ok(LayerSigner::from_suri(layer, suri)?),
            (None, Some(file)) => Ok(LayerSigner::from_ecdsa_secret(
                layer,
                &read_secret(file)?.secret_bytes(),
            )?),
            _ => anyhow::bail!("give --suri or --ecdsa-key"),
        }
    }

    /// The signer on the ink! layer the arguments name; exactly one of the two must be
    /// given.
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

/// Reads a client key file as [`write_secret`] writes it (hex, surrounding whitespace
/// ignored).
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

/// `slotpay keygen`: a new random key into `out` (which must not exist); prints its
/// public key and ECDSA chain account.
pub fn keygen(out: &Path, o: &Output) -> Result<()> {
    let secret = keys::generate();
    write_secret(out, &secret)?;
    describe(&keys::public_key(&secret), Some(out), o);
    Ok(())
}

/// `slotpay show`: prints the public key and ECDSA chain account of the key file `key`.
pub fn show(key: &Path, o: &Output) -> Result<()> {
    describe(&keys::public_key(&read_secret(key)?), None, o);
    Ok(())
}

fn describe(public: &PublicKey, wrote: Option<&Path>, o: &Output) {
    let account = ss58(&account_id_of::<SoftHasher>(protocol::Substrate, public));
    let address = api::account_text(&account_id_of::<SoftHasher>(protocol::Evm, public));
    let mut text = format!(
        "public key {}\naccount    {account}\nEVM        {address}",
        to_hex(&public.0)
    );
    if let Some(path) = wrote {
        text = format!("wrote {}\n{text}", path.display());
    }
    o.print(
        serde_json::json!({"public_key": to_hex(&public.0), "account": account, "evm_address": address}),
        text,
    );
}

/// `slotpay account`: prints the chain account the signer signs for on `layer` (SS58 or
/// an EVM address, and hex).
pub fn account(signer: &SignerArgs, layer: LayerArg, o: &Output) -> Result<()> {
    let account = signer.signer_on(layer.into())?.account();
    let text = api::account_text(&account);
    o.print(
        serde_json::json!({"account": text, "hex": to_hex(&account)}),
        text,
    );
    Ok(())
}
