//! The image being built: its config (Env, Cmd, ...), history and layers; manifests and the
//! `--tar-path` archive.
