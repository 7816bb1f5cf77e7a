//! The Raspberry Pi firmware mailbox: SoC temperature, throttled flags and
//! the measured ARM clock in one property call.
//!
//! A property call hands the firmware a buffer of host-endian `u32` words,
//! which it answers in place:
//!
//! ```text
//! word 0   buffer size in bytes          word 1   0 (request) -> 0x80000000 ok / 0x80000001 parse error
//! per tag: id, value buffer size in bytes, 0 -> 0x80000000 | response length, value words...
//! end:     0
//! ```
//!
//! [`Mailbox`] is anything that answers such a buffer: [`Vcio`], the real
//! `/dev/vcio` (Linux only, one `ioctl`), or [`FakeMailbox`], which answers
//! from a small text file as the firmware would, so the encoder and decoder
//! are tested end to end and a simulated board can drive the reading.
//! [`read_sample`] asks for the three values in one buffer
//! ([`sample_request`], [`decode_sample`]).
//!
//! Why not only sysfs: the kernel's `scaling_cur_freq` is the clock it
//! *asked* for, while the firmware may be running the cores slower; and the
//! throttled flags say why.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::{sys, Error};

/// The property-call request code (word 1 of a request).
pub const REQUEST: u32 = 0;
/// Word 1 of an answered buffer: the firmware processed it.
pub const RESPONSE_OK: u32 = 0x8000_0000;
/// Word 1 of an answered buffer: the firmware could not parse it.
pub const RESPONSE_PARSE_ERROR: u32 = 0x8000_0001;
/// Bit 31 of a tag's third word: the firmware answered this tag; the low 31
/// bits are then the length of its answer in bytes.
pub const TAG_RESPONSE: u32 = 0x8000_0000;

/// Tag: SoC temperature. In: sensor id (0). Out: id, millidegrees Celsius.
pub const GET_TEMPERATURE: u32 = 0x0003_0006;
/// Tag: throttled flags. In: mask of sticky bits to clear (0 keeps them).
/// Out: the flags (see [`FirmwareSample::throttled`]).
pub const GET_THROTTLED: u32 = 0x0003_0046;
/// Tag: measured clock rate. In: clock id. Out: id, rate in Hz (0 for a
/// clock that does not exist).
pub const GET_CLOCK_MEASURED: u32 = 0x0003_0047;
/// Clock id of the ARM cores.
pub const ARM_CLOCK_ID: u32 = 3;

/// Throttled flag: under-voltage now (below about 4.63 V).
pub const UNDER_VOLTAGE: u32 = 0x1;
/// Throttled flag: ARM frequency capped now.
pub const ARM_CAPPED: u32 = 0x2;
/// Throttled flag: throttled now.
pub const THROTTLED: u32 = 0x4;
/// Throttled flag: soft temperature limit active now (3A+/3B+ only; a Pi 4
/// has no soft limit).
pub const SOFT_LIMIT: u32 = 0x8;
/// The "has occurred" (sticky) version of a flag is the flag shifted left by
/// this many bits, e.g. `0x20000` for [`ARM_CAPPED`].
pub const OCCURRED_SHIFT: u32 = 16;

/// Something that answers firmware property buffers in place.
pub trait Mailbox {
    /// Sends `words` (a property buffer: size in bytes, request code, tags,
    /// end tag) and leaves the answer in the same words.
    ///
    /// `words[0]` must be a multiple of 4, at least 12 and at most
    /// `4 * words.len()`; otherwise nothing is sent and the result is
    /// [`Error::Mailbox`]. An `Ok` only means the buffer went and came back:
    /// check its response codes ([`check_response`], [`TagSlot::value`]).
    fn property(&mut self, words: &mut [u32]) -> Result<(), Error>;
}

impl<M: Mailbox + ?Sized> Mailbox for &mut M {
    fn property(&mut self, words: &mut [u32]) -> Result<(), Error> {
        (**self).property(words)
    }
}

impl<M: Mailbox + ?Sized> Mailbox for Box<M> {
    fn property(&mut self, words: &mut [u32]) -> Result<(), Error> {
        (**self).property(words)
    }
}

/// Builds a property buffer tag by tag.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    words: Vec<u32>,
}

