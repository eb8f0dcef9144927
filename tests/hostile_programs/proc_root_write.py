# expect: writes outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Writes into /tmp through /proc/1/root (the root directory of pid 1).
with open("/proc/1/root/tmp/@MARKER@.txt", "w") as f:
    f.write("escaped")
