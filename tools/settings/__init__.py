"""The settings tools: generate, validate, recommend, plan and complete a workspace config,
and `tools.help`. Every answer is computed from the schemas, the catalog and the registry
(no model involved); see docs/settings.md."""
