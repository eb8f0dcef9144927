# expect: changes its resource limits
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Lifts its memory limit, then allocates 8 GB.
import resource

resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
blocks = [bytearray(1 << 30) for _ in range(8)]
