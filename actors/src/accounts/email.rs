//! The one form an account email takes (FxA's rule: lower-case, then Unicode NFC), applied once
//! where an email enters Weft (the account routes and `weft account` commands). Every lookup,
//! rate-limit key and stored value is that form, compared byte for byte on every backend (the
//! MySQL column has a binary collation), so `André@x`, `andré@x` and `andre\u{301}@x` are one
//! account while `andre@x` is another.

use unicode_normalization::UnicodeNormalization;

use super::error::AccountError;

/// The column's width (`accounts.email`, `account_invites.email`), in bytes.
const MAX_BYTES: usize = 255;

/// `email` in its one form, or 107 (invalid parameter) when it cannot be an address.
pub fn normalize(email: &str) -> Result<String, AccountError> {
    let email: String = email.trim().to_lowercase().nfc().collect();
    let (local, domain) = email.split_once('@').unwrap_or_default();
    if email.len() > MAX_BYTES || local.is_empty() || domain.is_empty() || email.chars().any(char::is_control)
    {
        return Err(AccountError::InvalidParameter("email".into()));
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn case_and_composition_fold_to_one_form() {
        let one = normalize("andré@example.org").unwrap();
        assert_eq!(normalize(" ANDRÉ@Example.ORG ").unwrap(), one);
        assert_eq!(normalize("andre\u{301}@example.org").unwrap(), one);
        assert_eq!(normalize("ANDRE\u{301}@example.org").unwrap(), one);
        assert_ne!(normalize("andre@example.org").unwrap(), one, "an accent is not dropped");
    }

    #[test]
    fn what_cannot_be_an_address_is_refused() {
        for bad in ["", "@", "a@", "@b", "no-at-sign", "a\u{0}@b", &format!("{}@b", "a".repeat(254))] {
            assert!(normalize(bad).is_err(), "{bad:?}");
        }
    }
}
