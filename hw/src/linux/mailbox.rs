//! `/dev/vcio`: the firmware property call as one `ioctl`.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::sys::ioctl::ioctl_num_type;

use crate::Error;

/// `IOCTL_MBOX_PROPERTY = _IOWR(100, 0, char *)`: the size field is that of a
/// pointer, so 0xC0086400 on 64-bit targets and 0xC0046400 on 32-bit ones.
/// The argument is the buffer's address itself (hence the `_bad` macro: the
/// plain one would type it as a pointer to a pointer).
pub(crate) const IOCTL_MBOX_PROPERTY: ioctl_num_type =
    nix::request_code_readwrite!(100, 0, std::mem::size_of::<*mut u8>());

nix::ioctl_readwrite_bad!(mbox_property, IOCTL_MBOX_PROPERTY, u32);

#[derive(Debug)]
pub(crate) struct VcioInner {
    file: File,
    path: PathBuf,
}

impl VcioInner {
    pub(crate) fn open(path: &Path) -> Result<VcioInner, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| Error::Io { path: path.to_owned(), source })?;
        Ok(VcioInner { file, path: path.to_owned() })
    }

    /// The caller has checked that `words[0]` (the byte count the kernel
    /// copies in and back out) is at most `4 * words.len()`.
    pub(crate) fn property(&mut self, words: &mut [u32]) -> Result<(), Error> {
        debug_assert!(words.first().is_some_and(|&size| size as usize <= words.len() * 4));
        // SAFETY: `fd` is open for as long as `self.file` lives, which spans the
        // call. The vcio driver reads the size from the first word, then copies
        // that many bytes from `words` and back into it; the caller has checked
        // that this size fits in `words`, which is borrowed mutably, so nothing
        // else reads or writes it meanwhile.
        let result = unsafe { mbox_property(self.file.as_raw_fd(), words.as_mut_ptr()) };
        // The property call is a read of the device: name it.
        result.map(drop).map_err(|errno| Error::Io { path: self.path.clone(), source: io::Error::from(errno) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::{read_sample, sample_request, Mailbox, Vcio};

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn ioctl_request_code_is_the_64_bit_iowr() {
        assert_eq!(IOCTL_MBOX_PROPERTY, 0xC008_6400);
    }

    #[cfg(target_pointer_width = "32")]
    #[test]
    fn ioctl_request_code_is_the_32_bit_iowr() {
        assert_eq!(IOCTL_MBOX_PROPERTY, 0xC004_6400);
    }

    #[test]
    fn opening_a_missing_device_is_a_clean_enoent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vcio");
        match Vcio::open_path(&path).unwrap_err() {
            Error::Io { path: p, source } => {
                assert_eq!(p, path);
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("expected an io error, got {other:?}"),
        }
    }

    #[test]
    fn real_vcio_opens_on_a_pi_and_is_absent_elsewhere() {
        match Vcio::open() {
            Ok(mut vcio) => {
                // On a Pi (with access to the device): a sensible reading.
                let sample = read_sample(&mut vcio).unwrap();
                assert!((0.0..=110.0).contains(&sample.temp_c), "{sample:?}");
            }
            Err(Error::Io { source, .. }) => {
                assert!(matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied), "{source}")
            }
            Err(other) => panic!("unexpected error opening /dev/vcio: {other:?}"),
        }
    }

    #[test]
    fn ioctl_on_another_device_is_an_error_naming_it_and_leaves_the_buffer() {
        // /dev/null has no ioctls: ENOTTY, and the kernel touches no memory.
        let mut mailbox = Vcio::open_path(Path::new("/dev/null")).unwrap();
        let mut words = sample_request();
        let before = words.clone();
        match mailbox.property(&mut words).unwrap_err() {
            Error::Io { path, source } => {
                assert_eq!(path, Path::new("/dev/null"));
                // ENOSYS: under qemu-user, which passes on only the ioctls it knows.
                assert!(matches!(source.raw_os_error(), Some(libc::ENOTTY | libc::ENOSYS)), "{source}");
            }
            other => panic!("expected an io error, got {other:?}"),
        }
        assert_eq!(words, before);
    }

    #[test]
    fn an_oversized_size_word_is_refused_before_the_ioctl() {
        let mut mailbox = Vcio::open_path(Path::new("/dev/null")).unwrap();
        let mut words = sample_request();
        words[0] += 4;
        assert!(matches!(mailbox.property(&mut words), Err(Error::Mailbox { .. })));
    }
}
