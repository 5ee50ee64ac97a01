//! The shared `key = value` machinery of every attribute: parsing, duplicate and unknown keys
//! (with "did you mean"), and typed values with errors on the offending token.

use std::time::Duration;

use proc_macro2::Span;
use resilience_config::rules;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, Token};

use crate::diag::Errors;

/// One `key = value` argument.
pub(crate) struct Arg {
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = input.call(Ident::parse_any)?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `{key} = <value>`"),
            ));
        }
        let eq = input.parse::<Token![=]>()?;
        let rest = input.fork();
        let value = input
            .parse()
            .map_err(|error| incomplete(&key, &eq, &rest, error))?;
        Ok(Arg { key, value })
    }
}

/// A value that ends before its expression does (`key = 5 +`): syn reports "unexpected end of
/// input" on the whole attribute; point at the value instead and say what is missing.
fn incomplete(key: &Ident, eq: &Token![=], rest: ParseStream<'_>, error: syn::Error) -> syn::Error {
    let message = error.to_string();
    let Some(expected) = message.strip_prefix("unexpected end of input, ") else {
        return error;
    };
    let tokens: proc_macro2::TokenStream = rest.parse().unwrap_or_default();
    match tokens.clone().into_iter().last() {
        Some(last) => syn::Error::new_spanned(
            tokens,
            format!("incomplete value for `{key}`: {expected} after `{last}`"),
        ),
        None => syn::Error::new_spanned(eq, format!("expected a value after `{key} =`")),
    }
}

/// The arguments of one attribute, in order.
pub(crate) struct Args(pub(crate) Vec<Arg>);

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let list = Punctuated::<Arg, Token![,]>::parse_terminated(input)?;
        Ok(Args(list.into_iter().collect()))
    }
}

impl Args {
    /// The known keys that unknown keys of the list are close to (`cals` -> `calls`). A check
    /// for a missing key skips these: the misspelling is reported already, and "`period`
    /// needs `calls`" next to "did you mean `calls`?" would only repeat it.
    pub(crate) fn meant<'a>(&self, known: &[&'a str]) -> Vec<&'a str> {
        self.0
            .iter()
            .map(|arg| arg.key.unraw().to_string())
            .filter(|key| !known.contains(&key.as_str()))
            .filter_map(|key| rules::did_you_mean(&key, known))
            .collect()
    }

    /// The arguments without the keys of `yaml_only` (keys of the YAML `section` the
    /// attribute does not take), each of which becomes an error saying where it belongs.
    pub(crate) fn without_yaml_only(
        self,
        attribute: &str,
        section: &str,
        yaml_only: &[&str],
        errors: &mut Errors,
    ) -> Args {
        let (refused, kept): (Vec<Arg>, Vec<Arg>) = self
            .0
            .into_iter()
            .partition(|arg| yaml_only.contains(&arg.key.unraw().to_string().as_str()));
        for arg in refused {
            let key = arg.key.unraw();
            errors.error(
                &arg.key,
                format!(
                    "`{key}` is a key of a YAML policy's `{section}` section, not of \
                     `#[{attribute}]`; set it in the policy (`{section}: {{ {key}: .. }}`) \
                     and name the policy with `policy = \"..\"`"
                ),
            );
        }
        Args(kept)
    }

    /// The arguments whose keys are known and not repeated; the others become errors.
    pub(crate) fn checked(self, attribute: &str, known: &[&str], errors: &mut Errors) -> Vec<Arg> {
        let mut seen: Vec<String> = Vec::new();
        let mut kept = Vec::new();
        for arg in self.0 {
            let key = arg.key.unraw().to_string();
            if !known.contains(&key.as_str()) {
                let hint = match rules::did_you_mean(&key, known) {
                    Some(close) => format!("did you mean `{close}`?"),
                    None => format!("expected one of {}", list(known)),
                };
                errors.error(
                    &arg.key,
                    format!("unknown `{attribute}` argument `{key}`; {hint}"),
                );
            } else if seen.contains(&key) {
                errors.error(
                    &arg.key,
                    format!("duplicate `{attribute}` argument `{key}`"),
                );
            } else {
                seen.push(key);
                kept.push(arg);
            }
        }
        kept
    }
}

/// `a`, `b` or `c`, in backticks.
pub(crate) fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => literal(&group.expr),
        _ => None,
    }
}

/// What kind of value the user wrote, for "expected X, found Y" messages.
fn found(value: &Expr) -> &'static str {
    match literal(value) {
        Some(Lit::Str(_)) => "a string",
        Some(Lit::Int(_)) => "an integer",
        Some(Lit::Float(_)) => "a number",
        Some(Lit::Bool(_)) => "a boolean",
        Some(_) => "a literal",
        None => match value {
            Expr::Array(_) => "a list",
            Expr::Path(_) => "a path",
            Expr::Unary(_) => "an expression",
            _ => "an expression",
        },
    }
}

fn wrong_type(key: &Ident, value: &Expr, expected: &str) -> syn::Error {
    syn::Error::new_spanned(
        value,
        format!("`{key}` expects {expected}, found {}", found(value)),
    )
}

