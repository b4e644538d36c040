//! Losses, initialisers, batching (being written).
