//! Files: NumPy `.npy` matrices, atomic writes, and the run folder's layout.

pub mod fsutil;
pub mod npy;
pub mod rundir;
