//! Cycle detection over `runAfter` and result references.

use std::collections::HashMap;

/// A cycle in `edges` (node → the nodes it runs after), as a path that ends where it starts.
pub fn find_cycle(nodes: &[&str], edges: &HashMap<&str, Vec<&str>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = nodes.iter().map(|n| (*n, Mark::New)).collect();
    for &start in nodes {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative DFS so a 10,000-deep chain cannot overflow the stack.
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        marks.insert(start, Mark::Active);
        while let Some((node, i)) = stack.last().copied() {
            let next = edges.get(node).and_then(|e| e.get(i)).copied();
            match next {
                Some(dep) => {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    match marks.get(dep).copied() {
                        Some(Mark::New) => {
                            marks.insert(dep, Mark::Active);
                            stack.push((dep, 0));
                        }
                        Some(Mark::Active) => {
                            let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                            let mut cycle: Vec<String> =
                                stack[from..].iter().map(|(n, _)| n.to_string()).collect();
                            cycle.push(dep.to_string());
                            return Some(cycle);
                        }
                        _ => {}
                    }
                }
                None => {
                    marks.insert(node, Mark::Done);
                    stack.pop();
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_cycle() {
        let nodes = ["a", "b", "c", "d"];
        let edges: HashMap<&str, Vec<&str>> = [
            ("a", vec!["d"]),
            ("b", vec!["a"]),
            ("c", vec!["b"]),
            ("a", vec!["c"]),
        ]
        .into_iter()
        .collect();
        let cycle = find_cycle(&nodes, &edges).expect("cycle");
        assert_eq!(cycle.first(), cycle.last());
        assert_eq!(cycle.len(), 4);
    }

    #[test]
    fn dag_has_none() {
        let nodes = ["a", "b"];
        let edges: HashMap<&str, Vec<&str>> = [("b", vec!["a"])].into_iter().collect();
        assert_eq!(find_cycle(&nodes, &edges), None);
    }
}
