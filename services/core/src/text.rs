//! Text checks shared by every service's edge.

/// True when `c` renders as nothing: whitespace, control characters and the invisible
/// format characters that pasted text often carries (zero-width spaces and joiners,
/// byte-order marks, soft hyphens, bidirectional marks).
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
        )
}

/// True when the text has nothing a model could read once invisible characters are removed.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(is_invisible)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_texts() {
        for text in [
            "",
            "   ",
            "\t\n\r",
            "\u{200B}\u{200B}",
            "\u{FEFF}",
            " \u{200D}\u{00A0} ",
        ] {
            assert!(is_blank(text), "{text:?} should be blank");
        }
    }

    #[test]
    fn visible_texts() {
        for text in ["a", " . ", "\u{200B}x", "日本", "🚀", "\u{FEFF}0"] {
            assert!(!is_blank(text), "{text:?} should not be blank");
        }
    }
}
