//! With `--json`, every subcommand that has the flag reports an error as
//! exactly one JSON object on stdout, `{"error": ..., "path": ...}` (and
//! `"line"`, `"column"` for a `grad` program wrong at a place), and exits
//! with code 2; without it, the error stays plain text on stderr.

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chainrule"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_error(args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 2, "{args:?}: {stdout} {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: one line expected, got {stdout:?}"
    );
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2, "{v}");
    assert!(obj["error"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    assert!(obj["path"].is_null() || obj["path"].is_string(), "{v}");
    v
}

#[test]
fn every_json_subcommand_reports_errors_as_one_json_object() {
    let missing = std::env::temp_dir().join(format!("chainrule-json-none-{}", std::process::id()));
    let m = missing.to_str().unwrap();
    let out = std::env::temp_dir().join(format!("chainrule-json-out-{}", std::process::id()));
    let o = out.to_str().unwrap();
    // a missing dataset: the path is named
    let v = json_error(&["train", m, "--out", o, "--json"]);
    assert_eq!(v["path"], m, "{v}");
    let v = json_error(&["render", m, "--out", o, "--json"]);
    assert!(v["path"].is_string(), "{v}");
    let v = json_error(&["fit", m, "--json", "--out", o]);
    assert!(
        v["error"].as_str().unwrap().contains("chainrule-json-none"),
        "{v}"
    );
    // usage errors: no path
    let v = json_error(&["grad", "x +", "--at", "x=1", "--json"]);
    assert!(v["path"].is_null(), "{v}");
    let v = json_error(&["train", m, "--json"]);
    assert!(v["error"].as_str().unwrap().contains("--out"), "{v}");
    json_error(&["bench", "fit", "--json", "--iters", "nope"]);
    json_error(&["synth", "--json", "--size", "0", "/dev/null/x"]);
    // export and view --export: a file that is not a scene is named
    let bad = std::env::temp_dir().join(format!("chainrule-json-bad-{}.ply", std::process::id()));
    std::fs::write(&bad, "not a ply\n").unwrap();
    let b = bad.to_str().unwrap();
    let v = json_error(&["export", b, "--format", "spz", "--out", o, "--json"]);
    assert_eq!(v["path"], b, "{v}");
    let v = json_error(&["view", b, "--export", o, "--json"]);
    assert_eq!(v["path"], b, "{v}");
    let v = json_error(&["view", m, "--json"]);
    assert!(
        v["error"].as_str().unwrap().contains("chainrule-json-none"),
        "{v}"
    );
    std::fs::remove_file(&bad).unwrap();
    // without --json: plain text on stderr, nothing on stdout
    let (code, stdout, stderr) = run(&["train", m, "--out", o]);
    assert_eq!(code, 2);
    assert!(
        stdout.is_empty() && stderr.starts_with("error: "),
        "{stderr}"
    );
}

/// A `grad` program's error that has a place carries it as numbers too,
/// `"line"` and `"column"` (from 1, as the message shows them), beside
/// the usual keys; one without a place has only the usual keys.
#[test]
fn grad_errors_in_a_program_give_their_line_and_column() {
    let (code, stdout, stderr) = run(&["grad", "y = x * 2\nz = (y + * 3)", "x=1", "--json"]);
    assert_eq!(code, 2, "{stdout} {stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["column", "error", "line", "path"], "{v}");
    assert!(v["path"].is_null(), "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.starts_with("line 2, column 10: syntax error: "), "{v}");
    assert_eq!(
        (v["line"].as_u64(), v["column"].as_u64()),
        (Some(2), Some(10)),
        "{v}"
    );
    // an unknown name has a place too; a bad input value has none
    let (_, stdout, _) = run(&["grad", "x + nope", "x=1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (v["line"].as_u64(), v["column"].as_u64()),
        (Some(1), Some(5)),
        "{v}"
    );
    json_error(&["grad", "x + 1", "x=oops", "--json"]);
}

/// A program read from a file (`grad @FILE`) names that file as the
/// error's `"path"`, with or without a place in it.
#[test]
fn grad_errors_in_a_program_file_give_its_path() {
    let dir = std::env::temp_dir().join(format!("chainrule-json-grad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prog.cr");
    std::fs::write(&file, "y = x * 2\nz = (y + * 3)\n").unwrap();
    let f = file.to_str().unwrap();
    let (code, stdout, _) = run(&["grad", &format!("@{f}"), "x=1", "--json"]);
    assert_eq!(code, 2, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["path"], f, "{v}");
    assert_eq!(
        (v["line"].as_u64(), v["column"].as_u64()),
        (Some(2), Some(10)),
        "{v}"
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{f}: line 2, column 10: ")),
        "{v}"
    );
    // a bad command-line input is not the file's error: no path
    std::fs::write(&file, "x * 2\n").unwrap();
    let v = json_error(&["grad", &format!("@{f}"), "x=1", "x=2", "--json"]);
    assert!(v["path"].is_null(), "{v}");
    // a file that cannot be read is named too
    let missing = dir.join("none.cr");
    let m = missing.to_str().unwrap();
    let v = json_error(&["grad", &format!("@{m}"), "x=1", "--json"]);
    assert_eq!(v["path"], m, "{v}");
    std::fs::remove_dir_all(&dir).unwrap();
}
