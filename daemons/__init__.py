"""Backing daemons; each subpackage runs alone or inside `prvng platform start`."""
