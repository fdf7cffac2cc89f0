"""The rooms of the request path that `runtime/app.py` walks through, one job each."""
