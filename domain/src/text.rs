//! Validation of free text shared by every aggregate.

/// Why a piece of text was refused; the field name is added by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextProblem {
    /// Only whitespace, or nothing at all, where text is required.
    Empty,
    /// More characters (Unicode scalar values) than the limit.
    TooLong { max: usize },
    /// A control character other than newline or tab.
    ControlCharacter,
}

impl std::fmt::Display for TextProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextProblem::Empty => write!(f, "must not be empty"),
            TextProblem::TooLong { max } => write!(f, "must be at most {max} characters"),
            TextProblem::ControlCharacter => {
                write!(
                    f,
                    "must not contain control characters other than newline and tab"
                )
            }
        }
    }
}

/// Checks text that must be present: trimmed, non-empty, within `max` characters.
/// Returns the trimmed text to store.
pub fn required(value: &str, max: usize) -> Result<String, TextProblem> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(TextProblem::Empty);
    }
    optional(trimmed, max)
}

/// Checks text that may be empty: trimmed, then within `max` characters, no control characters
/// other than newline and tab. Any other Unicode (right-to-left scripts, emoji) is fine.
pub fn optional(value: &str, max: usize) -> Result<String, TextProblem> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(TextProblem::TooLong { max });
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(TextProblem::ControlCharacter);
    }
    Ok(value.to_string())
}

/// A stable key: 1-`max` characters of `a-z`, `0-9` and `_`, starting with a letter.
pub fn key_ok(key: &str, max: usize) -> bool {
    !key.is_empty()
        && key.len() <= max
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_script_and_emoji() {
        assert_eq!(required(" مرحبا 🌱 ", 10), Ok("مرحبا 🌱".to_string()));
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert!(required(&"é".repeat(5), 5).is_ok());
        assert_eq!(
            required(&"é".repeat(6), 5),
            Err(TextProblem::TooLong { max: 5 })
        );
    }

    #[test]
    fn refuses_blank_and_control_characters() {
        assert_eq!(required(" \n ", 5), Err(TextProblem::Empty));
        assert_eq!(optional("a\u{7}b", 5), Err(TextProblem::ControlCharacter));
        assert!(optional("a\nb\tc", 5).is_ok());
    }
}
