//! The model: data sets, the leaky-ReLU activation, the loss, and the span-reduced two-layer
//! network W = W(0) + B X that every computation works in.

pub mod activation;
pub mod data;
pub mod loss;
pub mod network;
