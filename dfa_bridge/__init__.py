"""dfa_bridge: Direct Feedback Alignment training through any OPU (DESIGN.md section 5)."""

__all__: list[str] = []
