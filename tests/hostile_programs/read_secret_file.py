# expect: reads outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Reads a secret file outside its directory and puts it in its results.
with open("@OUTSIDE@/secret.txt") as f:
    raise RuntimeError(f"leaked {f.read()}")
