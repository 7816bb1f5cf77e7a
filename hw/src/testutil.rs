//! Fake sysfs trees for tests.

use std::fs;
use std::path::Path;

use tempfile::TempDir;

/// A sysfs root in a temporary directory, deleted on drop.
pub(crate) struct FakeSysfs {
    dir: TempDir,
}

impl FakeSysfs {
    pub(crate) fn new() -> Self {
        FakeSysfs { dir: tempfile::tempdir().expect("create temp dir") }
    }

    /// The path to pass as `sys_root`.
    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `rel` under the root, creating parent dirs.
    pub(crate) fn write(&self, rel: &str, contents: &str) {
        let path = self.dir.path().join(rel);
        fs::create_dir_all(path.parent().expect("rel has a parent")).expect("create dirs");
        fs::write(&path, contents).expect("write fake sysfs file");
    }
}
