# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Writes 200 MB into its own directory in files of 64 KiB (each under the per-file size limit).
block = b"x" * 65536
for i in range(3200):
    with open(f"fill-{i}.bin", "wb") as f:
        f.write(block)
