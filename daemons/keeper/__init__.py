"""ops-keeper: the policy gate that decides, collects approvals, signs and publishes ops.

Public surface: `Keeper` (an `OpsGate`), `load_policy`, `Policy`, `PolicyDef`, `open_keeper`.
"""

from daemons.keeper.policy import Policy, PolicyDef, load_policy
from daemons.keeper.runtime import POLICY_FILE, open_keeper
from daemons.keeper.service import Keeper
from daemons.keeper.signer import Signer

__all__ = ["POLICY_FILE", "Keeper", "Policy", "PolicyDef", "Signer", "load_policy", "open_keeper"]
