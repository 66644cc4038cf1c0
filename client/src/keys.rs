//! Key and group files.
use anyhow::{bail, Context, Result};
use protocol::crypto::backend::SoftHasher;
use protocol::merkle::MerkleTree;
use protocol::signature::keys::{self, SecretKey};
use protocol::{MembershipProof, MerkleRoot, PublicKey};
use serde::{Deserialize, Serialize};
use slotpay_as::api::{from_hex, to_hex, ProofBody};
use std::path::Path;

/// A client key file: the 32-byte secp256k1 secret as hex. Written 0600.
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

pub fn parse_public(text: &str) -> Result<PublicKey> {
    Ok(PublicKey(
        from_hex::<33>(text.trim(), "public key").map_err(|e| anyhow::anyhow!("{e}"))?,
    ))
}

/// A group file: the Merkle root and every member's proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupFile {
    pub root: String,
    pub members: Vec<GroupMember>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupMember {
    pub key: String,
    pub proof: ProofBody,
}

impl GroupFile {
    pub fn build(members: &[PublicKey]) -> Result<Self> {
        if members.is_empty() {
            bail!("a group needs at least one member key");
        }
        let tree = MerkleTree::build::<SoftHasher>(members).map_err(|e| anyhow::anyhow!("{e}"))?;
        let members = members
            .iter()
            .enumerate()
            .map(|(i, key)| {
                let proof = tree.proof(i).map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(GroupMember {
                    key: to_hex(&key.0),
                    proof: ProofBody {
                        left_siblings: proof.left_siblings,
                        siblings: proof.siblings.iter().map(|s| to_hex(s)).collect(),
                    },
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            root: to_hex(&tree.root().0),
            members,
        })
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a group file", path.display()))
    }

    pub fn root(&self) -> Result<MerkleRoot> {
        Ok(MerkleRoot(
            from_hex::<32>(&self.root, "root").map_err(|e| anyhow::anyhow!("{e}"))?,
        ))
    }

    /// The proof of `key`, checked against the root before use.
    pub fn proof_of(&self, key: &PublicKey) -> Result<MembershipProof> {
        let wanted = to_hex(&key.0);
        let member = self
            .members
            .iter()
            .find(|m| m.key == wanted)
            .with_context(|| format!("key {wanted} is not in the group"))?;
        let siblings = member
            .proof
            .siblings
            .iter()
            .map(|s| from_hex::<32>(s, "proof sibling").map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<Result<_>>()?;
        let proof = MembershipProof {
            left_siblings: member.proof.left_siblings,
            siblings,
        };
        proof
            .verify::<SoftHasher>(key, &self.root()?)
            .map_err(|e| anyhow::anyhow!("the group file's proof for {wanted} is wrong: {e}"))?;
        Ok(proof)
    }
}

pub fn public_of(secret: &SecretKey) -> PublicKey {
    keys::public_key(secret)
}
