//! Seed inputs: small, valid encodings of real messages for each target, so fuzzing starts from
//! valid structure. `src/bin/seeds.rs` writes them to `fuzz/corpus/<target>/`.

use std::collections::BTreeMap;

use libp2p::request_response::Codec as _;
use seedfed_node::chain::wire::{ChainRequest, ChainResponse};
use seedfed_node::chain::CheckpointInfo;
use seedfed_node::network::admission::{AdmissionRecord, AdmissionRequest, AdmissionResponse};
use seedfed_protocol::agent::{Agent, Fault};
use seedfed_protocol::checkpoint::{Checkpoint, MasterKey};
use seedfed_protocol::consensus::{
    CommitCertificate, Consensus, ConsensusKey, ConsensusMessage, ConsensusParams, Input, Output,
    WalEntry,
};
use seedfed_protocol::dkg::{Complaint, Envelope};
use seedfed_protocol::ledger::{
    self, Block, ComplaintPayload, DkgSuite, Ledger, Round1Payload, Tx, TxBody,
};
use seedfed_protocol::light_client::Trusted;

use crate::machines;

/// Seeds by target name.
pub type Seeds = BTreeMap<&'static str, Vec<Vec<u8>>>;

fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    ledger::encode(v)
}

fn with_selector(sel: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![sel];
    v.extend_from_slice(body);
    v
}

/// One op of the state-machine targets' op stream (`machines::ops`).
fn op(code: u8, arg: u8, body: &[u8]) -> Vec<u8> {
    let len = u8::try_from(body.len()).unwrap_or(u8::MAX);
    let mut v = vec![code, arg, len];
    v.extend_from_slice(&body[..usize::from(len)]);
    v
}

/// Four in-memory validators deciding `heights` blocks: every broadcast, WAL entry and
/// decision, and the ledger after.
struct Run {
    messages: Vec<ConsensusMessage>,
    wal: Vec<WalEntry>,
    decided: Vec<(Block, CommitCertificate)>,
    ledgers: Vec<Ledger>,
}

fn run_consensus(heights: u64) -> Run {
    let genesis = machines::genesis_ledger().clone();
    let mut nodes: Vec<Consensus> = (0..4u8)
        .map(|i| {
            Consensus::new(
                genesis.clone(),
                None,
                ConsensusKey::from_seed([i + 1; 32]),
                ConsensusParams::default(),
            )
            .expect("consensus node")
        })
        .collect();
    let mut run = Run {
        messages: Vec::new(),
        wal: Vec::new(),
        decided: Vec::new(),
        ledgers: Vec::new(),
    };
    let mut queue: Vec<(usize, Input)> = Vec::new();
    let mut outs: Vec<(usize, Vec<Output>)> = Vec::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        outs.push((i, n.start()));
    }
    for _step in 0..10_000 {
        for (from, os) in outs.drain(..) {
            for o in os {
                match o {
                    Output::Broadcast(m) => {
                        run.messages.push(m.clone());
                        for to in 0..4 {
                            if to != from {
                                queue.push((to, Input::Message(m.clone())));
                            }
                        }
                    }
                    Output::PersistWal(e) => run.wal.push(e),
                    Output::BuildBlock { height, round } => queue.push((
                        from,
                        Input::ProposeTxs {
                            height,
                            round,
                            txs: Vec::new(),
                        },
                    )),
                    Output::Decided { block, certificate } => {
                        if from == 0 {
                            run.decided.push((block, certificate));
                        }
                    }
                    _ => {}
                }
            }
        }
        if run.decided.len() as u64 >= heights || queue.is_empty() {
            break;
        }
        let batch: Vec<(usize, Input)> = std::mem::take(&mut queue);
        for (to, input) in batch {
            outs.push((to, nodes[to].handle(input)));
        }
    }
    run.ledgers.push(nodes[0].ledger().clone());
    run
}

