# expect: creates a symbolic link
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Links a secret outside its directory into it, then reads the link.
import os

os.symlink("@OUTSIDE@/secret.txt", "link")
raise RuntimeError(f"leaked {open('link').read()}")
