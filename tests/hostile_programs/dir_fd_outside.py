# expect: outside its directory
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Opens a folder outside its directory, then a secret relative to that folder's descriptor.
import os

folder = os.open("@OUTSIDE@", os.O_RDONLY)
secret = os.open("secret.txt", os.O_RDONLY, dir_fd=folder)
raise RuntimeError(f"leaked {os.read(secret, 200)}")
