"""Keras layers shared by architectures (the SSL encoder's transformer, its log-mel front end)."""
