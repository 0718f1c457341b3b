//! The `/` filter of a table: plain text (case-insensitive substring of any cell), `-l` with
//! a label selector, and a leading `!` that inverts either.
//!
//! Pure logic: parsing never fails the UI; a selector that does not parse is reported and
//! matches nothing, so the user sees the mistake instead of an unfiltered list.

use serde_json::Value;

use crate::api::selector::LabelSelector;

/// A parsed filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// What the user typed, shown in the table title.
    pub text: String,
    matcher: Matcher,
    inverse: bool,
}

#[derive(Debug, Clone, Default)]
enum Matcher {
    #[default]
    All,
    /// Lower-cased needle.
    Text(String),
    Labels(LabelSelector),
    /// A selector that does not parse: the message, and nothing matches.
    Invalid(String),
}

impl Filter {
    /// Parses what follows `/`. Empty text is no filter.
    pub fn parse(text: &str) -> Filter {
        let trimmed = text.trim();
        let (inverse, rest) = match trimmed.strip_prefix('!') {
            Some(r) => (true, r.trim_start()),
            None => (false, trimmed),
        };
        let matcher = if rest.is_empty() {
            Matcher::All
        } else if let Some(sel) = rest.strip_prefix("-l") {
            match LabelSelector::parse(sel.trim()) {
                Ok(s) => Matcher::Labels(s),
                Err(e) => Matcher::Invalid(e.to_string()),
            }
        } else {
            Matcher::Text(rest.to_lowercase())
        };
        Filter {
            text: trimmed.to_string(),
            matcher,
            inverse,
        }
    }

    /// True when nothing is filtered out.
    pub fn is_empty(&self) -> bool {
        matches!(self.matcher, Matcher::All)
    }

    /// The parse error of a `-l` selector, to show the user.
    pub fn error(&self) -> Option<&str> {
        match &self.matcher {
            Matcher::Invalid(m) => Some(m),
            _ => None,
        }
    }

    /// Whether a row (its object and its cells) passes the filter.
    pub fn matches(&self, obj: &Value, cells: &[String]) -> bool {
        let hit = match &self.matcher {
            Matcher::All => return true,
            Matcher::Invalid(_) => return false,
            Matcher::Text(needle) => cells.iter().any(|c| contains_lower(c, needle)),
            Matcher::Labels(sel) => sel.matches_object(obj),
        };
        hit != self.inverse
    }
}

/// Case-insensitive substring test without allocating for ASCII haystacks.
fn contains_lower(haystack: &str, needle_lower: &str) -> bool {
    if haystack.is_ascii() && needle_lower.is_ascii() {
        let h = haystack.as_bytes();
        let n = needle_lower.as_bytes();
        if n.len() > h.len() {
            return false;
        }
        return h
            .windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b));
    }
    haystack.to_lowercase().contains(needle_lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "web-1", "labels": labels}})
    }

    fn cells(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn empty_filter_matches_everything() {
        let f = Filter::parse("  ");
        assert!(f.is_empty());
        assert!(f.matches(&json!({}), &[]));
    }

    #[test]
    fn text_is_a_case_insensitive_substring_of_any_cell() {
        let f = Filter::parse("CRASH");
        let row = cells(&["web-1", "0/1", "CrashLoopBackOff"]);
        assert!(f.matches(&json!({}), &row));
        assert!(!f.matches(&json!({}), &cells(&["web-1", "1/1", "Running"])));
    }

    #[test]
    fn bang_inverts_text() {
        let f = Filter::parse("!running");
        assert!(!f.matches(&json!({}), &cells(&["web-1", "Running"])));
        assert!(f.matches(&json!({}), &cells(&["web-1", "Pending"])));
    }

    #[test]
    fn label_selector_and_its_inverse() {
        let f = Filter::parse("-l app=web,tier!=db");
        assert!(f.matches(&pod(json!({"app": "web"})), &[]));
        assert!(!f.matches(&pod(json!({"app": "web", "tier": "db"})), &[]));
        let inv = Filter::parse("! -l app=web");
        assert!(!inv.matches(&pod(json!({"app": "web"})), &[]));
        assert!(inv.matches(&pod(json!({"app": "db"})), &[]));
    }

    #[test]
    fn a_bad_selector_matches_nothing_and_says_why() {
        let f = Filter::parse("-l app in (web");
        assert!(f.error().is_some());
        assert!(!f.matches(&pod(json!({"app": "web"})), &[]));
    }

    #[test]
    fn non_ascii_text_matches() {
        let f = Filter::parse("ÜBER");
        assert!(f.matches(&json!({}), &cells(&["über-app"])));
    }
}
