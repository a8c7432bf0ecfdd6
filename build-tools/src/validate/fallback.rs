//! Rules of a region's fallback chain (`region.fallback`).
//!
//! Fallback is not transitive: a region tries its own area, then the areas of the regions it
//! lists, in order, and stops there. A cycle is still rejected: two regions that fall back on
//! each other are one pool of memory written as two, and hide which one is undersized.

use std::collections::BTreeMap;
use std::ops::Range;

use super::{quoted_list, Validator};
use crate::diag::{did_you_mean, Rule};
use crate::ir;
use crate::model::{RawBoard, Sp};

/// Rule: a fallback that is not a region of the board.
pub const FALLBACK_UNKNOWN: Rule = Rule {
    name: "fallback-unknown",
    summary: "fallback entries name regions of the board",
    docs: "region.fallback",
};

/// Rule: a region that lists itself.
pub const FALLBACK_SELF: Rule = Rule {
    name: "fallback-self",
    summary: "a region does not fall back on itself",
    docs: "region.fallback",
};

/// Rule: a region listed twice.
pub const FALLBACK_DUPLICATE: Rule = Rule {
    name: "fallback-duplicate",
    summary: "each fallback region is listed once",
    docs: "region.fallback",
};

/// Rule: regions that fall back on each other.
pub const FALLBACK_CYCLE: Rule = Rule {
    name: "fallback-cycle",
    summary: "fallback chains do not loop back",
    docs: "region.fallback",
};

/// The rules of this family.
pub const RULES: &[Rule] = &[
    FALLBACK_UNKNOWN,
    FALLBACK_SELF,
    FALLBACK_DUPLICATE,
    FALLBACK_CYCLE,
];

/// An accepted entry of a region's `fallback` list.
#[derive(Clone, Debug)]
struct FallbackEdge {
    /// The index of the region fallen back on.
    to: usize,
    /// Where the entry is written.
    span: Range<usize>,
    /// Its key path (`region[0].fallback[1]`).
    path: String,
}

/// Checks every region's `fallback` list (every rule of this family) and fills in the IR's
/// fallback chains.
pub(super) fn check(v: &mut Validator<'_>, regions: &mut [ir::Region]) {
    let raw = v.raw;
    let names: Vec<Option<&str>> = raw
        .regions
        .iter()
        .map(|r| r.value.name.as_ref().map(|n| n.value.as_str()))
        .collect();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(n) = n {
            index.entry(n).or_insert(i);
        }
    }
    let edges: Vec<Vec<FallbackEdge>> = raw
        .regions
        .iter()
        .enumerate()
        .map(|(i, rsp)| match (&rsp.value.fallback, names[i]) {
            (Some(list), Some(own)) => edges_of(v, i, own, list, &index, &names),
            _ => Vec::new(),
        })
        .collect();
    cycles(v, &edges, &names);
    for r in regions.iter_mut() {
        let Some(&i) = index.get(r.name.as_str()) else {
            continue;
        };
        chain(r, &edges[i], raw);
    }
}

/// Checks region `i`'s (`own`'s) list (rules `fallback-self`, `fallback-unknown`,
/// `fallback-duplicate`) and returns its accepted entries in list order.
fn edges_of(
    v: &mut Validator<'_>,
    i: usize,
    own: &str,
    list: &Sp<Vec<Sp<String>>>,
    index: &BTreeMap<&str, usize>,
    names: &[Option<&str>],
) -> Vec<FallbackEdge> {
    let mut edges = Vec::new();
    let mut listed: BTreeMap<usize, Range<usize>> = BTreeMap::new();
    for (j, f) in list.value.iter().enumerate() {
        let path = format!("region[{i}].fallback[{j}]");
        if f.value == own {
            v.err(
                FALLBACK_SELF
                    .at(
                        path,
                        f.span.clone(),
                        format!("region `{own}` lists itself as its fallback"),
                        "the region itself",
                    )
                    .with_help("a region always tries its own area first; list other regions only"),
            );
            continue;
        }
        let Some(&target) = index.get(f.value.as_str()) else {
            let mut d = FALLBACK_UNKNOWN.at(
                path,
                f.span.clone(),
                format!(
                    "region `{own}` falls back to `{}`, which is not a region of this board",
                    f.value
                ),
                "no such region",
            );
            if v.diags.wants(f.span.start) {
                let known: Vec<&str> = names.iter().flatten().copied().collect();
                d = match did_you_mean(&f.value, &known) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!(
                        "fallback lists region names (not heap or CMA area names): {}",
                        quoted_list(&known)
                    )),
                };
            }
            v.err(d);
            continue;
        };
        if let Some(first) = listed.get(&target) {
            let d = FALLBACK_DUPLICATE
                .at(
                    path,
                    f.span.clone(),
                    format!("region `{own}` lists `{}` twice in its fallback", f.value),
                    "listed again",
                )
                .with_secondary(first.clone(), "first listed here");
            v.err(d);
            continue;
        }
        listed.insert(target, f.span.clone());
        edges.push(FallbackEdge {
            to: target,
            span: f.span.clone(),
            path,
        });
    }
    edges
}

