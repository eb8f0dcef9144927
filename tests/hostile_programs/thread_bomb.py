# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Starts 10,000 threads that sleep.
import threading
import time

for _ in range(10000):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
