# expect: output limit
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Prints without end.
while True:
    print("spam" * 1000)
