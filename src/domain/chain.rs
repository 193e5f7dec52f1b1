//! Job chains as a graph: job → the jobs it runs after.

use std::collections::{BTreeMap, BTreeSet};

use super::ChainAfter;

/// A cycle through `start` in the chains of `graph` (job → the jobs it runs after), in the
/// order runs flow (upstream → downstream), from `start` back to it.
pub fn find_cycle(graph: &BTreeMap<i64, Vec<ChainAfter>>, start: i64) -> Option<Vec<i64>> {
    // Depth-first along `after` (downstream → upstream) until `start` comes round again.
    let mut path = vec![start];
    let mut visited = BTreeSet::new();
    fn walk(
        graph: &BTreeMap<i64, Vec<ChainAfter>>,
        start: i64,
        at: i64,
        path: &mut Vec<i64>,
        visited: &mut BTreeSet<i64>,
    ) -> bool {
        for up in graph.get(&at).into_iter().flatten().map(|a| a.job_id) {
            if up == start {
                path.push(up);
                return true;
            }
            if visited.insert(up) {
                path.push(up);
                if walk(graph, start, up, path, visited) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    if !walk(graph, start, start, &mut path, &mut visited) {
        return None;
    }
    path.reverse();
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChainOn;

    fn graph(edges: &[(i64, &[i64])]) -> BTreeMap<i64, Vec<ChainAfter>> {
        edges
            .iter()
            .map(|(job, ups)| {
                (*job, ups.iter().map(|u| ChainAfter { job_id: *u, on: ChainOn::Success }).collect())
            })
            .collect()
    }

    #[test]
    fn cycles_are_named_in_the_order_runs_flow() {
        // 3 runs after 5, 5 after 7, 7 after 3: runs flow 3 → 7 → 5 → 3.
        let g = graph(&[(3, &[5]), (5, &[7]), (7, &[3])]);
        assert_eq!(find_cycle(&g, 3), Some(vec![3, 7, 5, 3]));
        assert_eq!(find_cycle(&graph(&[(3, &[5]), (5, &[3])]), 5), Some(vec![5, 3, 5]));
        // A diamond is no cycle: 4 after 2 and 3, both after 1.
        let g = graph(&[(4, &[2, 3]), (2, &[1]), (3, &[1])]);
        assert_eq!(find_cycle(&g, 4), None);
        assert_eq!(find_cycle(&g, 1), None);
    }
}
