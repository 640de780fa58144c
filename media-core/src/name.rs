//! The names an app or a stream may have. They become URL path segments, playlist lines and
//! file names, so the set is small: ASCII letters, digits, `_`, `-` and `.`, 1 to
//! [`MAX_NAME_LEN`] bytes, not starting with `.` (no `..`, no hidden files).

/// Longest app or stream name.
pub const MAX_NAME_LEN: usize = 128;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing at all.
    #[error("the name is empty")]
    Empty,
    /// Over [`MAX_NAME_LEN`] bytes.
    #[error("the name is {0} bytes long, over {MAX_NAME_LEN}")]
    TooLong(usize),
    /// Starts with `.`.
    #[error("the name starts with '.'")]
    LeadingDot,
    /// A character outside the allowed set.
    #[error("the name contains {0:?} (allowed: letters, digits, '_', '-', '.')")]
    Character(char),
}

/// Checks an app or stream name.
pub fn check(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    if name.starts_with('.') {
        return Err(NameError::LeadingDot);
    }
    match name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        Some(c) => Err(NameError::Character(c)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_and_refused() {
        for ok in ["live", "cam-1", "a.b_c", "x".repeat(MAX_NAME_LEN).as_str()] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        assert_eq!(check(""), Err(NameError::Empty));
        assert_eq!(check(".."), Err(NameError::LeadingDot));
        assert_eq!(check("a\nb"), Err(NameError::Character('\n')));
        assert_eq!(check("a/b"), Err(NameError::Character('/')));
        assert_eq!(check("é"), Err(NameError::Character('é')));
        assert_eq!(
            check(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(NameError::TooLong(MAX_NAME_LEN + 1))
        );
    }
}
