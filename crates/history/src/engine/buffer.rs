//! Events that arrive while a workflow task runs wait as rows of their own (the state keeps
//! only their count), so buffering one more costs the same however many wait: a change that
//! only buffers never reads them. A change that may end the workflow task reads them first.

use chronicle_api::history::v1::HistoryEvent;

/// One change's view of a run's buffered events.
#[derive(Debug, Default)]
pub(crate) struct Buffer {
    /// The rows the store holds, in arrival order; None when this change did not read them.
    stored: Option<Vec<HistoryEvent>>,
    /// Events this change buffers, written as new rows after `stored`.
    pending: Vec<HistoryEvent>,
    /// The change deletes the stored rows (appended to history, dropped, or rewritten).
    clear: bool,
}

impl Buffer {
    /// A change that only appends: the stored rows stay unread.
    pub fn unread() -> Self {
        Self::default()
    }

    /// The stored rows, read; `legacy` are events an older version kept in the state blob,
    /// which arrived before any row and so are rewritten as rows in front of them.
    pub fn read(legacy: Vec<HistoryEvent>, rows: Vec<HistoryEvent>) -> Self {
        if legacy.is_empty() {
            return Self {
                stored: Some(rows),
                ..Self::default()
            };
        }
        Self {
            stored: Some(Vec::new()),
            pending: legacy.into_iter().chain(rows).collect(),
            clear: true,
        }
    }

    pub fn push(&mut self, event: HistoryEvent) {
        self.pending.push(event);
    }

    /// Every buffered event in arrival order, removed from the buffer; None when the stored
    /// rows were not read, in which case nothing changes.
    pub fn take_all(&mut self) -> Option<Vec<HistoryEvent>> {
        let stored = self.stored.as_mut()?;
        self.clear |= !stored.is_empty();
        let mut all = std::mem::take(stored);
        all.append(&mut self.pending);
        Some(all)
    }

    /// Removes the first event `matches` accepts. Removing a stored row rewrites the rest.
    pub fn remove_first(
        &mut self,
        matches: impl Fn(&HistoryEvent) -> bool,
    ) -> Option<HistoryEvent> {
        if let Some(at) = self.pending.iter().position(&matches) {
            return Some(self.pending.remove(at));
        }
        let stored = self.stored.as_mut()?;
        let at = stored.iter().position(matches)?;
        let found = stored.remove(at);
        let mut rest = std::mem::take(stored);
        rest.append(&mut self.pending);
        self.pending = rest;
        self.clear = true;
        Some(found)
    }

    /// The events read and buffered by this change, in arrival order.
    pub fn events(&self) -> impl Iterator<Item = &HistoryEvent> {
        self.stored.iter().flatten().chain(&self.pending)
    }

    /// Drops every buffered event, read or not (the run closed).
    pub fn discard(&mut self) {
        *self = Self {
            stored: Some(Vec::new()),
            pending: Vec::new(),
            clear: true,
        };
    }

    /// What the write does: delete the stored rows first, then insert these.
    pub fn into_write(self) -> (bool, Vec<HistoryEvent>) {
        (self.clear, self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::Buffer;
    use chronicle_api::history::v1::HistoryEvent;

    fn events(ids: &[i64]) -> Vec<HistoryEvent> {
        ids.iter()
            .map(|id| HistoryEvent {
                task_id: *id,
                ..Default::default()
            })
            .collect()
    }

    fn ids(events: &[HistoryEvent]) -> Vec<i64> {
        events.iter().map(|e| e.task_id).collect()
    }

    #[test]
    fn buffering_writes_only_the_new_event() {
        let mut buffer = Buffer::unread();
        buffer.push(events(&[3])[0].clone());
        assert_eq!(buffer.take_all(), None, "unread rows are never flushed");
        let (clear, pending) = buffer.into_write();
        assert!(!clear);
        assert_eq!(ids(&pending), [3]);
    }

    #[test]
    fn taking_all_keeps_arrival_order_and_deletes_the_rows() {
        let mut buffer = Buffer::read(events(&[1]), events(&[2]));
        buffer.push(events(&[3])[0].clone());
        assert_eq!(ids(&buffer.take_all().unwrap()), [1, 2, 3]);
        assert_eq!(buffer.into_write(), (true, vec![]));
    }

    #[test]
    fn removing_a_stored_row_rewrites_the_rest() {
        let mut buffer = Buffer::read(vec![], events(&[1, 2, 3]));
        let removed = buffer.remove_first(|e| e.task_id == 2).unwrap();
        assert_eq!(removed.task_id, 2);
        let (clear, pending) = buffer.into_write();
        assert!(clear);
        assert_eq!(ids(&pending), [1, 3]);
    }
}
