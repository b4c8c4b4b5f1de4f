//! A/B timing between routes: cells that differ only in their `route` axis, each repeated
//! and passed, compared by their spreads. One route is faster *beyond the spread* when its
//! slowest kept run (p90) is below the other's fastest (min); otherwise the difference is
//! within the spread and says nothing.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::command_run::Repeats;

/// The axis routes are told apart by.
pub const ROUTE_AXIS: &str = "route";
/// Cells held for comparison, at most (a summary, not a store).
const CELLS_MAX: usize = 10_000;

/// One route's timing of a cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteTiming {
    /// The route's value.
    pub route: String,
    /// Its durations.
    pub repeats: Repeats,
}

/// Two routes of one cell compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteComparison {
    /// The kernel (command table) name.
    pub kernel: String,
    /// The cell without its route.
    pub cell: String,
    /// The faster route by median, and the other.
    pub faster: RouteTiming,
    /// The slower route by median.
    pub slower: RouteTiming,
    /// slower median / faster median.
    pub ratio: f64,
    /// Whether the faster route's p90 is below the slower one's min.
    pub beyond_spread: bool,
}

/// Repeated, passed launches grouped by the cell they share apart from the route.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Routes {
    cells: BTreeMap<(String, String), Vec<RouteTiming>>,
}

impl Routes {
    /// Adds a passed launch of `kernel` with `variant`, repeated as `repeats`. Cells without
    /// a `route` axis are not compared.
    pub fn add(&mut self, kernel: &str, variant: &Map<String, Value>, repeats: Repeats) {
        let Some(route) = variant.get(ROUTE_AXIS) else { return };
        let route = match route {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let rest: Vec<String> = variant
            .iter()
            .filter(|(key, _)| key.as_str() != ROUTE_AXIS)
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let key = (kernel.to_owned(), rest.join(" "));
        if !self.cells.contains_key(&key) && self.cells.len() >= CELLS_MAX {
            return;
        }
        self.cells.entry(key).or_default().push(RouteTiming { route, repeats });
    }

    /// Every pair of routes of each cell, fastest first within a cell.
    pub fn comparisons(&self) -> Vec<RouteComparison> {
        let mut out = Vec::new();
        for ((kernel, cell), timings) in &self.cells {
            let mut sorted = timings.clone();
            sorted.sort_by_key(|t| t.repeats.median_us);
            for (i, faster) in sorted.iter().enumerate() {
                for slower in &sorted[i + 1..] {
                    out.push(RouteComparison {
                        kernel: kernel.clone(),
                        cell: cell.clone(),
                        faster: faster.clone(),
                        slower: slower.clone(),
                        ratio: slower.repeats.median_us as f64 / faster.repeats.median_us.max(1) as f64,
                        beyond_spread: faster.repeats.p90_us < slower.repeats.min_us,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn repeats(min_us: u64, median_us: u64, p90_us: u64) -> Repeats {
        Repeats { count: 5, min_us, median_us, p90_us }
    }

    fn variant(m: u64, route: &str) -> Map<String, Value> {
        json!({"m": m, "route": route}).as_object().cloned().expect("object")
    }

    #[test]
    fn routes_of_one_cell_are_compared_by_their_spreads() {
        let mut routes = Routes::default();
        routes.add("gemm", &variant(128, "cutlass"), repeats(80, 85, 90));
        routes.add("gemm", &variant(128, "cute_dsl"), repeats(100, 120, 130));
        routes.add("gemm", &variant(256, "cutlass"), repeats(80, 100, 140));
        routes.add("gemm", &variant(256, "cute_dsl"), repeats(90, 110, 150));
        routes.add("gemm", &json!({"m": 512}).as_object().cloned().expect("object"), repeats(1, 1, 1));
        let c = routes.comparisons();
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(
            (c[0].cell.as_str(), c[0].faster.route.as_str(), c[0].beyond_spread),
            ("m=128", "cutlass", true)
        );
        assert!((c[0].ratio - 120.0 / 85.0).abs() < 1e-12);
        assert_eq!(
            (c[1].cell.as_str(), c[1].faster.route.as_str(), c[1].beyond_spread),
            ("m=256", "cutlass", false)
        );
    }
}
