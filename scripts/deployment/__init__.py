"""The deployment layer: configuration, keys, chain access, plan and manifest.

The commands are scripts/deploy.py (deploy from config/cities.yaml), scripts/city.py (show a
city) and scripts/chain.py (the embedded chain).
"""


class DeploymentError(RuntimeError):
    """Deployment stopped; the message says what was wrong, with the value, and what would do."""
