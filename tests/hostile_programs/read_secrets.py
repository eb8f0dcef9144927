# expect: reads outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Looks for secrets in its environment, then in its parent's environment and in /etc.
import os

secrets = {name: value for name, value in os.environ.items()
           if any(word in name for word in ("SECRET", "TOKEN", "KEY", "PASSWORD"))}
if secrets:
    raise RuntimeError(f"leaked {secrets}")
with open(f"/proc/{os.getppid()}/environ", "rb") as f:
    raise RuntimeError(f"leaked {f.read()}")