/// A non-negative integer literal.
pub(crate) fn integer(key: &Ident, value: &Expr) -> syn::Result<u64> {
    if let Expr::Unary(syn::ExprUnary {
        op: syn::UnOp::Neg(_),
        expr,
        ..
    }) = value
    {
        if let Some(Lit::Int(int)) = literal(expr) {
            return Err(syn::Error::new_spanned(
                value,
                format!("`{key}` cannot be negative, found -{int}"),
            ));
        }
    }
    match literal(value) {
        Some(Lit::Int(int)) => int.base10_parse::<u64>().map_err(|_| {
            syn::Error::new_spanned(value, format!("`{key}` is too large, found {int}"))
        }),
        _ => Err(wrong_type(key, value, "an integer, e.g. `3`")),
    }
}

/// A number literal, integer or float, possibly negative (range checks are the caller's).
pub(crate) fn number(key: &Ident, value: &Expr) -> syn::Result<f64> {
    let (negative, inner) = match value {
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => (true, &**expr),
        other => (false, other),
    };
    let parsed = match literal(inner) {
        Some(Lit::Float(float)) => float.base10_parse::<f64>().ok(),
        Some(Lit::Int(int)) => int.base10_parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(number) if negative => Ok(-number),
        Some(number) => Ok(number),
        None => Err(wrong_type(key, value, "a number, e.g. `0.2`")),
    }
}

/// A byte size: an integer literal (bytes) or a string such as `"64MiB"`, of at least 1 byte.
pub(crate) fn bytes(key: &Ident, value: &Expr) -> syn::Result<u64> {
    let bytes = match literal(value) {
        Some(Lit::Str(text)) => resilience_config::size::parse_bytes(&text.value())
            .map_err(|message| syn::Error::new_spanned(value, format!("`{key}`: {message}")))?,
        Some(Lit::Int(_)) => integer(key, value)?,
        _ => {
            return Err(wrong_type(
                key,
                value,
                "a size in bytes, e.g. `\"64MiB\"` or `65536`",
            ));
        }
    };
    resilience_config::rules::check_max_bytes(bytes)
        .map_err(|message| syn::Error::new_spanned(value, message))
}

/// A string literal.
pub(crate) fn string(key: &Ident, value: &Expr) -> syn::Result<syn::LitStr> {
    match literal(value) {
        Some(Lit::Str(text)) => Ok(text.clone()),
        _ => Err(wrong_type(key, value, "a string")),
    }
}

/// `true` or `false`.
pub(crate) fn boolean(key: &Ident, value: &Expr) -> syn::Result<bool> {
    match literal(value) {
        Some(Lit::Bool(flag)) => Ok(flag.value),
        _ => Err(wrong_type(key, value, "`true` or `false`")),
    }
}

/// A duration string such as `"250ms"`.
pub(crate) fn duration(key: &Ident, value: &Expr) -> syn::Result<Duration> {
    let text = match literal(value) {
        Some(Lit::Str(text)) => text,
        _ => {
            return Err(wrong_type(
                key,
                value,
                "a duration string, e.g. `\"250ms\"`, `\"30s\"`, `\"1h\"`",
            ));
        }
    };
    resilience_config::duration::parse_duration(&text.value()).map_err(|error| {
        let message = match error {
            resilience_config::duration::DurationError::Overflow => format!(
                "duration `{:?}` for `{key}` is too large: at most `{:?}`",
                text.value(),
                resilience_config::duration::MAX_DURATION_TEXT
            ),
            _ => format!(
                "invalid duration `{:?}` for `{key}`; {}",
                text.value(),
                resilience_config::duration::DURATION_EXAMPLES
            ),
        };
        syn::Error::new_spanned(text, message)
    })
}

/// A path to a function, such as `is_retryable` or `errors::is_transient`.
pub(crate) fn path(key: &Ident, value: &Expr) -> syn::Result<syn::Path> {
    match value {
        Expr::Path(path) if path.qself.is_none() => Ok(path.path.clone()),
        _ => Err(wrong_type(
            key,
            value,
            "a path to a function, e.g. `is_retryable`",
        )),
    }
}

/// The items of `[a, b, c]`; a single item without brackets is accepted as a list of one.
pub(crate) fn items(value: &Expr) -> Vec<&Expr> {
    match value {
        Expr::Array(array) => array.elems.iter().collect(),
        other => vec![other],
    }
}

/// The span of a whole value, for messages about it.
pub(crate) fn span_of(value: &Expr) -> Span {
    value.span()
}

/// A policy name: a non-empty string.
pub(crate) fn policy(key: &Ident, value: &Expr) -> syn::Result<syn::LitStr> {
    let text = string(key, value)?;
    if text.value().trim().is_empty() {
        return Err(syn::Error::new_spanned(
            &text,
            format!("`{key}` needs a name, found an empty string"),
        ));
    }
    Ok(text)
}

/// One of `names`, written as a string; `what` names the value in messages (`mode`).
pub(crate) fn name(
    key: &Ident,
    value: &Expr,
    names: &[&'static str],
    what: &str,
) -> syn::Result<&'static str> {
    let text = string(key, value)?;
    let given = text.value();
    if let Some(found) = names.iter().find(|name| **name == given) {
        return Ok(found);
    }
    let quoted: Vec<String> = names.iter().map(|name| format!("\"{name}\"")).collect();
    let quoted: Vec<&str> = quoted.iter().map(String::as_str).collect();
    let hint = match rules::did_you_mean(&given, names) {
        Some(close) => format!("; did you mean `\"{close}\"`?"),
        None => String::new(),
    };
    Err(syn::Error::new_spanned(
        &text,
        format!(
            "unknown {what} `{given:?}`; expected {}{hint}",
            list(&quoted)
        ),
    ))
}
