//! State-machine targets: arbitrary message sequences driven into the sans-IO machines, with
//! the properties that must hold whatever the messages are.
//!
//! - `ledger`: transactions with fuzzed bodies, signed by genesis validators (so they get past
//!   the signature check), applied to a small genesis state; a refused transaction changes
//!   nothing.
//! - `consensus`: one validator of four fed fuzzed messages, correctly signed votes of the
//!   other three, timers and block answers; its height never goes back and matches its ledger.
//! - `dkg`: a member opens a dealer's round-2 envelope that the fuzzer altered; an altered
//!   envelope that opens yields exactly the honest share.
//! - `agent`: point-to-point messages into an epoch agent; a refused one changes nothing.
//!   Reconstruction: a recipient opens and combines contributions one of which the fuzzer
//!   altered; if it combines, the secret is the dealt one.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use x25519_dalek::{PublicKey, StaticSecret};

use seedfed_protocol::agent::{Agent, Fault};
use seedfed_protocol::consensus::{
    Consensus, ConsensusKey, ConsensusMessage, ConsensusParams, Input, Output, TimerId, TimerKind,
};
use seedfed_protocol::dkg::{Ceremony, Envelope};
use seedfed_protocol::ledger::{
    self, vote_digest, Genesis, GenesisValidator, KeyParams, Ledger, Signature64, SignedTx, Tx,
    TxBody, VoteKind, VoteRecord,
};
use seedfed_protocol::member::MemberId;
use seedfed_protocol::reconstruct::{
    self, combine, contribute, open_contribution, Contribution, HolderKeys, Participant, Session,
};
use seedfed_protocol::shamir::{deal, Dealing, LeafSecret};

/// Most operations one input drives (every loop is bounded).
const MAX_OPS: usize = 48;
pub(crate) const CHAIN: &str = "fuzz-chain";

/// The validators' identity keys: seeds 1..=4 (and a fifth, non-member key at index 4).
pub(crate) fn identity(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[i + 1; 32])
}

pub(crate) fn member(i: u8) -> MemberId {
    MemberId(identity(i).verifying_key().to_bytes())
}

pub(crate) fn x25519_secret(i: u8) -> StaticSecret {
    StaticSecret::from([i + 101; 32])
}

/// A four-validator genesis with the smallest key (height 5 in 2 sectors, 1-of-1 shares) and
/// no proof of work.
fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        pow_difficulty: 0,
        validators: (0..4)
            .map(|i| GenesisValidator {
                id: member(i),
                stake: 10 + u64::from(i),
                x25519: PublicKey::from(&x25519_secret(i)).to_bytes(),
            })
            .collect(),
        key: KeyParams {
            tree_height: 5,
            sector_bits: 1,
            leaf_threshold: 1,
            leaf_holders: 1,
            ack_threshold: 1,
            audit_leaves: 0,
            sector_window: ledger::DEFAULT_SECTOR_WINDOW,
            rotate_percent: 0,
        },
        eviction_missed_heights: 4,
        epochs: Default::default(),
        clients: Vec::new(),
    }
}

pub(crate) fn genesis_ledger() -> &'static Ledger {
    static L: OnceLock<Ledger> = OnceLock::new();
    L.get_or_init(|| Ledger::from_genesis(&genesis()).expect("fuzz genesis is valid"))
}

/// Splits `data` into at most [`MAX_OPS`] operations: an opcode byte, an argument byte, and a
/// length-prefixed body.
fn ops(mut data: &[u8]) -> Vec<(u8, u8, &[u8])> {
    let mut out = Vec::new();
    while out.len() < MAX_OPS && data.len() >= 3 {
        let (op, arg, len) = (data[0], data[1], usize::from(data[2]));
        let body_end = (3 + len).min(data.len());
        out.push((op, arg, &data[3..body_end]));
        data = &data[body_end..];
    }
    out
}

/// Ledger: fuzzed transaction bodies, signed by a validator (or a stranger), applied in
/// blocks. A refused transaction leaves the state hash unchanged.
pub fn ledger(data: &[u8]) {
    let mut state = genesis_ledger().state.clone();
    state.begin_block();
    for (op, arg, body) in ops(data) {
        if op % 8 == 7 {
            state.height += 1;
            state.begin_block();
            continue;
        }
        let Ok(body) = ledger::decode::<TxBody>(body) else {
            continue;
        };
        let signer = arg % 5;
        let author = member(signer);
        let expected = state.members.get(&author).map_or(0, |m| m.nonce);
        let nonce = if op % 8 == 6 {
            expected.wrapping_add(u64::from(arg))
        } else {
            expected
        };
        let stx = Tx {
            author,
            nonce,
            body,
        }
        .sign(CHAIN, &identity(signer));
        let before = state.hash();
        if state.apply_tx(&stx).is_err() {
            assert_eq!(
                state.hash(),
                before,
                "a refused transaction changed the state"
            );
        }
    }
}

