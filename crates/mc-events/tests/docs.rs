//! Keeps `docs/events.md` in step with the code: every JSON example parses (as a request or an
//! event) and means what it says, every request and event type has an example, and the tables of
//! states, statuses and error codes match the code.

use std::collections::BTreeSet;

use mc_events::error_code::ErrorCode;
use mc_events::{
    Event, Request, RequestKind, SdkState, StatusType, EVENT_TYPE_NAMES, PUSHED_TYPE_NAMES,
    RESULT_TYPE_NAMES,
};
use serde_json::Value;

const DOC: &str = include_str!("../../../docs/events.md");

fn json_blocks() -> Vec<&'static str> {
    let mut blocks = Vec::new();
    let mut rest = DOC;
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + "```json\n".len()..];
        let end = body.find("```").expect("an unclosed ```json block");
        blocks.push(&body[..end]);
        rest = &body[end + 3..];
    }
    blocks
}

/// Every field written in the doc comes back, with the same value, when the parsed value is
/// written again: a misspelt or misplaced field is not silently ignored.
fn assert_fields_kept(written: &Value, reparsed: &Value, block: &str) {
    let (Value::Object(written), Value::Object(reparsed)) = (written, reparsed) else {
        panic!("not an object: {block}");
    };
    for (name, value) in written {
        assert_eq!(
            reparsed.get(name),
            Some(value),
            "field `{name}` is not what the code reads or writes, in:\n{block}"
        );
    }
}

#[test]
fn every_json_example_parses_as_a_request_or_an_event() {
    let blocks = json_blocks();
    assert!(blocks.len() >= 30, "only {} JSON examples", blocks.len());
    let mut requests = BTreeSet::new();
    let mut events = BTreeSet::new();
    for block in blocks {
        let written: Value =
            serde_json::from_str(block).unwrap_or_else(|e| panic!("not JSON ({e}):\n{block}"));
        let type_name = written["type"]
            .as_str()
            .unwrap_or_else(|| panic!("no type:\n{block}"));
        if let Some(kind) = RequestKind::from_name(type_name) {
            let request = Request::from_json(block).unwrap_or_else(|e| panic!("{e}:\n{block}"));
            assert_fields_kept(&written, &request.to_json_value(), block);
            requests.insert(kind);
        } else {
            let event = Event::from_json(block).unwrap_or_else(|e| panic!("{e}:\n{block}"));
            assert_fields_kept(&written, &event.to_json_value(), block);
            events.insert(event.type_name());
        }
    }
    let missing: Vec<_> = RequestKind::ALL
        .iter()
        .filter(|kind| !requests.contains(kind))
        .collect();
    assert!(
        missing.is_empty(),
        "requests without an example: {missing:?}"
    );
    let missing: Vec<_> = EVENT_TYPE_NAMES
        .iter()
        .filter(|name| !events.contains(*name))
        .collect();
    assert!(missing.is_empty(), "events without an example: {missing:?}");
}

#[test]
fn the_request_table_states_match_the_code() {
    let started: BTreeSet<&str> = [
        SdkState::ActivationRequired,
        SdkState::LoginRequired,
        SdkState::LoggedIn,
        SdkState::Unidentified,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    for &kind in RequestKind::ALL {
        let prefix = format!("| `{}` |", kind.name());
        let row = DOC
            .lines()
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no table row for {}", kind.name()));
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
        let valid_in = cells.last().expect("an empty row").trim();
        let documented: BTreeSet<&str> = if valid_in == "any started state" {
            started.clone()
        } else {
            valid_in
                .split(", ")
                .map(|state| state.trim_matches('`'))
                .collect()
        };
        let in_code: BTreeSet<&str> = kind.valid_states().iter().map(|s| s.as_str()).collect();
        assert_eq!(documented, in_code, "valid states of {}", kind.name());
        let result = cells.get(cells.len() - 2).expect("no result column");
        assert!(
            result.starts_with(&format!("`{}`", kind.result_name())),
            "{} is answered by {}, the doc says {result}",
            kind.name(),
            kind.result_name()
        );
    }
}

#[test]
fn every_status_and_error_code_is_documented() {
    for &status in StatusType::ALL {
        assert!(
            DOC.contains(&format!("| `{}` |", status.as_str())),
            "status {status} is not in the statuses table"
        );
    }
    for code in ErrorCode::ALL {
        let row = format!(
            "| `{}` | `{}` | `{}` |",
            code.code(),
            code.name(),
            code.status().as_str()
        );
        assert!(
            DOC.contains(&row),
            "error code {} ({}, status {}) is not in the error code table as {row}",
            code.code(),
            code.name(),
            code.status()
        );
    }
    // and the table lists nothing the code lacks
    let documented = DOC
        .lines()
        .filter(|line| {
            line.starts_with("| `") && line.chars().nth(3).is_some_and(|c| c.is_ascii_digit())
        })
        .count();
    assert_eq!(
        documented,
        ErrorCode::ALL.len(),
        "error code rows in the doc"
    );
}

/// The rows of the markdown table whose header starts with `header`: the first cell of each.
fn first_cells(header: &str) -> Vec<&'static str> {
    let start = DOC
        .find(header)
        .unwrap_or_else(|| panic!("no table `{header}`"));
    DOC[start..]
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            line.trim_start_matches("| ")
                .split(" |")
                .next()
                .unwrap_or("")
        })
        .collect()
}

#[test]
fn the_result_and_pushed_tables_list_the_catalog_in_order() {
    let results: Vec<String> = RESULT_TYPE_NAMES.iter().map(|n| format!("`{n}`")).collect();
    assert_eq!(first_cells("| result | answers |"), results);
    let pushed: Vec<String> = PUSHED_TYPE_NAMES.iter().map(|n| format!("`{n}`")).collect();
    assert_eq!(first_cells("| event | when |"), pushed);
    let requests: Vec<String> = RequestKind::ALL
        .iter()
        .map(|k| format!("`{}`", k.name()))
        .collect();
    assert_eq!(first_cells("| request | fields"), requests);
    assert_eq!(
        RESULT_TYPE_NAMES.len() + PUSHED_TYPE_NAMES.len(),
        EVENT_TYPE_NAMES.len()
    );
}
