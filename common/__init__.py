"""Facts the pipeline, the model server, monitoring and insights share; owned by none of them.

`common.facts` (names, paths, host, ports), `common.exit_codes` (CLI exit codes), `common.limits` (int64 bounds).
"""
