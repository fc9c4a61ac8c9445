//! The model: data sets, the leaky-ReLU activation, the loss, and the span-reduced two-layer
//! network W = W(0) + B X that every computation works in.
//!
//! Imports go one way: `activation`, `loss`, `data/` (each standalone) ← `network`; from outside
//! the folder only `error` and `io` (`.npy` and atomic writes).

pub mod activation;
pub mod data;
pub mod loss;
pub mod network;
