//! The device as a whole: what `facegate run` does, as a library so that the end-to-end tests
//! drive exactly the same code. Opens the config, the models and the gallery; enrolls the
//! config's people; connects the MQTT link (with its on-disk queue); runs the pipeline over the
//! configured source; drains and closes the link.

use crate::command::{CommandKey, Context, Gate, ReloadFailure, Reloaded};
use crate::config::{self, Config, ConfigError};
use crate::display::DisplaySink;
use crate::door::{DoorError, DoorSink};
use crate::publish::access::AccessSigner;
use crate::publish::mqtt::{
    AccessSettings, Discovery, FrigateMirror, LinkHandle, MqttLink, MqttSettings,
};
use crate::publish::outbox::{Outbox, OutboxError};
use crate::publish::request::Admission;
use crate::publish::state::DeviceState;
use crate::publish::topics::Topics;
use crate::service::Supervisor;
use facegate_pipeline::enrollment::PersonEnrollment;
use facegate_pipeline::gallery::{Gallery, GalleryError};
use facegate_pipeline::matching::Matcher;
use facegate_pipeline::model::{ModelError, Models};
use facegate_pipeline::sink::{Fanout, Sink};
use facegate_pipeline::source::open::{OpenError, open};
use facegate_pipeline::wiring::sync_config;
use facegate_pipeline::wiring::{self, Pipeline, PipelineError, RunStats};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Why the device could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The config file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The model files.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The gallery.
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    /// The event queue.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The frame source.
    #[error(transparent)]
    Source(#[from] OpenError),
    /// The pipeline.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The command key.
    #[error(transparent)]
    CommandKey(crate::command_key::CommandKeyError),
    /// The door relay.
    #[error(transparent)]
    Door(DoorError),
    /// TLS to the broker.
    #[error(transparent)]
    Tls(#[from] crate::publish::tls::TlsError),
    /// The access signing key.
    #[error(transparent)]
    AccessKey(facegate_pipeline::secret::SecretError),
    /// A person's threshold looser than the model's operating point.
    #[error(transparent)]
    LooseThreshold(#[from] crate::config::LooseThreshold),
    /// Another running device uses the same state folder (two doors' configs naming one
    /// `storage.dir`): they would share a gallery and an event queue.
    #[error(
        "storage.dir {path} is in use by another running facegate: give each door (each \
         facegate@NAME instance) its own storage.dir"
    )]
    InUse {
        /// The folder.
        path: PathBuf,
    },
    /// The state folder.
    #[error("storage.dir {path}: {source}")]
    Storage {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Holds the state folder for one run: a second device started on the same folder is refused
/// instead of sharing its gallery and event queue (released when the file is closed, also by
/// a crash).
fn lock_storage(dir: &Path) -> Result<std::fs::File, DeviceError> {
    let path = dir.join("run.lock");
    let storage = |source| DeviceError::Storage {
        path: path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(storage)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(DeviceError::InUse {
            path: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(storage(e)),
    }
}

/// Removes what an enrollment by command left behind when the device died in the middle of it
/// (`.enroll-*` folders of raw photos in the state folder): nobody else would ever delete them.
fn remove_stale_scratch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".enroll-") {
            match std::fs::remove_dir_all(entry.path()) {
                Ok(()) => tracing::warn!(
                    "removed {}: photos of an enrollment interrupted by a stop",
                    entry.path().display()
                ),
                Err(e) => tracing::error!("could not remove {}: {e}", entry.path().display()),
            }
        }
    }
}

/// A command's progress as a run reports it: verdicts on `.../enroll/progress`, and the
/// watchdog fed between the photos of a long enrollment.
struct Reporting<'a> {
    inbox: &'a LinkHandle,
    supervisor: &'a mut Supervisor,
}

impl crate::command::Progress for Reporting<'_> {
    fn verdict(&mut self, message: &serde_json::Value) {
        self.inbox.progress(message);
    }

    fn alive(&mut self) {
        self.supervisor.alive();
    }
}

