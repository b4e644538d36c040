//! Snapshot tests of what the macro writes: `macros/snapshots/NAME.rs` is the
//! input, `NAME.expanded.rs` the expected expansion (formatted with
//! prettyplease). Review changes to the `.expanded.rs` files like code.
//! Regenerate them with `UPDATE_SNAPSHOTS=1 cargo test -p tapeless-macros`.

use std::path::Path;

fn expand_file(input: &str) -> String {
    let item: syn::ItemFn = syn::parse_str(input).expect("snapshot input is a function");
    let mut func = item.clone();
    let attr = func
        .attrs
        .iter()
        .position(|a| a.path().is_ident("differentiable"))
        .expect("#[differentiable]");
    let attr = func.attrs.remove(attr);
    let args = match attr.meta {
        syn::Meta::List(l) => l.tokens,
        _ => proc_macro2::TokenStream::new(),
    };
    let out = crate::expand::differentiable(args, quote::quote!(#func));
    let file: syn::File = syn::parse2(out).expect("the expansion parses");
    prettyplease::unparse(&file)
}

fn check(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots");
    let input = std::fs::read_to_string(dir.join(format!("{name}.rs"))).unwrap();
    let got = expand_file(&input);
    let path = dir.join(format!("{name}.expanded.rs"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "the expansion of snapshots/{name}.rs changed; review it and run `UPDATE_SNAPSHOTS=1 cargo test -p tapeless-macros`\n--- got ---\n{got}"
    );
}

#[test]
fn straight_line() {
    check("straight_line");
}

#[test]
fn rnn_loop() {
    check("rnn_loop");
}

#[test]
fn branches_and_exits() {
    check("branches_and_exits");
}

#[test]
fn calls_and_arrays() {
    check("calls_and_arrays");
}

#[test]
fn forward_mode() {
    check("forward_mode");
}

#[test]
fn lsq_loop() {
    check("lsq_loop");
}

#[test]
fn logistic_loop() {
    check("logistic_loop");
}

#[test]
fn gmm() {
    check("gmm");
}

#[test]
fn promoted_loops() {
    check("promoted_loops");
}

#[test]
fn fused_loss() {
    check("fused_loss");
}

#[test]
fn recursion() {
    check("recursion");
}

#[test]
fn fused_scratch() {
    check("fused_scratch");
}

#[test]
fn saved_once() {
    check("saved_once");
}
