//! Group files: the Merkle root of a group's members with their spending caps, and each
//! member's proof. `slotpay group new | add | remove | show`.
use crate::keys::public_key_arg;
use crate::keys::LayerArg;
use crate::output::Output;
use anyhow::{bail, Context, Result};
use api::{parse_amount, to_hex};
use protocol::crypto::backend::SoftHasher;
use protocol::{AnyLayer, Balance, Member, MembershipProof, MerkleRoot, PublicKey};
use protocol::{MerkleTree, UNLIMITED};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A group file: the root and every member's key, cap and proof, and the settlement
/// layer whose leaves they are ("evm", or absent for the ink! layer).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    /// "evm" for the EVM layer's leaves; absent: the ink! layer's (every older file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// The group's Merkle root: the channel's authority.
    pub root: MerkleRoot,
    /// Every member.
    pub members: Vec<GroupMember>,
}

/// One member: its key, cap and proof.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMember {
    /// Its key.
    pub key: PublicKey,
    /// The most this member may spend on a channel (per authority epoch); "unlimited" for
    /// no cap.
    pub cap: String,
    /// Its proof (which carries the cap the leaf commits).
    pub proof: MembershipProof,
}

fn cap_text(cap: Balance) -> String {
    if cap == UNLIMITED {
        "unlimited".into()
    } else {
        cap.to_string()
    }
}

fn parse_cap(text: &str) -> Result<Balance> {
    if text == "unlimited" {
        Ok(UNLIMITED)
    } else {
        Ok(parse_amount(text, "cap")?)
    }
}

/// `KEY` or `KEY=CAP`: a public key (0x hex) or key file, with an optional cap.
pub fn member_arg(text: &str, default_cap: Balance) -> Result<Member> {
    let (key, cap) = match text.rsplit_once('=') {
        Some((key, cap)) => (key, parse_cap(cap)?),
        None => (text, default_cap),
    };
    Ok(Member {
        key: public_key_arg(key)?,
        cap,
    })
}

