//! The code fingerprint of a task: blake3 over its name, the tokens of its function (doc
//! attributes left out) and its `version` salt; and that of a helper: blake3 over its
//! tokens, read the same way.
//!
//! Tokens are hashed by kind and text, never by spacing or span, so reformatting a function
//! or editing its comments keeps the fingerprint, while any change to its code changes it.
//! A trailing comma, which rustfmt adds or removes when it splits or joins a list, is left
//! out wherever it cannot change the meaning: `(x,)` is a tuple, `(x)` is not.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// The fingerprint of task `name` whose function is `tokens`.
pub(crate) fn fingerprint(name: &str, version: Option<&str>, tokens: TokenStream) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"pipewright task fingerprint v1\0");
    field(&mut hasher, b'N', name.as_bytes());
    match version {
        Some(v) => field(&mut hasher, b'V', v.as_bytes()),
        None => field(&mut hasher, b'v', b""),
    }
    stream(&mut hasher, tokens, Trailing::Keep);
    *hasher.finalize().as_bytes()
}

/// The fingerprint of the code of a helper (a function, an `impl` block or an inline
/// module) whose tokens are `tokens`, normalised as a task's are.
pub(crate) fn helper(tokens: TokenStream) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"pipewright helper fingerprint v1\0");
    stream(&mut hasher, tokens, Trailing::Keep);
    *hasher.finalize().as_bytes()
}

/// Feeds one tagged, length-prefixed field, so adjacent fields cannot run together.
fn field(hasher: &mut blake3::Hasher, tag: u8, bytes: &[u8]) {
    hasher.update(&[tag]);
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// What a comma that closes a group means.
#[derive(Clone, Copy)]
enum Trailing {
    /// Something: top level, or the opaque tokens of a macro call.
    Keep,
    /// Nothing: the group is a list whatever its length (`[a,]`, `{ a, }`, `f(a,)`).
    Drop,
    /// Nothing once the group holds another comma: `(a, b,)` is `(a, b)`, `(a,)` is a tuple.
    DropAfterComma,
}

fn stream(hasher: &mut blake3::Hasher, tokens: TokenStream, trailing: Trailing) {
    let mut iter = tokens.into_iter().peekable();
    let mut prev: Option<TokenTree> = None;
    let mut commas = 0usize;
    while let Some(tree) = iter.next() {
        if let TokenTree::Punct(p) = &tree
            && p.as_char() == '#'
        {
            // `#[doc = ...]` and `#![doc = ...]`, which is what doc comments become.
            let mut ahead = iter.clone();
            let bang = matches!(ahead.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '!');
            if bang {
                ahead.next();
            }
            if let Some(TokenTree::Group(g)) = ahead.peek()
                && g.delimiter() == Delimiter::Bracket
                && is_doc(g.stream())
            {
                ahead.next();
                iter = ahead;
                continue;
            }
        }
        if let TokenTree::Punct(p) = &tree
            && p.as_char() == ','
        {
            let last = iter.peek().is_none();
            let noise = match trailing {
                Trailing::Keep => false,
                Trailing::Drop => true,
                Trailing::DropAfterComma => commas > 0,
            };
            if last && noise {
                continue;
            }
            commas += 1;
        }
        tree_hash(hasher, &tree, prev.as_ref());
        prev = Some(tree);
    }
}

/// What a trailing comma means inside a group delimited by `delimiter` that follows `prev`.
fn inner_trailing(delimiter: Delimiter, prev: Option<&TokenTree>) -> Trailing {
    match (delimiter, prev) {
        // A macro's input means what the macro makes of it.
        (_, Some(TokenTree::Punct(p))) if p.as_char() == '!' => Trailing::Keep,
        (Delimiter::Bracket | Delimiter::Brace, _) => Trailing::Drop,
        // Arguments of a call or a function, fields of a tuple struct: `f(a,)`, `Some(a,)`.
        (Delimiter::Parenthesis, Some(TokenTree::Ident(i))) if !is_keyword(&i.to_string()) => {
            Trailing::Drop
        }
        // A tuple or parentheses: `(a,)`, `return (a,)`, `-> (u32,)`.
        (Delimiter::Parenthesis, _) => Trailing::DropAfterComma,
        (Delimiter::None, _) => Trailing::Keep,
    }
}

/// Keywords that a parenthesized expression, type or pattern can follow.
fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "as" | "box"
            | "break"
            | "const"
            | "continue"
            | "do"
            | "dyn"
            | "else"
            | "fn"
            | "for"
            | "if"
            | "impl"
            | "in"
            | "let"
            | "loop"
            | "match"
            | "move"
            | "mut"
            | "ref"
            | "return"
            | "static"
            | "type"
            | "unsafe"
            | "where"
            | "while"
            | "yield"
    )
}

fn is_doc(attr: TokenStream) -> bool {
    matches!(attr.into_iter().next(), Some(TokenTree::Ident(i)) if i == "doc")
}

