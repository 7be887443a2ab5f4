//! TODO: module under construction.
