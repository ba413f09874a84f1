//! One pagination style for every list that can grow: Relay connections
//! (`edges { cursor node }`, `nodes`, `pageInfo`, `totalCount` where it is
//! cheap), as the Relay Cursor Connections specification and GitHub's and
//! Shopify's APIs have them.
//!
//! Cursors are opaque: base64url of the list's name and a key. Lists read
//! from the database page forward only (`first`/`after`) by a key the
//! query can seek to; lists the service holds whole in memory anyway (a
//! person's threads, relationships, studies, the messages of a thread, the
//! organisation's providers) also page backward (`last`/`before`). A
//! request is priced in the query cost by the rows it can return (`first`
//! or `last`, or the default), before it runs.

use async_graphql::SimpleObject;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::error::ApiError;

/// Information about a page, as Relay's `PageInfo`.
#[derive(SimpleObject, Clone, Debug, Default, PartialEq, Eq)]
pub struct PageInfo {
    /// True when there are items after this page (`first`/`after` goes on from `endCursor`).
    pub has_next_page: bool,
    /// True when there are items before this page (`last`/`before` goes back from `startCursor`).
    pub has_previous_page: bool,
    /// The cursor of the first edge of this page; null when it is empty.
    pub start_cursor: Option<String>,
    /// The cursor of the last edge of this page; null when it is empty.
    pub end_cursor: Option<String>,
}

/// The longest cursor accepted: base64 of a list name and a key that may
/// hold a 100-character name in any script (up to 400 bytes) and a uuid.
pub const CURSOR_MAX: usize = 1_024;

/// The opaque cursor of `key` in the list `list`.
pub fn cursor(list: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{list}:{key}"))
}

/// The key a cursor of `list` holds; BAD_USER_INPUT for anything else
/// (a cursor of another list included).
pub fn key_of(list: &str, cursor: &str) -> Result<String, ApiError> {
    let bad = || ApiError::BadInput(format!("`{}` is not a cursor of this list", clip(cursor)));
    if cursor.len() > CURSOR_MAX {
        return Err(bad());
    }
    let text = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    text.strip_prefix(list)
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_string)
        .ok_or_else(bad)
}

/// The key of a cursor of `list` as a whole number (a sequence number, a
/// position, a count).
pub fn number_of(list: &str, cursor: &str) -> Result<i64, ApiError> {
    whole_number(&key_of(list, cursor)?).ok_or_else(|| {
        ApiError::BadInput(format!("`{}` is not a cursor of this list", clip(cursor)))
    })
}

/// A key read as a whole number of zero or more.
fn whole_number(key: &str) -> Option<i64> {
    key.parse().ok().filter(|n: &i64| *n >= 0)
}

fn clip(text: &str) -> String {
    text.chars().take(60).collect()
}

/// A page a connection field was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The list's name, in its cursors.
    pub list: &'static str,
    /// How many, at most.
    pub size: usize,
    /// From the start (`first`), or from the end (`last`).
    pub from_end: bool,
    /// The key after which the page starts.
    pub after: Option<String>,
    /// The key before which the page ends.
    pub before: Option<String>,
}

impl Window {
    /// Checks `first`/`last` (1-`max`; one of them, or neither for the
    /// first `default`) and decodes the cursors.
    pub fn new(
        list: &'static str,
        first: Option<i32>,
        after: Option<&str>,
        last: Option<i32>,
        before: Option<&str>,
        default: usize,
        max: usize,
    ) -> Result<Window, ApiError> {
        let in_range = |name: &str, n: i32| {
            usize::try_from(n)
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::BadInput(format!(
                        "field `{name}` must be between 1 and {max}, got {n}"
                    ))
                })
        };
        let (size, from_end) = match (first, last) {
            (Some(_), Some(_)) => {
                return Err(ApiError::BadInput(
                    "give `first` or `last`, not both".into(),
                ))
            }
            (Some(n), None) => (in_range("first", n)?, false),
            (None, Some(n)) => (in_range("last", n)?, true),
            (None, None) => (default, false),
        };
        Ok(Window {
            list,
            size,
            from_end,
            after: after.map(|c| key_of(list, c)).transpose()?,
            before: before.map(|c| key_of(list, c)).transpose()?,
        })
    }

    /// Forward only (`first`/`after`), for lists read from the database:
    /// the key to start after and how many rows to fetch (one more than the
    /// page, to learn whether there is a next page).
    pub fn forward(
        list: &'static str,
        first: Option<i32>,
        after: Option<&str>,
        default: usize,
        max: usize,
    ) -> Result<Window, ApiError> {
        Window::new(list, first, after, None, None, default, max)
    }

    /// The key `after` as a whole number, if given.
    pub fn after_number(&self) -> Result<Option<i64>, ApiError> {
        self.after
            .as_deref()
            .map(|key| {
                whole_number(key)
                    .ok_or_else(|| ApiError::BadInput("not a cursor of this list".into()))
            })
            .transpose()
    }

    /// Rows to fetch for a forward page: one more than its size.
    pub fn fetch(&self) -> i64 {
        self.size as i64 + 1
    }
}

