"""The provisioning domain on top of the generic engine: workflow templates that create
and delete servers and install and remove taskservs (`templates`), the taskserv catalog
(`taskservs`), server providers (`providers`), and the actions those workflows run
(`server_actions`: server.create|delete, `taskserv_actions`: taskserv.install|remove),
registered by the action loader under the short names `server` and `taskserv`.
"""

from daemons.orchestrator.provisioning.taskservs import (
    TASKSERV_NAME,
    Catalog,
    Taskserv,
    catalog_for,
    list_taskservs,
    load_taskserv,
)
from daemons.orchestrator.provisioning.templates import (
    server_delete_workflow,
    servers_create_workflow,
    taskserv_create_workflow,
    taskserv_delete_workflow,
)

__all__ = [
    "TASKSERV_NAME",
    "Catalog",
    "Taskserv",
    "catalog_for",
    "list_taskservs",
    "load_taskserv",
    "server_delete_workflow",
    "servers_create_workflow",
    "taskserv_create_workflow",
    "taskserv_delete_workflow",
]
