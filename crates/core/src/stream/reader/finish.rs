//! Stopping a reader: no read may still be queued or in the kernel when its
//! descriptor is closed (a read against a closed, reused number would read
//! some other file or socket).

use super::{InFlight, Reader};

impl Reader {
    /// Stops reading: cancels the reads in flight and waits until the kernel
    /// has returned every one, so the descriptor may then be closed.
    pub async fn finish(&mut self) {
        self.done = true;
        self.stale.extend(self.inflight.drain(..));
        if self.stale.iter().all(|s| s.fut.is_none() || !s.started) {
            let slots: Vec<InFlight> = self.stale.drain(..).collect();
            for slot in slots {
                if let Some(Ok(buf)) = slot.out {
                    self.recycle(buf);
                }
            }
            return;
        }
        self.engine.cancel_fd(self.fd).await;
        while let Some(mut slot) = self.stale.pop() {
            // A future never polled has queued nothing: drop it. One that
            // was polled may have a read queued or in the kernel: wait.
            if let (Some(fut), true) = (slot.fut.take(), slot.started) {
                if let Ok(buf) = fut.await {
                    self.recycle(buf);
                }
            } else if let Some(Ok(buf)) = slot.out.take() {
                self.recycle(buf);
            }
        }
    }
}