/// Hashes one token tree; `prev` is the tree before it, which tells what a group is.
fn tree_hash(hasher: &mut blake3::Hasher, tree: &TokenTree, prev: Option<&TokenTree>) {
    match tree {
        TokenTree::Group(g) => {
            let open = match g.delimiter() {
                Delimiter::Parenthesis => b'(',
                Delimiter::Brace => b'{',
                Delimiter::Bracket => b'[',
                Delimiter::None => b'0',
            };
            hasher.update(&[b'G', open]);
            stream(hasher, g.stream(), inner_trailing(g.delimiter(), prev));
            hasher.update(b"g");
        }
        TokenTree::Ident(i) => field(hasher, b'I', i.to_string().as_bytes()),
        TokenTree::Punct(p) => field(hasher, b'P', p.as_char().to_string().as_bytes()),
        TokenTree::Literal(l) => field(hasher, b'L', l.to_string().as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::fingerprint;
    use proc_macro2::TokenStream;

    fn fp(src: &str) -> [u8; 32] {
        fingerprint("t", None, src.parse::<TokenStream>().unwrap())
    }

    #[test]
    fn reformatting_and_comments_keep_the_fingerprint() {
        let a = fp("fn f(x: &Vec<u32>) -> u32 { x.iter().sum() }");
        let b = fp(
            "fn f(\n    x: &Vec<u32>,\n) -> u32 {\n    // add them up\n    x.iter()\n        .sum() /* all */\n}",
        );
        assert_eq!(a, b);
    }

    #[test]
    fn doc_comments_keep_the_fingerprint() {
        let a = fp("fn f() -> u32 { 1 }");
        let b = fp("/// Returns one.\n#[doc = \"more\"]\nfn f() -> u32 {\n    //! inner\n    1\n}");
        assert_eq!(a, b);
    }

    #[test]
    fn other_attributes_count() {
        assert_ne!(fp("fn f() {}"), fp("#[inline] fn f() {}"));
    }

    #[test]
    fn an_edited_body_changes_the_fingerprint() {
        let a = fp("fn f(x: u32) -> u32 { x + 1 }");
        assert_ne!(a, fp("fn f(x: u32) -> u32 { x + 2 }"));
        assert_ne!(a, fp("fn f(x: u32) -> u32 { x - 1 }"));
        assert_ne!(a, fp("fn f(x: u64) -> u32 { x + 1 }"));
        assert_ne!(
            fp("fn f() -> &'static str { \"ab\" }"),
            fp("fn f() -> &'static str { \"a b\" }")
        );
    }

    #[test]
    fn trailing_commas_of_lists_do_not_count() {
        assert_eq!(
            fp("fn f(a: u32, b: u32) -> [u32; 2] { g(a, b); [a, b] }"),
            fp("fn f(a: u32, b: u32,) -> [u32; 2] { g(a, b,); [a, b,] }")
        );
        assert_eq!(
            fp("fn f() -> (u32, u32) { S { a: 1, b: (1, 2) } }"),
            fp("fn f() -> (u32, u32,) { S { a: 1, b: (1, 2,), } }")
        );
    }

    #[test]
    fn the_comma_of_a_one_tuple_counts() {
        assert_ne!(
            fp("fn f() -> (u32,) { (1,) }"),
            fp("fn f() -> (u32) { (1) }")
        );
        assert_ne!(fp("fn f() { return (1,) }"), fp("fn f() { return (1) }"));
        assert_ne!(fp("fn f() { m!(a,) }"), fp("fn f() { m!(a) }"));
    }

    #[test]
    fn grouping_counts() {
        assert_ne!(fp("fn f() { (a)(b) }"), fp("fn f() { (a(b)) }"));
    }

    #[test]
    fn a_helper_is_read_as_a_task_is() {
        let helper = |src: &str| super::helper(src.parse::<TokenStream>().unwrap());
        let a = helper("fn parse(s: &str) -> u32 { s.len() as u32 }");
        assert_eq!(
            a,
            helper(
                "/// Parses.\nfn parse(\n    s: &str,\n) -> u32 {\n    // its length\n    s.len() as u32\n}"
            )
        );
        assert_ne!(a, helper("fn parse(s: &str) -> u32 { s.len() as u32 + 1 }"));
        assert_ne!(
            helper("impl P { fn f() -> u8 { 1 } }"),
            helper("impl P { fn f() -> u8 { 2 } }")
        );
        // A helper and a task of the same tokens are told apart.
        assert_ne!(a, fp("fn parse(s: &str) -> u32 { s.len() as u32 }"));
    }

    #[test]
    fn name_and_version_count() {
        let tokens = || "fn f() {}".parse::<TokenStream>().unwrap();
        let base = fingerprint("t", None, tokens());
        assert_ne!(base, fingerprint("u", None, tokens()));
        assert_ne!(base, fingerprint("t", Some("2"), tokens()));
        assert_ne!(base, fingerprint("t", Some(""), tokens()));
        assert_ne!(
            fingerprint("t", Some("2"), tokens()),
            fingerprint("t", Some("3"), tokens())
        );
    }
}