/// Where one tag sits in a buffer built by [`RequestBuilder`]; reads the
/// tag's answer with [`TagSlot::value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagSlot {
    /// Index of the tag id word.
    offset: usize,
    id: u32,
    value_words: usize,
}

impl Default for RequestBuilder {
    fn default() -> Self {
        RequestBuilder::new()
    }
}

impl RequestBuilder {
    /// An empty request: the size word (filled in by [`build`](Self::build))
    /// and the request code.
    pub fn new() -> RequestBuilder {
        RequestBuilder { words: vec![0, REQUEST] }
    }

    /// Appends tag `id` with a value buffer of `value_words` words, the
    /// larger of its request and its answer, starting with `request` and
    /// zero-filled after it.
    ///
    /// # Panics
    ///
    /// If `request` is longer than `value_words`: a tag's request must fit
    /// in its value buffer.
    pub fn tag(&mut self, id: u32, value_words: usize, request: &[u32]) -> TagSlot {
        assert!(request.len() <= value_words, "tag {id:#010x}: request longer than its value buffer");
        let offset = self.words.len();
        self.words.extend([id, byte_len(value_words), 0]);
        self.words.extend_from_slice(request);
        self.words.resize(offset + 3 + value_words, 0);
        TagSlot { offset, id, value_words }
    }

    /// Appends the end tag and sets the size word: the buffer to hand to
    /// [`Mailbox::property`].
    pub fn build(mut self) -> Vec<u32> {
        self.words.push(0);
        self.words[0] = byte_len(self.words.len());
        self.words
    }
}

/// A length in words as the firmware's byte count.
fn byte_len(words: usize) -> u32 {
    u32::try_from(words * 4).expect("a property buffer is far smaller than 4 GiB")
}

/// Checks word 1 of an answered buffer: `Ok` for [`RESPONSE_OK`], an
/// [`Error::Mailbox`] for a parse error or a buffer that was not answered.
pub fn check_response(words: &[u32]) -> Result<(), Error> {
    match words.get(1).copied() {
        Some(RESPONSE_OK) => Ok(()),
        Some(RESPONSE_PARSE_ERROR) => {
            Err(Error::Mailbox { what: "the firmware could not parse the request (0x80000001)".into() })
        }
        Some(code) => Err(Error::Mailbox { what: format!("no answer: response code {code:#010x}") }),
        None => Err(Error::Mailbox { what: format!("a buffer of {} word(s) has no response code", words.len()) }),
    }
}

impl TagSlot {
    /// The tag id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// This tag's answer in `words` (the answered buffer it was built in):
    /// its value words, as many as the firmware's response length covers.
    ///
    /// An [`Error::Mailbox`] naming the tag when the tag id was overwritten,
    /// the response bit (b31) is clear, the answer is longer than the value
    /// buffer (the firmware truncated it) or shorter than `min_bytes`.
    pub fn value<'w>(&self, words: &'w [u32], min_bytes: u32) -> Result<&'w [u32], Error> {
        let name = tag_name(self.id);
        let fail = |what: String| Err(Error::Mailbox { what: format!("{name} ({:#010x}): {what}", self.id) });
        let Some(header) = words.get(self.offset..self.offset + 3) else {
            return fail(format!("the buffer ends at word {}", words.len()));
        };
        if header[0] != self.id {
            return fail(format!("tag id overwritten with {:#010x}", header[0]));
        }
        if header[2] & TAG_RESPONSE == 0 {
            return fail("no response (b31 clear): the firmware does not know the tag".into());
        }
        let len = header[2] & !TAG_RESPONSE;
        if len > byte_len(self.value_words) {
            return fail(format!("the answer needs {len} bytes, the buffer has {}", byte_len(self.value_words)));
        }
        if len < min_bytes {
            return fail(format!("the answer has {len} bytes, expected {min_bytes}"));
        }
        let start = self.offset + 3;
        Ok(&words[start..start + (len as usize).div_ceil(4)])
    }
}

/// A readable name for the tags this module knows, for error messages.
fn tag_name(id: u32) -> &'static str {
    match id {
        GET_TEMPERATURE => "GET_TEMPERATURE",
        GET_THROTTLED => "GET_THROTTLED",
        GET_CLOCK_MEASURED => "GET_CLOCK_MEASURED",
        _ => "tag",
    }
}

