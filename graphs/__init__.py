"""The state machines: Algorithm 1 and the two baselines (direct, cot)."""
