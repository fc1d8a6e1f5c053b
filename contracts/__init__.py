"""The tier-equivalence harness: every contract case of every tool, on every tier."""