/// What the firmware said in one property call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FirmwareSample {
    /// SoC temperature in degrees Celsius (the firmware's millidegrees
    /// divided by 1000).
    pub temp_c: f64,
    /// The `get_throttled` flags: bits 0-3 now ([`UNDER_VOLTAGE`],
    /// [`ARM_CAPPED`], [`THROTTLED`], [`SOFT_LIMIT`]), bits 16-19 "has
    /// occurred since last cleared". The kernel's `raspberrypi-hwmon` clears
    /// the sticky bits every 2 s, so do not use them as a history.
    pub throttled: u32,
    /// The ARM clock the firmware measured, in Hz (below the kernel's
    /// `scaling_cur_freq` while the firmware throttles).
    pub arm_clock_hz: u64,
}

impl FirmwareSample {
    /// Under-voltage now (bit 0).
    pub fn under_voltage_now(&self) -> bool {
        self.throttled & UNDER_VOLTAGE != 0
    }

    /// ARM frequency capped now (bit 1).
    pub fn capped_now(&self) -> bool {
        self.throttled & ARM_CAPPED != 0
    }

    /// Throttled now (bit 2).
    pub fn throttled_now(&self) -> bool {
        self.throttled & THROTTLED != 0
    }

    /// Soft temperature limit active now (bit 3).
    pub fn soft_limit_now(&self) -> bool {
        self.throttled & SOFT_LIMIT != 0
    }

    /// Whether any of the `now` flags (e.g. [`THROTTLED`]) is set in its
    /// sticky "has occurred" form.
    pub fn occurred(&self, now: u32) -> bool {
        self.throttled & (now << OCCURRED_SHIFT) != 0
    }
}

/// The buffer [`sample_request`] builds, and where its three tags sit.
fn sample_layout() -> (Vec<u32>, [TagSlot; 3]) {
    let mut request = RequestBuilder::new();
    let temp = request.tag(GET_TEMPERATURE, 2, &[0]);
    // Clear mask 0: leave the sticky bits to whoever else reads them.
    let throttled = request.tag(GET_THROTTLED, 1, &[0]);
    let clock = request.tag(GET_CLOCK_MEASURED, 2, &[ARM_CLOCK_ID]);
    (request.build(), [temp, throttled, clock])
}

/// One property buffer asking for the SoC temperature (sensor 0), the
/// throttled flags (clearing none) and the measured ARM clock: 17 words.
pub fn sample_request() -> Vec<u32> {
    sample_layout().0
}

/// Decodes a [`sample_request`] buffer the firmware has answered.
///
/// Every response code is checked: the buffer's and each tag's response
/// bit and length, and the sensor and clock ids echoed back.
pub fn decode_sample(words: &[u32]) -> Result<FirmwareSample, Error> {
    let (_, [temp, throttled, clock]) = sample_layout();
    check_response(words)?;
    let temp = temp.value(words, 8)?;
    let throttled = throttled.value(words, 4)?[0];
    let clock = clock.value(words, 8)?;
    if clock[0] != ARM_CLOCK_ID {
        return Err(Error::Mailbox {
            what: format!("GET_CLOCK_MEASURED answered for clock {}, not the ARM clock ({ARM_CLOCK_ID})", clock[0]),
        });
    }
    Ok(FirmwareSample { temp_c: f64::from(temp[1]) / 1000.0, throttled, arm_clock_hz: u64::from(clock[1]) })
}

/// Asks `mailbox` for a [`FirmwareSample`] in one property call.
pub fn read_sample<M: Mailbox + ?Sized>(mailbox: &mut M) -> Result<FirmwareSample, Error> {
    let mut words = sample_request();
    mailbox.property(&mut words)?;
    decode_sample(&words)
}

/// Checks the size word before a buffer is handed to the firmware, which
/// reads and writes as many bytes as it says.
fn check_size(words: &[u32]) -> Result<(), Error> {
    let size = words.first().copied().unwrap_or(0);
    let room = words.len().saturating_mul(4);
    if size % 4 != 0 || size < 12 || usize::try_from(size).map_or(true, |size| size > room) {
        return Err(Error::Mailbox {
            what: format!("size word {size} is not a multiple of 4 from 12 to the buffer's {room} bytes"),
        });
    }
    Ok(())
}

/// The firmware mailbox device `/dev/vcio` (Linux on a Raspberry Pi).
#[derive(Debug)]
pub struct Vcio {
    inner: sys::VcioInner,
}

