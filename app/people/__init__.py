"""The newsroom's people: users and their passwords, roles per blog, and the one place that
answers "may this actor do this to this blog" (permissions.py)."""
