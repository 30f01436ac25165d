# As the seed README asks; works beside the installed entry point.
pytest_plugins = ["pytest_pagerduty.plugin"]
