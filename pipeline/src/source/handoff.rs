//! The bounded hand-off between a fast producer (the camera) and slower consumers: a single
//! slot where the newest frame replaces an unread older one. Memory stays at one frame however
//! slow the consumer is, and the consumer always works on the most recent view of the door.

use std::sync::{Condvar, Mutex, PoisonError};

#[derive(Debug)]
struct Slot<T> {
    item: Option<T>,
    closed: bool,
    dropped: u64,
}

/// A one-item, newest-wins channel.
#[derive(Debug)]
pub struct Handoff<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

impl<T> Default for Handoff<T> {
    fn default() -> Self {
        Self {
            slot: Mutex::new(Slot {
                item: None,
                closed: false,
                dropped: 0,
            }),
            ready: Condvar::new(),
        }
    }
}

impl<T> Handoff<T> {
    /// Puts `item` in the slot, dropping an unread older one. Returns whether one was dropped.
    pub fn put(&self, item: T) -> bool {
        let mut s = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let dropped = s.item.replace(item).is_some();
        s.dropped += u64::from(dropped);
        self.ready.notify_one();
        dropped
    }

    /// Marks the end of the stream: `take` returns `None` once the slot is empty.
    pub fn close(&self) {
        let mut s = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        s.closed = true;
        self.ready.notify_all();
    }

    /// Whether [`Handoff::close`] was called (the producer should stop).
    pub fn is_closed(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed
    }

    /// Waits for the next item; `None` when closed and empty.
    pub fn take(&self) -> Option<T> {
        let mut s = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(item) = s.item.take() {
                return Some(item);
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Like [`Handoff::take`], but gives up after `wait` (returning `None` with the stream
    /// still open), so a consumer can look at a stop flag now and then.
    pub fn take_within(&self, wait: std::time::Duration) -> Option<T> {
        let mut s = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(item) = s.item.take() {
            return Some(item);
        }
        if !s.closed {
            s = self
                .ready
                .wait_timeout(s, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        s.item.take()
    }

    /// How many items were replaced before being read.
    pub fn dropped(&self) -> u64 {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_newest_item_wins_and_close_ends_the_stream() {
        let h = Handoff::default();
        assert!(!h.put(1));
        assert!(h.put(2));
        assert_eq!(h.take(), Some(2));
        assert_eq!(h.dropped(), 1);
        h.close();
        assert_eq!(h.take(), None);
    }

    #[test]
    fn a_slow_consumer_sees_increasing_items_and_memory_stays_one_item() {
        let h = Arc::new(Handoff::default());
        let producer = {
            let h = Arc::clone(&h);
            std::thread::spawn(move || {
                for i in 0..10_000u32 {
                    h.put(i);
                }
                h.close();
            })
        };
        let mut last = None;
        let mut seen = 0u64;
        while let Some(i) = h.take() {
            assert!(last.is_none_or(|l| i > l));
            last = Some(i);
            seen += 1;
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        producer.join().ok();
        assert_eq!(last, Some(9_999));
        assert_eq!(seen + h.dropped(), 10_000);
    }
}