/// A page of `T`: each with its cursor, and where the page stands.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub edges: Vec<(String, T)>,
    pub info: PageInfo,
    pub total_count: Option<i64>,
}

impl<T> Page<T> {
    /// A forward page from rows fetched with [`Window::fetch`]: the first
    /// `size` of them, and whether there were more. `key` names each row.
    pub fn forward(window: &Window, mut rows: Vec<T>, key: impl Fn(&T) -> String) -> Page<T> {
        let has_next_page = rows.len() > window.size;
        rows.truncate(window.size);
        Page::finish(
            window,
            rows.into_iter().map(|row| (key(&row), row)).collect(),
            has_next_page,
            window.after.is_some(),
            None,
        )
    }

    /// A page of a list held whole in memory: `items` in list order, each
    /// with a key that sorts in list order (`slice` sorts by it).
    pub fn slice(window: &Window, mut items: Vec<(String, T)>) -> Page<T> {
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let total = items.len() as i64;
        let start = window
            .after
            .as_ref()
            .map_or(0, |after| items.partition_point(|(k, _)| k <= after));
        let end = window
            .before
            .as_ref()
            .map_or(items.len(), |before| {
                items.partition_point(|(k, _)| k < before)
            })
            .max(start);
        let (from, to) = if window.from_end {
            (end.saturating_sub(window.size).max(start), end)
        } else {
            (start, (start + window.size).min(end))
        };
        let len = items.len();
        let page: Vec<(String, T)> = items.into_iter().skip(from).take(to - from).collect();
        Page::finish(window, page, to < len, from > 0, Some(total))
    }

    fn finish(
        window: &Window,
        keyed: Vec<(String, T)>,
        has_next_page: bool,
        has_previous_page: bool,
        total_count: Option<i64>,
    ) -> Page<T> {
        let edges: Vec<(String, T)> = keyed
            .into_iter()
            .map(|(key, item)| (cursor(window.list, &key), item))
            .collect();
        Page {
            info: PageInfo {
                has_next_page,
                has_previous_page,
                start_cursor: edges.first().map(|(c, _)| c.clone()),
                end_cursor: edges.last().map(|(c, _)| c.clone()),
            },
            edges,
            total_count,
        }
    }

    /// The same page with its items changed.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        let mut f = f;
        Page {
            edges: self.edges.into_iter().map(|(c, t)| (c, f(t))).collect(),
            info: self.info,
            total_count: self.total_count,
        }
    }
}

/// Most rows any page holds (the histories' and the trail's bound).
pub const ROWS_MAX: usize = 500;

/// The query cost of a connection field: the rows it can return times what
/// each selects, so that aliases of one field add up and a request asking
/// for many rows is refused before it runs. A size out of range costs the
/// bound (the field itself then refuses it with a clear message).
pub fn cost(first: Option<i32>, last: Option<i32>, default: usize, child: usize) -> usize {
    let rows = first
        .or(last)
        .map_or(default, |n| usize::try_from(n).unwrap_or(1))
        .clamp(1, ROWS_MAX);
    rows.saturating_mul(child).saturating_add(1)
}

/// A key that sorts as the whole number `n` does (for in-memory lists).
pub fn ordered(n: i64) -> String {
    format!("{:020}", n.max(0))
}

/// A key that sorts in the reverse order of `n` (newest first).
pub fn reversed(n: i64) -> String {
    ordered(i64::MAX - n.max(0))
}

