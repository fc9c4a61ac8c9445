//! Files: NumPy `.npy` matrices, atomic writes, and the run folder's layout.
//!
//! The bottom of the crate: imports only `error`; inside, `fsutil` (atomic writes) ← `npy`,
//! `npz` (archives of `.npy` members), `rundir`.

pub mod fsutil;
pub mod npy;
pub mod npz;
pub mod rundir;
