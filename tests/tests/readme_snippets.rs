//! The README's verification snippets for the identity assertion are the code the tests run:
//! `tests/python/mcpgate_assertion.py` (imported by the Python origin) and
//! `tests/js/mcpgate-assertion.ts` must appear in the README verbatim.

use mcpgate_e2e::harness::repo_root;

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_readmes_assertion_snippets_are_the_tested_files() {
    let readme = read("README.md");
    for (file, fence) in [
        ("tests/python/mcpgate_assertion.py", "```python\n"),
        ("tests/js/mcpgate-assertion.ts", "```ts\n"),
    ] {
        let code = read(file);
        let block = format!(
            "{fence}{}```",
            code.trim_end_matches('\n').to_owned() + "\n"
        );
        assert!(
            readme.contains(&block),
            "README.md must show {file} exactly, in a {} block",
            fence.trim()
        );
    }
}
