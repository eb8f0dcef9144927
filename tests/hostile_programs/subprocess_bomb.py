# expect: starts a subprocess
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# A fork bomb through the shell.
import subprocess

subprocess.Popen("bomb() { bomb | bomb & }; bomb", shell=True)
