"""Plain helpers the test modules share; fixtures stay in the conftest.py files."""
