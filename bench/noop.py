def noop(*args, **kwargs):
    """The plain-RQ baseline's job: does nothing, like jobs.ping does almost nothing."""
    return None
