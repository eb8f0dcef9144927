# expect: wall-time limit
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Ignores the per-test alarm, then sleeps (no CPU used, so only the wall clock stops it).
import signal
import time

signal.signal(signal.SIGALRM, signal.SIG_IGN)
while True:
    time.sleep(60)
