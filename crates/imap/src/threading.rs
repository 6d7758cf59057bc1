//! THREAD=REFERENCES (RFC 5256 §2.2 and §4): threads built from
//! Message-ID, References and In-Reply-To, then subjects merged.
//!
//! Headers come from anyone, so nothing here recurses: the containers live
//! in one arena, every walk down a tree uses an explicit stack, and a walk
//! up (the loop check) is bounded.

use crate::sort_keys::base_subject_and_reply;
use std::collections::HashMap;

/// What threading needs of one message found by the search.
#[derive(Debug, Clone, Default)]
pub struct ThreadInput {
    /// What the answer names it by: sequence number or UID.
    pub number: u32,
    pub seq: u32,
    /// Sent date (Unix seconds; the internal date when there is none).
    pub date: i64,
    pub message_id: Option<String>,
    /// Message-IDs of References, in order; In-Reply-To's first when it has none.
    pub references: Vec<String>,
    /// The decoded subject.
    pub subject: String,
}

/// The `<…>` message IDs in a header value, in order.
pub fn message_ids(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else { break };
        let id = after[..end].trim();
        if !id.is_empty() && !id.contains('<') {
            ids.push(id.to_string());
        }
        rest = &after[end + 1..];
    }
    ids
}

/// Steps taken up a chain of parents before a link is given up as a loop.
const MAX_WALK: usize = 10_000;

#[derive(Default)]
struct Node {
    /// Index into the input; `None` for a container only referred to.
    message: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Arena<'a> {
    nodes: Vec<Node>,
    input: &'a [ThreadInput],
    /// (date, seq) of each node: its message's, or its first child's.
    keys: Vec<(i64, u32)>,
}

