"""Taskservs: services installed on servers from the catalog in `config/taskservs/`."""
