"""The invocation audit: who called what, on which target, decided how, with which outcome."""
