//! Bounded fuzzing through the real CLI: mutated specs and data files (one to three edits
//! of valid ones, from a deterministic generator) must end in exit 0 (a correct sweep) or
//! exit 2 with exactly one stderr line, nothing written and the inputs untouched; never a
//! panic, a hang or a half-written table. About 200 runs, a few seconds.

use std::collections::BTreeMap;
use std::path::Path;
use sweeprun_tests::{output_of, sweeprun};

const SPEC: &str = "[data]\npath = \"d.csv\"\n\n[strategy]\nname = \"sma_cross\"\ndirection = \"long\"\n\
fill = \"open\"\nfee = 0.001\n\n[grid]\nfast = { from = 2, to = 6 }\nslow = [8, 10, 12]\n\
where = \"fast < slow and fast != 4\"\n\n[output]\npath = \"r.csv\"\n";

fn data() -> String {
    let mut text = String::from("Date,Open,High,Low,Close,Volume\n");
    let mut price = 100.0f64;
    for day in 0..40 {
        price *= 1.0 + (((day * 7919) % 13) as f64 - 6.0) / 200.0;
        let month = 1 + day / 28;
        let dom = 1 + day % 28;
        text.push_str(&format!("2020-{month:02}-{dom:02},{:.2},1,1,{:?},1\n", price * 1.001, price));
    }
    text
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// One to three edits (replace, insert, delete a character) from a syntax-heavy alphabet.
fn mutate(text: &str, rng: &mut XorShift) -> String {
    const ALPHABET: &[char] = &[
        ',', '"', '\n', '.', '-', '+', 'e', '0', '1', '5', '9', ' ', '=', '[', ']', '{', '}', '<', '>', '/', 'x', '_',
    ];
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + rng.next(3) {
        let at = rng.next(chars.len() + 1);
        let c = ALPHABET[rng.next(ALPHABET.len())];
        match rng.next(3) {
            0 if at < chars.len() => chars[at] = c,
            1 => chars.insert(at, c),
            _ if at < chars.len() => {
                chars.remove(at);
            }
            _ => chars.push(c),
        }
    }
    chars.into_iter().collect()
}

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap_or_default())
        })
        .collect()
}

#[test]
fn mutated_specs_and_data_end_in_a_sweep_or_one_line() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let (mut ok, mut refused) = (0, 0);
    for case in 0..200 {
        let dir = tempfile::tempdir().unwrap();
        let (spec, data) = if case % 2 == 0 {
            (mutate(SPEC, &mut rng), data())
        } else {
            (SPEC.to_string(), mutate(&data(), &mut rng))
        };
        std::fs::write(dir.path().join("s.toml"), &spec).unwrap();
        std::fs::write(dir.path().join("d.csv"), &data).unwrap();
        let before = snapshot(dir.path());
        let run = output_of(sweeprun(dir.path()).args(["run", "s.toml", "-np", "2"]));
        let stderr = String::from_utf8_lossy(&run.stderr);
        let what = format!("case {case}: spec {spec:?}\ndata {data:?}\nstderr {stderr}");
        match run.status.code() {
            Some(0) => {
                ok += 1;
                let table = std::fs::read_to_string(dir.path().join("r.csv"));
                let table = table.unwrap_or_else(|e| panic!("{what}\nno table after exit 0: {e}"));
                assert!(table.lines().count() >= 2, "{what}");
                for (name, bytes) in &before {
                    assert_eq!(&std::fs::read(dir.path().join(name)).unwrap(), bytes, "{what}: {name} changed");
                }
            }
            Some(2) => {
                refused += 1;
                assert_eq!(stderr.lines().count(), 1, "{what}");
                assert!(run.stdout.is_empty(), "{what}");
                assert_eq!(snapshot(dir.path()), before, "{what}: files changed on exit 2");
            }
            other => panic!("{what}\nexit {other:?}"),
        }
    }
    // The generator must exercise both outcomes, or it tests little.
    assert!(ok >= 20 && refused >= 20, "{ok} sweeps and {refused} refusals");
}
