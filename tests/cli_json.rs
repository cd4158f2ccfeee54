//! `--json` is for machines: stdout is one JSON document whether the tool succeeds or
//! fails, and a failure exits non-zero.

mod common;

use serde_json::json;
use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(common::bin())
        .args(args)
        .output()
        .expect("run vllm-sota");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn json_errors_are_one_json_object_on_stdout_with_a_non_zero_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.trace.json.gz");
    let cases: Vec<(Vec<String>, &str)> = vec![
        // The tool fails on its input.
        (
            vec![
                "layer-pipeline".into(),
                "--json".into(),
                "--set".into(),
                format!("trace={}", missing.display()),
                "--set".into(),
                "stage=decode".into(),
                "--set".into(),
                format!("out_dir={}", tmp.path().display()),
            ],
            "nope.trace.json.gz",
        ),
        // The request does not deserialize (unknown field).
        (
            vec![
                "layer-pipeline".into(),
                "--set".into(),
                "confg=x".into(),
                "--json".into(),
            ],
            "confg",
        ),
        // An unknown framework: the field and the known ones are named.
        (
            vec![
                "profile-tables".into(),
                "--json".into(),
                "--set".into(),
                "competitor_framework=trtllm".into(),
            ],
            "field `competitor_framework`: unknown variant `trtllm`, expected one of `vllm`, `sglang`, `tensorrt_llm`, `tokenspeed`",
        ),
        // Argument errors found before the tool runs, with --json first or last.
        (
            vec!["layer-pipeline".into(), "--json".into(), "--bogus".into()],
            "--bogus",
        ),
        (vec!["no-such-tool".into(), "--json".into()], "no-such-tool"),
    ];
    for (args, needle) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = run(&a);
        assert_eq!(code, Some(1), "{a:?}: {stdout} {stderr}");
        let v: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{a:?}: stdout is not JSON ({e}): {stdout:?}"));
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{a:?}: {v}");
        assert!(v["error"]["tool"].is_string(), "{v}");
        assert!(
            stderr.contains(needle),
            "stderr keeps the message: {stderr}"
        );
    }
    // Without --json an error stays plain text on stderr and stdout is empty.
    let (code, stdout, stderr) = run(&["no-such-tool"]);
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.starts_with("error: unknown command"), "{stderr}");
    // Success with --json is the report itself.
    let trace = common::fixtures().join("h200-torch-traces/minillama_eager_decode.trace.json.gz");
    let (code, stdout, stderr) = run(&[
        "layer-pipeline",
        "--json",
        "--set",
        &format!("trace={}", trace.display()),
        "--set",
        "stage=decode",
        "--set",
        &format!("out_dir={}", tmp.path().display()),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(v["stage"], json!("decode"));
}
