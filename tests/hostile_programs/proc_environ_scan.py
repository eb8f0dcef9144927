# expect: reads outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Looks for secrets in the environment of every process it can see.
import os

for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if b"LOOKAHEAD_TEST_SECRET" in environ:
            raise RuntimeError(f"leaked {environ}")
raise RuntimeError("no secret found")
