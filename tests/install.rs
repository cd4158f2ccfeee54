//! scripts/install.sh: the registration it prints (dry run) and writes parses and points
//! at the binary; a second run changes nothing; other Codex settings survive.

mod common;
use std::process::Command;

fn install(home: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install.sh"))
        .args(args)
        .env("HOME", home)
        .env_remove("CODEX_HOME")
        .env("PATH", "/usr/bin:/bin") // no `claude` binary: the .mcp.json path is exercised
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn dry_run_prints_registrations_that_parse_and_point_at_the_binary() {
    let home = tempfile::tempdir().unwrap();
    let bin = common::bin();
    let bin = bin.to_str().unwrap();
    let out = install(home.path(), &["--dry-run", "--bin", bin]);
    let claude = out
        .lines()
        .skip_while(|l| !l.starts_with("--- claude"))
        .nth(1)
        .expect("claude section");
    let json: serde_json::Value = serde_json::from_str(claude).expect(".mcp.json snippet parses");
    let server = &json["mcpServers"]["vllm-sota"];
    assert_eq!(server["command"], bin);
    assert_eq!(server["args"], serde_json::json!(["mcp"]));
    let toml_text: String = out
        .lines()
        .skip_while(|l| !l.starts_with("--- codex"))
        .skip(1)
        .take_while(|l| !l.starts_with("---"))
        .map(|l| format!("{l}\n"))
        .collect();
    let toml: toml::Table = toml_text.parse().expect("config.toml snippet parses");
    let codex = &toml["mcp_servers"]["vllm-sota"];
    assert_eq!(codex["command"].as_str(), Some(bin));
    assert!(
        codex["tool_timeout_sec"].as_integer().unwrap() >= 600,
        "Codex's default 60 s is raised"
    );
    // The dry run wrote nothing.
    assert!(!home.path().join(".codex").exists());
    // And the binary it points at really serves MCP tools.
    let tools = Command::new(bin)
        .args(["tools", "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&tools.stdout).unwrap();
    assert!(list.as_array().unwrap().len() >= 5);
}

#[test]
fn install_is_idempotent_and_keeps_other_settings() {
    let home = tempfile::tempdir().unwrap();
    let project = home.path().join("proj");
    std::fs::create_dir_all(home.path().join(".codex")).unwrap();
    std::fs::write(
        home.path().join(".codex/config.toml"),
        "model = \"o4\"\n\n[mcp_servers.other]\ncommand = \"x\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join(".mcp.json"),
        r#"{"mcpServers": {"other": {"command": "y"}}}"#,
    )
    .unwrap();
    let bin = common::bin();
    let args = [
        "--bin",
        bin.to_str().unwrap(),
        "--project",
        project.to_str().unwrap(),
    ];
    install(home.path(), &args);
    let first = (
        std::fs::read_to_string(home.path().join(".codex/config.toml")).unwrap(),
        std::fs::read_to_string(project.join(".mcp.json")).unwrap(),
    );
    install(home.path(), &args);
    let second = (
        std::fs::read_to_string(home.path().join(".codex/config.toml")).unwrap(),
        std::fs::read_to_string(project.join(".mcp.json")).unwrap(),
    );
    assert_eq!(first, second, "a second install changes nothing");
    let toml: toml::Table = second.0.parse().unwrap();
    assert_eq!(toml["model"].as_str(), Some("o4"));
    assert_eq!(toml["mcp_servers"]["other"]["command"].as_str(), Some("x"));
    assert_eq!(
        toml["mcp_servers"]["vllm-sota"]["command"].as_str(),
        Some(bin.to_str().unwrap())
    );
    assert_eq!(second.0.matches("[mcp_servers.vllm-sota]").count(), 1);
    let json: serde_json::Value = serde_json::from_str(&second.1).unwrap();
    assert_eq!(json["mcpServers"]["other"]["command"], "y");
    assert_eq!(
        json["mcpServers"]["vllm-sota"]["command"],
        bin.to_str().unwrap()
    );
}

#[test]
fn an_unknown_option_is_refused_by_name_and_changes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install.sh"))
        .arg("--bogus")
        .env("HOME", home.path())
        .env_remove("CODEX_HOME")
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option --bogus"));
    assert_eq!(
        std::fs::read_dir(home.path()).unwrap().count(),
        0,
        "nothing written to HOME"
    );
}
