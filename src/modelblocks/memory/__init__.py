from .check import PlanError, check_plan, format_plan, live_bytes, lower_bound
from .liveness import Buffer, StoragePlan, analyze_storage
from .planner import (
    STRATEGIES,
    PlanResult,
    plan_best,
    plan_greedy_by_area,
    plan_greedy_by_breadth,
    plan_greedy_by_conflict,
    plan_greedy_by_size,
    plan_greedy_by_size_best_fit,
    plan_greedy_by_start,
    plan_naive,
    plan_two_ended,
)

__all__ = ["Buffer", "PlanError", "PlanResult", "STRATEGIES", "StoragePlan", "analyze_storage", "check_plan",
           "format_plan", "live_bytes", "lower_bound", "plan_best", "plan_greedy_by_area", "plan_greedy_by_breadth",
           "plan_greedy_by_conflict", "plan_greedy_by_size", "plan_greedy_by_size_best_fit", "plan_greedy_by_start",
           "plan_naive", "plan_two_ended"]