impl Vcio {
    /// Where the device lives.
    pub const PATH: &'static str = "/dev/vcio";

    /// Opens [`Vcio::PATH`] for reading and writing. Off a Pi that is an
    /// [`Error::Io`] naming the path with `ENOENT` as its source; without
    /// access (the device is usually group `video`), `EACCES`. On targets
    /// other than Linux, [`Error::Unsupported`].
    pub fn open() -> Result<Vcio, Error> {
        Vcio::open_path(Path::new(Vcio::PATH))
    }

    /// Opens another path as the mailbox device (for tests: an `ioctl` on
    /// anything but `/dev/vcio` fails with `ENOTTY`).
    pub fn open_path(path: &Path) -> Result<Vcio, Error> {
        Ok(Vcio { inner: sys::VcioInner::open(path)? })
    }
}

impl Mailbox for Vcio {
    fn property(&mut self, words: &mut [u32]) -> Result<(), Error> {
        check_size(words)?;
        self.inner.property(words)
    }
}

/// The firmware values a [`FakeMailbox`] answers with, as kept in its text
/// file:
///
/// ```text
/// temp_mc=81234
/// throttled=0x20002
/// arm_hz=1000000000
/// ```
///
/// Each key once, decimal or `0x` hexadecimal; blank lines and lines
/// starting with `#` are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeFirmware {
    /// SoC temperature in millidegrees Celsius.
    pub temp_mc: u32,
    /// The throttled flags.
    pub throttled: u32,
    /// The measured ARM clock in Hz.
    pub arm_hz: u32,
}

impl FakeFirmware {
    /// Parses the text form; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<FakeFirmware, Error> {
        let bad = |what: String| Error::Parse { path: path.to_owned(), what };
        let mut values: [Option<u32>; 3] = [None; 3];
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (key, value) =
                line.split_once('=').ok_or_else(|| bad(format!("expected key=value, found {line:?}")))?;
            let slot = match key.trim() {
                "temp_mc" => 0,
                "throttled" => 1,
                "arm_hz" => 2,
                other => return Err(bad(format!("unknown key {other:?} (temp_mc, throttled, arm_hz)"))),
            };
            let value = value.trim();
            let parsed = match value.strip_prefix("0x") {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => value.parse(),
            };
            let parsed = parsed.map_err(|_| bad(format!("{key}: expected a u32, found {value:?}")))?;
            if values[slot].replace(parsed).is_some() {
                return Err(bad(format!("{key} given twice")));
            }
        }
        match values {
            [Some(temp_mc), Some(throttled), Some(arm_hz)] => Ok(FakeFirmware { temp_mc, throttled, arm_hz }),
            _ => Err(bad("expected temp_mc, throttled and arm_hz".into())),
        }
    }

    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<FakeFirmware, Error> {
        let text = fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_owned(), source })?;
        FakeFirmware::parse(&text, path)
    }

    /// The text form [`parse`](Self::parse) reads.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "temp_mc={}", self.temp_mc);
        let _ = writeln!(text, "throttled={:#x}", self.throttled);
        let _ = writeln!(text, "arm_hz={}", self.arm_hz);
        text
    }

    /// Writes the text form to `path` atomically (a temporary file in the
    /// same directory, then a rename), so a [`FakeMailbox`] reading it
    /// concurrently sees the old values or the new ones, never half.
    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        fs::write(&tmp, self.to_text()).map_err(|source| Error::Write { path: tmp.clone(), source })?;
        fs::rename(&tmp, path).map_err(|source| Error::Write { path: path.to_owned(), source })
    }

    /// Answers a property buffer in place as the firmware does, with these
    /// values: each known tag ([`GET_TEMPERATURE`], [`GET_THROTTLED`],
    /// [`GET_CLOCK_MEASURED`]) gets its value, the response bit and its
    /// length (or, if its value buffer is too short, only the response bit
    /// and the length it would need); unknown tags are left unanswered;
    /// a malformed buffer gets [`RESPONSE_PARSE_ERROR`].
    ///
    /// The clear mask of `GET_THROTTLED` is ignored: the file is the
    /// simulated board's to change.
    pub fn answer(&self, words: &mut [u32]) -> Result<(), Error> {
        check_size(words)?;
        let end = words[0] as usize / 4;
        let words = &mut words[..end];
        if words[1] != REQUEST {
            words[1] = RESPONSE_PARSE_ERROR;
            return Ok(());
        }
        let mut at = 2;
        loop {
            let Some(&id) = words.get(at) else {
                // No end tag within the size.
                words[1] = RESPONSE_PARSE_ERROR;
                return Ok(());
            };
            if id == 0 {
                break;
            }
            let Some(&buf_bytes) = words.get(at + 1) else {
                words[1] = RESPONSE_PARSE_ERROR;
                return Ok(());
            };
            let value = at + 3;
            let next = value + (buf_bytes as usize).div_ceil(4);
            if next > words.len() {
                words[1] = RESPONSE_PARSE_ERROR;
                return Ok(());
            }
            // The answer's words; a one-word answer leaves the second unused.
            let answer: Option<([u32; 2], usize)> = match id {
                GET_TEMPERATURE => Some(([words.get(value).copied().unwrap_or(0), self.temp_mc], 2)),
                GET_THROTTLED => Some(([self.throttled, 0], 1)),
                GET_CLOCK_MEASURED => {
                    let clock = words.get(value).copied().unwrap_or(0);
                    Some(([clock, if clock == ARM_CLOCK_ID { self.arm_hz } else { 0 }], 2))
                }
                _ => None,
            };
            if let Some((answer, n)) = answer {
                let len = byte_len(n);
                if len <= buf_bytes {
                    words[value..value + n].copy_from_slice(&answer[..n]);
                }
                words[at + 2] = TAG_RESPONSE | len;
            }
            at = next;
        }
        words[1] = RESPONSE_OK;
        Ok(())
    }
}

