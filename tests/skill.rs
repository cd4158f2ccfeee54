//! SKILL.md and the server agree: every tool in tools/list is named in SKILL.md, and every
//! tool in SKILL.md's tool table exists in tools/list. The frontmatter is what `skills add` reads.

mod common;
use std::collections::BTreeSet;

fn skill() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/SKILL.md")).unwrap()
}

fn listed_tools() -> BTreeSet<String> {
    let out = std::process::Command::new(common::bin())
        .args(["tools", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn frontmatter_names_the_skill_and_says_when_to_use_it() {
    let text = skill();
    let front = text
        .strip_prefix("---\n")
        .and_then(|t| t.split("\n---\n").next())
        .expect("YAML frontmatter");
    assert!(front.lines().any(|l| l == "name: vllm-sota-humanize-loop"));
    let desc = front
        .lines()
        .find_map(|l| l.strip_prefix("description: "))
        .expect("description");
    assert!(
        desc.contains("Use it when"),
        "the description says when to use the skill"
    );
}

#[test]
fn every_listed_tool_is_in_skill_md_and_back() {
    let text = skill();
    let listed = listed_tools();
    for name in &listed {
        assert!(
            text.contains(&format!("`{name}`")),
            "tools/list has `{name}` but SKILL.md never names it"
        );
    }
    let table: BTreeSet<String> = text
        .split("## Tools")
        .nth(1)
        .expect("a ## Tools section")
        .lines()
        .filter_map(|l| {
            l.strip_prefix("| `")
                .and_then(|r| r.split('`').next())
                .map(str::to_string)
        })
        .collect();
    assert_eq!(table, listed, "SKILL.md's tool table and tools/list differ");
    // Every name the phases present as a call producing an artifact ("`tool` → artifact") is a real tool.
    let re = regex::Regex::new(r"`([a-z]+(?:_[a-z0-9]+)+)`(?: \([^)]*\))? →").unwrap();
    for cap in re.captures_iter(&text) {
        assert!(
            listed.contains(&cap[1]),
            "SKILL.md calls `{}` but the server has no such tool",
            &cap[1]
        );
    }
}
