//! Gateway API.
