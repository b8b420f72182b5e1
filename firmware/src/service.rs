//! The device's word to its supervisor (systemd): ready, alive, stopping. Outside the
//! pipeline: the run loop calls [`Supervisor::alive`] between frames, so a hung stage stops the
//! pings and systemd's watchdog restarts the program.
//!
//! The protocol is one datagram to the socket in `$NOTIFY_SOCKET` (sd_notify(3)). It is written
//! here rather than through the `sd-notify` crate because that crate reads the socket only from
//! the environment, which a test cannot set without `unsafe`; here the socket is a value.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where and how often to report; without a socket (not run by systemd) every call is a no-op.
#[derive(Debug)]
pub struct Supervisor {
    socket: Option<PathBuf>,
    /// Half the watchdog period systemd gave, as sd_watchdog_enabled(3) advises; `None`: no
    /// watchdog.
    ping_every: Option<Duration>,
    last_ping: Option<Instant>,
}

impl Supervisor {
    /// A supervisor reached at `socket` (a path, or `@name` for an abstract socket) expecting a
    /// ping at least every `watchdog`.
    pub fn new(socket: Option<PathBuf>, watchdog: Option<Duration>) -> Self {
        Self {
            socket,
            ping_every: watchdog.map(|w| w / 2),
            last_ping: None,
        }
    }

    /// The supervisor systemd names in the environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC` and
    /// `WATCHDOG_PID`), or none.
    pub fn from_env() -> Self {
        let socket = std::env::var_os("NOTIFY_SOCKET").map(PathBuf::from);
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        Self::new(socket, watchdog)
    }

    /// Start-up is over (models loaded, people enrolled, broker link made).
    pub fn ready(&mut self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}\n", one_line(status)));
        self.last_ping = Some(Instant::now());
    }

    /// The run loop made progress; pings the watchdog when half its period has passed.
    pub fn alive(&mut self) {
        let Some(every) = self.ping_every else {
            return;
        };
        if self.last_ping.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.send("WATCHDOG=1\n");
        self.last_ping = Some(Instant::now());
    }

    /// A reload has begun (SIGHUP); [`Supervisor::ready`] says when it is over.
    pub fn reloading(&mut self) {
        self.send("RELOADING=1\nSTATUS=reloading the config\n");
    }

    /// A clean stop has begun (draining the event queue may take `mqtt.drain_seconds`).
    pub fn stopping(&mut self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}\n", one_line(status)));
    }

    fn send(&self, message: &str) {
        let Some(path) = &self.socket else {
            return;
        };
        if let Err(e) = send_to(path, message.as_bytes()) {
            // Losing a notification must not stop the door; systemd will say what it missed.
            tracing::warn!("cannot notify systemd at {}: {e}", path.display());
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

fn send_to(path: &std::path::Path, message: &[u8]) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let name = path.as_os_str().as_encoded_bytes();
    if let Some(abstract_name) = name.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
        socket.send_to_addr(message, &addr)?;
    } else {
        socket.send_to(message, path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(name: &str) -> (PathBuf, UnixDatagram) {
        let dir = std::env::temp_dir().join(format!("facegate-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        (path, socket)
    }

    fn received(socket: &UnixDatagram) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = socket.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    #[test]
    fn ready_pings_and_stopping_reach_the_socket_at_the_watchdogs_pace() {
        let (path, socket) = listen("paced");
        let mut s = Supervisor::new(Some(path), Some(Duration::from_secs(2)));
        s.ready("2 people\nenrolled");
        s.alive(); // right after READY: too soon
        std::thread::sleep(Duration::from_millis(1100));
        s.alive();
        s.alive(); // right after a ping: too soon
        s.reloading();
        s.stopping("draining");
        assert_eq!(
            received(&socket),
            [
                "READY=1\nSTATUS=2 people enrolled\n",
                "WATCHDOG=1\n",
                "RELOADING=1\nSTATUS=reloading the config\n",
                "STOPPING=1\nSTATUS=draining\n"
            ]
        );
    }

    #[test]
    fn without_a_watchdog_nothing_pings_and_without_a_socket_nothing_is_sent() {
        let (path, socket) = listen("quiet");
        let mut s = Supervisor::new(Some(path), None);
        std::thread::sleep(Duration::from_millis(5));
        s.alive();
        assert!(received(&socket).is_empty());
        let mut none = Supervisor::new(None, Some(Duration::from_millis(1)));
        none.ready("x");
        none.alive();
        none.stopping("x");
    }

    #[test]
    fn a_socket_that_is_gone_is_not_an_error() {
        let mut s = Supervisor::new(Some("/nonexistent/notify.sock".into()), None);
        s.ready("x");
    }
}
