//! The event queue: for every free entry (j, i) a certified earliest time τ_ji before which
//! P_ji cannot change sign, in a binary heap (kinetic data structures, Basch–Guibas–Hershberger;
//! qss-solver's next-event times). A step from s0 to s1 examines only the entries with τ ≤ s1.
//!
//! Entries are rescheduled by pushing a new key with a fresh stamp; keys whose stamp is stale
//! are dropped when they surface (lazy deletion), so a reschedule costs O(log N).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Certified earliest crossing times of the free entries, smallest first.
#[derive(Clone, Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    stamp: Vec<u32>,
}

/// The heap key of τ ≥ 0: IEEE bits of a non-negative f64 order as the values do.
fn key(tau: f64) -> u64 {
    if tau.is_nan() || tau <= 0.0 {
        0
    } else {
        tau.to_bits()
    }
}

impl EventQueue {
    /// An empty queue over `entries` entries.
    pub fn new(entries: usize) -> Self {
        EventQueue { heap: BinaryHeap::with_capacity(entries), stamp: vec![0; entries] }
    }

    /// Entry k cannot cross before τ (replacing its previous time).
    pub fn schedule(&mut self, k: usize, tau: f64) {
        self.stamp[k] = self.stamp[k].wrapping_add(1);
        self.heap.push(Reverse((key(tau), k as u32, self.stamp[k])));
        // Stale keys are dropped when they surface; rebuild when they outnumber live ones.
        if self.heap.len() > 4 * self.stamp.len() + 64 {
            self.compact();
        }
    }

    /// Entry k is not tracked (pinned): forget its time.
    pub fn remove(&mut self, k: usize) {
        self.stamp[k] = self.stamp[k].wrapping_add(1);
    }

    /// Remove and return every live entry whose time is ≤ `s1`, by entry index.
    pub fn pop_due(&mut self, s1: f64, out: &mut Vec<usize>) {
        out.clear();
        let limit = key(s1);
        while let Some(&Reverse((t, k, st))) = self.heap.peek() {
            if t > limit {
                break;
            }
            self.heap.pop();
            if self.stamp[k as usize] == st {
                self.stamp[k as usize] = st.wrapping_add(1);
                out.push(k as usize);
            }
        }
        // Ties in time come out by entry (the heap's order among equal keys is not).
        out.sort_unstable();
    }

    /// Every live entry with its time, by entry (for checkpoints).
    pub fn live(&self) -> Vec<(usize, f64)> {
        let mut out: Vec<(usize, f64)> = self
            .heap
            .iter()
            .filter(|Reverse((_, k, st))| self.stamp[*k as usize] == *st)
            .map(|Reverse((t, k, _))| (*k as usize, f64::from_bits(*t)))
            .collect();
        out.sort_unstable_by_key(|e| e.0);
        out
    }

    /// The earliest live time (∞ when none).
    pub fn next_time(&mut self) -> f64 {
        while let Some(&Reverse((t, k, st))) = self.heap.peek() {
            if self.stamp[k as usize] == st {
                return f64::from_bits(t);
            }
            self.heap.pop();
        }
        f64::INFINITY
    }

    fn compact(&mut self) {
        let stamp = &self.stamp;
        let live: Vec<_> = self.heap.drain().filter(|Reverse((_, k, st))| stamp[*k as usize] == *st).collect();
        self.heap = live.into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_come_out_in_time_order_and_reschedules_replace() {
        let mut q = EventQueue::new(4);
        q.schedule(0, 3.0);
        q.schedule(1, 1.0);
        q.schedule(2, 2.0);
        q.schedule(1, 5.0); // replaces 1.0
        q.schedule(3, f64::INFINITY);
        let mut out = Vec::new();
        q.pop_due(2.5, &mut out);
        assert_eq!(out, vec![2]);
        q.remove(0);
        q.pop_due(10.0, &mut out);
        assert_eq!(out, vec![1]);
        assert_eq!(q.next_time(), f64::INFINITY);
    }
}