/// Runs one accepted command between two frames: answers it on its response topic and, when
/// the gallery changed (an enrollment, an erasure), re-publishes the retained state, so a
/// dashboard's count of enrolled people is never stale. Returns the config to open the device
/// with again when the command was a reload that needs it.
pub fn serve_command(
    command: &crate::command::Command,
    inbox: &LinkHandle,
    ctx: &mut Context,
    progress: &mut dyn crate::command::Progress,
) -> Option<Box<Config>> {
    let outcome = crate::command::run(command, ctx, progress);
    inbox.respond(command, &outcome.response);
    let index = ctx.pipeline.matcher().index();
    inbox.gallery_changed(index.people().len(), index.len());
    outcome.restart
}

/// A SIGHUP's reload: the outcome goes to the log (and the verdicts to `.../enroll/progress`),
/// since nobody waits for an answer. Returns the config to open the device with again, if the
/// reload needs that.
fn reload_on_signal(
    ctx: &mut Context,
    inbox: &LinkHandle,
    supervisor: &mut Supervisor,
) -> Option<Box<Config>> {
    supervisor.reloading();
    let result = crate::command::reload(ctx, &mut || supervisor.alive());
    match result {
        Ok(Reloaded::InPlace(enrolled)) => {
            for m in crate::command::progress_messages(&enrolled, "config", None) {
                inbox.progress(&m);
            }
            let index = ctx.pipeline.matcher().index();
            inbox.gallery_changed(index.people().len(), index.len());
            tracing::info!(
                "config reloaded: {} people, {} templates",
                index.people().len(),
                index.len()
            );
            supervisor.ready("config reloaded");
            None
        }
        Ok(Reloaded::Restart { cfg, sections }) => {
            tracing::info!("config reloaded; opening the device again for {sections:?}");
            Some(cfg)
        }
        Err(ReloadFailure::Refused(e)) => {
            tracing::error!("reload refused, the running config is kept: {e}");
            supervisor.ready("reload refused; running config kept");
            None
        }
        Err(e) => {
            tracing::error!("reload failed: {e}");
            supervisor.ready("reload failed");
            None
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Counts of the pipeline.
    pub stats: RunStats,
    /// Events still waiting for the broker at exit (kept on disk for the next start).
    pub undelivered: usize,
    /// The run ended for a reload that changed what only a new start takes: open the device
    /// again with this config.
    pub restart: Option<Box<Config>>,
}

/// An opened device.
#[derive(Debug)]
pub struct Device {
    /// The checked config.
    pub cfg: Config,
    /// The models.
    pub models: Models,
    /// The gallery.
    pub gallery: Gallery,
    /// Enrollment verdicts not yet published.
    unreported: Vec<serde_json::Value>,
    /// Set to stop a run at the next frame (SIGINT / SIGTERM in `facegate run`).
    stop: Arc<AtomicBool>,
    /// Set to re-read the config file at the next frame (SIGHUP in `facegate run`).
    reload: Arc<AtomicBool>,
    /// The config file, when the device was opened from one (what a reload reads).
    config_file: Option<PathBuf>,
    /// The state folder's lock, held from [`Device::hold_storage`] until the device is dropped.
    held: Option<std::fs::File>,
    /// Told when a run is ready, alive and stopping (systemd's notify socket and watchdog).
    supervisor: Supervisor,
    /// Unix seconds when this process opened the device: requests issued before are refused.
    opened_at: f64,
}

/// Requests issued up to this long before the device opened are still taken: callers stamp
/// whole seconds, and a restart (models loaded, people enrolled) takes longer than this.
const START_GRACE_SECONDS: f64 = 1.0;

impl Device {
    /// Opens the device described by the config file at `path`.
    pub fn open(path: &Path) -> Result<Self, DeviceError> {
        let mut device = Self::from_config(config::load(path)?)?;
        device.config_file = Some(path.to_owned());
        Ok(device)
    }

    /// Opens the device a checked config describes.
    pub fn from_config(cfg: Config) -> Result<Self, DeviceError> {
        let opened_at = crate::publish::access::unix_now();
        let models = Models::load(
            cfg.model_card.as_deref(),
            cfg.detection.detector(),
            &cfg.embedder,
            cfg.liveness.as_ref(),
        )?;
        cfg.check_thresholds(&models.card)?;
        let dir = &cfg.storage_dir;
        facegate_pipeline::secret::private_dir(dir).map_err(|source| DeviceError::Storage {
            path: dir.clone(),
            source,
        })?;
        let gallery = Gallery::open(&dir.join("gallery.sqlite"), &dir.join("gallery.key"))?;
        tracing::info!(
            "model {} ({}), state in {}",
            models.card.model_id,
            models.embedder.runtime(),
            dir.display()
        );
        Ok(Self {
            cfg,
            models,
            gallery,
            unreported: Vec::new(),
            stop: Arc::default(),
            reload: Arc::default(),
            config_file: None,
            held: None,
            opened_at,
            supervisor: Supervisor::from_env(),
        })
    }

    /// Claims the state folder for this device until it is dropped; refused while another
    /// running device holds it. [`Device::run`] claims it too; a start claims it before
    /// enrolling, so a second door on the same folder changes nothing.
    pub fn hold_storage(&mut self) -> Result<(), DeviceError> {
        if self.held.is_none() {
            self.held = Some(lock_storage(&self.cfg.storage_dir)?);
            // Only the folder's holder may clear what an interrupted run left.
            remove_stale_scratch(&self.cfg.storage_dir);
        }
        Ok(())
    }

    /// Reads `path` again on a reload (the file `cfg` came from).
    pub fn reload_from(&mut self, path: &Path) {
        self.config_file = Some(path.to_owned());
    }

    /// Stops at the next frame when `stop` is set, and re-reads the config when `reload` is
    /// (the process's signal flags, which outlive a device opened again).
    pub fn watch(&mut self, stop: Arc<AtomicBool>, reload: Arc<AtomicBool>) {
        self.stop = stop;
        self.reload = reload;
    }

    /// A handle that makes the device re-read its config file before the next frame.
    pub fn reload_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.reload)
    }

    /// Reports to `supervisor` instead of the one systemd named in the environment.
    pub fn supervise_with(&mut self, supervisor: Supervisor) {
        self.supervisor = supervisor;
    }

    /// Enrolls the config's people (and forgets those it no longer lists). The verdicts are
    /// also published on `.../enroll/progress` once the next run connects.
    pub fn enroll(&mut self) -> Result<Vec<PersonEnrollment>, DeviceError> {
        let enrolled = sync_config(
            &self.models,
            &self.cfg.pipeline(),
            &mut self.gallery,
            &facegate_pipeline::event::now(),
        )?;
        self.unreported = crate::command::progress_messages(&enrolled, "config", None);
        Ok(enrolled)
    }

    /// [`Device::enroll`] as a start does it: when the disk is full, the gallery is kept as it
    /// is (the people already enrolled are still recognised) instead of the door not starting.
    pub fn enroll_at_start(&mut self) -> Result<Vec<PersonEnrollment>, DeviceError> {
        match self.enroll() {
            Err(DeviceError::Gallery(e)) if e.is_disk_full() => {
                tracing::error!(
                    "{e}: the config's people were not enrolled again; running with the \
                     gallery as it is"
                );
                Ok(Vec::new())
            }
            other => other,
        }
    }

    /// A handle that stops [`Device::run`] cleanly (last frame finished, tracks ended, queue
    /// drained, `offline` published, relay shut) when set.
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Publishes the verdicts of the last enrollment that were not published yet.
    pub fn report_enrollment(&mut self, inbox: &crate::publish::mqtt::LinkHandle) {
        for m in self.unreported.drain(..) {
            inbox.progress(&m);
        }
    }

    /// The matcher over the gallery as it is now.
    pub fn matcher(&self) -> Result<Matcher, DeviceError> {
        Ok(wiring::matcher(
            &self.models,
            &self.gallery,
            &self.cfg.pipeline(),
        )?)
    }

    /// The event queue's file.
    pub fn queue_path(&self) -> PathBuf {
        self.cfg.storage_dir.join("events.sqlite")
    }

    /// Starts the MQTT link with the retained state for `matcher`.
    pub fn connect(&self, matcher: &Matcher) -> Result<MqttLink, DeviceError> {
        let cfg = &self.cfg;
        let outbox = Outbox::open(&self.queue_path(), cfg.mqtt.queue_limit)?;
        let waiting = outbox.len()?;
        if waiting > 0 {
            tracing::info!("{waiting} event(s) from an earlier run still queued for the broker");
        }
        let settings = MqttSettings {
            host: cfg.mqtt.host.clone(),
            port: cfg.mqtt.port,
            client_id: cfg.mqtt.client_id.clone(),
            credentials: cfg.mqtt.credentials.clone(),
            keep_alive: Duration::from_secs(cfg.mqtt.keep_alive_seconds),
            discovery: if cfg.home_assistant.discovery {
                Discovery::Announce {
                    prefix: cfg.home_assistant.prefix.clone(),
                    name: cfg.device.name.clone(),
                }
            } else {
                Discovery::Withdraw {
                    prefix: cfg.home_assistant.prefix.clone(),
                }
            },
            tls: match &cfg.mqtt.tls {
                Some(t) => Some(crate::publish::tls::client_config(t)?),
                None => None,
            },
            refusals_per_second: cfg.commands.as_ref().map_or(0.0, |c| c.refusals_per_second),
        };
        // Requests signed before this start are refused: the replay window does not survive a
        // restart, so a request the previous run accepted must not be accepted again.
        let gate: Option<Box<dyn Admission>> = match &cfg.commands {
            Some(c) => Some(Box::new(
                Gate::new(
                    CommandKey::load(&c.key_file).map_err(DeviceError::CommandKey)?,
                    c.max_age_seconds,
                )
                .not_before(self.opened_at - START_GRACE_SECONDS),
            )),
            None => None,
        };
        let signer = match &cfg.access {
            Some(a) => Some((
                AccessSigner::open_or_create(&a.key_file).map_err(DeviceError::AccessKey)?,
                a.valid_seconds,
            )),
            None => None,
        };
        let mut link = MqttLink::start(
            &settings,
            Topics::new(&cfg.mqtt.prefix, &cfg.device.id),
            outbox,
            gate,
        );
        if cfg.frigate.enabled {
            link.enable_frigate(FrigateMirror {
                topic: cfg.frigate.topic.clone(),
                camera: cfg.frigate.camera.clone(),
            });
        }
        let access_key = signer.as_ref().map(|(s, _)| s.public_key_hex());
        if let Some((signer, valid)) = signer {
            link.enable_access(AccessSettings {
                signer,
                device: cfg.device.id.clone(),
                valid: Duration::from_secs_f64(valid),
            });
        }
        let state = DeviceState {
            version: env!("CARGO_PKG_VERSION").into(),
            mode: "running".into(),
            model_id: self.models.card.model_id.clone(),
            model_sha256: self.models.card.model_file.sha256.clone(),
            people: matcher.index().people().len(),
            templates: matcher.index().len(),
            target_far: matcher.thresholds().target_far,
            threshold: matcher.thresholds().full,
            started: facegate_pipeline::event::now(),
            access_key,
            events_dropped: 0,
        };
        if let Ok(json) = serde_json::to_value(&state) {
            link.set_state(&json);
        }
        Ok(link)
    }

    /// Runs the configured source to its end, publishing every event over MQTT and to `extra`
    /// sinks, then drains and closes the link.
    pub fn run(&mut self, extra: &mut [&mut dyn Sink]) -> Result<RunOutcome, DeviceError> {
        let matcher = self.matcher()?;
        tracing::info!(
            "{} people, {} templates; threshold {:.4} at FAR {}",
            matcher.index().people().len(),
            matcher.index().len(),
            matcher.thresholds().full,
            matcher.thresholds().target_far
        );
        self.hold_storage()?;
        let source = open(&self.cfg.source)?;
        let mut link = self.connect(&matcher)?;
        // A screen that cannot be opened is reported and the door runs without it.
        // The door relay is not optional once configured: a door that cannot open must say so.
        let mut door = match &self.cfg.door {
            Some(d) => Some(DoorSink::open(d).map_err(DeviceError::Door)?),
            None => None,
        };
        let mut display = self.cfg.display.as_ref().and_then(|d| {
            DisplaySink::open(d, &self.cfg.device.name)
                .map_err(|e| tracing::error!("{e}; running without the door screen"))
                .ok()
        });
        // Like the screen: a port that cannot be listened on is reported, the door runs on.
        let _exporter = self.cfg.metrics.as_ref().and_then(|m| {
            crate::metrics::Exporter::start(m)
                .map_err(|e| tracing::error!("{e}; running without the metrics endpoint"))
                .ok()
        });
        let mut stats = crate::metrics::Stats::new();
        let mut counting = stats.sink();
        let inbox = link.handle();
        self.report_enrollment(&inbox);
        let people = matcher.index().people().len();
        let (models, cfg, gallery) = (&self.models, &mut self.cfg, &mut self.gallery);
        let config_file = self.config_file.as_deref();
        let (stop, reload) = (&*self.stop, &*self.reload);
        let supervisor = &mut self.supervisor;
        supervisor.ready(&format!("watching; enrolled people: {people}"));
        let mut p = Pipeline::new(models, cfg.pipeline(), matcher);
        // The run ends when a stop is asked or a reload needs the device opened again.
        let halt = AtomicBool::new(false);
        let mut restart: Option<Box<Config>> = None;
        let mut between = |p: &mut Pipeline<'_>| {
            supervisor.alive();
            let index = p.matcher().index();
            let link_state = || crate::metrics::LinkState {
                queued: inbox.queued(),
                connected: inbox.connected(),
                people: index.people().len(),
                templates: index.len(),
            };
            if let Some(message) = stats.tick(Instant::now(), &link_state) {
                inbox.stats(&message);
            }
            if stop.load(Ordering::Relaxed) || restart.is_some() {
                halt.store(true, Ordering::Relaxed);
                return Ok(());
            }
            let mut ctx = Context {
                models,
                cfg: &mut *cfg,
                config_file,
                gallery: &mut *gallery,
                pipeline: p,
            };
            if reload.swap(false, Ordering::Relaxed) {
                restart = reload_on_signal(&mut ctx, &inbox, supervisor);
            }
            for command in inbox.take() {
                if restart.is_some() {
                    // Taken in the same batch as the reload: the caller sends it again.
                    inbox.respond(&command, &restarting(&command));
                    continue;
                }
                let mut progress = Reporting {
                    inbox: &inbox,
                    supervisor: &mut *supervisor,
                };
                restart = serve_command(&command, &inbox, &mut ctx, &mut progress);
            }
            if restart.is_some() {
                halt.store(true, Ordering::Relaxed);
            }
            Ok(())
        };
        let result = {
            let mut sinks: Vec<&mut dyn Sink> = vec![&mut link, &mut counting];
            if let Some(d) = display.as_mut() {
                sinks.push(d);
            }
            if let Some(d) = door.as_mut() {
                sinks.push(d);
            }
            sinks.extend(extra.iter_mut().map(|s| &mut **s as &mut dyn Sink));
            wiring::run(
                &mut p,
                source.frames,
                source.live,
                &mut Fanout(sinks),
                &mut between,
                &halt,
            )
        };
        self.supervisor
            .stopping("stopping; draining the event queue");
        let undelivered = link.close(Duration::from_secs_f32(self.cfg.mqtt.drain_seconds))?;
        let stats = result?;
        if undelivered > 0 {
            tracing::warn!(
                "{undelivered} event(s) not yet delivered to the broker at {}:{}: kept in {} \
                 for the next start",
                self.cfg.mqtt.host,
                self.cfg.mqtt.port,
                self.queue_path().display()
            );
        }
        Ok(RunOutcome {
            stats,
            undelivered,
            restart,
        })
    }
}

/// The answer to a request that arrived beside a reload which re-opens the device.
fn restarting(command: &crate::command::Command) -> serde_json::Value {
    serde_json::json!({
        "transaction": command.transaction,
        "ok": false,
        "error": "the device is starting again to take a reloaded config: send the request again",
    })
}
