# expect: writes outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Writes a file into /dev/shm (shared memory that outlives the run).
with open("/dev/shm/@MARKER@", "w") as f:
    f.write("escaped")
