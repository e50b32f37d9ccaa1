//! Personalised PageRank over the file graph: the stationary distribution of a walk that follows weighted
//! reference→definition edges and teleports back to the seed files (current and recently edited).

use qwen_index::FileGraph;

/// Probability of following an edge rather than teleporting (the classic 0.85).
const DAMPING: f64 = 0.85;
/// Ranking needs the order, not six decimals: 30 sweeps or an L1 change under 1e-6, whichever is first.
const MAX_ITERATIONS: usize = 30;
const TOLERANCE: f64 = 1e-6;

/// Scores for every node of `graph`. `seeds` are (node, weight); with no seeds the teleport is uniform.
/// Deterministic: fixed iteration order, no parallel sums.
pub fn personalized_pagerank(graph: &FileGraph, seeds: &[(usize, f64)]) -> Vec<f64> {
    let n = graph.paths.len();
    if n == 0 {
        return Vec::new();
    }
    let mut teleport = vec![0.0; n];
    let total: f64 = seeds.iter().map(|(_, w)| w.max(0.0)).sum();
    if total > 0.0 {
        for &(node, weight) in seeds {
            if node < n {
                teleport[node] += weight.max(0.0) / total;
            }
        }
    } else {
        teleport.iter_mut().for_each(|t| *t = 1.0 / n as f64);
    }
    let out_sums: Vec<f64> = graph
        .out_edges
        .iter()
        .map(|edges| edges.iter().map(|&(_, w)| f64::from(w)).sum())
        .collect();
    let mut rank = teleport.clone();
    let mut next = vec![0.0; n];
    for _ in 0..MAX_ITERATIONS {
        let dangling: f64 = (0..n)
            .filter(|&u| out_sums[u] <= 0.0)
            .map(|u| rank[u])
            .sum();
        for v in 0..n {
            next[v] = (1.0 - DAMPING + DAMPING * dangling) * teleport[v];
        }
        for (u, edges) in graph.out_edges.iter().enumerate() {
            if out_sums[u] <= 0.0 {
                continue;
            }
            let share = DAMPING * rank[u] / out_sums[u];
            for &(v, w) in edges {
                next[v as usize] += share * f64::from(w);
            }
        }
        let delta: f64 = rank.iter().zip(&next).map(|(a, b)| (a - b).abs()).sum();
        std::mem::swap(&mut rank, &mut next);
        if delta < TOLERANCE {
            break;
        }
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_flows_from_the_seed_to_what_it_references() {
        // 0 → 1 → 2, and 3 is unrelated.
        let graph = FileGraph {
            paths: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            out_edges: vec![vec![(1, 1.0)], vec![(2, 1.0)], vec![], vec![(0, 1.0)]],
            ..FileGraph::default()
        };
        let rank = personalized_pagerank(&graph, &[(0, 1.0)]);
        assert!(rank[1] > rank[2] && rank[2] > rank[3]);
        assert_eq!(rank[3], 0.0);
        let sum: f64 = rank.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6, "{sum}");
    }
}
