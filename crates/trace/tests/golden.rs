//! The three tables on the real fixtures equal the golden files byte for byte
//! (`tests/golden/<case>.json`, written only by `--example golden`, never by a test).

use vllm_sota_trace::{CASES, golden_dir, render_golden};

#[test]
fn tables_on_the_fixtures_equal_the_golden_files() {
    let fixtures = vllm_sota_core::refs::fixtures_dir();
    assert!(
        fixtures.is_dir(),
        "this test needs the real fixtures at {} (set VLLM_SOTA_FIXTURES)",
        fixtures.display()
    );
    let mut failures = Vec::new();
    for case in CASES {
        let path = golden_dir().join(format!("{}.json", case.name));
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read golden file {}: {e}", path.display()));
        let got = render_golden(case, &fixtures).unwrap();
        if got != want {
            let line = got
                .lines()
                .zip(want.lines())
                .position(|(g, w)| g != w)
                .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
            failures.push(format!(
                "{}: differs from {} at line {}: got {:?}, golden {:?}",
                case.name,
                path.display(),
                line + 1,
                got.lines().nth(line),
                want.lines().nth(line)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
