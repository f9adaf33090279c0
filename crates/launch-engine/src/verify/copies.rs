//! Two copies of one run — the local folder and the one mirrored to S3 — compared without
//! either overwriting the other: a forger who can write one place cannot make the other agree.

use std::path::Path;

use crate::journal;

/// How two copies of a run's journal relate.
#[derive(Debug, PartialEq, Eq)]
pub enum Agreement {
    Same,
    /// One is the other plus later lines (a copy not yet updated): (shorter, longer) lines.
    Continues {
        shorter: usize,
        longer: usize,
    },
    /// They differ from this line (1-based) on.
    Differ(usize),
}

/// How the journals of two run folders relate.
pub fn compare(a: &Path, b: &Path) -> anyhow::Result<Agreement> {
    let read = |dir: &Path| {
        crate::files::read(
            &dir.join("journal.jsonl"),
            journal::MAX_BYTES,
            "the journal",
        )
    };
    Ok(agreement(&read(a)?, &read(b)?))
}

/// How two journals' bytes relate, line by line.
pub fn agreement(a: &[u8], b: &[u8]) -> Agreement {
    let (la, lb) = (journal::lines(a), journal::lines(b));
    let same = la.iter().zip(&lb).take_while(|(x, y)| x == y).count();
    match (same == la.len(), same == lb.len()) {
        (true, true) => Agreement::Same,
        (true, false) | (false, true) => Agreement::Continues {
            shorter: la.len().min(lb.len()),
            longer: la.len().max(lb.len()),
        },
        (false, false) => Agreement::Differ(same + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_agree_continue_or_differ_at_a_line() {
        assert_eq!(agreement(b"a\nb\n", b"a\nb\n"), Agreement::Same);
        assert_eq!(
            agreement(b"a\nb\n", b"a\nb\nc\n"),
            Agreement::Continues {
                shorter: 2,
                longer: 3
            }
        );
        assert_eq!(agreement(b"a\nx\nc\n", b"a\nb\nc\n"), Agreement::Differ(2));
    }
}
