//! The event queue: for every free entry (j, i) a certified key κ on the clock of its point i,
//! c_i(Ω) = Σ_k Ĝ_ik Ω_k, before which P_ji cannot change sign (kinetic data structures,
//! Basch–Guibas–Hershberger; qss-solver's next-event times). The clocks never run backwards
//! (Ω is nondecreasing, Ĝ ≥ 0), so each point keeps a binary heap of its entries' keys, and a
//! step examines only the entries whose key its end's clock has reached.
//!
//! Entries are rescheduled by pushing a new key with a fresh stamp; keys whose stamp is stale
//! are dropped when they surface (lazy deletion), so a reschedule costs O(log m).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Certified keys of the free entries, one heap per point.
#[derive(Clone, Debug, Default)]
pub struct EventQueue {
    /// Points n (entry k belongs to point k mod n).
    n: usize,
    heaps: Vec<BinaryHeap<Reverse<(u64, u32, u32)>>>,
    stamp: Vec<u32>,
    /// Pushes since the last compaction.
    pushes: usize,
}

/// The heap key of κ ≥ 0: IEEE bits of a non-negative f64 order as the values do.
fn key(kappa: f64) -> u64 {
    if kappa.is_nan() || kappa <= 0.0 {
        0
    } else {
        kappa.to_bits()
    }
}

impl EventQueue {
    /// An empty queue over m·n entries.
    pub fn new(m: usize, n: usize) -> Self {
        EventQueue { n, heaps: vec![BinaryHeap::new(); n], stamp: vec![0; m * n], pushes: 0 }
    }

    /// Entry k cannot cross before its point's clock reaches `kappa` (replacing its previous key).
    pub fn schedule(&mut self, k: usize, kappa: f64) {
        self.stamp[k] = self.stamp[k].wrapping_add(1);
        self.heaps[k % self.n].push(Reverse((key(kappa), k as u32, self.stamp[k])));
        self.pushes += 1;
        // Stale keys are dropped when they surface; rebuild when they outnumber live ones.
        if self.pushes > 4 * self.stamp.len() + 64 {
            self.compact();
        }
    }

    /// Entry k is not tracked (pinned): forget its key.
    pub fn remove(&mut self, k: usize) {
        self.stamp[k] = self.stamp[k].wrapping_add(1);
    }

    /// Remove and return every live entry whose key is ≤ its point's clock in `clocks`, with
    /// its key, by entry index.
    pub fn pop_due(&mut self, clocks: &[f64], out: &mut Vec<(usize, f64)>) {
        out.clear();
        for (heap, &c) in self.heaps.iter_mut().zip(clocks) {
            let limit = key(c);
            while let Some(&Reverse((t, k, st))) = heap.peek() {
                if t > limit {
                    break;
                }
                heap.pop();
                if self.stamp[k as usize] == st {
                    self.stamp[k as usize] = st.wrapping_add(1);
                    out.push((k as usize, f64::from_bits(t)));
                }
            }
        }
        out.sort_unstable_by_key(|e| e.0);
    }

    /// The smallest live key of each point (∞ where none).
    pub fn first_keys(&mut self) -> Vec<f64> {
        let stamp = &self.stamp;
        self.heaps
            .iter_mut()
            .map(|heap| {
                while let Some(&Reverse((t, k, st))) = heap.peek() {
                    if stamp[k as usize] == st {
                        return f64::from_bits(t);
                    }
                    heap.pop();
                }
                f64::INFINITY
            })
            .collect()
    }

    /// Every live entry with its key, by entry (for checkpoints).
    pub fn live(&self) -> Vec<(usize, f64)> {
        let mut out: Vec<(usize, f64)> = self
            .heaps
            .iter()
            .flat_map(|h| h.iter())
            .filter(|Reverse((_, k, st))| self.stamp[*k as usize] == *st)
            .map(|Reverse((t, k, _))| (*k as usize, f64::from_bits(*t)))
            .collect();
        out.sort_unstable_by_key(|e| e.0);
        out
    }

    fn compact(&mut self) {
        let stamp = &self.stamp;
        for heap in &mut self.heaps {
            let live: Vec<_> = heap.drain().filter(|Reverse((_, k, st))| stamp[*k as usize] == *st).collect();
            *heap = live.into_iter().collect();
        }
        self.pushes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_follow_their_points_clocks_and_reschedules_replace() {
        // Two points (n = 2), entries 0..4: entry k on point k % 2.
        let mut q = EventQueue::new(2, 2);
        q.schedule(0, 3.0);
        q.schedule(1, 1.0);
        q.schedule(2, 2.0);
        q.schedule(1, 5.0); // replaces 1.0
        q.schedule(3, f64::INFINITY);
        let mut out = Vec::new();
        q.pop_due(&[2.5, 2.5], &mut out);
        assert_eq!(out, vec![(2, 2.0)]);
        q.remove(0);
        q.pop_due(&[10.0, 4.0], &mut out);
        assert!(out.is_empty());
        q.pop_due(&[10.0, 10.0], &mut out);
        assert_eq!(out, vec![(1, 5.0)]);
        assert_eq!(q.live(), vec![(3, f64::INFINITY)]);
    }
}
