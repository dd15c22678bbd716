//! Differences between two versions, as a unified line diff.

use similar::TextDiff;

/// A unified diff (3 lines of context) from `old` to `new`, with file
/// headers naming the versions. Empty when they are equal.
pub fn unified_diff(old_label: &str, old: &str, new_label: &str, new: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_line() {
        let d = unified_diff("1.0.0", "a\nb\nc\n", "1.0.1", "a\nB\nc\n");
        assert_eq!(d, "--- 1.0.0\n+++ 1.0.1\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
        assert_eq!(unified_diff("x", "same\n", "y", "same\n"), "");
    }
}
