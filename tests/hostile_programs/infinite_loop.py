# expect: CPU-time limit
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Ignores the per-test alarm, then spins forever.
import signal

signal.signal(signal.SIGALRM, signal.SIG_IGN)
while True:
    pass
