//! Query-string decoding shared by the query extractors (storage-api.md §1): components split on
//! `&`, empty components ignored, each pair split at its *first* `=` only (so base64 `=` padding
//! stays part of a batch id, §13.37), then `+` → space and percent-decoding as in HTML forms.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// The decoded `(name, value)` pairs, in order. A component without `=` has an empty value.
pub fn decode_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|component| !component.is_empty())
        .map(|component| {
            let (name, value) = component.split_once('=').unwrap_or((component, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

/// The value of the first parameter called `name`. Repeated parameters keep their first value.
pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn decode_component(text: &str) -> String {
    let text: Cow<str> =
        if text.contains('+') { Cow::Owned(text.replace('+', " ")) } else { Cow::Borrowed(text) };
    percent_decode_str(&text).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn empty_components_are_ignored() {
        assert_eq!(decode_query("&limit=2"), pairs(&[("limit", "2")]));
        assert_eq!(decode_query("limit=2&"), pairs(&[("limit", "2")]));
        assert_eq!(decode_query(""), pairs(&[]));
        assert_eq!(decode_query("&&"), pairs(&[]));
    }

    #[test]
    fn splits_at_the_first_equals_only() {
        assert_eq!(decode_query("batch=MTUzNjE5ODk3NjkyMQ=="), pairs(&[("batch", "MTUzNjE5ODk3NjkyMQ==")]));
        assert_eq!(
            decode_query("batch=MQ%3D%3D&commit=true"),
            pairs(&[("batch", "MQ=="), ("commit", "true")])
        );
    }

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(decode_query("ids=test-0%2Ctest-1"), pairs(&[("ids", "test-0,test-1")]));
        assert_eq!(decode_query("ids=a+b"), pairs(&[("ids", "a b")]));
        assert_eq!(decode_query("ids=a%2Bb"), pairs(&[("ids", "a+b")]));
        assert_eq!(decode_query("full"), pairs(&[("full", "")]));
        assert_eq!(decode_query("full="), pairs(&[("full", "")]));
    }

    #[test]
    fn first_value_wins() {
        let p = decode_query("limit=1&limit=2");
        assert_eq!(first(&p, "limit"), Some("1"));
        assert_eq!(first(&p, "offset"), None);
    }
}