/// Reports every loop (rule `fallback-cycle`): one report per strongly connected component of
/// more than one region, at the first edge of its first region (in file order) that stays in
/// the component, with the shortest way back.
fn cycles(v: &mut Validator<'_>, edges: &[Vec<FallbackEdge>], names: &[Option<&str>]) {
    for component in strongly_connected(edges) {
        if component.len() < 2 {
            continue;
        }
        let i = component[0];
        let Some(edge) = edges[i]
            .iter()
            .find(|e| component.binary_search(&e.to).is_ok())
        else {
            continue;
        };
        let Some(back) = path_between(edges, edge.to, i) else {
            continue;
        };
        let mut cycle: Vec<&str> = vec![names[i].unwrap_or("?")];
        cycle.extend(back.iter().map(|&n| names[n].unwrap_or("?")));
        let shown = cycle
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(" -> ");
        let others: Vec<&str> = component
            .iter()
            .filter(|n| **n != i && !back.contains(n))
            .map(|&n| names[n].unwrap_or("?"))
            .collect();
        let mut help = "fallback chains must not loop back; keep one direction (or grow the region that runs out)".to_string();
        if !others.is_empty() {
            help.push_str(&format!(
                "; the loop also takes in {}",
                quoted_list(&others)
            ));
        }
        v.err(
            FALLBACK_CYCLE
                .at(
                    edge.path.clone(),
                    edge.span.clone(),
                    format!("fallback regions form a cycle: {shown}"),
                    "starts the cycle",
                )
                .with_help(help),
        );
    }
}

/// Fills in region `r`'s fallback chain from its accepted entries.
fn chain(r: &mut ir::Region, edges: &[FallbackEdge], raw: &RawBoard) {
    for e in edges {
        let t = &raw.regions[e.to].value;
        if let (Some(n), Some(c)) = (&t.name, &t.cma) {
            r.fallback.push(n.value.clone());
            r.fallback_cma.push(c.value.clone());
        }
    }
}

/// The strongly connected components of the graph `edges` (Tarjan's algorithm, iterative: a
/// long chain must not exhaust the stack), each sorted, ordered by their smallest node.
fn strongly_connected(edges: &[Vec<FallbackEdge>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, position in its edge list)
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if *pos == 0 && index[v] == usize::MAX {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(e) = edges[v].get(*pos) {
                let w = e.to;
                *pos += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                components.push(component);
            }
        }
    }
    components.sort();
    components
}

