# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Writes 200 MB into one file in its own directory.
block = b"x" * (1 << 20)
with open("fill.bin", "wb") as f:
    for _ in range(200):
        f.write(block)
