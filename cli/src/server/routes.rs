//! Which component answers a request: the longest route that is a prefix of its path.

use std::sync::Arc;
use wasm_secrets::runtime::Proxy;

/// A route as written (`/api`, `/api/`, `api`), as it is matched: one leading `/`, no trailing
/// `/` (except the root route `/`).
pub fn normalize_route(route: &str) -> String {
    let trimmed = route.trim_matches('/');
    format!("/{trimmed}")
}

/// Checks a route: a path prefix of printable ASCII without a query, fragment or `..` segment.
pub fn check_route(route: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        route.starts_with('/'),
        "{route:?} must start with / (for example \"/api\", or \"/\" for everything)"
    );
    anyhow::ensure!(
        route.bytes().all(|b| b.is_ascii_graphic()) && !route.contains(['?', '#', '%']),
        "{route:?} must be a plain path: printable ASCII, no ?, # or %"
    );
    anyhow::ensure!(
        !route.split('/').any(|seg| seg == ".." || seg == "."),
        "{route:?} must not hold . or .. segments"
    );
    Ok(())
}

/// The route table: each route and the component serving it, longest first.
#[derive(Clone, Default)]
pub struct Routes {
    entries: Vec<(String, Arc<Proxy>)>,
}

impl Routes {
    /// No routes: every request is answered 404.
    pub fn new() -> Self {
        Self::default()
    }

    /// One component answering every path.
    pub fn single(component: Proxy) -> Self {
        let mut routes = Self::new();
        routes
            .add("/", Arc::new(component))
            .expect("\"/\" is a valid route");
        routes
    }

    /// Serves `route` (a path prefix: that path and everything below it) with `component`.
    pub fn add(&mut self, route: &str, component: Arc<Proxy>) -> anyhow::Result<()> {
        check_route(route)?;
        let route = normalize_route(route);
        anyhow::ensure!(
            self.entries.iter().all(|(r, _)| *r != route),
            "route {route:?} is served twice"
        );
        self.entries.push((route, component));
        self.entries
            .sort_by_key(|(route, _)| std::cmp::Reverse(route.len()));
        Ok(())
    }

    /// The component for `path` (without the query): the longest route that equals the path or
    /// is followed in it by `/`.
    pub fn route(&self, path: &str) -> Option<&Arc<Proxy>> {
        self.entries
            .iter()
            .find(|(route, _)| matches(route, path))
            .map(|(_, c)| c)
    }

    /// Every component served, with its route, longest route first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<Proxy>)> {
        self.entries.iter().map(|(r, c)| (r.as_str(), c))
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn matches(route: &str, path: &str) -> bool {
    route == "/"
        || path
            .strip_prefix(route)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_is_a_whole_segment_prefix() {
        assert!(matches("/api", "/api"));
        assert!(matches("/api", "/api/"));
        assert!(matches("/api", "/api/users/7"));
        assert!(!matches("/api", "/apix"));
        assert!(!matches("/api", "/"));
        assert!(!matches("/api/v2", "/api"));
        assert!(matches("/", "/anything/at/all"));
    }

    #[test]
    fn routes_are_normalized_and_checked() {
        assert_eq!(normalize_route("/api/"), "/api");
        assert_eq!(normalize_route("/"), "/");
        assert_eq!(normalize_route("//"), "/");
        for bad in ["api", "/a?b", "/a#b", "/a/../b", "/a b", "/%2e%2e", ""] {
            assert!(check_route(bad).is_err(), "{bad:?}");
        }
        for good in ["/", "/api", "/api/v2/", "/a-b_c.d~e"] {
            assert!(check_route(good).is_ok(), "{good:?}");
        }
    }
}
