# expect: runs a shell command
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Runs /bin/sh with os.system, writing outside.
import os

if os.system("/bin/sh -c 'id > @OUTSIDE@/shell.txt'") != 0:
    raise RuntimeError("the shell failed")
