"""The five ways in to the platform that must answer alike, keyed A-E."""

from contracts.tiers.base import Listing, Outcome, RegistryFactory, Tier, TierEnv
from contracts.tiers.cli import CliTier
from contracts.tiers.direct import DirectTier
from contracts.tiers.http import HttpTier
from contracts.tiers.mcp import InProcessMcpTier, StdioMcpTier

TIERS: dict[str, type[Tier]] = {
    tier.key: tier for tier in (DirectTier, HttpTier, InProcessMcpTier, CliTier, StdioMcpTier)
}

__all__ = ["TIERS", "Listing", "Outcome", "RegistryFactory", "Tier", "TierEnv"]