fn vote(i: u8, height: u64, round: u32, kind: VoteKind, value: Option<[u8; 32]>) -> VoteRecord {
    let validator = member(i);
    let digest = vote_digest(CHAIN, height, round, kind, value.as_ref(), &validator);
    let sig = ed25519_dalek::Signer::sign(&identity(i), &digest);
    VoteRecord {
        height,
        round,
        kind,
        value,
        validator,
        signature: Signature64(sig.to_bytes()),
    }
}

/// Consensus: validator 0 of four, driven by fuzzed messages, properly signed votes of the
/// others (for nil or for a block it has seen), timers and answers to its block requests.
pub fn consensus(data: &[u8]) {
    let ledger = genesis_ledger().clone();
    let Ok(mut c) = Consensus::new(
        ledger,
        None,
        ConsensusKey::from_seed([1; 32]),
        ConsensusParams::default(),
    ) else {
        return;
    };
    let mut seen: Vec<[u8; 32]> = Vec::new();
    let note = |outs: Vec<Output>, seen: &mut Vec<[u8; 32]>| {
        for o in outs {
            match o {
                Output::Broadcast(ConsensusMessage::Proposal(p)) => seen.push(p.block.hash()),
                Output::Decided { block, .. } => seen.push(block.hash()),
                _ => {}
            }
        }
        seen.truncate(16);
    };
    let outs = c.start();
    note(outs, &mut seen);
    for (op, arg, body) in ops(data) {
        let height_before = c.height();
        let round = u32::from(arg % 4);
        let input = match op % 5 {
            0 => match ledger::decode::<ConsensusMessage>(body) {
                Ok(m) => Input::Message(m),
                Err(_) => continue,
            },
            1 | 2 => {
                let kind = if op % 5 == 1 {
                    VoteKind::Prevote
                } else {
                    VoteKind::Precommit
                };
                let value = body
                    .first()
                    .and_then(|b| seen.get(usize::from(*b) % seen.len().max(1)).copied());
                let height = c.height() + u64::from(arg >> 6 == 3);
                Input::Message(ConsensusMessage::Vote(vote(
                    1 + (arg >> 2) % 3,
                    height,
                    round,
                    kind,
                    value,
                )))
            }
            3 => Input::TimerFired(TimerId {
                height: c.height(),
                round,
                kind: match arg >> 2 & 3 {
                    0 => TimerKind::Propose,
                    1 => TimerKind::Prevote,
                    2 => TimerKind::Precommit,
                    _ => TimerKind::Rebroadcast,
                },
            }),
            _ => Input::ProposeTxs {
                height: c.height(),
                round,
                txs: ledger::decode::<Vec<SignedTx>>(body).unwrap_or_default(),
            },
        };
        let outs = c.handle(input);
        note(outs, &mut seen);
        assert!(c.height() >= height_before, "consensus height went back");
        assert_eq!(c.ledger().height() + 1, c.height());
    }
}

pub(crate) struct DkgFixture {
    pub(crate) ceremony: Ceremony<frost_ristretto255::Ristretto255Sha512>,
    pub(crate) published: BTreeMap<MemberId, frost_ristretto255::keys::dkg::round1::Package>,
    /// Dealer 1's and 2's honest envelopes to member 0, encoded, with the shares they hold.
    pub(crate) envelopes: Vec<(Vec<u8>, Vec<u8>)>,
    /// The share each dealer dealt member 0.
    pub(crate) shares: BTreeMap<MemberId, Vec<u8>>,
}

pub(crate) fn dkg_fixture() -> &'static DkgFixture {
    static F: OnceLock<DkgFixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let roster: BTreeMap<MemberId, [u8; 32]> = (0..3)
            .map(|i| (member(i), PublicKey::from(&x25519_secret(i)).to_bytes()))
            .collect();
        let ceremony = Ceremony::new([3; 32], 1, 2, roster).expect("ceremony");
        let mut secrets = BTreeMap::new();
        let mut published = BTreeMap::new();
        for i in 0..3 {
            let (s, p) = ceremony.round1(&member(i), &mut rng).expect("round 1");
            secrets.insert(i, s);
            published.insert(member(i), p);
        }
        let mut envelopes = Vec::new();
        for d in 1..3u8 {
            let out = ceremony
                .deal(&member(d), &identity(d), &secrets[&d], &published, &mut rng)
                .expect("deal");
            let env = out
                .into_iter()
                .find(|e: &Envelope| e.recipient == member(0))
                .expect("an envelope for member 0");
            let share = ceremony
                .open(&x25519_secret(0), &env, &published)
                .expect("honest envelope opens")
                .serialize()
                .expect("share serialises");
            envelopes.push((env.encode(), share));
        }
        let shares = (1..3u8)
            .zip(&envelopes)
            .map(|(d, (_, share))| (member(d), share.clone()))
            .collect();
        DkgFixture {
            ceremony,
            published,
            envelopes,
            shares,
        }
    })
}

