//! Prefixed identifiers (`user_…`, `proj_…`, `ds_…`, `wf_…`, `sess_…`, `job_…`, `req_…`).

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 16;

/// Kinds of entity that carry a prefixed id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A user account.
    User,
    /// A project grouping datasets and workflows.
    Project,
    /// An uploaded dataset.
    Dataset,
    /// A training workflow.
    Workflow,
    /// A chat session.
    Session,
    /// A background job.
    Job,
    /// An HTTP request.
    Request,
}

impl IdKind {
    /// The prefix written before the `_`.
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::User => "user",
            IdKind::Project => "proj",
            IdKind::Dataset => "ds",
            IdKind::Workflow => "wf",
            IdKind::Session => "sess",
            IdKind::Job => "job",
            IdKind::Request => "req",
        }
    }

    /// A new random id of this kind: the prefix, `_`, then 16 lowercase base-36 characters
    /// (82 bits of randomness).
    pub fn new_id(self) -> String {
        let mut rng = rand::thread_rng();
        let mut id = String::with_capacity(self.prefix().len() + 1 + RANDOM_LEN);
        id.push_str(self.prefix());
        id.push('_');
        for _ in 0..RANDOM_LEN {
            id.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
        }
        id
    }

    /// Whether `id` is syntactically an id of this kind (prefix, `_`, then `[0-9a-z_-]{1,64}`).
    pub fn matches(self, id: &str) -> bool {
        id.strip_prefix(self.prefix())
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|rest| {
                !rest.is_empty()
                    && rest.len() <= 64
                    && rest.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_have_prefix_and_are_unique() {
        let a = IdKind::Workflow.new_id();
        let b = IdKind::Workflow.new_id();
        assert!(a.starts_with("wf_"));
        assert_eq!(a.len(), 3 + RANDOM_LEN);
        assert_ne!(a, b);
        assert!(IdKind::Workflow.matches(&a));
        assert!(!IdKind::Dataset.matches(&a));
        assert!(!IdKind::Workflow.matches("wf_"));
        assert!(!IdKind::Workflow.matches("wf_A B"));
    }
}
