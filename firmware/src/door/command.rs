//! The door opened by a program (a vendor's lock tool, a script toggling a smart plug): run
//! once per grant with the person in its environment, killed after a timeout, never two at
//! once. Part of the *door output*.

use super::DoorError;
use facegate_pipeline::event::Event;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The configured program.
#[derive(Debug)]
pub struct DoorCommand {
    argv: Vec<String>,
    timeout: Duration,
    running: Arc<Mutex<bool>>,
}

impl DoorCommand {
    /// A door command; `argv[0]` is the program.
    pub fn new(argv: Vec<String>, timeout: Duration) -> Result<Self, DoorError> {
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(DoorError {
                what: "command".into(),
                message: "no program given".into(),
            });
        }
        Ok(Self {
            argv,
            timeout,
            running: Arc::new(Mutex::new(false)),
        })
    }

    /// Whether a run is still going.
    pub fn is_running(&self) -> bool {
        *self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the program for `event`'s grant on its own thread; a grant while it still runs
    /// is logged and skipped (the door is being opened already).
    pub fn run(&self, event: &Event) {
        {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            if *running {
                tracing::warn!(
                    "door command still running: grant {} not repeated",
                    event.id
                );
                return;
            }
            *running = true;
        }
        let person = event.person.as_ref();
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .env("FACEGATE_PERSON_ID", person.map_or("", |p| p.id.as_str()))
            .env(
                "FACEGATE_PERSON_NAME",
                person.and_then(|p| p.name.as_deref()).unwrap_or(""),
            )
            .env("FACEGATE_EVENT_ID", &event.id)
            .stdin(Stdio::null());
        let program = self.argv[0].clone();
        let timeout = self.timeout;
        let running = Arc::clone(&self.running);
        let started = cmd.spawn();
        std::thread::spawn(move || {
            match started {
                Ok(child) => finish(child, &program, timeout),
                Err(e) => tracing::error!("door command {program}: {e}; the door stays shut"),
            }
            *running.lock().unwrap_or_else(PoisonError::into_inner) = false;
        });
    }
}

fn finish(mut child: Child, program: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => {
                tracing::error!("door command {program} failed: {status}");
                return;
            }
            Ok(None) if Instant::now() >= deadline => {
                tracing::error!("door command {program} took over {timeout:?}: killed");
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                tracing::error!("door command {program}: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facegate_pipeline::decide::{Access, Lifecycle};
    use facegate_pipeline::event::Outcome;

    fn grant(id: &str) -> Event {
        let access = Some(Access::Grant {
            person: "ada".into(),
        });
        crate::publish::sample_event(id, Lifecycle::New, Outcome::Match, Some("ada"), access)
    }

    fn wait_idle(c: &DoorCommand) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while c.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!c.is_running());
    }

    #[test]
    fn the_program_gets_the_person_and_a_hung_one_is_killed() {
        let dir = std::env::temp_dir().join(format!("facegate-doorcmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("opened");
        let script = format!(
            "echo \"$FACEGATE_PERSON_ID|$FACEGATE_PERSON_NAME|$FACEGATE_EVENT_ID|$1\" > {}",
            out.display()
        );
        let c = DoorCommand::new(
            vec![
                "sh".into(),
                "-c".into(),
                script,
                "sh".into(),
                "front".into(),
            ],
            Duration::from_secs(10),
        )
        .unwrap();
        c.run(&grant("e1"));
        wait_idle(&c);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.trim(), "ada|ada Example|e1|front");

        // A program that hangs is killed at the timeout, and the next grant runs again.
        let hung = DoorCommand::new(
            vec!["sleep".into(), "30".into()],
            Duration::from_millis(200),
        )
        .unwrap();
        let t0 = Instant::now();
        hung.run(&grant("e2"));
        hung.run(&grant("e3")); // skipped: still running
        wait_idle(&hung);
        assert!(t0.elapsed() < Duration::from_secs(20));
        assert!(DoorCommand::new(Vec::new(), Duration::from_secs(1)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