/// A connection type and its edge type, for a node type.
macro_rules! connection {
    ($(#[doc = $doc:literal])* $connection:ident, $edge:ident, $node:ty) => {
        $(#[doc = $doc])*
        pub struct $connection(pub $crate::paging::Page<$node>);

        /// An edge: one item and its cursor.
        pub struct $edge<'a> {
            cursor: &'a str,
            node: &'a $node,
        }

        /// An edge: one item and its cursor.
        #[async_graphql::Object]
        impl<'a> $edge<'a> {
            /// The cursor to page on from this item (opaque).
            async fn cursor(&self) -> &str {
                self.cursor
            }

            /// The item.
            async fn node(&self) -> &$node {
                self.node
            }
        }

        $(#[doc = $doc])*
        #[async_graphql::Object]
        impl $connection {
            /// The items of this page, each with its cursor.
            async fn edges(&self) -> Vec<$edge<'_>> {
                self.0
                    .edges
                    .iter()
                    .map(|(cursor, node)| $edge { cursor, node })
                    .collect()
            }

            /// The items of this page, without cursors.
            async fn nodes(&self) -> Vec<&$node> {
                self.0.edges.iter().map(|(_, node)| node).collect()
            }

            /// Where this page stands in the list.
            async fn page_info(&self) -> &$crate::paging::PageInfo {
                &self.0.info
            }

            /// How many items the whole list has; null where counting would
            /// cost a read of the whole list.
            async fn total_count(&self) -> Option<i64> {
                self.0.total_count
            }
        }
    };
}
pub(crate) use connection;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn window(
        first: Option<i32>,
        after: Option<&str>,
        last: Option<i32>,
        before: Option<&str>,
    ) -> Window {
        let after = after.map(|k| cursor("t", k));
        let before = before.map(|k| cursor("t", k));
        Window::new("t", first, after.as_deref(), last, before.as_deref(), 3, 10).unwrap()
    }

    fn keys(page: &Page<i32>) -> Vec<i32> {
        page.edges.iter().map(|(_, n)| *n).collect()
    }

    fn items() -> Vec<(String, i32)> {
        // Given out of order: `slice` sorts by key.
        [5, 1, 4, 2, 3, 6, 7]
            .into_iter()
            .map(|n| (ordered(n.into()), n))
            .collect()
    }

    #[test]
    fn in_memory_pages_go_both_ways() {
        let page = Page::slice(&window(None, None, None, None), items());
        assert_eq!(keys(&page), [1, 2, 3]);
        assert_eq!(page.total_count, Some(7));
        assert!(page.info.has_next_page && !page.info.has_previous_page);
        // On from the end cursor.
        let end = key_of("t", page.info.end_cursor.as_deref().unwrap()).unwrap();
        let next = Page::slice(&window(Some(3), Some(&end), None, None), items());
        assert_eq!(keys(&next), [4, 5, 6]);
        assert!(next.info.has_next_page && next.info.has_previous_page);
        let rest = Page::slice(&window(Some(10), Some(&ordered(6)), None, None), items());
        assert_eq!(keys(&rest), [7]);
        assert!(!rest.info.has_next_page);
        // From the end, and back from a cursor.
        let tail = Page::slice(&window(None, None, Some(2), None), items());
        assert_eq!(keys(&tail), [6, 7]);
        assert!(!tail.info.has_next_page && tail.info.has_previous_page);
        let back = Page::slice(&window(None, None, Some(2), Some(&ordered(3))), items());
        assert_eq!(keys(&back), [1, 2]);
        assert!(!back.info.has_previous_page && back.info.has_next_page);
        // Between two cursors.
        let between = Page::slice(
            &window(Some(10), Some(&ordered(2)), None, Some(&ordered(5))),
            items(),
        );
        assert_eq!(keys(&between), [3, 4]);
        // A cursor whose item is gone still places the page.
        let gone = Page::slice(&window(Some(2), Some(&ordered(0)), None, None), items());
        assert_eq!(keys(&gone), [1, 2]);
        let empty = Page::slice(&window(Some(2), Some(&ordered(9)), None, None), items());
        assert!(empty.edges.is_empty() && empty.info.start_cursor.is_none());
    }

    #[test]
    fn forward_pages_know_of_a_next_page_from_one_row_more() {
        let w = window(Some(2), None, None, None);
        assert_eq!(w.fetch(), 3);
        let page = Page::forward(&w, vec![10, 11, 12], |n| n.to_string());
        assert_eq!(keys(&page), [10, 11]);
        assert!(page.info.has_next_page && !page.info.has_previous_page);
        assert_eq!(
            key_of("t", page.info.end_cursor.as_deref().unwrap()).unwrap(),
            "11"
        );
        let last = Page::forward(&window(Some(2), Some("11"), None, None), vec![12], |n| {
            n.to_string()
        });
        assert!(!last.info.has_next_page && last.info.has_previous_page);
        assert_eq!(last.total_count, None);
    }

    #[test]
    fn bad_windows_and_cursors_are_refused() {
        let bad = |first, last| Window::new("t", first, None, last, None, 3, 10);
        assert!(bad(Some(0), None).is_err());
        assert!(bad(Some(11), None).is_err());
        assert!(bad(None, Some(-1)).is_err());
        assert!(bad(Some(1), Some(1)).is_err());
        assert!(bad(Some(10), None).is_ok());
        let other = cursor("u", "1");
        assert!(Window::new("t", None, Some(&other), None, None, 3, 10).is_err());
        assert!(Window::new("t", None, Some("%%%"), None, None, 3, 10).is_err());
        // A key with a long name in a non-Latin script still makes a usable cursor.
        let name = "Ж".repeat(100);
        let long = cursor("providers", &format!("{name}:{}", uuid::Uuid::nil()));
        assert!(long.len() <= CURSOR_MAX);
        assert!(key_of("providers", &long).is_ok());
        assert!(key_of("t", &"A".repeat(CURSOR_MAX + 1)).is_err());
        assert!(number_of("t", &cursor("t", "x")).is_err());
        assert_eq!(number_of("t", &cursor("t", "42")).unwrap(), 42);
        // Order-keeping keys.
        assert!(ordered(9) < ordered(10) && reversed(10) < reversed(9));
    }

    #[test]
    fn cost_counts_the_rows_a_page_can_return() {
        assert_eq!(cost(Some(50), None, 100, 2), 101);
        assert_eq!(cost(None, Some(5), 100, 2), 11);
        assert_eq!(cost(None, None, 100, 2), 201);
        assert_eq!(cost(Some(1_000_000), None, 100, 2), 1_001);
        assert_eq!(cost(Some(-5), None, 100, 2), 3);
        assert_eq!(cost(Some(500), None, 100, usize::MAX), usize::MAX);
    }
}