/// A [`Mailbox`] that answers from a [`FakeFirmware`] text file, read
/// afresh on every call so that whoever writes the file (a test, a
/// simulated board) changes what the next call returns.
#[derive(Debug, Clone)]
pub struct FakeMailbox {
    path: PathBuf,
}

impl FakeMailbox {
    /// A mailbox answering from the file at `path` (which need not exist
    /// yet; a call while it is missing fails like an absent device).
    pub fn new(path: impl Into<PathBuf>) -> FakeMailbox {
        FakeMailbox { path: path.into() }
    }

    /// The file it answers from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Mailbox for FakeMailbox {
    fn property(&mut self, words: &mut [u32]) -> Result<(), Error> {
        check_size(words)?;
        FakeFirmware::read(&self.path)?.answer(words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake mailbox with the issue's example values, and its directory.
    fn fake(text: &str) -> (tempfile::TempDir, FakeMailbox) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("firmware");
        fs::write(&path, text).unwrap();
        (dir, FakeMailbox::new(path))
    }

    const EXAMPLE: &str = "temp_mc=81234\nthrottled=0x20002\narm_hz=1000000000\n";

    #[test]
    fn sample_request_is_the_three_tags_in_one_buffer() {
        #[rustfmt::skip]
        let expected = vec![
            68, 0,
            0x0003_0006, 8, 0, 0, 0,
            0x0003_0046, 4, 0, 0,
            0x0003_0047, 8, 0, 3, 0,
            0,
        ];
        assert_eq!(sample_request(), expected);
    }

    #[test]
    fn the_temperature_example_from_the_notes_gets_the_firmware_answer() {
        // thermal.md: [32, 0, 0x00030006, 8, 0, 0, 0, 0] -> w[1] == 0x80000000,
        // w[4] == 0x80000008, w[6] = SoC temperature in m°C.
        let (_dir, mut mailbox) = fake(EXAMPLE);
        let mut words = [32, 0, 0x0003_0006, 8, 0, 0, 0, 0];
        mailbox.property(&mut words).unwrap();
        assert_eq!(words, [32, 0x8000_0000, 0x0003_0006, 8, 0x8000_0008, 0, 81234, 0]);
    }

    #[test]
    fn fake_answers_the_sample_request_word_for_word() {
        let (_dir, mut mailbox) = fake(EXAMPLE);
        let mut words = sample_request();
        mailbox.property(&mut words).unwrap();
        #[rustfmt::skip]
        let expected = vec![
            68, 0x8000_0000,
            0x0003_0006, 8, 0x8000_0008, 0, 81234,
            0x0003_0046, 4, 0x8000_0004, 0x20002,
            0x0003_0047, 8, 0x8000_0008, 3, 1_000_000_000,
            0,
        ];
        assert_eq!(words, expected);
    }

    #[test]
    fn read_sample_decodes_temperature_flags_and_clock() {
        let (_dir, mut mailbox) = fake(EXAMPLE);
        let sample = read_sample(&mut mailbox).unwrap();
        assert_eq!(sample, FirmwareSample { temp_c: 81.234, throttled: 0x20002, arm_clock_hz: 1_000_000_000 });
        assert!(!sample.under_voltage_now());
        assert!(sample.capped_now());
        assert!(!sample.throttled_now());
        assert!(!sample.soft_limit_now());
        assert!(sample.occurred(ARM_CAPPED));
        assert!(!sample.occurred(UNDER_VOLTAGE));
    }

    #[test]
    fn throttled_helpers_read_one_bit_each() {
        let sample = |throttled| FirmwareSample { temp_c: 0.0, throttled, arm_clock_hz: 0 };
        assert!(sample(0x1).under_voltage_now() && !sample(0x1_0000).under_voltage_now());
        assert!(sample(0x2).capped_now());
        assert!(sample(0x4).throttled_now() && !sample(0x3).throttled_now());
        assert!(sample(0x8).soft_limit_now());
        assert!(sample(0x8_0000).occurred(SOFT_LIMIT) && !sample(0x8).occurred(SOFT_LIMIT));
        assert!(sample(0x5_0000).occurred(UNDER_VOLTAGE | THROTTLED));
    }

    #[test]
    fn the_fake_follows_its_file_as_it_changes() {
        let (_dir, mut mailbox) = fake(EXAMPLE);
        let cool = FakeFirmware { temp_mc: 45_000, throttled: 0, arm_hz: 1_500_000_000 };
        cool.write(mailbox.path()).unwrap();
        assert_eq!(FakeFirmware::read(mailbox.path()).unwrap(), cool);
        let sample = read_sample(&mut mailbox).unwrap();
        assert_eq!(sample, FirmwareSample { temp_c: 45.0, throttled: 0, arm_clock_hz: 1_500_000_000 });
        // The temporary file of the atomic write is gone.
        assert_eq!(fs::read_dir(mailbox.path().parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn fake_firmware_text_round_trips_and_rejects_typos() {
        let path = Path::new("/fake/firmware");
        let state = FakeFirmware::parse("# a board\n\n temp_mc = 81234 \nthrottled=0x20002\narm_hz=1000000000\n", path)
            .unwrap();
        assert_eq!(state, FakeFirmware { temp_mc: 81234, throttled: 0x20002, arm_hz: 1_000_000_000 });
        assert_eq!(FakeFirmware::parse(&state.to_text(), path).unwrap(), state);
        for (text, why) in [
            ("temp_mc=1\nthrottled=0\n", "expected temp_mc, throttled and arm_hz"),
            ("temp_mc=1\nthrottled=0\narm_hz=1\ntemp=2\n", "unknown key \"temp\""),
            ("temp_mc=1\ntemp_mc=2\n", "temp_mc given twice"),
            ("temp_mc=-1\n", "temp_mc: expected a u32, found \"-1\""),
            ("temp_mc\n", "expected key=value"),
        ] {
            let err = FakeFirmware::parse(text, path).unwrap_err();
            assert!(err.to_string().starts_with("cannot parse /fake/firmware: "), "{err}");
            assert!(err.to_string().contains(why), "{err} lacks {why}");
        }
    }

    #[test]
    fn a_missing_fake_file_fails_like_an_absent_device() {
        let dir = tempfile::tempdir().unwrap();
        let mut mailbox = FakeMailbox::new(dir.path().join("none"));
        match read_sample(&mut mailbox).unwrap_err() {
            Error::Io { path, source } => {
                assert_eq!(path, dir.path().join("none"));
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected an io error, got {other:?}"),
        }
    }

    #[test]
    fn response_codes_are_checked() {
        let answered = || {
            let (_dir, mut mailbox) = fake(EXAMPLE);
            let mut words = sample_request();
            mailbox.property(&mut words).unwrap();
            words
        };
        let message = |words: &[u32]| decode_sample(words).unwrap_err().to_string();

        let mut words = answered();
        words[1] = RESPONSE_PARSE_ERROR;
        assert_eq!(message(&words), "firmware mailbox: the firmware could not parse the request (0x80000001)");
        words[1] = REQUEST;
        assert_eq!(message(&words), "firmware mailbox: no answer: response code 0x00000000");

        let mut words = answered();
        words[9] = 0; // GET_THROTTLED's response bit
        assert_eq!(
            message(&words),
            "firmware mailbox: GET_THROTTLED (0x00030046): no response (b31 clear): the firmware does not know the tag"
        );

        let mut words = answered();
        words[4] = TAG_RESPONSE | 4; // a temperature answer without the value
        assert_eq!(
            message(&words),
            "firmware mailbox: GET_TEMPERATURE (0x00030006): the answer has 4 bytes, expected 8"
        );

        let mut words = answered();
        words[13] = TAG_RESPONSE | 12; // longer than the 8-byte buffer: truncated
        assert!(message(&words).contains("GET_CLOCK_MEASURED (0x00030047): the answer needs 12 bytes"));

        let mut words = answered();
        words[14] = 4; // the core clock, not the ARM clock
        assert!(message(&words).contains("clock 4, not the ARM clock (3)"));

        let mut words = answered();
        words[7] = 0x0003_0001;
        assert!(message(&words).contains("GET_THROTTLED (0x00030046): tag id overwritten with 0x00030001"));

        assert!(message(&[68]).contains("has no response code"));
    }

    #[test]
    fn the_fake_answers_like_the_firmware_for_odd_buffers() {
        let (_dir, mut mailbox) = fake(EXAMPLE);
        // An unknown tag is left unanswered, the known one after it is answered.
        let mut request = RequestBuilder::new();
        let unknown = request.tag(0x0003_0099, 1, &[7]);
        let throttled = request.tag(GET_THROTTLED, 1, &[0]);
        let mut words = request.build();
        mailbox.property(&mut words).unwrap();
        check_response(&words).unwrap();
        assert_eq!(throttled.value(&words, 4).unwrap(), &[0x20002]);
        assert_eq!(unknown.id(), 0x0003_0099);
        assert!(unknown.value(&words, 0).unwrap_err().to_string().contains("tag (0x00030099): no response"));

        // A value buffer too small: the response bit and the length needed.
        let mut words = vec![32, 0, GET_TEMPERATURE, 4, 0, 0, 0, 0];
        mailbox.property(&mut words).unwrap();
        assert_eq!(words, [32, RESPONSE_OK, GET_TEMPERATURE, 4, TAG_RESPONSE | 8, 0, 0, 0]);

        // Another clock than the ARM's measures 0 Hz.
        let mut words = vec![32, 0, GET_CLOCK_MEASURED, 8, 0, 4, 0, 0];
        mailbox.property(&mut words).unwrap();
        assert_eq!(words[4..7], [TAG_RESPONSE | 8, 4, 0]);

        // No end tag within the size, a tag overrunning it, or a response
        // code in a request: parse errors.
        for mut words in [vec![12, 0, GET_THROTTLED], vec![24, 0, GET_THROTTLED, 16, 0, 0], vec![12, 5, 0]] {
            mailbox.property(&mut words).unwrap();
            assert_eq!(words[1], RESPONSE_PARSE_ERROR, "{words:?}");
        }

        // A size word the buffer cannot hold is refused before anything is read.
        for mut words in [vec![36, 0, 0], vec![10, 0, 0], vec![8, 0], vec![]] {
            let err = mailbox.property(&mut words).unwrap_err();
            assert!(matches!(err, Error::Mailbox { .. }), "{err:?}");
        }
    }

    #[test]
    #[should_panic(expected = "request longer than its value buffer")]
    fn a_request_longer_than_its_value_buffer_is_a_bug() {
        RequestBuilder::new().tag(GET_TEMPERATURE, 1, &[0, 0]);
    }

    #[test]
    fn mailboxes_work_through_references_and_boxes() {
        let (_dir, mailbox) = fake(EXAMPLE);
        let mut boxed: Box<dyn Mailbox> = Box::new(mailbox);
        assert_eq!(read_sample(&mut boxed).unwrap().throttled, 0x20002);
        assert_eq!(read_sample(&mut &mut boxed).unwrap().arm_clock_hz, 1_000_000_000);
    }
}
