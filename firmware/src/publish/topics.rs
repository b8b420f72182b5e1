//! The MQTT topics, in one place: `<prefix>/<device id>/...` (docs/usage.md, "MQTT").

/// Every topic the device publishes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
}

impl Topics {
    /// Topics under `<prefix>/<device>`.
    pub fn new(prefix: &str, device: &str) -> Self {
        Self {
            base: format!("{prefix}/{device}"),
        }
    }

    /// `<base>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Retained `online` / `offline`; `offline` is also the last will.
    pub fn availability(&self) -> String {
        format!("{}/availability", self.base)
    }

    /// Retained device state (model, gallery size, operating point).
    pub fn state(&self) -> String {
        format!("{}/state", self.base)
    }

    /// Events: QoS 1, never retained.
    pub fn events(&self) -> String {
        format!("{}/events", self.base)
    }

    /// Signed door decisions: QoS 1, never retained, never queued.
    pub fn access(&self) -> String {
        format!("{}/access", self.base)
    }

    /// The face crop of the last event (recognised people only, unless configured otherwise).
    pub fn face(&self) -> String {
        format!("{}/image/face", self.base)
    }

    /// The last person recognised, retained, for dashboards.
    pub fn last_person(&self) -> String {
        format!("{}/last_person", self.base)
    }

    /// Who is in view, retained, for dashboards (never for doors).
    pub fn presence(&self) -> String {
        format!("{}/presence", self.base)
    }

    /// One message per enrollment photo's verdict, as enrollments run.
    pub fn enroll_progress(&self) -> String {
        format!("{}/enroll/progress", self.base)
    }

    /// Requests to the device: `<base>/request/<action>` (the subscription filter).
    pub fn requests(&self) -> String {
        format!("{}/request/+", self.base)
    }

    /// What every request topic starts with.
    pub fn requests_prefix(&self) -> String {
        format!("{}/request/", self.base)
    }

    /// Where the response to `action` goes.
    pub fn response(&self, action: &str) -> String {
        format!("{}/response/{action}", self.base)
    }

    /// Counts and latencies, retained, every minute (for those with MQTT only).
    pub fn stats(&self) -> String {
        format!("{}/stats", self.base)
    }

    /// The heat map PNG of the last event.
    pub fn heatmap(&self) -> String {
        format!("{}/image/heatmap", self.base)
    }
}
