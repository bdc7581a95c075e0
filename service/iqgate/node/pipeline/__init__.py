"""Assessment: build_pipeline(settings), the worker (claim, route, decode, assess, write), MR series."""
