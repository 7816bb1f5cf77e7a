//! Ranks register with the node's agent over a local (unix) socket.
//!
//! A client (the launcher, for its local ranks) connects and writes one line per rank
//! process group: `REGISTER <pgid>`. While the connection is open the agent manages those
//! groups; when it closes (the sweep ended, the launcher died) the agent resumes them and
//! forgets them. The agent writes `STATUS <json>` lines to every client after each sample
//! (temperature, clock cap, duty, time paused), which the launcher shows in its progress.
//! The other way round, a client that sees its connection close (the agent died, even by
//! `kill -9`) resumes its ranks itself: no rank stays stopped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// What a client did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Client `.0` asks the agent to manage process group `.1`.
    Register(u64, u32),
    /// Client `.0` disconnected: its groups are no longer managed.
    Closed(u64),
}

/// The listening socket and its clients.
pub struct Registry {
    path: PathBuf,
    events: mpsc::Receiver<Registration>,
    clients: Arc<Mutex<HashMap<u64, UnixStream>>>,
    /// Groups registered by each client.
    groups: HashMap<u64, Vec<u32>>,
}

impl Registry {
    /// Listens at `path` (a stale socket file from a dead agent is replaced).
    pub fn listen(path: &Path) -> std::io::Result<Registry> {
        if path.exists() && UnixStream::connect(path).is_err() {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        // Any local user may register *their own* ranks (checked per client below).
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
        let (tx, events) = mpsc::channel();
        let clients: Arc<Mutex<HashMap<u64, UnixStream>>> = Arc::default();
        let shared = Arc::clone(&clients);
        std::thread::Builder::new().name("registry".into()).spawn(move || {
            for (id, stream) in (0u64..).zip(listener.incoming()) {
                let Ok(stream) = stream else { continue };
                let peer = peer_uid(&stream);
                if let Ok(writer) = stream.try_clone() {
                    // A client that stops reading (a launcher stopped with Ctrl-Z) must not
                    // block the agent: its status lines are dropped instead.
                    let _ = writer.set_write_timeout(Some(std::time::Duration::from_millis(20)));
                    shared.lock().unwrap_or_else(|p| p.into_inner()).insert(id, writer);
                }
                let tx = tx.clone();
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { break };
                        let pgid = line.strip_prefix("REGISTER ").and_then(|p| p.trim().parse::<u32>().ok());
                        if let Some(pgid) = pgid.filter(|&p| p > 1 && may_manage(peer, p)) {
                            let _ = tx.send(Registration::Register(id, pgid));
                        }
                    }
                    shared.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    let _ = tx.send(Registration::Closed(id));
                });
            }
        })?;
        Ok(Registry { path: path.to_path_buf(), events, clients, groups: HashMap::new() })
    }

    /// What happened since the last call: groups to manage and groups to let go.
    pub fn poll(&mut self) -> (Vec<u32>, Vec<u32>) {
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        while let Ok(event) = self.events.try_recv() {
            match event {
                Registration::Register(client, pgid) => {
                    self.groups.entry(client).or_default().push(pgid);
                    added.push(pgid);
                }
                Registration::Closed(client) => removed.extend(self.groups.remove(&client).unwrap_or_default()),
            }
        }
        (added, removed)
    }

    /// Sends `STATUS <json>` to every client.
    pub fn broadcast(&self, status: &str) {
        let line = format!("STATUS {status}\n");
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients.retain(|_, stream| stream.write_all(line.as_bytes()).is_ok());
    }
}

/// The user id of the process on the other end of `stream`.
fn peer_uid(stream: &UnixStream) -> Option<u32> {
    nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials).ok().map(|c| c.uid())
}

/// Whether a client running as `peer` may have process group `pgid` paused: root may,
/// anyone else only for processes of their own.
fn may_manage(peer: Option<u32>, pgid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    match peer {
        Some(0) => true,
        Some(uid) => std::fs::metadata(format!("/proc/{pgid}")).is_ok_and(|m| m.uid() == uid),
        None => false,
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn poll_until(registry: &mut Registry, done: impl Fn(&[u32], &[u32]) -> bool) -> (Vec<u32>, Vec<u32>) {
        let started = Instant::now();
        let (mut added, mut removed) = (Vec::new(), Vec::new());
        while !done(&added, &removed) {
            let (a, r) = registry.poll();
            added.extend(a);
            removed.extend(r);
            assert!(started.elapsed() < Duration::from_secs(5), "no registration arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        (added, removed)
    }

    #[test]
    fn a_client_registers_groups_hears_the_status_and_its_groups_go_when_it_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let mut registry = Registry::listen(&path).unwrap();
        let mut client = UnixStream::connect(&path).unwrap();
        client.write_all(b"REGISTER 4242\nREGISTER 4243\nnonsense\nREGISTER 1\n").unwrap();
        let (added, _) = poll_until(&mut registry, |a, _| a.len() >= 2);
        assert_eq!(added, vec![4242, 4243]);
        registry.broadcast("{\"temp_c\":61.0}");
        let mut line = String::new();
        BufReader::new(client.try_clone().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "STATUS {\"temp_c\":61.0}\n");
        drop(client);
        let (_, removed) = poll_until(&mut registry, |_, r| r.len() >= 2);
        assert_eq!(removed, vec![4242, 4243]);
        drop(registry);
        assert!(!path.exists(), "the socket file goes with the agent");
    }
}
