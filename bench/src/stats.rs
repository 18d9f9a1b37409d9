//! Summaries of measurements.

/// Mean of `xs` (0 when empty).
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        0.0
    } else {
        xs.iter().sum::<f64>() / xs.len() as f64
    }
}

/// The `p`-th percentile (0..=100) by nearest rank.
pub fn percentile(xs: &[f64], p: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// Sorts child runs by their `field` and returns the median run and every run's figure, joined
/// with `/` to `decimals` places (what a row prints after "runs").
pub fn median_run(
    runs: &mut [serde_json::Value],
    field: &str,
    decimals: usize,
) -> (serde_json::Value, String) {
    let figure = |run: &serde_json::Value| run[field].as_f64().unwrap_or(0.0);
    runs.sort_by(|a, b| figure(a).total_cmp(&figure(b)));
    let all = runs
        .iter()
        .map(|run| format!("{:.*}", decimals, figure(run)))
        .collect::<Vec<_>>()
        .join("/");
    (runs[runs.len() / 2].clone(), all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&xs, 95.0), 95.0);
        assert_eq!(percentile(&xs, 50.0), 50.0);
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
    }

    #[test]
    fn the_median_run_and_every_figure_in_order() {
        let mut runs: Vec<serde_json::Value> = [3.0, 1.25, 2.5]
            .iter()
            .map(|s| serde_json::json!({ "s": s }))
            .collect();
        let (median, all) = median_run(&mut runs, "s", 2);
        assert_eq!(median["s"], 2.5);
        assert_eq!(all, "1.25/2.50/3.00");
    }
}