/// Every target's seeds.
pub fn all() -> Seeds {
    let mut s = Seeds::new();
    let run = run_consensus(2);

    s.insert(
        "consensus_message",
        run.messages.iter().take(12).map(enc).collect(),
    );
    let mut blocks = Vec::new();
    for (b, c) in &run.decided {
        blocks.push(with_selector(0, &enc(&(b, c))));
        blocks.push(with_selector(1, &enc(b)));
        blocks.push(with_selector(2, &enc(c)));
    }
    s.insert("block", blocks);
    s.insert("wal_entry", run.wal.iter().take(12).map(enc).collect());
    let mut states = vec![enc(machines::genesis_ledger())];
    states.extend(run.ledgers.iter().map(enc));
    s.insert("ledger_state", states);
    s.insert(
        "chain_rpc",
        vec![
            with_selector(0, &enc(&ChainRequest::Blocks { from: 1, max: 8 })),
            with_selector(0, &enc(&ChainRequest::Direct(vec![1, 2, 3]))),
            with_selector(1, &enc(&ChainResponse::Blocks(run.decided.clone()))),
            with_selector(1, &enc(&ChainResponse::Ack)),
            with_selector(1, &enc(&ChainResponse::Refused("no".into()))),
        ],
    );

    let bodies = vec![
        TxBody::Transfer {
            to: machines::member(1),
            amount: 3,
        },
        TxBody::Exit,
        TxBody::DkgFinalize { epoch: 0 },
        TxBody::DkgAck {
            epoch: 0,
            attempt: 0,
        },
        TxBody::Filler,
        TxBody::EpochStart {
            epoch: 1,
            beacon: [0; 32],
        },
        TxBody::MasterRoot { root: [1; 32] },
    ];
    s.insert(
        "signed_tx",
        bodies
            .iter()
            .map(|b| {
                enc(&Tx {
                    author: machines::member(0),
                    nonce: 0,
                    body: b.clone(),
                }
                .sign(machines::CHAIN, &machines::identity(0)))
            })
            .collect(),
    );
    let mut ledger_ops = Vec::new();
    for (i, b) in bodies.iter().enumerate() {
        ledger_ops.push(op(0, i as u8, &enc(b)));
    }
    s.insert(
        "sm_ledger",
        vec![
            ledger_ops.concat(),
            [
                op(0, 0, &enc(&bodies[0])),
                op(7, 0, &[]),
                op(0, 1, &enc(&bodies[1])),
            ]
            .concat(),
        ],
    );
    let mut consensus_ops = Vec::new();
    for m in run.messages.iter().take(8) {
        consensus_ops.push(op(0, 0, &enc(m)));
    }
    s.insert(
        "sm_consensus",
        vec![
            consensus_ops.concat(),
            [
                op(4, 0, &[]),
                op(1, 0, &[0]),
                op(1, 4, &[0]),
                op(2, 0, &[0]),
                op(2, 4, &[0]),
            ]
            .concat(),
            [op(3, 0, &[]), op(3, 4, &[]), op(3, 8, &[])].concat(),
        ],
    );

    let dkg = machines::dkg_fixture();
    let env0 = &dkg.envelopes[0].0;
    let round1: Vec<Vec<u8>> = dkg
        .published
        .values()
        .map(|p| p.serialize().expect("round-1 package serialises"))
        .collect();
    let ed_round1 = round1.clone();
    let payload = Round1Payload {
        ristretto255: round1[0].clone(),
        ed25519: ed_round1[0].clone(),
    };
    let missing = Complaint::Missing {
        complainer: machines::member(0),
        dealer: machines::member(1),
    };
    let recon = machines::recon_fixture();
    s.insert(
        "tx_payload",
        vec![
            with_selector(0, &enc(&payload)),
            with_selector(
                1,
                &enc(&ComplaintPayload {
                    suite: DkgSuite::Ristretto255,
                    complaint: missing.encode(),
                }),
            ),
            with_selector(4, &enc(&recon.honest[0])),
        ],
    );
    let bad = Envelope::decode(env0).ok().map(|envelope| {
        Complaint::Bad {
            envelope,
            evidence: seedfed_protocol::dkg::BadShareProof::InvalidEphemeral,
        }
        .encode()
    });
    let mut dkg_codec = vec![with_selector(0, env0), with_selector(1, &missing.encode())];
    if let Some(b) = bad {
        dkg_codec.push(with_selector(1, &b));
    }
    s.insert("dkg_codec", dkg_codec);
    s.insert(
        "sm_dkg",
        vec![vec![0], vec![1], with_selector(2, env0), vec![4, 1, 2, 3]],
    );
    s.insert(
        "sm_agent",
        vec![
            vec![1],
            vec![3],
            with_selector(5, &enc(&recon.honest[0])),
            vec![9, 0, 1],
            with_selector(0, &op(0, 1, &[0, 0, 0])),
        ],
    );
    s.insert(
        "agent_snapshot",
        vec![Agent::new([1; 32], [101; 32], Fault::None)
            .snapshot()
            .to_vec()],
    );
    s.insert(
        "repair_message",
        vec![with_selector(2, &[1u8; 64]), with_selector(2, &[0u8; 32])],
    );
    s.insert("direct", vec![vec![0], vec![3, 1, 0, 0, 0, 0, 0, 0, 0]]);
    s.insert(
        "api_body",
        vec![with_selector(1, &enc(&(5u64, vec![1u8, 2, 3])))],
    );

    let lms = [
        include_str!("../../protocol/tests/data/rfc8554_tc1_public_key.hex"),
        include_str!("../../protocol/tests/data/rfc8554_tc2_public_key.hex"),
        include_str!("../../protocol/tests/data/rfc8554_tc1_signature.hex"),
        include_str!("../../protocol/tests/data/rfc8554_tc2_signature.hex"),
    ];
    let mut lms_seeds = Vec::new();
    for (i, h) in lms.iter().enumerate() {
        let clean: String = h.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        if let Ok(b) = hex::decode(clean) {
            let (plain, hss) = if i < 2 { (0, 1) } else { (2, 3) };
            lms_seeds.push(with_selector(hss, &b));
            lms_seeds.push(with_selector(plain, b.get(4..).unwrap_or_default()));
        }
    }
    s.insert("lms_codec", lms_seeds);

    let cp = Checkpoint {
        chain_id: [3; 32],
        seq: 0,
        epoch: 0,
        height: 4,
        master_key: MasterKey {
            lms_type: 5,
            lmots_type: 3,
            id: [4; 16],
            root: [5; 32],
        },
        next_key: [6; 32],
        validator_set_hash: [7; 32],
        retired_digest: [8; 32],
    };
    s.insert("signed_checkpoint", vec![with_selector(1, &cp.to_bytes())]);
    let info = CheckpointInfo {
        seq: 0,
        epoch: 0,
        height: 4,
        bytes: hex::encode(cp.to_bytes()),
        signature: hex::encode([9u8; 64]),
        group_key: hex::encode([6u8; 32]),
        key_epoch: 0,
        ..Default::default()
    };
    let trusted = Trusted::new([3; 32], machines::identity(4).verifying_key().to_bytes())
        .expect("trust anchor");
    s.insert(
        "light_client",
        vec![
            with_selector(0, &serde_json::to_vec(&vec![info]).expect("json")),
            with_selector(1, &serde_json::to_vec(&trusted).expect("json")),
        ],
    );

    let keypair = libp2p::identity::Keypair::ed25519_from_bytes([7u8; 32]).expect("keypair");
    let xs = x25519_dalek::StaticSecret::from([8u8; 32]);
    let record = AdmissionRecord::sign(
        &keypair,
        "fuzz",
        &xs,
        seedfed_protocol::admission::Proof { nonce: 0 },
    )
    .expect("record");
    let mut codec = libp2p::request_response::cbor::codec::Codec::<
        AdmissionRequest,
        AdmissionResponse,
    >::default();
    let proto = libp2p::StreamProtocol::new("/seedfed/admission/1");
    let mut req = futures::io::Cursor::new(Vec::new());
    let mut resp = futures::io::Cursor::new(Vec::new());
    let _ = futures::executor::block_on(codec.write_request(
        &proto,
        &mut req,
        AdmissionRequest(record.clone()),
    ));
    let _ = futures::executor::block_on(codec.write_response(
        &proto,
        &mut resp,
        AdmissionResponse::Accepted(record),
    ));
    s.insert(
        "admission",
        vec![
            with_selector(0, req.get_ref()),
            with_selector(1, resp.get_ref()),
        ],
    );

    let key = seedfed_node::at_rest::AtRestKey::derive(&[1; 32], &[2; 32]);
    s.insert("at_rest", vec![key.seal(b"fuzz", b"a snapshot")]);
    s.insert(
        "keystore_file",
        vec![include_bytes!("../../node/tests/data/keystore-legacy.json").to_vec()],
    );
    s.insert(
        "config_file",
        vec![seedfed_node::config::Config::default()
            .commented_toml()
            .into_bytes()],
    );
    s.insert("genesis_file", vec![node_genesis().to_toml().into_bytes()]);
    let peer = libp2p::PeerId::random();
    s.insert(
        "peers_file",
        vec![format!(
            r#"{{"peers":[{{"peer_id":"{peer}","addrs":["/ip4/127.0.0.1/tcp/4001"]}}]}}"#
        )
        .into_bytes()],
    );
    s
}

