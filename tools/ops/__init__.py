"""The ops plane's operations (`ops.*`) and the gate workflow-starting tools pass."""
