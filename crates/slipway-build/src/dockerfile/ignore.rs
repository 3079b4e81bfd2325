//! `.dockerignore` (and `<Dockerfile>.dockerignore`) patterns with Docker's semantics.