/// A valid node genesis file: the four fuzz validators by peer id, one client.
fn node_genesis() -> seedfed_node::genesis::Genesis {
    use seedfed_node::genesis::{Genesis, GenesisClient, GenesisValidator};
    Genesis {
        chain_id: machines::CHAIN.into(),
        pow_difficulty: 0,
        validators: (0..4u8)
            .map(|i| GenesisValidator {
                peer_id: libp2p::identity::Keypair::ed25519_from_bytes([i + 1; 32])
                    .expect("keypair")
                    .public()
                    .to_peer_id()
                    .to_string(),
                stake: 10,
                x25519: hex::encode(
                    x25519_dalek::PublicKey::from(&machines::x25519_secret(i)).to_bytes(),
                ),
            })
            .collect(),
        key: Default::default(),
        epochs: Default::default(),
        clients: vec![GenesisClient {
            key: hex::encode(machines::identity(4).verifying_key().to_bytes()),
            quota: 3,
        }],
    }
}

/// Writes every target's seeds to `dir/<target>/seed-<hash>`; the number written.
pub fn write(dir: &std::path::Path) -> std::io::Result<usize> {
    use sha2::Digest;
    for (name, _) in crate::TARGETS {
        std::fs::create_dir_all(dir.join(name))?;
    }
    let mut n = 0;
    for (target, inputs) in all() {
        for input in inputs {
            let hash = sha2::Sha256::digest(&input);
            let name = format!("seed-{}", hex::encode(&hash[..8]));
            std::fs::write(dir.join(target).join(name), &input)?;
            n += 1;
        }
    }
    Ok(n)
}
