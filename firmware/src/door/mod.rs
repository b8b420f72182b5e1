//! *door output*: the local relay. A side branch of *publish* in the pipeline
//! (source -> ... -> decide -> publish (+ display, + **door output**)), off by default: most
//! doors are opened by an access controller that verifies the signed `.../access` messages.
//! When the device drives the lock itself, a grant pulses a relay for `pulse_seconds` — a line
//! of the Linux GPIO character device ([`gpio`]) or a command ([`command`]). Nothing but a
//! grant ever opens; a grant during a pulse extends it; on shutdown and on any error the line
//! goes back to inactive (fail-secure).

pub mod command;
pub mod gpio;

use facegate_pipeline::decide::Access;
use facegate_pipeline::event::Event;
use facegate_pipeline::sink::{PublishError, Sink};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The door output's settings (`[door]`).
#[derive(Debug, Clone, PartialEq)]
pub enum DoorConfig {
    /// A GPIO line driving a relay.
    Gpio {
        /// The GPIO chip, e.g. `/dev/gpiochip0`.
        chip: PathBuf,
        /// The line offset on that chip.
        line: u32,
        /// The relay is energised by a low level.
        active_low: bool,
        /// How long the line stays active per grant.
        pulse_seconds: f64,
    },
    /// A program run on every grant (arguments as given; the person's id, name and the event
    /// id in `FACEGATE_PERSON_ID`, `FACEGATE_PERSON_NAME`, `FACEGATE_EVENT_ID`).
    Command {
        /// Program and arguments.
        argv: Vec<String>,
        /// The program is killed after this long.
        timeout_seconds: f64,
    },
}

impl DoorConfig {
    /// How long the relay stays active per grant by default, seconds.
    pub const DEFAULT_PULSE_SECONDS: f64 = 3.0;
    /// How long the door program may run by default, seconds.
    pub const DEFAULT_TIMEOUT_SECONDS: f64 = 10.0;
}

/// Something that can hold a door open: a relay line.
pub trait Relay: Send {
    /// Drives the line: `true` opens the door.
    fn set(&mut self, open: bool) -> Result<(), String>;
}

/// Why the door output could not start.
#[derive(Debug, thiserror::Error)]
#[error("door output {what}: {message}")]
pub struct DoorError {
    /// The chip, line or program.
    pub what: String,
    /// What went wrong.
    pub message: String,
}

enum Order {
    Pulse,
    Stop,
}

/// A relay pulsed from its own thread, so the pipeline never waits for the door.
pub struct Pulser {
    orders: Sender<Order>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Pulser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pulser(..)")
    }
}

impl Pulser {
    /// Starts driving `relay` (set inactive first) with pulses of `pulse`.
    pub fn start(mut relay: Box<dyn Relay>, pulse: Duration) -> Result<Self, String> {
        relay.set(false)?;
        let (orders, rx) = mpsc::channel::<Order>();
        let worker = std::thread::spawn(move || {
            let mut until: Option<Instant> = None;
            loop {
                let order = match until {
                    Some(t) => rx.recv_timeout(t.saturating_duration_since(Instant::now())),
                    None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                };
                match order {
                    Ok(Order::Pulse) => {
                        if until.is_none()
                            && let Err(e) = relay.set(true)
                        {
                            tracing::error!("door relay: {e}; the door stays shut");
                            let _ = relay.set(false);
                            continue;
                        }
                        until = Some(Instant::now() + pulse);
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(e) = relay.set(false) {
                            tracing::error!("door relay: {e} while closing");
                        }
                        until = None;
                    }
                    Ok(Order::Stop) | Err(RecvTimeoutError::Disconnected) => {
                        if let Err(e) = relay.set(false) {
                            tracing::error!("door relay: {e} while closing");
                        }
                        return;
                    }
                }
            }
        });
        Ok(Self {
            orders,
            worker: Some(worker),
        })
    }

    /// Opens the door for one pulse (or extends the current one).
    pub fn pulse(&self) {
        let _ = self.orders.send(Order::Pulse);
    }
}

impl Drop for Pulser {
    fn drop(&mut self) {
        let _ = self.orders.send(Order::Stop);
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The door output as a [`Sink`]: grants open it, everything else is ignored.
#[derive(Debug)]
pub enum DoorSink {
    /// A relay line.
    Relay(Pulser),
    /// A program.
    Command(command::DoorCommand),
}

impl DoorSink {
    /// Opens the configured door output.
    pub fn open(cfg: &DoorConfig) -> Result<Self, DoorError> {
        match cfg {
            DoorConfig::Gpio {
                chip,
                line,
                active_low,
                pulse_seconds,
            } => {
                let relay = gpio::GpioRelay::open(chip, *line, *active_low)?;
                let pulser =
                    Pulser::start(Box::new(relay), Duration::from_secs_f64(*pulse_seconds))
                        .map_err(|message| DoorError {
                            what: format!("{} line {line}", chip.display()),
                            message,
                        })?;
                Ok(Self::Relay(pulser))
            }
            DoorConfig::Command {
                argv,
                timeout_seconds,
            } => Ok(Self::Command(command::DoorCommand::new(
                argv.clone(),
                Duration::from_secs_f64(*timeout_seconds),
            )?)),
        }
    }
}

impl Sink for DoorSink {
    fn publish(&mut self, event: &Event, _heatmap: Option<&[u8]>) -> Result<(), PublishError> {
        if let Some(Access::Grant { person }) = &event.access {
            tracing::info!("door: opening for {person}");
            match self {
                Self::Relay(p) => p.pulse(),
                Self::Command(c) => c.run(event),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A relay that records its line's changes with their time.
    struct Recorded(Arc<Mutex<Vec<(bool, Instant)>>>);

    impl Relay for Recorded {
        fn set(&mut self, open: bool) -> Result<(), String> {
            self.0.lock().unwrap().push((open, Instant::now()));
            Ok(())
        }
    }

    #[test]
    fn a_grant_pulses_the_relay_a_second_grant_extends_it_and_it_ends_shut() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let pulse = Duration::from_millis(150);
        let p = Pulser::start(Box::new(Recorded(Arc::clone(&log))), pulse).unwrap();
        let t0 = Instant::now();
        p.pulse();
        std::thread::sleep(Duration::from_millis(50));
        let second = Instant::now();
        p.pulse();
        // Wait for the pulse to end by itself.
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.lock().unwrap().len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(p);
        let log = log.lock().unwrap();
        let states: Vec<bool> = log.iter().map(|(s, _)| *s).collect();
        // Shut at start, open once (the second grant only extends), shut after, shut on drop.
        assert_eq!(states, [false, true, false, false], "{log:?}");
        // The pulse ends no sooner than a full pulse after the second grant was sent.
        assert!(
            log[2].1 >= second + pulse,
            "the second grant extended the pulse: shut {:?} after it",
            log[2].1.duration_since(second)
        );
        assert!(log[1].1 >= t0);
    }

    /// A relay whose line cannot be driven active; records every attempt.
    struct Broken(Arc<Mutex<Vec<bool>>>);

    impl Relay for Broken {
        fn set(&mut self, open: bool) -> Result<(), String> {
            self.0.lock().unwrap().push(open);
            if open {
                Err("line busy".into())
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn a_relay_that_fails_to_open_is_driven_shut_again_and_the_pulser_goes_on() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let p = Pulser::start(Box::new(Broken(Arc::clone(&log))), Duration::from_secs(60)).unwrap();
        p.pulse();
        p.pulse();
        drop(p);
        assert_eq!(
            *log.lock().unwrap(),
            [false, true, false, true, false, false]
        );
    }
}
