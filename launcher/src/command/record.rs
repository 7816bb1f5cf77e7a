//! A combo's record: how its command ended and its row, as one JSON line (what a rank
//! sends and the journal keeps), and JSON objects read with their members in order.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// A JSON object's members in the order written (a repeated key keeps its first place
/// and its last value).
pub type Members = Vec<(String, Value)>;

/// `text` as one JSON object, members in order; `None` if it is anything else. Python's
/// `json.dumps` writes non-finite floats as `NaN`, `Infinity` and `-Infinity` (not JSON):
/// they are read as `null`, an undefined value, as every table writes non-finite numbers.
pub fn parse_object(text: &str) -> Option<Members> {
    match serde_json::from_str::<OrderedObject>(text) {
        Ok(object) => Some(object.0),
        Err(_) => serde_json::from_str::<OrderedObject>(&non_finite_as_null(text)?).ok().map(|o| o.0),
    }
}

/// `text` with Python's non-finite float tokens outside strings replaced by `null`;
/// `None` if it has none.
fn non_finite_as_null(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped, mut replaced) = (false, false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            (in_string, escaped) = (escaped || c != '"', !escaped && c == '\\');
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["-Infinity", "Infinity", "NaN"].into_iter().find(|t| rest.starts_with(t)) {
            out.push_str("null");
            rest = &rest[token.len()..];
            replaced = true;
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    replaced.then_some(out)
}
/// A JSON object read with its members in written order.
pub struct OrderedObject(pub Members);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut members: Members = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    match members.iter_mut().find(|(k, _)| *k == key) {
                        Some(member) => member.1 = value,
                        None => members.push((key, value)),
                    }
                }
                Ok(OrderedObject(members))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// How a combo's command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Exit 0 and a JSON object.
    Ok,
    /// A non-zero exit, death by a signal, or a program that could not be started.
    Failed,
    /// Killed at the timeout.
    Timeout,
    /// Exit 0 without a JSON object (last stdout line, or the `output` file).
    BadOutput,
}

impl Status {
    /// The name in the table's `status` column.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Timeout => "timeout",
            Status::BadOutput => "bad_output",
        }
    }

    /// Inverse of [`Status::name`].
    pub fn from_name(name: &str) -> Option<Status> {
        [Status::Ok, Status::Failed, Status::Timeout, Status::BadOutput].into_iter().find(|s| s.name() == name)
    }
}
/// One combo's outcome: what a rank reports and the journal keeps, one JSON line.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The combo.
    pub combo_id: u64,
    /// How its (last) attempt ended.
    pub status: Status,
    /// Its exit code (minus the signal when a signal ended it; none when it timed out or
    /// could not start).
    pub exit_code: Option<i32>,
    /// The kept stderr file, relative to the table's directory (empty when not kept).
    pub stderr: String,
    /// Attempts made.
    pub attempts: u32,
    /// Seconds from the first attempt's start to the last one's end.
    pub elapsed_s: f64,
    /// The JSON object's members (empty unless `ok`).
    pub row: Members,
}

impl Record {
    /// The record as one JSON line (no newline), `combo_id` first (the journal's row id).
    pub fn to_line(&self) -> String {
        let text = |s: &str| Value::from(s).to_string();
        let mut line = format!(
            "{{\"combo_id\":{},\"status\":\"{}\",\"exit_code\":{},\"stderr\":{},\"attempts\":{},\"elapsed_s\":{},\"row\":{{",
            self.combo_id,
            self.status.name(),
            self.exit_code.map_or("null".to_string(), |c| c.to_string()),
            text(&self.stderr),
            self.attempts,
            Value::from(self.elapsed_s),
        );
        for (i, (key, value)) in self.row.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&text(key));
            line.push(':');
            line.push_str(&value.to_string());
        }
        line.push_str("}}");
        line
    }

    /// Reads a line written by [`Record::to_line`].
    pub fn from_line(line: &str) -> Option<Record> {
        let read: RecordLine = serde_json::from_str(line).ok()?;
        Some(Record {
            combo_id: read.combo_id,
            status: Status::from_name(&read.status)?,
            exit_code: read.exit_code,
            stderr: read.stderr,
            attempts: read.attempts,
            elapsed_s: read.elapsed_s,
            row: read.row.0,
        })
    }
}

/// A journal line as read back.
#[derive(serde::Deserialize)]
struct RecordLine {
    combo_id: u64,
    status: String,
    exit_code: Option<i32>,
    stderr: String,
    attempts: u32,
    elapsed_s: f64,
    row: OrderedObject,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_members_in_written_order() {
        let row = parse_object(r#"{"z": 1, "a": 2.5, "s": "x,y", "n": null, "v": [1, {"b": 2, "a": 1}]}"#).unwrap();
        assert_eq!(row.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["z", "a", "s", "n", "v"]);
        let record = Record {
            combo_id: 7,
            status: Status::Ok,
            exit_code: Some(0),
            stderr: String::new(),
            attempts: 2,
            elapsed_s: 0.25,
            row,
        };
        let line = record.to_line();
        assert!(line.starts_with("{\"combo_id\":7,"), "{line}");
        assert_eq!(crate::table::row_id(crate::table::OutputFormat::JsonLines, &line), Some(7));
        assert_eq!(Record::from_line(&line), Some(record));
        assert_eq!(parse_object("[1]"), None);
        // Python's json.dumps of non-finite floats; a string that spells NaN stays.
        let python = parse_object(r#"{"a": NaN, "b": -Infinity, "c": [Infinity], "d": "NaN \" NaN", "e": 1}"#).unwrap();
        let values: Vec<String> = python.iter().map(|(_, v)| v.to_string()).collect();
        assert_eq!(values, ["null", "null", "[null]", r#""NaN \" NaN""#, "1"]);
        assert_eq!(parse_object("{\"a\":1} trailing"), None);
    }
}
