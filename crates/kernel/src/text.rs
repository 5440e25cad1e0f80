//! The one rule for name-like text that a client sends and the shop stores or shows
//! again: product names, coupon names, payment methods, refund reasons.

use std::fmt;

/// Why a text was refused by [`check_text`]. The messages name no value, so an error
/// built from them never echoes what the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty, or only whitespace.
    #[error("must not be blank")]
    Blank,
    /// More characters than allowed (`got` counts Unicode scalar values).
    #[error("must be at most {max} characters, got {got}")]
    TooLong {
        /// The most characters allowed.
        max: usize,
        /// How many the text has.
        got: usize,
    },
    /// A control character (NUL, line breaks, escape, C1 controls, ...): PostgreSQL
    /// cannot store NUL, and none of them has a place in a name shown to people.
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// Checks a name-like text: not blank, at most `max_chars` characters (Unicode scalar
/// values), no control character. The text is kept as given (not trimmed).
///
/// ```
/// use kernel::{check_text, TextError};
/// assert_eq!(check_text("Welcome 10%", 200), Ok(()));
/// assert_eq!(check_text("  ", 200), Err(TextError::Blank));
/// assert_eq!(check_text("a\0b", 200), Err(TextError::ControlCharacter));
/// assert_eq!(check_text("abc", 2), Err(TextError::TooLong { max: 2, got: 3 }));
/// ```
pub fn check_text(value: &str, max_chars: usize) -> Result<(), TextError> {
    if value.chars().all(char::is_whitespace) {
        return Err(TextError::Blank);
    }
    if value.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    let got = value.chars().count();
    if got > max_chars {
        return Err(TextError::TooLong {
            max: max_chars,
            got,
        });
    }
    Ok(())
}

/// A text that passed [`check_text`] with at most `MAX` characters. Domain types wrap
/// it (`ProductName`, `CouponName`, `PaymentMethod`) so each says what it names while
/// the rule stays in one place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BoundedText<const MAX: usize>(String);

impl<const MAX: usize> BoundedText<MAX> {
    /// The most characters a value may have.
    pub const MAX_CHARS: usize = MAX;

    /// The text as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<const MAX: usize> TryFrom<String> for BoundedText<MAX> {
    type Error = TextError;
    fn try_from(value: String) -> Result<Self, TextError> {
        check_text(&value, MAX)?;
        Ok(BoundedText(value))
    }
}

impl<const MAX: usize> fmt::Display for BoundedText<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nul_tab_newline_escape_and_c1_controls_are_refused() {
        for bad in [
            "a\0b",
            "a\tb",
            "line\nbreak",
            "\u{1b}[31m",
            "x\u{85}",
            "\u{7f}",
        ] {
            assert_eq!(
                check_text(bad, 200),
                Err(TextError::ControlCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn blank_is_refused_and_length_counts_characters_not_bytes() {
        assert_eq!(check_text("", 5), Err(TextError::Blank));
        assert_eq!(check_text(" \u{3000} ", 5), Err(TextError::Blank));
        assert_eq!(check_text("가나다라마", 5), Ok(()));
        assert_eq!(
            check_text("가나다라마바", 5),
            Err(TextError::TooLong { max: 5, got: 6 })
        );
    }

    #[test]
    fn messages_never_contain_the_value() {
        let long = "x".repeat(10_000);
        let e = check_text(&long, 200).unwrap_err();
        assert!(e.to_string().len() < 60, "{e}");
    }

    proptest! {
        /// Invariant: whatever passes has a visible character, no control character and
        /// fits; whatever holds a control character never passes.
        #[test]
        fn accepted_text_has_no_control_character_and_fits(s in "\\PC{0,30}", c in "\\p{Cc}") {
            if check_text(&s, 20).is_ok() {
                prop_assert!(s.chars().count() <= 20);
                prop_assert!(!s.chars().any(char::is_control));
                prop_assert!(!s.trim().is_empty());
            }
            let with_control = format!("{s}{c}");
            prop_assert!(BoundedText::<100>::try_from(with_control).is_err());
        }
    }
}
