//! `docs/custom-strategy.md` shows the example file verbatim.

#[test]
fn custom_strategy_doc_embeds_the_example_verbatim() {
    let doc = include_str!("../../docs/custom-strategy.md");
    let example = include_str!("../examples/custom_strategy.rs");
    let block = format!("```rust\n{example}```");
    assert!(
        doc.contains(&block),
        "docs/custom-strategy.md must contain examples/custom_strategy.rs in a ```rust block"
    );
}
