//! How far workers may run ahead of the consumer of their results. Jobs are numbered in the
//! order their results are consumed; job `n` starts only once `n <= front + size`, where the
//! front is the job being consumed. What finished early and waits to be consumed then stays
//! bounded, however slow the job at the front.

use std::sync::{Condvar, Mutex};

/// The front and the workers waiting for it to move.
pub(crate) struct Window {
    front: Mutex<usize>,
    moved: Condvar,
    size: usize,
}

impl Window {
    /// A window of `size` jobs past the front, which starts at job 0.
    pub(crate) fn new(size: usize) -> Window {
        Window {
            front: Mutex::new(0),
            moved: Condvar::new(),
            size,
        }
    }

    /// The job being consumed.
    pub(crate) fn front(&self) -> usize {
        *self.front.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until job `n` may start.
    pub(crate) fn wait_for(&self, n: usize) {
        let mut front = self.front.lock().unwrap_or_else(|e| e.into_inner());
        while n > front.saturating_add(self.size) {
            front = self.moved.wait(front).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Moves the front on to job `to`.
    pub(crate) fn advance(&self, to: usize) {
        *self.front.lock().unwrap_or_else(|e| e.into_inner()) = to;
        self.moved.notify_all();
    }

    /// Lets every job start: the consumer has gone, and each worker ends when it finds so.
    pub(crate) fn open(&self) {
        self.advance(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::Window;

    #[test]
    fn a_job_past_the_window_waits_until_the_front_moves() {
        let window = Window::new(2);
        window.wait_for(2);
        std::thread::scope(|s| {
            let waiting = s.spawn(|| {
                window.wait_for(5);
                window.front()
            });
            window.advance(3);
            assert_eq!(waiting.join().unwrap(), 3);
        });
        window.open();
        window.wait_for(usize::MAX);
    }
}