impl GroupFile {
    /// The file for `members` in this order (no key twice): the tree's root and each
    /// member's proof, its leaves as `layer` encodes them.
    pub fn build(layer: AnyLayer, members: &[Member]) -> Result<Self> {
        if members.is_empty() {
            bail!("a group needs at least one member");
        }
        let tree = MerkleTree::build::<SoftHasher>(layer, members)?;
        let members = tree
            .members()
            .iter()
            .enumerate()
            .map(|(i, m)| {
                Ok(GroupMember {
                    key: m.key,
                    cap: cap_text(m.cap),
                    proof: tree.proof(i)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            layer: (layer == AnyLayer::Evm).then(|| "evm".to_owned()),
            root: tree.root(),
            members,
        })
    }

    /// The layer whose leaves the group's are.
    pub fn layer(&self) -> AnyLayer {
        match self.layer.as_deref() {
            Some("evm") => AnyLayer::Evm,
            _ => AnyLayer::Substrate,
        }
    }

    /// Reads a group file (unknown fields refused). Its proofs are checked when used
    /// ([`Self::proof_of`]), not here.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a group file", path.display()))
    }

    /// Writes the file atomically (a crash leaves the old one or the new one).
    pub fn save(&self, path: &Path) -> Result<()> {
        api::write_atomically(path, serde_json::to_string_pretty(self)?.as_bytes())
            .with_context(|| format!("write {}", path.display()))
    }

    /// The group's root, which a channel of this group names as its authority.
    pub fn root(&self) -> Result<MerkleRoot> {
        Ok(self.root)
    }

    /// The members with their caps parsed, in tree order; fails on a cap that is neither
    /// a decimal amount nor "unlimited".
    pub fn members(&self) -> Result<Vec<Member>> {
        self.members
            .iter()
            .map(|m| {
                Ok(Member {
                    key: m.key,
                    cap: parse_cap(&m.cap)?,
                })
            })
            .collect()
    }

    /// The proof of `key`, checked against the root before use.
    pub fn proof_of(&self, key: &PublicKey) -> Result<MembershipProof> {
        let member = self
            .members
            .iter()
            .find(|m| m.key == *key)
            .with_context(|| format!("key {} is not in the group", to_hex(&key.0)))?;
        let proof = member.proof.clone();
        proof
            .verify::<SoftHasher>(self.layer(), key, &self.root()?)
            .with_context(|| format!("the group file's proof for {} is wrong", to_hex(&key.0)))?;
        Ok(proof)
    }
}

/// `slotpay group ...`: each command writes a new group file and never changes one.
#[derive(clap::Subcommand, Debug)]
pub enum GroupCommand {
    /// A new group of members (public keys or key files, each `KEY` or `KEY=CAP`).
    New {
        /// Where to write the group file.
        #[arg(long)]
        out: PathBuf,
        /// The settlement layer whose leaves to make (the EVM's name members by address).
        #[arg(long, value_enum, default_value_t)]
        layer: LayerArg,
        /// The cap of members given without one (a decimal amount, or "unlimited").
        #[arg(long, default_value = "unlimited")]
        cap: String,
        /// The members: a public key (0x hex) or key file, each optionally `=CAP`.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// A new group file: the members of `--group` plus these.
    Add {
        /// The group file to start from (left as it is).
        #[arg(long)]
        group: PathBuf,
        /// Where to write the new group file.
        #[arg(long)]
        out: PathBuf,
        /// The cap of members given without one (a decimal amount, or "unlimited").
        #[arg(long, default_value = "unlimited")]
        cap: String,
        /// The members to add: a public key (0x hex) or key file, each optionally `=CAP`.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// A new group file: the members of `--group` without these (keys or key files).
    Remove {
        /// The group file to start from (left as it is).
        #[arg(long)]
        group: PathBuf,
        /// Where to write the new group file.
        #[arg(long)]
        out: PathBuf,
        /// The members to leave out: public keys (0x hex) or key files.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Print a group file's root and members.
    Show {
        /// The group file.
        group: PathBuf,
    },
}

fn written(group: &GroupFile, out: &Path, o: &Output) {
    let members: Vec<serde_json::Value> = group
        .members
        .iter()
        .map(|m| serde_json::json!({"key": m.key, "cap": m.cap}))
        .collect();
    let text = group
        .members
        .iter()
        .map(|m| format!("  {} cap {}", to_hex(&m.key.0), m.cap))
        .collect::<Vec<_>>()
        .join("\n");
    o.print(
        serde_json::json!({"root": group.root, "members": members, "file": out.display().to_string()}),
        format!("{}: root {}, {} members\n{text}", out.display(), to_hex(&group.root.0), group.members.len()),
    );
}

/// Runs one group command and prints the group it wrote or read.
pub fn run(command: GroupCommand, o: &Output) -> Result<()> {
    match command {
        GroupCommand::New {
            out,
            layer,
            cap,
            members,
        } => {
            let cap = parse_cap(&cap)?;
            let members = members
                .iter()
                .map(|m| member_arg(m, cap))
                .collect::<Result<Vec<_>>>()?;
            let group = GroupFile::build(layer.into(), &members)?;
            group.save(&out)?;
            written(&group, &out, o);
        }
        GroupCommand::Add {
            group,
            out,
            cap,
            members,
        } => {
            let cap = parse_cap(&cap)?;
            let file = GroupFile::load(&group)?;
            let mut all = file.members()?;
            for m in &members {
                all.push(member_arg(m, cap)?);
            }
            let group = GroupFile::build(file.layer(), &all)?;
            group.save(&out)?;
            written(&group, &out, o);
        }
        GroupCommand::Remove {
            group,
            out,
            members,
        } => {
            let file = GroupFile::load(&group)?;
            let mut all = file.members()?;
            for m in &members {
                let key = public_key_arg(m)?;
                let before = all.len();
                all.retain(|member| member.key != key);
                if all.len() == before {
                    bail!("{m} is not a member of {}", group.display());
                }
            }
            let group = GroupFile::build(file.layer(), &all)?;
            group.save(&out)?;
            written(&group, &out, o);
        }
        GroupCommand::Show { group } => {
            let file = GroupFile::load(&group)?;
            file.root()?;
            written(&file, &group, o);
        }
    }
    Ok(())
}