impl Arena<'_> {
    fn new_node(&mut self, message: Option<usize>) -> usize {
        self.nodes.push(Node {
            message,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    /// Whether `ancestor` is `node` or above it (bounded: a walk too long
    /// counts as yes, so no link is made).
    fn is_at_or_above(&self, ancestor: usize, node: usize) -> bool {
        // A container with no children is above nothing: the common case
        // (a reply arriving after what it answers) needs no walk.
        if self.nodes[ancestor].children.is_empty() {
            return ancestor == node;
        }
        let mut current = Some(node);
        for _ in 0..MAX_WALK {
            match current {
                Some(c) if c == ancestor => return true,
                Some(c) => current = self.nodes[c].parent,
                None => return false,
            }
        }
        true
    }

    fn unlink(&mut self, child: usize) {
        if let Some(parent) = self.nodes[child].parent.take() {
            self.nodes[parent].children.retain(|c| *c != child);
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.unlink(child);
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// Nodes of the trees under `roots`, children before their parents.
    fn post_order(&self, roots: &[usize]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<(usize, bool)> = roots.iter().rev().map(|r| (*r, false)).collect();
        while let Some((node, expanded)) = stack.pop() {
            if expanded {
                out.push(node);
            } else {
                stack.push((node, true));
                for child in self.nodes[node].children.iter().rev() {
                    stack.push((*child, false));
                }
            }
        }
        out
    }

    /// Sorts every set of siblings by sent date, then sequence number; a
    /// container without a message sorts as its first child.
    fn sort(&mut self, roots: &mut [usize]) {
        for node in self.post_order(roots) {
            let mut children = std::mem::take(&mut self.nodes[node].children);
            children.sort_by_key(|c| self.keys[*c]);
            self.keys[node] = match self.nodes[node].message {
                Some(m) => (self.input[m].date, self.input[m].seq),
                None => children
                    .first()
                    .map_or((i64::MAX, u32::MAX), |c| self.keys[*c]),
            };
            self.nodes[node].children = children;
        }
        roots.sort_by_key(|r| self.keys[*r]);
    }

    /// The thread's subject (its message's, or its first child's) and
    /// whether it was a reply or forward.
    fn subject(&self, node: usize) -> (String, bool) {
        let message = self.nodes[node].message.or_else(|| {
            self.nodes[node]
                .children
                .first()
                .and_then(|c| self.nodes[*c].message)
        });
        message.map_or((String::new(), false), |m| {
            base_subject_and_reply(&self.input[m].subject)
        })
    }
}

/// The threads of `messages` by the REFERENCES algorithm, as THREAD's
/// answer writes them: `(1 2 (3)(4))(5)…`.
pub fn references(messages: &[ThreadInput]) -> String {
    let mut arena = Arena {
        nodes: Vec::new(),
        input: messages,
        keys: Vec::new(),
    };
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (index, message) in messages.iter().enumerate() {
        // (1) The message's own container: by Message-ID, unless it has
        // none or another message took it.
        let own = match message.message_id.as_deref() {
            Some(id) => match ids.get(id) {
                Some(&c) if arena.nodes[c].message.is_none() => c,
                Some(_) => arena.new_node(None),
                None => {
                    let c = arena.new_node(None);
                    ids.insert(id, c);
                    c
                }
            },
            None => arena.new_node(None),
        };
        arena.nodes[own].message = Some(index);
        // (1A) Link the references in order, each the parent of the next,
        // where no link exists yet and none would make a loop.
        let mut previous: Option<usize> = None;
        for reference in &message.references {
            let c = match ids.get(reference.as_str()) {
                Some(&c) => c,
                None => {
                    let c = arena.new_node(None);
                    ids.insert(reference, c);
                    c
                }
            };
            if let Some(p) = previous
                && p != c
                && arena.nodes[c].parent.is_none()
                && !arena.is_at_or_above(c, p)
            {
                arena.link(p, c);
            }
            previous = Some(c);
        }
        // (1B) The last reference is the message's parent, replacing any
        // parent guessed before, unless that would make a loop.
        match previous {
            Some(p) if p != own && !arena.is_at_or_above(own, p) => arena.link(p, own),
            _ => arena.unlink(own),
        }
    }
    arena.keys = vec![(0, 0); arena.nodes.len()];
    // (2) The root set.
    let roots: Vec<usize> = (0..arena.nodes.len())
        .filter(|n| arena.nodes[*n].parent.is_none())
        .collect();
    // (4) Prune containers without a message: none without children; the
    // children of the others take their place, except that at the root a
    // container keeps two or more children together.
    for node in arena.post_order(&roots) {
        let children = std::mem::take(&mut arena.nodes[node].children);
        let mut kept = Vec::with_capacity(children.len());
        for child in children {
            if arena.nodes[child].message.is_some() {
                kept.push(child);
                continue;
            }
            let grandchildren = std::mem::take(&mut arena.nodes[child].children);
            for g in &grandchildren {
                arena.nodes[*g].parent = Some(node);
            }
            kept.extend(grandchildren);
        }
        arena.nodes[node].children = kept;
    }
    let mut top = Vec::new();
    for root in roots {
        if arena.nodes[root].message.is_some() {
            top.push(root);
            continue;
        }
        match arena.nodes[root].children.len() {
            0 => {}
            1 => {
                let child = arena.nodes[root].children[0];
                arena.nodes[child].parent = None;
                top.push(child);
            }
            _ => top.push(root),
        }
    }
    arena.sort(&mut top);
    // (5) Threads with the same base subject merge.
    let mut table: HashMap<String, usize> = HashMap::new();
    for &root in &top {
        let (subject, reply) = arena.subject(root);
        if subject.is_empty() {
            continue;
        }
        match table.get(&subject) {
            None => {
                table.insert(subject, root);
            }
            Some(&old) => {
                let old_dummy = arena.nodes[old].message.is_none();
                let dummy = arena.nodes[root].message.is_none();
                let (_, old_reply) = arena.subject(old);
                if (dummy && !old_dummy) || (old_reply && !reply && !old_dummy) {
                    table.insert(subject, root);
                }
            }
        }
    }
    let mut merged: Vec<usize> = Vec::new();
    let mut joined_roots: Vec<usize> = Vec::new();
    let mut gone = vec![false; arena.nodes.len()];
    for &root in &top {
        let (subject, reply) = arena.subject(root);
        let Some(&winner) = table.get(&subject) else {
            merged.push(root);
            continue;
        };
        if subject.is_empty() || winner == root {
            merged.push(root);
            continue;
        }
        let winner_dummy = arena.nodes[winner].message.is_none();
        let dummy = arena.nodes[root].message.is_none();
        let (_, winner_reply) = arena.subject(winner);
        if winner_dummy && dummy {
            for child in std::mem::take(&mut arena.nodes[root].children) {
                arena.nodes[child].parent = None;
                arena.link(winner, child);
            }
            gone[root] = true;
        } else if winner_dummy || (reply && !winner_reply) {
            arena.link(winner, root);
        } else {
            let joined = arena.new_node(None);
            arena.keys.push((0, 0));
            gone.push(false);
            arena.link(joined, winner);
            arena.link(joined, root);
            table.insert(subject, joined);
            joined_roots.push(joined);
        }
    }
    // The roots now: those left without a parent, and the new containers.
    merged.extend(joined_roots);
    let mut roots: Vec<usize> = merged
        .into_iter()
        .filter(|r| !gone[*r] && arena.nodes[*r].parent.is_none())
        .collect();
    roots.sort_unstable();
    roots.dedup();
    // (6) Every set of siblings in date order.
    arena.sort(&mut roots);
    let mut out = String::new();
    for root in roots {
        out.push('(');
        write_tree(&arena, root, &mut out);
        out.push(')');
    }
    out
}

/// One thread without its outer parentheses: a message with one child is
/// followed by it ("1 2"), one with several by a list each ("1 (2)(3)").
fn write_tree(arena: &Arena, root: usize, out: &mut String) {
    enum Step {
        Node(usize),
        Text(&'static str),
    }
    let mut stack = vec![Step::Node(root)];
    while let Some(step) = stack.pop() {
        let node = match step {
            Step::Text(text) => {
                out.push_str(text);
                continue;
            }
            Step::Node(node) => node,
        };
        let is_message = arena.nodes[node].message.is_some();
        if let Some(m) = arena.nodes[node].message {
            out.push_str(&arena.input[m].number.to_string());
        }
        let children = &arena.nodes[node].children;
        if children.is_empty() {
            continue;
        }
        if is_message {
            out.push(' ');
        }
        if let [only] = children.as_slice() {
            stack.push(Step::Node(*only));
            continue;
        }
        for child in children.iter().rev() {
            stack.push(Step::Text(")"));
            stack.push(Step::Node(*child));
            stack.push(Step::Text("("));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(number: u32, id: &str, references: &[&str], subject: &str) -> ThreadInput {
        ThreadInput {
            number,
            seq: number,
            date: i64::from(number),
            message_id: (!id.is_empty()).then(|| id.to_string()),
            references: references.iter().map(|r| r.to_string()).collect(),
            subject: subject.to_string(),
        }
    }

    #[test]
    fn replies_hang_under_what_they_answer() {
        let threads = references(&[
            m(1, "a", &[], "Lunch"),
            m(2, "b", &["a"], "Re: Lunch"),
            m(3, "c", &["a", "b"], "Re: Lunch"),
            m(4, "d", &["a"], "Re: Lunch"),
            m(5, "e", &[], "Other"),
        ]);
        assert_eq!(threads, "(1 (2 3)(4))(5)");
    }

    #[test]
    fn a_missing_parent_keeps_its_replies_together() {
        // Both answer "x", which is not in the mailbox: a container
        // without a message holds them at the root.
        let threads = references(&[
            m(1, "b", &["x"], "Re: Plan"),
            m(2, "c", &["x"], "Re: Plan"),
            m(3, "d", &[], "Else"),
        ]);
        assert_eq!(threads, "((1)(2))(3)");
        // One reply alone takes its missing parent's place.
        assert_eq!(references(&[m(1, "b", &["x"], "Re: Plan")]), "(1)");
    }

    #[test]
    fn same_subject_threads_merge() {
        // No references at all: the reply goes under the original by subject.
        let threads = references(&[m(1, "a", &[], "Budget"), m(2, "b", &[], "Re: Budget")]);
        assert_eq!(threads, "(1 2)");
        // Two originals with one subject: side by side under a container.
        let threads = references(&[m(1, "a", &[], "Budget"), m(2, "b", &[], "Budget")]);
        assert_eq!(threads, "((1)(2))");
    }

    #[test]
    fn loops_duplicates_and_missing_ids_do_not_break_it() {
        let threads = references(&[
            m(1, "a", &["b"], "x"),
            m(2, "b", &["a"], "y"),
            m(3, "a", &[], "z"),
            m(4, "", &[], "w"),
        ]);
        // Every message appears exactly once.
        let mut numbers: Vec<&str> = threads
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, ["1", "2", "3", "4"], "{threads}");
    }

    #[test]
    fn a_long_chain_is_no_stack_risk() {
        let chain: Vec<ThreadInput> = (1..=20_000u32)
            .map(|n| {
                let parent = format!("m{}", n - 1);
                let refs: Vec<&str> = if n == 1 {
                    vec![]
                } else {
                    vec![parent.as_str()]
                };
                m(n, &format!("m{n}"), &refs, "Re: deep")
            })
            .collect();
        let threads = references(&chain);
        assert!(threads.starts_with("(1 2 3 "), "{}", &threads[..40]);
        assert!(threads.ends_with(" 20000)"));
    }

    #[test]
    fn message_ids_are_read_from_headers() {
        assert_eq!(
            message_ids(" <a@x> (comment)\r\n <b@y>  <> junk <c@z"),
            vec!["a@x".to_string(), "b@y".to_string()]
        );
    }
}
