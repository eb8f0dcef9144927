# expect: looks up a host name
# Hostile test input for tests/test_rewards_unit_tests.py: never run it outside rewards.sandbox.
# Resolves a host name (DNS can carry data out).
import socket

socket.getaddrinfo("example.com", 80)
