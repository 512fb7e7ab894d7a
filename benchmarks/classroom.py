"""A classroom on loopback for the benchmarks: vae_explorer.app.serving.classroom (what
`vae-explorer app --workers N` runs), app processes behind nginx with configs/serving/nginx-classroom.conf.

    with classroom(processes=2) as (base, servers, nginx): ...   # base: nginx's address
"""

from vae_explorer.app.serving import classroom  # noqa: F401
