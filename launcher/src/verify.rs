//! `sweeprun verify OUT`: recomputes a finished table's BLAKE3 digest and compares it with
//! the one its sidecar `<OUT>.meta.json` recorded (what `b3sum` would check, without
//! installing it).

use crate::error::{Failure, Result};
use crate::ledger;
use std::path::Path;

/// Checks `table` against its sidecar. `Ok` holds the line for stdout; a digest that
/// differs is a runtime failure (exit 1); a missing or unreadable table or sidecar, or
/// one without `output.blake3`, is bad input (exit 2).
pub fn verify(table: &Path) -> Result<String> {
    let sidecar_path = ledger::sidecar_path(table);
    let sidecar_text = std::fs::read_to_string(&sidecar_path)
        .map_err(|e| Failure::usage(format!("cannot read the sidecar {}: {e}", sidecar_path.display())))?;
    let recorded = serde_json::from_str::<serde_json::Value>(&sidecar_text)
        .ok()
        .and_then(|sidecar| sidecar["output"]["blake3"].as_str().map(str::to_ascii_lowercase))
        .ok_or_else(|| Failure::usage(format!("{} has no output.blake3 digest", sidecar_path.display())))?;
    let mut file =
        std::fs::File::open(table).map_err(|e| Failure::usage(format!("cannot open {}: {e}", table.display())))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(&mut file).map_err(|e| Failure::usage(format!("cannot read {}: {e}", table.display())))?;
    let actual = hasher.finalize().to_hex();
    if actual.as_str() != recorded {
        return Err(Failure::runtime(format!(
            "{}: BLAKE3 {actual} differs from {recorded} in {}: the table changed after the sweep",
            table.display(),
            sidecar_path.display()
        )));
    }
    Ok(format!("{}: OK (BLAKE3 {actual})\n", table.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_mismatch_and_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("t.csv");
        std::fs::write(&table, "combo_id\n0\n").unwrap();
        let digest = blake3::hash(b"combo_id\n0\n").to_hex();
        let sidecar = ledger::sidecar_path(&table);
        std::fs::write(&sidecar, format!("{{\"output\": {{\"blake3\": \"{digest}\"}}}}")).unwrap();
        assert!(verify(&table).unwrap().contains("OK"));
        std::fs::write(&table, "combo_id\n1\n").unwrap();
        assert!(matches!(verify(&table), Err(Failure::Runtime(m)) if m.contains("differs")));
        std::fs::write(&sidecar, "{}").unwrap();
        assert!(matches!(verify(&table), Err(Failure::Usage(m)) if m.contains("output.blake3")));
        assert!(matches!(verify(&dir.path().join("none.csv")), Err(Failure::Usage(_))));
    }
}