/// DKG round 2: member 0 opens a dealer's envelope the fuzzer altered (XOR of the input over
/// the honest encoding, or the input itself). Whatever opens is the share the named dealer
/// honestly dealt (an envelope of another dealer is that dealer's share).
pub fn dkg(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let f = dkg_fixture();
    let (honest, _) = &f.envelopes[usize::from(sel & 1)];
    let bytes = if sel & 2 == 0 {
        let mut b = honest.clone();
        for (i, x) in rest.iter().enumerate().take(b.len()) {
            b[(i * 7 + usize::from(sel >> 2)) % honest.len()] ^= x;
        }
        b
    } else {
        rest.to_vec()
    };
    let Ok(env) = Envelope::decode(&bytes) else {
        return;
    };
    if let Ok(p) = f.ceremony.open(&x25519_secret(0), &env, &f.published) {
        assert_eq!(
            Some(&p.serialize().expect("share serialises")),
            f.shares.get(&env.sender),
            "an altered envelope opened to a share its dealer did not deal"
        );
    }
}

pub(crate) struct ReconFixture {
    session: Session,
    holders: Vec<MemberId>,
    recipient_key: StaticSecret,
    secret: LeafSecret,
    dealing: Dealing,
    pub(crate) honest: Vec<Contribution>,
}

pub(crate) fn recon_fixture() -> &'static ReconFixture {
    static F: OnceLock<ReconFixture> = OnceLock::new();
    F.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let holders: Vec<MemberId> = {
            let mut h: Vec<MemberId> = (0..3).map(member).collect();
            h.sort();
            h
        };
        let index = |m: &MemberId| (0..3u8).find(|i| member(*i) == *m).expect("a holder");
        let secret = LeafSecret::random(&mut rng);
        let dealing = deal(&secret, &holders, 2, &mut rng).expect("deal");
        let recipient_key = x25519_secret(4);
        let quorum: Vec<Participant> = holders[..2]
            .iter()
            .map(|m| Participant {
                member: *m,
                x25519: PublicKey::from(&x25519_secret(index(m))).to_bytes(),
            })
            .collect();
        let session = Session::new(
            [7; 32],
            3,
            9,
            Participant {
                member: member(4),
                x25519: PublicKey::from(&recipient_key).to_bytes(),
            },
            quorum,
        )
        .expect("session");
        let honest = session
            .members()
            .iter()
            .map(|m| {
                let i = index(m);
                let pos = holders.iter().position(|h| h == m).expect("a holder");
                let x = x25519_secret(i);
                let id = identity(i);
                contribute(
                    &session,
                    &holders,
                    2,
                    HolderKeys::new(*m, &x, &id),
                    &dealing.shares[pos],
                    &mut rng,
                )
                .expect("honest contribution")
            })
            .collect();
        ReconFixture {
            session,
            holders,
            recipient_key,
            secret,
            dealing,
            honest,
        }
    })
}

/// Agent and reconstruction. Even first byte: point-to-point messages from validators into a
/// fresh epoch agent at genesis; a refused message leaves its snapshot unchanged. Odd: the
/// recipient of a 2-of-3 leaf opens and combines the quorum's contributions, one of them
/// altered by the fuzzer; if they combine, the secret is the dealt one.
pub fn agent(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel & 1 == 0 {
        let ledger = genesis_ledger();
        let mut a = Agent::new([1; 32], [101; 32], Fault::None);
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(sel));
        for (_op, arg, body) in ops(rest) {
            let before = a.snapshot();
            if a.on_direct(ledger, member(arg % 5), body, &mut rng)
                .is_err()
            {
                assert_eq!(a.snapshot(), before, "a refused message changed the agent");
            }
        }
        return;
    }
    let f = recon_fixture();
    let which = usize::from(sel >> 1) % f.honest.len();
    let mut bytes = ledger::encode(&f.honest[which]);
    if sel & 2 == 0 {
        for (i, x) in rest.iter().enumerate().take(bytes.len()) {
            let n = bytes.len();
            bytes[(i * 13 + usize::from(sel >> 2)) % n] ^= x;
        }
    } else {
        bytes = rest.to_vec();
    }
    let Ok(altered) = ledger::decode::<Contribution>(&bytes) else {
        return;
    };
    let mut contributions = f.honest.clone();
    contributions[which] = altered;
    let mut opened = Vec::new();
    for c in &contributions {
        match open_contribution(&f.session, &f.recipient_key, c) {
            Ok(o) => opened.push(o),
            Err(_) => return,
        }
    }
    let _ = &f.holders;
    match combine(&f.session, &f.dealing.commitment, &opened) {
        Ok(s) => assert!(
            s.ct_eq(&f.secret),
            "contributions combined to a wrong secret"
        ),
        Err(reconstruct::ReconstructError::Faulty(_)) | Err(_) => {}
    }
}
