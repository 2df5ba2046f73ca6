from .liveness import Buffer, StoragePlan, analyze_storage
from .planner import plan_greedy_by_size, plan_naive

__all__ = ["Buffer", "StoragePlan", "analyze_storage", "plan_greedy_by_size", "plan_naive"]
