//! In-server tests (`cargo pgrx test`): what needs a live backend.