/// The regions on a path `from -> ... -> to` along `edges` (`from` first, `to` last), if any.
fn path_between(edges: &[Vec<FallbackEdge>], from: usize, to: usize) -> Option<Vec<usize>> {
    let mut prev: Vec<Option<usize>> = vec![None; edges.len()];
    let mut seen = vec![false; edges.len()];
    let mut queue = std::collections::VecDeque::from([from]);
    seen[from] = true;
    while let Some(n) = queue.pop_front() {
        if n == to {
            let mut path = vec![n];
            let mut at = n;
            while let Some(p) = prev[at] {
                path.push(p);
                at = p;
            }
            path.reverse();
            return Some(path);
        }
        for e in &edges[n] {
            if !seen[e.to] {
                seen[e.to] = true;
                prev[e.to] = Some(n);
                queue.push_back(e.to);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::diag::Diagnostic;

    fn three(fallbacks: [&str; 3]) -> Result<ir::Board, Vec<Diagnostic>> {
        let extra = |f: &str| {
            if f.is_empty() {
                String::new()
            } else {
                format!("fallback = [{f}]")
            }
        };
        run(&format!(
            "{ARM}{}{}{}",
            region("a", "a-area", "ha", &extra(fallbacks[0])),
            region("b", "b-area", "hb", &extra(fallbacks[1])),
            region("c", "c-area", "hc", &extra(fallbacks[2])),
        ))
    }

    fn fallback_rules(fallbacks: [&str; 3]) -> Vec<&'static str> {
        match three(fallbacks) {
            Ok(_) => Vec::new(),
            Err(d) => d.iter().map(|d| d.rule).collect(),
        }
    }

    #[test]
    fn fallback_chains_reach_the_ir_with_their_areas() {
        let board = three(["\"c\", \"b\"", "\"c\"", ""]).expect("valid");
        assert_eq!(board.regions[0].fallback, ["c", "b"]);
        assert_eq!(board.regions[0].fallback_cma, ["c-area", "b-area"]);
        assert_eq!(board.regions[1].fallback_cma, ["c-area"]);
        assert!(board.regions[2].fallback.is_empty());
        assert!(three(["", "", ""]).is_ok());
        assert!(three(["", "", "\"a\""]).is_ok());
    }

    #[test]
    fn rule_fallback_unknown() {
        let d = three(["\"d\"", "", ""]).unwrap_err();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].rule, "fallback-unknown");
        assert_eq!(d[0].path, "region[0].fallback[0]");
        // Heap and area names are not region names.
        assert_eq!(fallback_rules(["\"hb\"", "", ""]), ["fallback-unknown"]);
    }

    #[test]
    fn rule_fallback_self() {
        assert_eq!(fallback_rules(["", "\"b\"", ""]), ["fallback-self"]);
    }

    #[test]
    fn rule_fallback_duplicate() {
        assert_eq!(
            fallback_rules(["\"b\", \"b\"", "", ""]),
            ["fallback-duplicate"]
        );
    }

    #[test]
    fn rule_fallback_cycle() {
        // Two regions, reported once.
        assert_eq!(fallback_rules(["\"b\"", "\"a\"", ""]), ["fallback-cycle"]);
        // Three regions.
        let d = three(["\"b\"", "\"c\"", "\"a\""]).unwrap_err();
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].rule, "fallback-cycle");
        assert_eq!(d[0].path, "region[0].fallback[0]");
        assert!(
            d[0].message.contains("`a` -> `b` -> `c` -> `a`"),
            "{}",
            d[0].message
        );
        // Two chains into one region are not a cycle.
        assert!(three(["\"c\"", "\"c\"", ""]).is_ok());
    }

    #[test]
    fn one_loop_is_one_report() {
        // a -> b -> a and b -> c -> b: one component, one report, naming the third region.
        let d = three(["\"b\"", "\"a\", \"c\"", "\"b\""]).unwrap_err();
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(
            d[0].message.contains("`a` -> `b` -> `a`"),
            "{}",
            d[0].message
        );
        assert!(
            d[0].help.as_deref().unwrap_or_default().contains("`c`"),
            "{:?}",
            d[0].help
        );
        // Two separate loops are two reports.
        let text = format!(
            "{ARM}{}{}{}{}",
            region("a", "a-area", "ha", "fallback = [\"b\"]"),
            region("b", "b-area", "hb", "fallback = [\"a\"]"),
            region("c", "c-area", "hc", "fallback = [\"d\"]"),
            region("d", "d-area", "hd", "fallback = [\"c\"]"),
        );
        assert_eq!(run(&text).unwrap_err().len(), 2);
    }

    #[test]
    fn components_are_found_without_recursion() {
        let n = 100_000;
        let edge = |to: usize| FallbackEdge {
            to,
            span: 0..0,
            path: String::new(),
        };
        let edges: Vec<Vec<FallbackEdge>> = (0..n).map(|i| vec![edge((i + 1) % n)]).collect();
        let c = strongly_connected(&edges);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].len(), n);
        let chain: Vec<Vec<FallbackEdge>> = (0..n)
            .map(|i| {
                if i + 1 < n {
                    vec![edge(i + 1)]
                } else {
                    Vec::new()
                }
            })
            .collect();
        assert_eq!(strongly_connected(&chain).len(), n);
    }
}
