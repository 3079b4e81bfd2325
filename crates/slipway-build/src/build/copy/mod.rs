//! COPY and ADD with Docker's semantics, writing into a stage's root file system.
