//! The bytes of a direct message as the agent hands them to the node ([`Payload`]): cheap to
//! clone and to keep, written out only when the node sends them. A dealt batch is its holder's
//! own bytes (the context, the sealed shares, the signature) around its chunk's encoded
//! commitments, which every batch of the chunk shares: an owner keeps one copy of a chunk's
//! commitments, not one per holder, and a re-send is a clone of the same payload.
//!
//! Guarantees: [`Payload::to_vec`] is the message's encoding, byte for byte (the parts are
//! slices of `ledger::encode` of the whole message, see `direct::batch_payload`); clones of a
//! payload are the same payload ([`Payload::same`], [`Payload::key`]) and nothing else alive is,
//! so the node can refuse to queue a message that is still queued or in flight to its peer.

use std::sync::Arc;

/// The bytes of one direct message, shared: a clone costs a reference count.
#[derive(Clone)]
pub struct Payload(Arc<Parts>);

struct Parts {
    /// The bytes before the shared part.
    head: Vec<u8>,
    /// Bytes shared with other payloads (a chunk's encoded commitments), if any.
    shared: Option<Arc<[u8]>>,
    /// The bytes after the shared part.
    tail: Vec<u8>,
}

impl Payload {
    /// `head ‖ shared ‖ tail`, `shared` not copied.
    pub(crate) fn around(head: Vec<u8>, shared: Arc<[u8]>, tail: Vec<u8>) -> Payload {
        Payload(Arc::new(Parts {
            head,
            shared: Some(shared),
            tail,
        }))
    }

    fn parts(&self) -> [&[u8]; 3] {
        let p = &*self.0;
        [&p.head, p.shared.as_deref().unwrap_or(&[]), &p.tail]
    }

    /// The message's length in bytes.
    pub fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the message's bytes to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len());
        for p in self.parts() {
            out.extend_from_slice(p);
        }
    }

    /// The message's bytes, in one new buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.write_to(&mut out);
        out
    }

    /// Whether `other` is this payload (a clone of it), not merely equal bytes.
    pub fn same(&self, other: &Payload) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A key equal for this payload and its clones and different from that of every other
    /// payload alive at the same time (the address of the shared allocation): hold a clone for
    /// as long as the key is used.
    pub fn key(&self) -> usize {
        Arc::as_ptr(&self.0).addr()
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Payload {
        Payload(Arc::new(Parts {
            head: bytes,
            shared: None,
            tail: Vec::new(),
        }))
    }
}

/// Equal bytes (whatever the parts).
impl PartialEq for Payload {
    fn eq(&self, other: &Payload) -> bool {
        self.same(other)
            || (self.len() == other.len()
                && self
                    .parts()
                    .into_iter()
                    .flatten()
                    .eq(other.parts().into_iter().flatten()))
    }
}

impl Eq for Payload {}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_read_as_one_message_and_clones_are_the_same_payload() {
        let shared: Arc<[u8]> = Arc::from(&[3u8, 4][..]);
        let a = Payload::around(vec![1, 2], shared.clone(), vec![5]);
        let b = Payload::around(vec![1, 2], shared, vec![5]);
        assert_eq!(a.to_vec(), vec![1, 2, 3, 4, 5]);
        assert_eq!(a.len(), 5);
        let flat = Payload::from(vec![1, 2, 3, 4, 5]);
        assert_eq!(a, flat);
        assert_eq!(a, b);
        assert_ne!(a, Payload::from(vec![1, 2, 3, 4]));
        assert!(a.same(&a.clone()) && a.key() == a.clone().key());
        assert!(!a.same(&b) && a.key() != b.key());
    }
}
