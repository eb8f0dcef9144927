# expect: memory limit
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Allocates 10 MB blocks until far past any memory limit (64 GB).
blocks = []
for _ in range(6400):
    blocks.append(bytearray(10 * 1024 * 1024))
