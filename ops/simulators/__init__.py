"""Loopback stand-ins for the third parties we cannot run here: the postal carrier, the SMS,
Zalo and e-mail providers, and the national public-service portal. Each is a real server
speaking its protocol, run as its own process (``python -m ops.simulators.<name>``), with a
``/control`` API so tests and the demo can make it fail, slow down, duplicate or reorder."""
